// chat_server PORT
//
// A broadcast chat on 127.0.0.1:PORT, to use with `nc 127.0.0.1 PORT`:
// every line a client sends goes to every other client, prefixed with its
// name ("/nick NAME" renames). Stops on SIGINT/SIGTERM with exit 0.
//
// The shape asyncio programs have: a task per client (start_server runs
// the callback as one), and in it a task group of two tasks — one reading
// the client's lines, one writing what others said. Each client has a
// bounded queue (its outbox). Back-pressure: the writer drains after every
// line, so a client that reads slowly fills its own outbox; a broadcast
// that finds an outbox full drops that slow client ("too slow") instead of
// slowing everybody down or growing memory without bound.
#include <csignal>
#include <cstdio>
#include <exception>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include <pyco/pyco.hpp>

namespace {

constexpr std::size_t outbox_size = 256;

struct member {
    std::string name;
    pyco::queue<std::string> outbox{outbox_size};
    pyco::stream_writer writer;
};

struct room {
    std::map<int, std::shared_ptr<member>> members;
    int next_id = 0;

    void broadcast(int from, const std::string& text) {
        for (auto it = members.begin(); it != members.end();) {
            auto& m = it->second;
            if (it->first != from) {
                try {
                    m->outbox.put_nowait(text);
                } catch (const pyco::queue_full&) {
                    // Too slow to keep up: drop it rather than stall the room.
                    m->outbox.shutdown(true);
                    m->writer.transport().abort();
                    it = members.erase(it);
                    continue;
                }
            }
            ++it;
        }
    }
};

room the_room;

pyco::coroutine<void> write_outbox(std::shared_ptr<member> m) {
    try {
        for (;;) {
            std::string line = co_await m->outbox.get();
            m->writer.write(line);
            co_await m->writer.drain();
        }
    } catch (const pyco::queue_shut_down&) {
        // Left, or dropped.
    }
}

pyco::coroutine<void> read_lines(std::shared_ptr<pyco::stream_reader> reader, std::shared_ptr<member> m, int id) {
    for (;;) {
        std::string line = co_await reader->readline();
        if (line.empty()) break;  // EOF: the client left
        if (line.rfind("/nick ", 0) == 0) {
            std::string old = m->name;
            m->name = line.substr(6, line.find_last_not_of("\r\n") - 5);
            the_room.broadcast(id, "* " + old + " is now " + m->name + "\n");
            continue;
        }
        the_room.broadcast(id, m->name + ": " + line);
    }
    m->outbox.shutdown();  // the writer finishes what is queued, then stops
}

pyco::coroutine<void> client(std::shared_ptr<pyco::stream_reader> reader, pyco::stream_writer writer) {
    const int id = the_room.next_id++;
    auto m = std::make_shared<member>();
    m->name = "guest" + std::to_string(id);
    m->writer = writer;
    the_room.members[id] = m;
    the_room.broadcast(id, "* " + m->name + " joined\n");
    m->outbox.put_nowait("* welcome, " + m->name + " (/nick NAME to rename)\n");
    try {
        pyco::task_group tg;
        auto body = [&](pyco::task_group& g) -> pyco::coroutine<void> {
            g.create_task(write_outbox(m));
            g.create_task(read_lines(reader, m, id));
            co_return;
        };
        co_await pyco::async_with(tg, body);
    } catch (const pyco::exception_group&) {
        // A connection error in either task: the client is gone.
    }
    if (the_room.members.erase(id)) the_room.broadcast(id, "* " + m->name + " left\n");
    writer.close();
}

pyco::coroutine<int> serve(std::uint16_t port) {
    pyco::event_loop& loop = pyco::get_running_loop();
    pyco::server srv = co_await pyco::start_server(client, "127.0.0.1", port);
    pyco::future<void> stop = loop.create_future<void>();
    for (int sig : {SIGINT, SIGTERM}) {
        loop.add_signal_handler(sig, [stop]() mutable {
            if (!stop.done()) stop.set_result();
        });
    }
    std::printf("chat_server: on %s; try: nc 127.0.0.1 %u\n", srv.sockets().at(0).to_string().c_str(),
                srv.sockets().at(0).port());
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
        std::fprintf(stderr, "usage: chat_server PORT\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    if (port < 0 || port > 65535) {
        std::fprintf(stderr, "usage: chat_server PORT\n");
        return 2;
    }
    // A port in use, a refused backend (PYCO_BACKEND=io_uring where the
    // kernel has none): said in one line, not an abort.
    try {
        return pyco::run(serve(static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "chat_server: %s\n", e.what());
        return 1;
    }
}
