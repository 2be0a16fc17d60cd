// Echo over streams and over protocols under seeded schedules of every
// fault kind, benign and fatal (tests/io/fault_util.hpp lists the
// invariants each schedule checks). Each schedule is its own loop: a
// server, and a client that writes random bytes in random chunks while it
// reads the echo.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <pyco/detail/io_backend.hpp>
#include <pyco/event.hpp>
#include <pyco/gather.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/timeout.hpp>
#include <pyco/wait.hpp>

#include "io/fault_util.hpp"

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

using fault_test::outcome;
using fault_test::run_schedules;

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

// The server echoes every chunk and drains; the client writes `sent` in
// random chunks (draining after each), then its EOF, while it reads to EOF.
coroutine<void> streams_echo(std::uint64_t seed, outcome& out) {
    std::mt19937_64 rng(seed);
    out.sent = random_bytes(rng, 1 + rng() % (512 * 1024));
    fault_test::watch_handler(out);
    int handlers = 0;
    auto echo = [&](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
        ++handlers;
        try {
            for (;;) {
                std::string chunk = co_await r->read(64 * 1024);
                if (chunk.empty()) break;
                w.write(chunk);
                co_await w.drain();
            }
            // A write that fails after the last drain (the transport still
            // flushing, as close() lets it) surfaces here only.
            w.close();
            co_await w.wait_closed();
        } catch (...) {
            out.errors.push_back(fault_test::classify(std::current_exception()));
        }
        w.close();
        --handlers;
    };
    pyco::server srv = co_await pyco::start_server(echo, "127.0.0.1", 0);
    const std::uint16_t port = srv.sockets().at(0).port();
    auto [rd, wr] = co_await pyco::open_connection("127.0.0.1", port);
    auto writer = [&, w = wr]() mutable -> coroutine<void> {
        try {
            std::size_t pos = 0;
            while (pos < out.sent.size()) {
                std::size_t n = std::min<std::size_t>(out.sent.size() - pos, 1 + rng() % (96 * 1024));
                w.write(std::string_view(out.sent).substr(pos, n));
                pos += n;
                co_await w.drain();
            }
            w.write_eof();
        } catch (...) {
            out.errors.push_back(fault_test::classify(std::current_exception()));
        }
    };
    auto reader = [&, r = rd]() -> coroutine<void> {
        try {
            for (;;) {
                std::string chunk = co_await r->read(128 * 1024);
                if (chunk.empty()) break;
                out.received += chunk;
            }
        } catch (...) {
            out.errors.push_back(fault_test::classify(std::current_exception()));
        }
    };
    try {
        auto both = pyco::gather(writer(), reader());
        co_await pyco::wait_for(std::move(both), 20s);
        out.finished = true;
    } catch (const pyco::timeout_error&) {
    }
    wr.close();
    try {
        co_await wr.wait_closed();
    } catch (...) {
        out.errors.push_back(fault_test::classify(std::current_exception()));
    }
    srv.close();
    co_await pyco::wait_for(srv.wait_closed(), 10s);
    for (int i = 0; i < 1000 && handlers > 0; ++i) co_await pyco::sleep(1ms);
    out.tasks_left = pyco::all_tasks().size() - 1;  // this one
}

// The same with protocols on both ends.
struct echo_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    outcome* out = nullptr;
    void connection_made(pyco::transport& tr) override { t = &tr; }
    void data_received(std::span<const std::byte> d) override { t->write(d); }
    bool eof_received() override { return false; }  // close after the echo is flushed
    void connection_lost(std::exception_ptr e) override {
        if (e) out->errors.push_back(fault_test::classify(e));
    }
};

struct client_protocol : pyco::protocol {
    outcome* out = nullptr;
    pyco::event* lost = nullptr;
    void data_received(std::span<const std::byte> d) override { out->received += as_text(d); }
    void connection_lost(std::exception_ptr e) override {
        if (e) out->errors.push_back(fault_test::classify(e));
        lost->set();
    }
};

coroutine<void> protocol_echo(std::uint64_t seed, outcome& out) {
    std::mt19937_64 rng(seed ^ 0x5eed);
    out.sent = random_bytes(rng, 1 + rng() % (512 * 1024));
    fault_test::watch_handler(out);
    pyco::event_loop& loop = pyco::get_running_loop();
    auto factory = [&]() -> std::shared_ptr<pyco::protocol> {
        auto p = std::make_shared<echo_protocol>();
        p->out = &out;
        return p;
    };
    pyco::server srv = co_await loop.create_server(factory, "127.0.0.1", 0);
    const std::uint16_t port = srv.sockets().at(0).port();
    pyco::event lost;
    auto cfactory = [&]() -> std::shared_ptr<pyco::protocol> {
        auto p = std::make_shared<client_protocol>();
        p->out = &out;
        p->lost = &lost;
        return p;
    };
    auto [t, p] = co_await loop.create_connection(cfactory, "127.0.0.1", port);
    std::size_t pos = 0;
    while (pos < out.sent.size() && !t->is_closing()) {
        std::size_t n = std::min<std::size_t>(out.sent.size() - pos, 1 + rng() % (96 * 1024));
        t->write(std::string_view(out.sent).substr(pos, n));
        pos += n;
        if (rng() % 4 == 0) co_await pyco::sleep(0s);
    }
    if (!t->is_closing()) t->write_eof();
    try {
        co_await pyco::wait_for(lost.wait(), 20s);
        out.finished = true;
    } catch (const pyco::timeout_error&) {
        t->abort();
    }
    srv.close();
    co_await pyco::wait_for(srv.wait_closed(), 10s);
    out.tasks_left = pyco::all_tasks().size() - 1;
}

TEST(FaultEcho, StreamsUnderEveryKind) {
    run_schedules(streams_echo, 1, 400, pyco::detail::fk_benign | pyco::detail::fk_fatal);
}

TEST(FaultEcho, StreamsUnderBenignKindsLoseNothing) {
    // Benign faults must not surface at all: everything comes back.
    run_schedules(
        [](std::uint64_t seed, outcome& out) -> coroutine<void> {
            co_await streams_echo(seed, out);
            EXPECT_TRUE(out.errors.empty()) << out.errors.front();
            EXPECT_EQ(out.received.size(), out.sent.size());
        },
        10001, 200, pyco::detail::fk_benign);
}

// io_uring completes a receive or a send with -EINTR when the kernel's
// attempt was interrupted (io_uring/net.c turns -ERESTARTSYS into -EINTR),
// having transferred nothing. asyncio retries InterruptedError on every
// socket operation; the backend must retry too, not fail the transport.
TEST(FaultEcho, EintrCompletionsOnIoUringAreRetried) {
    if (!pyco::detail::io_uring_unavailable_reason().empty()) {
        GTEST_SKIP() << "io_uring is unavailable: " << pyco::detail::io_uring_unavailable_reason();
    }
    auto lose_nothing = [](std::uint64_t seed, outcome& out) -> coroutine<void> {
        co_await streams_echo(seed, out);
        EXPECT_TRUE(out.errors.empty()) << out.errors.front();
        EXPECT_EQ(out.received.size(), out.sent.size());
    };
    run_schedules(lose_nothing, 70001, 100, pyco::detail::fk_eintr, pyco::io_backend_kind::io_uring);
}

TEST(FaultEcho, ProtocolsUnderEveryKind) {
    run_schedules(protocol_echo, 20001, 400, pyco::detail::fk_benign | pyco::detail::fk_fatal);
}

}  // namespace
