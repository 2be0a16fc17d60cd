// Accept storms under a real, low RLIMIT_NOFILE (issue 11 §4), on the backend
// PYCO_BACKEND selects (ctest runs this file once per backend: the `uring.`
// copy sets PYCO_BACKEND=io_uring).
//
// Each test forks: the server child lowers its soft RLIMIT_NOFILE BEFORE the
// loop and the server exist. That matters on io_uring, whose accept takes the
// limit of the task when it is prepared (io_accept_prep reads
// rlimit(RLIMIT_NOFILE)); lowering it after the accept is armed would not
// reach that accept. The test binary's own limit is never touched.
//
// What asyncio does, and pyco with it (src/net/server.cpp): EMFILE, ENFILE,
// ENOBUFS and ENOMEM from accept are reported to the exception handler as
// "socket.accept() out of system resource", once per failed accept round,
// and the listener is taken off for ACCEPT_RETRY_DELAY (1 s), then re-armed.
// The pending connections wait in the listen backlog (the kernel fails the
// fd allocation before it dequeues one), so nothing is lost.
//
// No timing assertion here is about speed: the bounds are floors a loaded
// machine can only make easier (a pause lasts at least its delay) and a CPU
// ratio a blocked process cannot exceed (see PausedServerDoesNotSpin).
//
// Skipped under ASan/TSan: their runtime needs spare fds, which a process
// starved of them by design cannot give.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "net/net_test_util.hpp"

#include <pyco/event_loop.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PYCO_STORM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PYCO_STORM_SANITIZED 1
#endif
#endif

#ifdef PYCO_STORM_SANITIZED
#define SKIP_UNDER_SANITIZERS() \
    GTEST_SKIP() << "needs an fd table with no spare fd, which the sanitizers' runtime cannot live with"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using steady = std::chrono::steady_clock;

constexpr const char* resource_message = "socket.accept() out of system resource";

using echo_protocol = net_test::counting_echo_protocol;
constexpr auto echo = net_test::counting_echo;

void set_soft_nofile(rlim_t soft) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = std::min(soft, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &rl);
}

double cpu_seconds() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);  // every thread (io_uring's workers too)
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
}

std::string read_all(int fd) {
    std::string s;
    char buf[512];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        s.append(buf, static_cast<std::size_t>(n));
    }
    return s;
}

// Waits for a child; "" if it exited 0, else what went wrong.
std::string reap(pid_t pid, const char* who) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return std::string(who) + ": waitpid failed";
    if (WIFSIGNALED(status)) return std::string(who) + " died of signal " + std::to_string(WTERMSIG(status));
    if (WEXITSTATUS(status) != 0) return std::string(who) + " exited " + std::to_string(WEXITSTATUS(status));
    return "";
}

// ------------------------------------------------------------------ storm

constexpr int storm_clients = 512;      // all at once, several times the fd limit
constexpr rlim_t storm_nofile = 128;    // the server's soft RLIMIT_NOFILE
constexpr int storm_backlog = 1024;     // every client fits the accept queue

// The client: a plain-socket process. Every connection is made and has sent
// its request before any is closed, so the server holds one fd per accepted
// client until this side closes it: it must run out of fds (storm_clients >
// storm_nofile). Then each echo is checked, and its connection closed, which
// is what frees the server's fds. Exit 0 iff every client got its own echo.
int storm_client(std::uint16_t port) {
    set_soft_nofile(RLIM_INFINITY);  // as high as the hard limit allows
    std::vector<int> fds;
    std::vector<std::string> want, got;
    const sockaddr_in sa = loopback(port);
    for (int i = 0; i < storm_clients; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return 2;
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return 3;
        std::string req = "client " + std::to_string(i) + "\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return 4;
        fds.push_back(fd);
        want.push_back(std::move(req));
        got.emplace_back();
    }
    int left = storm_clients;
    const auto deadline = steady::now() + 25s;
    std::vector<pollfd> pfds(fds.size());
    while (left > 0) {
        if (steady::now() > deadline) return 5;
        for (std::size_t i = 0; i < fds.size(); ++i) pfds[i] = {fds[i], POLLIN, 0};  // -1: done, ignored
        if (::poll(pfds.data(), pfds.size(), 1000) < 0) return 6;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i] < 0 || pfds[i].revents == 0) continue;
            char buf[64];
            ssize_t n = ::recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) return 7;  // closed (or reset) before its echo
            got[i].append(buf, static_cast<std::size_t>(n));
            if (got[i].size() > want[i].size() || want[i].compare(0, got[i].size(), got[i]) != 0) return 8;
            if (got[i] == want[i]) {
                ::close(fds[i]);
                fds[i] = -1;
                --left;
            }
        }
    }
    return 0;
}

struct storm_stats {
    int made = 0, lost = 0, reports = 0, other_reports = 0;
    long long min_gap_ms = -1, elapsed_ms = 0;
};

// The server child: lowers its limit, serves until every client was served
// (or 25 s), writes its figures to `out`.
int storm_server(int port_out, int out) {
    set_soft_nofile(storm_nofile);
    echo_protocol::made = echo_protocol::lost = 0;
    storm_stats st;
    auto body = [&]() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        std::vector<steady::time_point> at;
        loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context& c) {
            if (c.message == resource_message) {
                at.push_back(steady::now());
            } else {
                ++st.other_reports;
            }
        });
        pyco::server_options o;
        o.backlog = storm_backlog;
        pyco::server srv = co_await loop.create_server(echo(), "127.0.0.1", 0, o);
        const std::uint16_t port = srv.sockets().at(0).port();
        write_all(port_out, std::to_string(port));
        ::close(port_out);
        const auto start = steady::now();
        while (echo_protocol::lost < storm_clients && steady::now() - start < 25s) co_await pyco::sleep(20ms);
        st.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
        srv.close();
        co_await srv.wait_closed();
        st.made = echo_protocol::made;
        st.lost = echo_protocol::lost;
        st.reports = static_cast<int>(at.size());
        for (std::size_t i = 1; i < at.size(); ++i) {
            const long long gap = std::chrono::duration_cast<std::chrono::milliseconds>(at[i] - at[i - 1]).count();
            if (st.min_gap_ms < 0 || gap < st.min_gap_ms) st.min_gap_ms = gap;
        }
    };
    pyco::run(body());
    char line[160];
    std::snprintf(line, sizeof line, "%d %d %d %d %lld %lld", st.made, st.lost, st.reports, st.other_reports,
                  st.min_gap_ms, st.elapsed_ms);
    write_all(out, line);
    return 0;
}

// Several hundred clients at once against a server allowed 128 fds: it runs
// out, reports, pauses, and accepts again as served clients close, until
// every one was served exactly once.
TEST(AcceptStorm, EveryClientServedOnceUnderLowFdLimit) {
    SKIP_UNDER_SANITIZERS();
    int port_pipe[2], stats_pipe[2];
    ASSERT_EQ(::pipe2(port_pipe, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(stats_pipe, O_CLOEXEC), 0);
    pid_t server_pid = ::fork();
    ASSERT_GE(server_pid, 0);
    if (server_pid == 0) {
        ::alarm(40);  // the safety net: a hung server dies
        ::close(port_pipe[0]);
        ::close(stats_pipe[0]);
        int rc = 99;
        try {
            rc = storm_server(port_pipe[1], stats_pipe[1]);
        } catch (...) {
            rc = 98;
        }
        ::_exit(rc);
    }
    ::close(port_pipe[1]);
    ::close(stats_pipe[1]);
    const std::string port_text = read_all(port_pipe[0]);
    ::close(port_pipe[0]);
    std::string client_err = "no port from the server";
    if (!port_text.empty()) {
        const auto port = static_cast<std::uint16_t>(std::stoi(port_text));
        pid_t client_pid = ::fork();
        ASSERT_GE(client_pid, 0);
        if (client_pid == 0) {
            ::alarm(40);
            ::_exit(storm_client(port));
        }
        client_err = reap(client_pid, "the client");
    }
    const std::string stats = read_all(stats_pipe[0]);
    ::close(stats_pipe[0]);
    const std::string server_err = reap(server_pid, "the server");
    EXPECT_EQ(client_err, "") << "(exit codes: see storm_client)";
    EXPECT_EQ(server_err, "");
    storm_stats st;
    ASSERT_EQ(std::sscanf(stats.c_str(), "%d %d %d %d %lld %lld", &st.made, &st.lost, &st.reports, &st.other_reports,
                          &st.min_gap_ms, &st.elapsed_ms),
              6)
        << stats;
    RecordProperty("backend", pyco::event_loop().backend_name());
    RecordProperty("reports", st.reports);
    RecordProperty("elapsed_ms", static_cast<int>(st.elapsed_ms));
    std::printf("storm on %s: %d clients, RLIMIT_NOFILE %d: %d reports, served in %lld ms\n",
                pyco::event_loop().backend_name(), storm_clients, static_cast<int>(storm_nofile), st.reports,
                st.elapsed_ms);
    // Every client served exactly once: one connection_made each, all lost.
    EXPECT_EQ(st.made, storm_clients);
    EXPECT_EQ(st.lost, storm_clients);
    EXPECT_EQ(st.other_reports, 0);
    // It ran out (the client holds more connections than the server has
    // fds), and said so once per paused round: each report is followed by a
    // full ACCEPT_RETRY_DELAY without accepting, so there cannot be more
    // rounds than seconds (+1) — a server re-arming at once would report
    // thousands of times. (900 ms: slack for the timer's clock, not speed.)
    EXPECT_GE(st.reports, 1);
    EXPECT_LE(st.reports, st.elapsed_ms / 900 + 1);
    if (st.reports >= 2) {
        EXPECT_GE(st.min_gap_ms, 900) << "a pause shorter than ACCEPT_RETRY_DELAY";
    }
}

// ---------------------------------------------------------------- no spin

// The server stays paused (a hog holds every fd but the one a pending client
// takes) for 1.5 s; its CPU time over that window must be a small fraction
// of the wall time.
//
// Why 10 % cannot fail a correct server on a loaded machine: a paused server
// is blocked in epoll_wait / io_uring_enter between one retry and the next;
// over 1.5 s it runs one timer callback and one failed accept (microseconds).
// Load only delays a blocked process; it cannot make it burn CPU, and CPU
// time never exceeds the time it actually ran. A server that re-armed at
// once would instead use all the CPU it is given: near 100 % on an idle
// machine, and above 10 % unless more than ten runnable tasks share its core.
int paused_server(int out) {
    set_soft_nofile(64);
    echo_protocol::made = echo_protocol::lost = 0;
    int reported = 0;
    int made_before = -1;
    double cpu = -1, wall = -1, total = -1;
    auto body = [&]() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context& c) {
            if (c.message == resource_message) ++reported;
        });
        pyco::server srv = co_await loop.create_server(echo(), "127.0.0.1", 0);
        std::vector<int> hog;
        for (;;) {
            int fd = ::dup(0);
            if (fd < 0) break;
            hog.push_back(fd);
        }
        ::close(hog.back());  // room for the client's socket, none for the server's end
        hog.pop_back();
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_in sa = loopback(srv.sockets().at(0).port());
        const auto begin = steady::now();
        ::connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
        co_await pyco::sleep(200ms);  // the first (failed) round is over: paused
        const double cpu0 = cpu_seconds();
        const auto t0 = steady::now();
        co_await pyco::sleep(1500ms);
        cpu = cpu_seconds() - cpu0;
        wall = std::chrono::duration<double>(steady::now() - t0).count();
        made_before = echo_protocol::made;
        for (int fd : hog) ::close(fd);
        const auto start = steady::now();
        while (echo_protocol::made == 0 && steady::now() - start < 10s) co_await pyco::sleep(20ms);
        total = std::chrono::duration<double>(steady::now() - begin).count();
        ::close(c);
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
    char line[160];
    std::snprintf(line, sizeof line, "%d %d %d %.4f %.4f %.4f", reported, made_before, echo_protocol::made, cpu, wall,
                  total);
    write_all(out, line);
    return 0;
}

TEST(AcceptStorm, PausedServerDoesNotSpin) {
    SKIP_UNDER_SANITIZERS();
    int stats_pipe[2];
    ASSERT_EQ(::pipe2(stats_pipe, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::alarm(30);
        ::close(stats_pipe[0]);
        int rc = 99;
        try {
            rc = paused_server(stats_pipe[1]);
        } catch (...) {
            rc = 98;
        }
        ::_exit(rc);
    }
    ::close(stats_pipe[1]);
    const std::string stats = read_all(stats_pipe[0]);
    ::close(stats_pipe[0]);
    EXPECT_EQ(reap(pid, "the server"), "");
    int reported = 0, made_before = 0, made = 0;
    double cpu = 0, wall = 0, total = 0;
    ASSERT_EQ(std::sscanf(stats.c_str(), "%d %d %d %lf %lf %lf", &reported, &made_before, &made, &cpu, &wall, &total),
              6)
        << stats;
    std::printf("paused on %s: CPU %.1f ms over %.0f ms of wall time (%.2f %%), %d reports\n",
                pyco::event_loop().backend_name(), cpu * 1e3, wall * 1e3, 100 * cpu / wall, reported);
    EXPECT_GE(wall, 1.5);
    EXPECT_LT(cpu, 0.10 * wall) << "the paused server spins";
    // The first round, then one failed retry per ACCEPT_RETRY_DELAY at most.
    EXPECT_GE(reported, 1);
    EXPECT_LE(reported, static_cast<int>(total / 0.9) + 1);
    EXPECT_EQ(made_before, 0);  // nothing to accept with: nothing accepted
    EXPECT_EQ(made, 1);         // and once the fds are back, the client is
}


// ------------------------------------------------------ other accept errors

// A connection reset while it waits in the backlog is the peer's business,
// not the server's: asyncio ignores ConnectionAbortedError from accept
// silently (no report, no pause), and pyco's backends skip ECONNABORTED and
// EPROTO the same way. Linux mostly hands the reset socket over instead (its
// reads fail later); either way nothing is reported and the next client is
// served. (No fd games: this one runs under the sanitizers too.)
TEST(AcceptStorm, ResetInTheBacklogIsNotReported) {
    echo_protocol::made = echo_protocol::lost = 0;
    int reports = 0;
    std::string echoed;
    auto body = [&]() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context&) { ++reports; });
        pyco::server srv = co_await loop.create_server(echo(), "127.0.0.1", 0);
        // The loop does not run until the next co_await: both connections
        // wait in the backlog (on epoll; io_uring may take them earlier).
        const sockaddr_in sa = loopback(srv.sockets().at(0).port());
        int gone = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ::connect(gone, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
        linger lg{1, 0};  // close() sends RST
        ::setsockopt(gone, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::close(gone);
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ::connect(c, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
        (void)::send(c, "ping", 4, MSG_NOSIGNAL);
        for (int i = 0; i < 500 && echoed.size() < 4; ++i) {
            co_await pyco::sleep(10ms);
            char buf[8];
            ssize_t n = ::recv(c, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) echoed.append(buf, static_cast<std::size_t>(n));
        }
        EXPECT_TRUE(srv.is_serving());
        ::close(c);
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
    std::printf("reset in the backlog on %s: %d connections made\n", pyco::event_loop().backend_name(),
                echo_protocol::made);
    EXPECT_EQ(echoed, "ping");
    EXPECT_EQ(reports, 0);
    EXPECT_GE(echo_protocol::made, 1);
}

}  // namespace
