// echo_server PORT [streams|protocol] [--tls CERTFILE KEYFILE]
//
// Echoes every byte back, on 127.0.0.1:PORT, until SIGINT or SIGTERM; then
// closes its clients and exits 0. "protocol" (the default) is the
// transport/protocol API — data_received writes straight back; "streams"
// runs a task per connection over stream_reader/stream_writer. With --tls
// the same server speaks TLS (the ssl= option; nothing else changes).
#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <cstdlib>
#include <string>

#include <pyco/net/ssl.hpp>
#include <pyco/pyco.hpp>

namespace {

struct echo_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    void connection_made(pyco::transport& tr) override { t = &tr; }
    void data_received(std::span<const std::byte> data) override { t->write(data); }
};

pyco::coroutine<void> echo_stream(std::shared_ptr<pyco::stream_reader> reader, pyco::stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader->read(65536);
            if (data.empty()) break;  // EOF
            writer.write(data);
            co_await writer.drain();
        }
    } catch (const pyco::connection_error&) {
        // The client went away mid-write: nothing to echo to.
    }
    writer.close();
}

pyco::coroutine<int> serve(std::uint16_t port, bool streams, std::optional<pyco::ssl_context> tls) {
    pyco::event_loop& loop = pyco::get_running_loop();
    pyco::server srv;
    if (streams) {
        pyco::start_server_options opts;
        opts.ssl = tls;
        srv = co_await pyco::start_server(echo_stream, "127.0.0.1", port, opts);
    } else {
        auto factory = [] { return std::make_shared<echo_protocol>(); };
        pyco::server_options opts;
        opts.ssl = tls;
        srv = co_await loop.create_server(factory, "127.0.0.1", port, opts);
    }
    pyco::future<void> stop = loop.create_future<void>();
    for (int sig : {SIGINT, SIGTERM}) {
        loop.add_signal_handler(sig, [stop]() mutable {
            if (!stop.done()) stop.set_result();
        });
    }
    std::printf("echo_server: %s%s on %s\n", streams ? "streams" : "protocol", tls ? " over TLS" : "",
                srv.sockets().at(0).to_string().c_str());
    std::fflush(stdout);
    co_await stop;
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
    co_return 0;
}

}  // namespace

int usage() {
    std::fprintf(stderr, "usage: echo_server PORT [streams|protocol] [--tls CERTFILE KEYFILE]\n");
    return 2;
}

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    const int port = std::atoi(argv[1]);
    const std::string mode = argc > 2 ? argv[2] : "protocol";
    const bool tls = argc > 3 && std::string(argv[3]) == "--tls";
    if (port < 0 || port > 65535 || (mode != "streams" && mode != "protocol") || (argc > 3 && !tls) ||
        (tls && argc != 6)) {
        return usage();
    }
    // A port in use, a refused backend (PYCO_BACKEND=io_uring where the
    // kernel has none), a bad certificate: said in one line, not an abort.
    try {
        std::optional<pyco::ssl_context> context;
        if (tls) {
#if PYCO_EXAMPLE_TLS
            context = pyco::ssl_context::server();
            context->load_cert_chain(argv[4], std::string(argv[5]));
#else
            std::fprintf(stderr, "echo_server: built without TLS (OpenSSL was not found)\n");
            return 1;
#endif
        }
        return pyco::run(serve(static_cast<std::uint16_t>(port), mode == "streams", context));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
}
