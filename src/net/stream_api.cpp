// asyncio.open_connection, start_server and their Unix twins: a
// stream_reader_protocol over a transport made by the loop's
// create_connection / create_server.
#include <pyco/event_loop.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/net/transport.hpp>

namespace pyco {

namespace {

std::pair<protocol_factory, std::shared_ptr<std::shared_ptr<stream_reader_protocol>>> client_factory(std::size_t limit) {
    // The factory runs inside create_connection; remember what it made.
    auto made = std::make_shared<std::shared_ptr<stream_reader_protocol>>();
    protocol_factory f = [made, limit]() -> std::shared_ptr<protocol> {
        auto reader = std::make_shared<stream_reader>(static_cast<std::ptrdiff_t>(limit));
        *made = std::make_shared<stream_reader_protocol>(std::move(reader));
        return *made;
    };
    return {std::move(f), std::move(made)};
}

protocol_factory server_factory(client_connected_cb cb, std::size_t limit) {
    return [cb = std::move(cb), limit]() -> std::shared_ptr<protocol> {
        auto reader = std::make_shared<stream_reader>(static_cast<std::ptrdiff_t>(limit));
        return std::make_shared<stream_reader_protocol>(std::move(reader), cb);
    };
}

stream_pair pair_of(const connection_pair& c, const std::shared_ptr<stream_reader_protocol>& p) {
    return {p->reader(), stream_writer(c.first, p, p->reader())};
}

}  // namespace

coroutine<stream_pair> open_connection(std::string host, std::uint16_t port, open_connection_options options) {
    event_loop& loop = get_running_loop();
    auto [factory, made] = client_factory(options.limit);
    connection_options o;
    o.family = options.family;
    o.flags = options.flags;
    o.local_addr = options.local_addr;
    o.happy_eyeballs_delay = options.happy_eyeballs_delay;
    o.interleave = options.interleave;
    o.ssl = std::move(options.ssl);
    o.server_hostname = std::move(options.server_hostname);
    o.ssl_handshake_timeout = options.ssl_handshake_timeout;
    o.ssl_shutdown_timeout = options.ssl_shutdown_timeout;
    connection_pair c = co_await loop.create_connection(std::move(factory), std::move(host), port, o);
    co_return pair_of(c, *made);
}

coroutine<stream_pair> open_unix_connection(std::string path, std::size_t limit) {
    open_unix_connection_options o;
    o.limit = limit;
    return open_unix_connection(std::move(path), std::move(o));
}

coroutine<stream_pair> open_unix_connection(std::string path, open_unix_connection_options options) {
    event_loop& loop = get_running_loop();
    auto [factory, made] = client_factory(options.limit);
    unix_connection_options o;
    o.ssl = std::move(options.ssl);
    o.server_hostname = std::move(options.server_hostname);
    o.ssl_handshake_timeout = options.ssl_handshake_timeout;
    o.ssl_shutdown_timeout = options.ssl_shutdown_timeout;
    connection_pair c = co_await loop.create_unix_connection(std::move(factory), std::move(path), std::move(o));
    co_return pair_of(c, *made);
}

coroutine<server> start_server(client_connected_cb cb, std::string host, std::uint16_t port,
                               start_server_options options) {
    return start_server(std::move(cb), std::vector<std::string>{std::move(host)}, port, options);
}

coroutine<server> start_server(client_connected_cb cb, std::vector<std::string> hosts, std::uint16_t port,
                               start_server_options options) {
    event_loop& loop = get_running_loop();
    server_options o;
    o.family = options.family;
    o.flags = options.flags;
    o.backlog = options.backlog;
    o.reuse_address = options.reuse_address;
    o.reuse_port = options.reuse_port;
    o.keep_alive = options.keep_alive;
    o.start_serving = options.start_serving;
    o.ssl = std::move(options.ssl);
    o.ssl_handshake_timeout = options.ssl_handshake_timeout;
    o.ssl_shutdown_timeout = options.ssl_shutdown_timeout;
    co_return co_await loop.create_server(server_factory(std::move(cb), options.limit), std::move(hosts), port, o);
}

coroutine<server> start_unix_server(client_connected_cb cb, std::string path, std::size_t limit, int backlog,
                                    bool start_serving) {
    start_unix_server_options o;
    o.limit = limit;
    o.backlog = backlog;
    o.start_serving = start_serving;
    return start_unix_server(std::move(cb), std::move(path), std::move(o));
}

coroutine<server> start_unix_server(client_connected_cb cb, std::string path, start_unix_server_options options) {
    event_loop& loop = get_running_loop();
    unix_server_options o;
    o.backlog = options.backlog;
    o.start_serving = options.start_serving;
    o.cleanup_socket = options.cleanup_socket;
    o.ssl = std::move(options.ssl);
    o.ssl_handshake_timeout = options.ssl_handshake_timeout;
    o.ssl_shutdown_timeout = options.ssl_shutdown_timeout;
    co_return co_await loop.create_unix_server(server_factory(std::move(cb), options.limit), std::move(path), o);
}

}  // namespace pyco
