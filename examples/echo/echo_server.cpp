// echo_server PORT [streams|protocol]
//
// Echoes every byte back, on 127.0.0.1:PORT, until SIGINT or SIGTERM; then
// closes its clients and exits 0. "protocol" (the default) is the
// transport/protocol API — data_received writes straight back; "streams"
// runs a task per connection over stream_reader/stream_writer.
#include <csignal>
#include <cstdio>
#include <exception>
#include <cstdlib>
#include <string>

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

pyco::coroutine<int> serve(std::uint16_t port, bool streams) {
    pyco::event_loop& loop = pyco::get_running_loop();
    pyco::server srv;
    if (streams) {
        srv = co_await pyco::start_server(echo_stream, "127.0.0.1", port);
    } else {
        auto factory = [] { return std::make_shared<echo_protocol>(); };
        srv = co_await loop.create_server(factory, "127.0.0.1", port);
    }
    pyco::future<void> stop = loop.create_future<void>();
    for (int sig : {SIGINT, SIGTERM}) {
        loop.add_signal_handler(sig, [stop]() mutable {
            if (!stop.done()) stop.set_result();
        });
    }
    std::printf("echo_server: %s on %s\n", streams ? "streams" : "protocol", srv.sockets().at(0).to_string().c_str());
    std::fflush(stdout);
    co_await stop;
    srv.close();
    srv.close_clients();
    co_await srv.wait_closed();
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: echo_server PORT [streams|protocol]\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const std::string mode = argc > 2 ? argv[2] : "protocol";
    if (port < 0 || port > 65535 || (mode != "streams" && mode != "protocol")) {
        std::fprintf(stderr, "usage: echo_server PORT [streams|protocol]\n");
        return 2;
    }
    // A port in use, a refused backend (PYCO_BACKEND=io_uring where the
    // kernel has none): said in one line, not an abort.
    try {
        return pyco::run(serve(static_cast<std::uint16_t>(port), mode == "streams"));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
}
