// What the TLS tests share: the test certificates' contexts (made once per
// process by ssl_certs.hpp), a line echo handler, and the ssl= options for
// a client that trusts the test CA and for a server with the "server"
// certificate (localhost, 127.0.0.1, ::1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <pyco/coroutine.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/ssl.hpp>
#include <pyco/net/streams.hpp>

#include "net/ssl_certs.hpp"

namespace ssl_test {

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

inline pyco::coroutine<void> echo_lines(std::shared_ptr<pyco::stream_reader> r, pyco::stream_writer w) {
    for (;;) {
        std::string line = co_await r->readline();
        if (line.empty()) break;
        w.write(line);
        co_await w.drain();
    }
    w.close();
}

inline pyco::open_connection_options tls_client(pyco::ssl_context c = client_ctx(), std::string host = "localhost") {
    pyco::open_connection_options o;
    o.ssl = std::move(c);
    o.server_hostname = std::move(host);
    return o;
}

inline pyco::start_server_options tls_server(pyco::ssl_context c = server_ctx()) {
    pyco::start_server_options o;
    o.ssl = std::move(c);
    return o;
}

}  // namespace ssl_test
