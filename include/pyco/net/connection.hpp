// pyco/net/connection.hpp — the options of loop.create_connection and
// loop.create_server (declared on event_loop), and what they return.
//
//   auto [t, p] = co_await loop.create_connection(factory, "example.test", 80);
//   pyco::server s = co_await loop.create_server(factory, "127.0.0.1", 0);
//
// create_connection resolves host (off the loop thread unless it is an IP
// literal), then tries every address in turn — or, with
// happy_eyeballs_delay, starts the next one that long after the previous
// (RFC 8305, asyncio's staggered race), and the first to connect wins; the
// others are cancelled and closed. When every address fails: the one error
// if there was one (or if all say the same), else std::system_error
// "Multiple exceptions: ..."; with all_errors, an exception_group
// "create_connection failed" of them all (3.12).
// The transport is returned after the protocol's connection_made ran.
//
// Cancel safety: cancelling create_connection closes every socket it had
// opened; nothing is connected.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <pyco/net/server.hpp>

namespace pyco {

class transport;
class protocol;

struct connection_options {
    int family = AF_UNSPEC;
    int proto = 0;
    int flags = 0;
    // Bind the local end first (Python's local_addr=(host, port)).
    std::optional<std::pair<std::string, std::uint16_t>> local_addr;
    std::optional<std::chrono::milliseconds> happy_eyeballs_delay;
    // Families alternate from this position on (1: the first address's
    // family first). Defaults to 1 when happy_eyeballs_delay is set.
    std::optional<int> interleave;
    bool all_errors = false;
    // TLS (Python's ssl=, server_hostname=, ...): see <pyco/net/ssl.hpp>.
    // server_hostname defaults to host; "" turns SNI and the host name check
    // off (the certificate chain is still verified), as asyncio. The value_errors
    // of asyncio: "server_hostname is only meaningful with ssl", "You must
    // set server_hostname when using ssl without a host",
    // "ssl_handshake_timeout is only meaningful with ssl", and the same for
    // ssl_shutdown_timeout.
    std::optional<ssl_context> ssl;
    std::optional<std::string> server_hostname;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

// loop.create_unix_connection's keywords, which are TLS's only (a Unix
// socket has no host name to default server_hostname to: with ssl it must
// be given, "you have to pass server_hostname when using ssl"; "" turns
// SNI and the name check off). Also those of create_connection(factory,
// sock, options) (Python's sock=), where a missing server_hostname is
// "You must set server_hostname when using ssl without a host".
struct unix_connection_options {
    std::optional<ssl_context> ssl;
    std::optional<std::string> server_hostname;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

// loop.connect_accepted_socket's keywords: the server side of TLS.
struct accepted_socket_options {
    std::optional<ssl_context> ssl;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

}  // namespace pyco
