// http_server PORT [THREADS]
//
// An HTTP/1.1 keep-alive server on 127.0.0.1:PORT: every GET (and HEAD) gets
// "200 OK" with the 13-byte body "Hello, World!"; other methods get 405.
// Requests may be pipelined. It stops on SIGINT or SIGTERM and exits 0.
//
// THREADS > 1 runs one event loop per thread, each accepting on its own
// SO_REUSEPORT listener on the same port: the way to use N cores with pyco
// (one loop per thread, nothing shared), and the kernel spreads connections.
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <exception>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <pyco/pyco.hpp>

namespace {

constexpr std::string_view ok_response =
    "HTTP/1.1 200 OK\r\nServer: pyco\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
constexpr std::string_view ok_head =
    "HTTP/1.1 200 OK\r\nServer: pyco\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n";
constexpr std::string_view not_allowed =
    "HTTP/1.1 405 Method Not Allowed\r\nServer: pyco\r\nContent-Length: 0\r\nAllow: GET, HEAD\r\n\r\n";
constexpr std::string_view bad_request =
    "HTTP/1.1 400 Bad Request\r\nServer: pyco\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::size_t max_head = 16 * 1024;

bool iequals_prefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
    }
    return true;
}

// One request head: "METHOD target HTTP/1.x\r\n" headers "\r\n".
struct request {
    std::string_view method;
    bool http10 = false;
    bool close = false;
    bool keep_alive = false;
    std::size_t content_length = 0;
};

bool parse_head(std::string_view head, request& r) {
    std::size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    std::size_t sp1 = line.find(' ');
    std::size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    r.method = line.substr(0, sp1);
    std::string_view version = line.substr(sp2 + 1);
    if (version == "HTTP/1.0") {
        r.http10 = true;
    } else if (version != "HTTP/1.1") {
        return false;
    }
    while (eol != std::string_view::npos && eol + 2 < head.size()) {
        std::size_t next = head.find("\r\n", eol + 2);
        std::string_view h = head.substr(eol + 2, next - eol - 2);
        if (iequals_prefix(h, "connection:")) {
            std::string_view v = h.substr(11);
            if (v.find("close") != std::string_view::npos || v.find("Close") != std::string_view::npos) r.close = true;
            if (v.find("eep-alive") != std::string_view::npos) r.keep_alive = true;
        } else if (iequals_prefix(h, "content-length:")) {
            r.content_length = std::strtoull(std::string(h.substr(15)).c_str(), nullptr, 10);
        }
        eol = next;
    }
    return true;
}

struct http_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    std::string pending;  // an incomplete request head (rare: most arrive whole)
    std::size_t skip_body = 0;

    void connection_made(pyco::transport& tr) override { t = &tr; }

    void data_received(std::span<const std::byte> data) override {
        std::string_view in = as_text(data);
        if (!pending.empty()) {
            pending.append(in);
            in = pending;
        }
        std::string out;
        std::size_t pos = 0;
        bool close = false;
        while (pos < in.size() && !close) {
            if (skip_body > 0) {
                std::size_t k = std::min(skip_body, in.size() - pos);
                skip_body -= k;
                pos += k;
                continue;
            }
            std::size_t end = in.find("\r\n\r\n", pos);
            if (end == std::string_view::npos) break;
            request r;
            if (!parse_head(in.substr(pos, end + 2 - pos), r)) {
                out.append(bad_request);
                close = true;
                break;
            }
            pos = end + 4;
            skip_body = r.content_length;
            if (r.method == "GET") {
                out.append(ok_response);
            } else if (r.method == "HEAD") {
                out.append(ok_head);
            } else {
                out.append(not_allowed);
            }
            close = r.close || (r.http10 && !r.keep_alive);
        }
        std::string rest(in.substr(pos));
        pending = std::move(rest);
        if (pending.size() > max_head) {
            out.append(bad_request);
            close = true;
        }
        if (!out.empty()) t->write(std::string_view(out));
        if (close) t->close();
    }
};

pyco::coroutine<int> serve(std::uint16_t port, bool reuse_port) {
    pyco::event_loop& loop = pyco::get_running_loop();
    auto factory = [] { return std::make_shared<http_protocol>(); };
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
                    auto factory = [] { return std::make_shared<http_protocol>(); };
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
