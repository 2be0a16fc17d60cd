// The HTTP example's protocol (examples/http/http_protocol.hpp) under
// seeded schedules of every fault kind: a client pipelines random requests
// (GET, HEAD, POST with a body) in random chunks, the last one asking to
// close; what comes back must be a prefix of the responses expected, in
// order, and anything short of all of them must come with an error
// (tests/io/fault_util.hpp has the rest of the invariants).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include <http/http_protocol.hpp>
#include <pyco/gather.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/timeout.hpp>
#include <pyco/wait.hpp>

#include "io/fault_util.hpp"

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using fault_test::outcome;

struct watched_http : http_example::http_protocol {
    outcome* out = nullptr;
    void connection_lost(std::exception_ptr e) override {
        if (e) out->errors.push_back(fault_test::classify(e));
    }
};

// `out.sent` holds the responses expected; the requests are made alongside.
coroutine<void> http_session(std::uint64_t seed, outcome& out) {
    std::mt19937_64 rng(seed * 7919);
    fault_test::watch_handler(out);
    std::string requests;
    const int n = 1 + static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) {
        const bool last = i == n - 1;
        const char* close = last ? "Connection: close\r\n" : "";
        // The last one is never a POST: the server closes after answering
        // it, and a body it did not read would make that close a reset.
        switch (last ? rng() % 2 : rng() % 3) {
        case 0:
            requests += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n" + close + "\r\n";
            out.sent += http_example::ok_response;
            break;
        case 1:
            requests += "HEAD / HTTP/1.1\r\nHost: a\r\n" + std::string(close) + "\r\n";
            out.sent += http_example::ok_head;
            break;
        default: {
            const std::size_t body = rng() % 5000;
            requests += "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body) + "\r\n" + close +
                        "\r\n" + std::string(body, 'b');
            out.sent += http_example::not_allowed;
        }
        }
    }
    pyco::event_loop& loop = pyco::get_running_loop();
    auto factory = [&]() -> std::shared_ptr<pyco::protocol> {
        auto p = std::make_shared<watched_http>();
        p->out = &out;
        return p;
    };
    pyco::server srv = co_await loop.create_server(factory, "127.0.0.1", 0);
    auto [rd, wr] = co_await pyco::open_connection("127.0.0.1", srv.sockets().at(0).port());
    auto writer = [&, w = wr]() mutable -> coroutine<void> {
        try {
            std::size_t pos = 0;
            while (pos < requests.size()) {
                std::size_t k = std::min<std::size_t>(requests.size() - pos, 1 + rng() % 4096);
                w.write(std::string_view(requests).substr(pos, k));
                pos += k;
                co_await w.drain();
            }
        } catch (...) {
            out.errors.push_back(fault_test::classify(std::current_exception()));
        }
    };
    auto reader = [&, r = rd]() -> coroutine<void> {
        try {
            for (;;) {
                std::string chunk = co_await r->read(64 * 1024);
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
    out.tasks_left = pyco::all_tasks().size() - 1;
}

TEST(FaultHttp, PipelinedRequestsUnderEveryKind) {
    fault_test::run_schedules(http_session, 30001, 600, pyco::detail::fk_benign | pyco::detail::fk_fatal);
}

TEST(FaultHttp, PipelinedRequestsUnderBenignKindsAllAnswered) {
    fault_test::run_schedules(
        [](std::uint64_t seed, outcome& out) -> coroutine<void> {
            co_await http_session(seed, out);
            EXPECT_TRUE(out.errors.empty()) << out.errors.front();
            EXPECT_EQ(out.received.size(), out.sent.size());
        },
        40001, 300, pyco::detail::fk_benign);
}

}  // namespace
