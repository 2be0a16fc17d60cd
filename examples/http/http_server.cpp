// http_server PORT [THREADS]
//
// An HTTP/1.1 keep-alive server on 127.0.0.1:PORT: every GET (and HEAD) gets
// "200 OK" with the 13-byte body "Hello, World!"; other methods get 405
// (http_protocol.hpp). Requests may be pipelined. It stops on SIGINT or
// SIGTERM and exits 0.
//
// THREADS > 1 runs one event loop per thread, each accepting on its own
// SO_REUSEPORT listener on the same port: the way to use N cores with pyco
// (one loop per thread, nothing shared), and the kernel spreads connections.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <pyco/pyco.hpp>

#include "http_protocol.hpp"

namespace {

pyco::coroutine<int> serve(std::uint16_t port, bool reuse_port) {
    pyco::event_loop& loop = pyco::get_running_loop();
    auto factory = [] { return std::make_shared<http_example::http_protocol>(); };
    pyco::server_options opts;
    opts.reuse_port = reuse_port;
    pyco::server srv = co_await loop.create_server(factory, "127.0.0.1", port, opts);
    pyco::future<void> stop = loop.create_future<void>();
    auto stopper = [stop]() mutable {
        if (!stop.done()) stop.set_result();
    };
    if (!reuse_port) {
        loop.add_signal_handler(SIGINT, stopper);
        loop.add_signal_handler(SIGTERM, stopper);
    }
    co_await stop;
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: http_server PORT [THREADS]\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
    if (port < 0 || port > 65535 || threads < 1 || threads > 256) {
        std::fprintf(stderr, "usage: http_server PORT [THREADS]\n");
        return 2;
    }
    if (threads == 1) {
        // A port in use, a refused backend (PYCO_BACKEND=io_uring where the
        // kernel has none): said in one line, not an abort.
        try {
            return pyco::run(serve(static_cast<std::uint16_t>(port), false));
        } catch (const std::exception& e) {
            std::fprintf(stderr, "http_server: %s\n", e.what());
            return 1;
        }
    }

    // One loop per thread. The main thread waits for the signal, then asks
    // every loop (through its thread-safe proxy) to stop.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // the workers inherit the mask
    std::vector<std::thread> workers;
    std::vector<std::atomic<pyco::event_loop*>> loops(static_cast<std::size_t>(threads));
    std::vector<pyco::future<void>*> stops(static_cast<std::size_t>(threads), nullptr);
    std::atomic<int> ready{0};
    std::atomic<int> failed{0};
    for (int i = 0; i < threads; ++i) {
        workers.emplace_back([&, i] {
            try {
                pyco::event_loop loop;
                pyco::future<void> stop = loop.create_future<void>();
                loops[static_cast<std::size_t>(i)] = &loop;
                stops[static_cast<std::size_t>(i)] = &stop;
                auto body = [&]() -> pyco::coroutine<void> {
                    auto factory = [] { return std::make_shared<http_example::http_protocol>(); };
                    pyco::server_options opts;
                    opts.reuse_port = true;
                    pyco::server srv = co_await loop.create_server(factory, "127.0.0.1", static_cast<std::uint16_t>(port), opts);
                    ready.fetch_add(1);
                    co_await stop;
                    srv.close();
                    srv.close_clients();
                    co_await srv.wait_closed();
                };
                loop.run_until_complete(body());
                loops[static_cast<std::size_t>(i)] = nullptr;
            } catch (const std::exception& e) {
                loops[static_cast<std::size_t>(i)] = nullptr;
                std::fprintf(stderr, "http_server: %s\n", e.what());
                failed.fetch_add(1);
                ready.fetch_add(1);
            }
        });
    }
    while (ready.load() < threads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (failed.load() == 0) {
        int sig = 0;
        sigwait(&set, &sig);
    }
    // Each loop is still running (waiting for its stop) when this is sent.
    for (int i = 0; i < threads; ++i) {
        pyco::future<void>* stop = stops[static_cast<std::size_t>(i)];
        if (pyco::event_loop* l = loops[static_cast<std::size_t>(i)]) {
            l->call_soon_threadsafe([stop] {
                if (!stop->done()) stop->set_result();
            });
        }
    }
    for (std::thread& w : workers) w.join();
    return failed.load() == 0 ? 0 : 1;
}
