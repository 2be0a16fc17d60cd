// The Boost.Asio peer for the echo benchmark: C++20 coroutines
// (co_spawn + use_awaitable), one thread, as Asio's own echo example.
//   asio_echo PORT        (binds 127.0.0.1)
#include <boost/asio.hpp>

#include <cstdio>
#include <cstdlib>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket s) {
    char data[65536];
    try {
        for (;;) {
            std::size_t n = co_await s.async_read_some(asio::buffer(data), asio::use_awaitable);
            co_await asio::async_write(s, asio::buffer(data, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // The client went away.
    }
}

asio::awaitable<void> listener(tcp::acceptor& acceptor) {
    for (;;) {
        tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
        s.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo(std::move(s)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: asio_echo PORT\n");
        return 2;
    }
    asio::io_context ctx(1);
    tcp::acceptor acceptor(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                              static_cast<unsigned short>(std::atoi(argv[1]))));
    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) { ctx.stop(); });
    asio::co_spawn(ctx, listener(acceptor), asio::detached);
    ctx.run();
    return 0;
}
