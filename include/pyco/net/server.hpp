// pyco/net/server.hpp — asyncio.Server: listening sockets and their clients.
//
// Made by loop.create_server / create_unix_server (and start_server /
// start_unix_server for streams). A server is a handle: copies share one
// server. Each listening socket keeps one multishot accept armed while the
// server is serving; every accepted connection gets a protocol from the
// factory and a transport, whose connection_made runs at once.
//
// Lifecycle, as CPython 3.12.1+:
//   - close() stops listening at once (the listening sockets are closed);
//     connections already accepted go on. close_clients() / abort_clients()
//     (3.13) close or abort those too.
//   - wait_closed() returns once the server is closed AND every connection
//     it accepted has been lost — in either order.
//   - serve_forever() serves until cancelled; its cancellation closes the
//     server and waits for it to be closed, then re-raises.
//   - async_with(server, body): aexit closes and waits closed.
//
// Accept errors: running out of fds or memory (EMFILE, ENFILE, ENOBUFS,
// ENOMEM) is reported through the loop's exception handler ("socket.accept()
// out of system resource") and accepting pauses for 1 s (asyncio's
// ACCEPT_RETRY_DELAY) while the server keeps serving its connections —
// nothing spins. Other accept errors are reported and retried the same way.
//
// Thread rule: loop thread only.
#pragma once

#include <sys/socket.h>

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/ssl.hpp>

namespace pyco {

class event_loop;
class protocol;

namespace detail {
struct server_state;
}

class server {
public:
    server() = default;
    explicit server(std::shared_ptr<detail::server_state> s) noexcept : s_(std::move(s)) {}

    event_loop& get_loop() const;
    bool is_serving() const noexcept;
    // Start accepting (create_server(start_serving = false) leaves it off).
    coroutine<void> start_serving();
    // runtime_error "server <...> is already being awaited on
    // serve_forever()" / "server <...> is closed".
    coroutine<void> serve_forever();
    void close();
    coroutine<void> wait_closed();
    void close_clients();
    void abort_clients();
    // The listening sockets' addresses (Python: s.getsockname() for s in
    // server.sockets); empty once closed.
    std::vector<sock_address> sockets() const;
    // Their fds (Python: s.fileno()); empty once closed.
    std::vector<int> fds() const;
    std::string repr() const;

    // async with server:
    server& aenter() noexcept { return *this; }
    coroutine<bool> aexit(std::exception_ptr e);

    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    std::shared_ptr<detail::server_state> s_;
};

struct server_options {
    int family = AF_UNSPEC;
    int flags = 0;  // getaddrinfo flags, besides AI_PASSIVE
    int backlog = 100;
    // SO_REUSEADDR: on by default for TCP, as asyncio on POSIX.
    std::optional<bool> reuse_address;
    bool reuse_port = false;
    bool keep_alive = false;  // SO_KEEPALIVE (3.13)
    bool start_serving = true;
    // TLS (Python's ssl=): a server context (ssl_context::server() or
    // create_default_context(ssl_purpose::client_auth)) with its
    // certificate. Each connection's protocol gets connection_made after its
    // handshake; a failed handshake drops that connection only.
    std::optional<ssl_context> ssl;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

struct unix_server_options {
    int backlog = 100;
    bool start_serving = true;
    // Remove the socket file when the server closes (3.13's cleanup_socket),
    // unless it is gone or another socket replaced it (same inode check).
    bool cleanup_socket = true;
    // TLS, as server_options.
    std::optional<ssl_context> ssl;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

namespace detail {
// Makes a server of bound, not yet listening, sockets (fds it now owns).
server make_server(event_loop& loop, protocol_factory factory, std::vector<int> fds, int backlog,
                   std::string unix_path_to_remove = {});
}  // namespace detail

}  // namespace pyco
