// A pyco TLS peer for tests/net/ssl_interop.py (peers nobody here wrote:
// openssl s_server/s_client, CPython's asyncio with ssl).
//   ssl_echo server CERT KEY      echo lines over TLS on 127.0.0.1, port
//                                 printed as "PORT n"; closes a connection
//                                 after echoing "bye\n"; exits after one
//                                 client has sent "quit\n"
//   ssl_echo client PORT CAFILE   connect to 127.0.0.1:PORT checking the
//                                 name "localhost", send a line and 1 MiB,
//                                 check the echo, print "OK"
#include <cstdio>
#include <cstdlib>
#include <string>

#include <pyco/net/ssl.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/event.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

using pyco::coroutine;
using namespace std::chrono_literals;

namespace {

coroutine<int> serve(std::string certfile, std::string keyfile) {
    pyco::ssl_context ctx = pyco::ssl_context::server();
    ctx.load_cert_chain(certfile, keyfile);
    pyco::event quit;
    auto handler = [&quit](std::shared_ptr<pyco::stream_reader> r, pyco::stream_writer w) -> coroutine<void> {
        for (;;) {
            std::string line = co_await r->readline();
            if (line.empty()) break;
            if (line == "quit\n") quit.set();
            w.write(line);
            co_await w.drain();
            if (line == "bye\n") break;  // s_client waits for our close
        }
        w.close();
        co_await w.wait_closed();
    };
    pyco::start_server_options o;
    o.ssl = ctx;
    pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0, o);
    std::printf("PORT %u\n", static_cast<unsigned>(srv.sockets().at(0).port()));
    std::fflush(stdout);
    co_await pyco::wait_for(quit.wait(), 60s);
    co_await pyco::sleep(100ms);
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
    co_return 0;
}

coroutine<int> client(std::uint16_t port, std::string cafile, bool rev) {
    pyco::open_connection_options o;
    o.ssl = pyco::ssl_context::create_default_context(pyco::ssl_purpose::server_auth, cafile);
    o.server_hostname = "localhost";
    auto [r, w] = co_await pyco::open_connection("127.0.0.1", port, o);
    if (rev) {  // openssl s_server -rev answers each line reversed
        w.write("hello pyco\n");
        co_await w.drain();
        std::string back = co_await r->readline();
        if (back != "ocyp olleh\n") {
            std::printf("MISMATCH %s\n", back.c_str());
            co_return 1;
        }
        std::printf("OK %s\n", std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object")).version().c_str());
        w.close();
        co_await w.wait_closed();
        co_return 0;
    }
    std::string big(1 << 20, 'x');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = i % 1024 == 1023 ? '\n' : static_cast<char>('a' + i % 26);
    w.write("hello\n");
    w.write(big);
    co_await w.drain();
    std::string a = co_await r->readline();
    std::string b = co_await r->readexactly(big.size());
    if (a != "hello\n" || b != big) {
        std::printf("MISMATCH %zu %zu\n", a.size(), b.size());
        co_return 1;
    }
    w.close();
    co_await w.wait_closed();
    std::printf("OK %s\n", std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object")).version().c_str());
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[1]) == "server") return pyco::run(serve(argv[2], argv[3]));
    if ((argc == 4 || argc == 5) && std::string(argv[1]) == "client") {
        try {
            return pyco::run(client(static_cast<std::uint16_t>(std::atoi(argv[2])), argv[3], argc == 5));
        } catch (const std::exception& e) {
            std::printf("ERROR %s\n", e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "usage: ssl_echo server CERT KEY | client PORT CAFILE\n");
    return 2;
}
