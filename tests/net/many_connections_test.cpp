// 10,000 concurrent connections on loopback, each doing one echo round
// trip while all of them are open. Its own binary (and ctest entry) so a
// slow build (TSan) can leave it out.
//
// The server runs in a child process: each side then needs 10,000 fds plus
// a few, which fits a hard RLIMIT_NOFILE of 20,000 where one process holding
// both ends would not. Each process raises its soft limit to the hard one;
// if the hard limit is too low, the test is skipped with the reason.
// Bounded: the child has an alarm, the parent a deadline on the whole run.
#include <pyco/net/streams.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "net/net_test_util.hpp"

#include <pyco/event.hpp>
#include <pyco/gather.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

constexpr int connections = 10000;
constexpr rlim_t fds_needed = connections + 200;  // stdio, listener, epoll, pipes, margin


// The child: serve echo lines on 127.0.0.1:0, tell the parent the port,
// stop when the parent closes the stop pipe. Exit 0 if every connection
// was served to its end.
[[noreturn]] void serve_in_child(int port_fd, int stop_fd) {
    ::alarm(240);
    std::string why;
    if (!net_test::raise_fd_limit(fds_needed, why)) ::_exit(3);
    int finished = 0;
    auto body = [&]() -> coroutine<int> {
        auto echo = [&](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            co_await net_test::echo_lines(r, w);
            ++finished;
        };
        pyco::start_server_options o;
        o.backlog = connections;  // the kernel caps it at somaxconn
        pyco::server srv = co_await pyco::start_server(echo, "127.0.0.1", 0, o);
        const std::uint16_t port = srv.sockets().at(0).port();
        if (::write(port_fd, &port, sizeof port) != sizeof port) co_return 4;
        ::close(port_fd);
        pyco::event stop;
        pyco::event_loop& loop = pyco::get_running_loop();
        loop.add_reader(stop_fd, [&] { stop.set(); });
        co_await stop.wait();
        loop.remove_reader(stop_fd);
        srv.close();
        co_await srv.wait_closed();
        co_return finished == connections ? 0 : 5;
    };
    int rc = 6;
    try {
        rc = pyco::run(body());
    } catch (...) {
        rc = 7;
    }
    ::_exit(rc);
}

coroutine<int> clients(std::uint16_t port) {
    std::vector<pyco::stream_pair> conns;
    conns.reserve(connections);
    // Connect in waves (the listen backlog is finite), keeping every
    // connection open: all 10,000 are open at once before any echo.
    constexpr int wave = 500;
    for (int first = 0; first < connections; first += wave) {
        std::vector<coroutine<pyco::stream_pair>> opening;
        for (int i = first; i < first + wave && i < connections; ++i) {
            opening.push_back(pyco::open_connection("127.0.0.1", port));
        }
        std::vector<pyco::stream_pair> opened = co_await pyco::gather(opening);
        for (auto& c : opened) conns.push_back(std::move(c));
    }
    // One echo round trip on each, all at once.
    auto round_trip = [](pyco::stream_pair& c, int i) -> coroutine<int> {
        const std::string msg = "connection " + std::to_string(i) + "\n";
        c.second.write(msg);
        co_await c.second.drain();
        std::string back = co_await c.first->readline();
        co_return back == msg ? 1 : 0;
    };
    std::vector<coroutine<int>> trips;
    trips.reserve(conns.size());
    for (int i = 0; i < connections; ++i) trips.push_back(round_trip(conns[static_cast<std::size_t>(i)], i));
    std::vector<int> ok = co_await pyco::gather(trips);
    int good = 0;
    for (int b : ok) good += b;
    for (auto& c : conns) c.second.close();
    for (auto& c : conns) co_await c.second.wait_closed();
    co_return good;
}

TEST(ManyConnections, TenThousandConcurrentEchoes) {
    std::string why;
    rlimit saved{};
    ::getrlimit(RLIMIT_NOFILE, &saved);
    if (!net_test::raise_fd_limit(fds_needed, why)) GTEST_SKIP() << why;
    int port_pipe[2], stop_pipe[2];
    ASSERT_EQ(::pipe2(port_pipe, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(stop_pipe, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(port_pipe[0]);
        ::close(stop_pipe[1]);
        serve_in_child(port_pipe[1], stop_pipe[0]);
    }
    ::close(port_pipe[1]);
    ::close(stop_pipe[0]);
    std::uint16_t port = 0;
    const bool got_port = ::read(port_pipe[0], &port, sizeof port) == sizeof port;
    ::close(port_pipe[0]);
    int good = -1;
    std::string error;
    if (got_port) {
        auto bounded = [&]() -> coroutine<int> { co_return co_await pyco::wait_for(clients(port), 180s); };
        try {
            good = pyco::run(bounded());
        } catch (const std::exception& e) {
            error = e.what();
        }
    }
    ::close(stop_pipe[1]);  // the child stops serving
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    ASSERT_TRUE(got_port) << "the server child did not start";
    EXPECT_EQ(error, "");
    EXPECT_EQ(good, connections);
    ASSERT_TRUE(WIFEXITED(status)) << "the server child died of signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0) << "3: fd limit, 5: not every connection served to its end";
}

}  // namespace
