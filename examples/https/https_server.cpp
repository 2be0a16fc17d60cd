// https_server PORT CERTFILE KEYFILE
//
// http_server over TLS: on 127.0.0.1:PORT, every GET (and HEAD) gets "200
// OK" with "Hello, World!", other methods 405 — the very protocol of the
// HTTP example (examples/http/http_protocol.hpp), which sees a transport and
// does not know it is encrypted. Keep-alive and pipelining as there. It
// stops on SIGINT or SIGTERM, closing its clients (each gets close_notify),
// and exits 0. A certificate for trying it: see README.md.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <pyco/net/ssl.hpp>
#include <pyco/pyco.hpp>

#include "http_protocol.hpp"

namespace {

pyco::coroutine<int> serve(std::uint16_t port, pyco::ssl_context tls) {
    pyco::event_loop& loop = pyco::get_running_loop();
    auto factory = [] { return std::make_shared<http_example::http_protocol>(); };
    pyco::server_options opts;
    opts.ssl = tls;
    pyco::server srv = co_await loop.create_server(factory, "127.0.0.1", port, opts);
    pyco::future<void> stop = loop.create_future<void>();
    for (int sig : {SIGINT, SIGTERM}) {
        loop.add_signal_handler(sig, [stop]() mutable {
            if (!stop.done()) stop.set_result();
        });
    }
    std::printf("https_server: on https://%s/\n", srv.sockets().at(0).to_string().c_str());
    std::fflush(stdout);
    co_await stop;
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: https_server PORT CERTFILE KEYFILE\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    if (port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: https_server PORT CERTFILE KEYFILE\n");
        return 2;
    }
    // A missing or unreadable certificate, a port in use: one line, exit 1.
    try {
        pyco::ssl_context tls = pyco::ssl_context::server();
        tls.load_cert_chain(argv[2], std::string(argv[3]));
        tls.set_alpn_protocols({"http/1.1"});
        return pyco::run(serve(static_cast<std::uint16_t>(port), tls));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "https_server: %s\n", e.what());
        return 1;
    }
}
