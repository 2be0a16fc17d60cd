// The loop's sock_* operations (sock_accept, sock_recv, sock_sendall) under
// seeded schedules of every fault kind: an echo written with them, checked
// for the invariants of tests/io/fault_util.hpp. sock_sendall may fail
// having sent part of the data (as CPython's): the peer then got a prefix,
// and the sender saw the error.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <random>
#include <string>

#include <pyco/gather.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/run.hpp>
#include <pyco/task.hpp>
#include <pyco/timeout.hpp>
#include <pyco/wait.hpp>

#include "io/fault_util.hpp"

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using fault_test::outcome;

coroutine<void> sock_echo(std::uint64_t seed, outcome& out) {
    std::mt19937_64 rng(seed * 31 + 7);
    fault_test::watch_handler(out);
    out.sent.resize(1 + rng() % (256 * 1024));
    for (auto& c : out.sent) c = static_cast<char>(rng());
    pyco::event_loop& loop = pyco::get_running_loop();
    pyco::socket listener(AF_INET, SOCK_STREAM);
    listener.bind(pyco::sock_address::ipv4("127.0.0.1", 0));
    listener.listen(8);
    // The server: accept (again after a resource error, as a server would),
    // then echo until EOF or an error.
    auto server = [&]() -> coroutine<void> {
        pyco::socket conn;
        for (int tries = 0; conn.fileno() < 0 && tries < 50; ++tries) {
            try {
                auto accepted = co_await loop.sock_accept(listener);
                conn = std::move(accepted.first);
            } catch (...) {
                out.reported.push_back(fault_test::classify(std::current_exception()));
            }
        }
        try {
            for (;;) {
                std::string chunk = co_await loop.sock_recv(conn, 64 * 1024);
                if (chunk.empty()) break;
                co_await loop.sock_sendall(conn, chunk);
            }
        } catch (...) {
            out.errors.push_back(fault_test::classify(std::current_exception()));
        }
        conn.close();
    };
    pyco::socket client(AF_INET, SOCK_STREAM);
    auto give_up = [&client] {
        try {
            client.shutdown(SHUT_RDWR);
        } catch (...) {  // not connected any more
        }
    };
    auto writer = [&]() -> coroutine<void> {
        try {
            std::size_t pos = 0;
            while (pos < out.sent.size()) {
                std::size_t n = std::min<std::size_t>(out.sent.size() - pos, 1 + rng() % (64 * 1024));
                co_await loop.sock_sendall(client, std::string_view(out.sent).substr(pos, n));
                pos += n;
            }
            client.shutdown(SHUT_WR);
        } catch (...) {
            out.errors.push_back(fault_test::classify(std::current_exception()));
            // With sock_* the program reacts to its errors (a transport
            // would have closed itself): here, by giving up both ways.
            give_up();
        }
    };
    auto reader = [&]() -> coroutine<void> {
        try {
            for (;;) {
                std::string chunk = co_await loop.sock_recv(client, 128 * 1024);
                if (chunk.empty()) break;
                out.received += chunk;
            }
        } catch (...) {
            out.errors.push_back(fault_test::classify(std::current_exception()));
            give_up();
        }
    };
    auto srv = loop.create_task(server());
    co_await loop.sock_connect(client, listener.getsockname());
    try {
        auto all = pyco::gather(writer(), reader());
        co_await pyco::wait_for(std::move(all), 20s);
        co_await pyco::wait_for(srv, 10s);
        out.finished = true;
    } catch (const pyco::timeout_error&) {
    }
    client.close();
    listener.close();
    if (!srv.done()) {
        srv.cancel();
        try {
            co_await srv;
        } catch (...) {
        }
    }
    out.tasks_left = pyco::all_tasks().size() - 1;
}

TEST(FaultSock, EchoUnderEveryKind) {
    fault_test::run_schedules(sock_echo, 50001, 400, pyco::detail::fk_benign | pyco::detail::fk_fatal);
}

TEST(FaultSock, EchoUnderBenignKindsLosesNothing) {
    fault_test::run_schedules(
        [](std::uint64_t seed, outcome& out) -> coroutine<void> {
            co_await sock_echo(seed, out);
            EXPECT_TRUE(out.errors.empty()) << out.errors.front();
            EXPECT_EQ(out.received.size(), out.sent.size());
        },
        60001, 200, pyco::detail::fk_benign);
}

}  // namespace
