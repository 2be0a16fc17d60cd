// The Boost.Asio + asio::ssl peer for the TLS echo benchmark: the same
// server as asio_echo.cpp with an ssl::stream over each socket.
//   asio_ssl_echo PORT CERTFILE KEYFILE     (binds 127.0.0.1)
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <cstdio>
#include <cstdlib>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(asio::ssl::stream<tcp::socket> s) {
    char data[65536];
    try {
        co_await s.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        for (;;) {
            std::size_t n = co_await s.async_read_some(asio::buffer(data), asio::use_awaitable);
            co_await asio::async_write(s, asio::buffer(data, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // The client went away (or closed without close_notify).
    }
}

asio::awaitable<void> listener(tcp::acceptor& acceptor, asio::ssl::context& tls) {
    for (;;) {
        tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
        s.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo(asio::ssl::stream<tcp::socket>(std::move(s), tls)),
                       asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: asio_ssl_echo PORT CERTFILE KEYFILE\n");
        return 2;
    }
    asio::ssl::context tls(asio::ssl::context::tls_server);
    tls.use_certificate_chain_file(argv[2]);
    tls.use_private_key_file(argv[3], asio::ssl::context::pem);
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                              static_cast<unsigned short>(std::atoi(argv[1]))));
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) { ctx.stop(); });
    asio::co_spawn(ctx, listener(acceptor, tls), asio::detached);
    ctx.run();
    return 0;
}
