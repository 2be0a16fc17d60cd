// What the TLS tests share: the test certificates' contexts (made once per
// process by ssl_certs.hpp), the ssl= options for a client that trusts the
// test CA and for a server with the "server" certificate (localhost,
// 127.0.0.1, ::1), for the stream calls and the loop's, and a check that a
// TLS echo server still serves. The line echo handler is net_test's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <pyco/coroutine.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/ssl.hpp>
#include <pyco/net/streams.hpp>

#include "net/net_test_util.hpp"
#include "net/ssl_certs.hpp"

namespace ssl_test {

using net_test::echo_lines;

inline std::string cert(const std::string& name) { return certs::get().path(name); }

inline pyco::ssl_context server_ctx(const std::string& name = "server") {
    pyco::ssl_context c = pyco::ssl_context::server();
    c.load_cert_chain(cert(name + ".pem"), cert(name + ".key"));
    return c;
}

inline pyco::ssl_context client_ctx() {
    return pyco::ssl_context::create_default_context(pyco::ssl_purpose::server_auth, cert("ca.pem"));
}

inline std::uint16_t port_of(const pyco::server& s) { return s.sockets().at(0).port(); }

// The ssl= options of a client that trusts the test CA and of a server
// with `c`: the stream calls' (open_connection, start_server) by default,
// or the loop's (pyco::connection_options, pyco::server_options).
template <class Options = pyco::open_connection_options>
Options tls_client(pyco::ssl_context c = client_ctx(), std::string host = "localhost") {
    Options o;
    o.ssl = std::move(c);
    o.server_hostname = std::move(host);
    return o;
}

template <class Options = pyco::start_server_options>
Options tls_server(pyco::ssl_context c = server_ctx()) {
    Options o;
    o.ssl = std::move(c);
    return o;
}

// A fresh TLS client has a line echoed by the line echo server on `port`:
// the server survived whatever came before.
inline pyco::coroutine<void> still_serving(std::uint16_t port) {
    auto [r, w] = co_await pyco::open_connection("127.0.0.1", port, tls_client());
    w.write("ok\n");
    std::string got = co_await r->readline();
    EXPECT_EQ(got, "ok\n");
    w.close();
    co_await w.wait_closed();
}

}  // namespace ssl_test
