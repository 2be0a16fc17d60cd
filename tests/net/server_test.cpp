// pyco::server and loop.create_server / create_connection over real
// sockets: CPython's test_server.py cases (serve_forever, wait_closed in
// both orders, start_serving, async with, close_clients/abort_clients, the
// Unix socket file's cleanup), a server closed with clients connected,
// several hosts and port 0, SO_REUSEPORT, accept under EMFILE, and
// create_connection's errors.
#include <pyco/net/server.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "net/net_test_util.hpp"

#include <pyco/async_with.hpp>
#include <pyco/event.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;

using counting_protocol = net_test::counting_echo_protocol;
constexpr auto counting = net_test::counting_echo;

std::uint16_t port_of(const pyco::server& s) { return s.sockets().at(0).port(); }

// test_start_server_1 / serve_forever cancelled: the server closes.
TEST(Server, ServeForeverCancelledClosesTheServer) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::server srv = co_await loop.create_server(counting(), "127.0.0.1", 0);
        auto serving = pyco::create_task(srv.serve_forever());
        co_await pyco::sleep(0s);
        EXPECT_TRUE(srv.is_serving());
        bool again = false;
        try {
            co_await srv.serve_forever();
        } catch (const pyco::runtime_error& e) {
            again = std::string(e.what()).find("is already being awaited on serve_forever()") != std::string::npos;
        }
        EXPECT_TRUE(again);
        serving.cancel();
        bool cancelled = false;
        try {
            co_await serving;
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        EXPECT_TRUE(cancelled);
        EXPECT_FALSE(srv.is_serving());
        EXPECT_TRUE(srv.sockets().empty());
        bool closed = false;
        try {
            co_await srv.serve_forever();
        } catch (const pyco::runtime_error& e) {
            closed = std::string(e.what()).find("is closed") != std::string::npos;
        }
        EXPECT_TRUE(closed);
    };
    pyco::run(body());
}

// test_wait_closed_basic / _race: wait_closed returns once closed AND every
// connection is gone, in either order (3.12.1).
TEST(Server, WaitClosedWaitsForTheConnections) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::server srv = co_await loop.create_server(counting(), "127.0.0.1", 0);
        auto [t, p] = co_await loop.create_connection(counting(), "127.0.0.1", port_of(srv));
        co_await pyco::sleep(10ms);  // accepted
        auto waiting = pyco::create_task(srv.wait_closed());
        co_await pyco::sleep(10ms);
        EXPECT_FALSE(waiting.done());  // not closed yet
        srv.close();
        co_await pyco::sleep(10ms);
        EXPECT_FALSE(waiting.done());  // closed, but a connection lives
        t->close();
        co_await waiting;
        co_await srv.wait_closed();  // at once from now on
    };
    pyco::run(body());
}

TEST(Server, StartServingLaterAndAsyncWith) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::server_options o;
        o.start_serving = false;
        pyco::server srv = co_await loop.create_server(counting(), "127.0.0.1", 0, o);
        EXPECT_FALSE(srv.is_serving());
        const std::uint16_t port = port_of(srv);
        auto use = [&](pyco::server& s) -> coroutine<void> {
            co_await s.start_serving();
            EXPECT_TRUE(s.is_serving());
            auto [t, p] = co_await loop.create_connection(counting(), "127.0.0.1", port);
            t->close();
        };
        co_await pyco::async_with(srv, use);
        EXPECT_FALSE(srv.is_serving());
    };
    pyco::run(body());
}

TEST(Server, CloseClientsAndAbortClients) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        counting_protocol::lost = 0;
        pyco::server srv = co_await loop.create_server(counting(), "127.0.0.1", 0);
        std::vector<pyco::connection_pair> clients;
        for (int i = 0; i < 3; ++i) {
            pyco::connection_pair c = co_await loop.create_connection(counting(), "127.0.0.1", port_of(srv));
            clients.push_back(std::move(c));
        }
        co_await pyco::sleep(20ms);
        srv.close();
        srv.close_clients();
        co_await srv.wait_closed();
        co_await pyco::sleep(20ms);
        EXPECT_EQ(counting_protocol::lost, 6);  // three server sides, three clients (EOF)
        for (auto& c : clients) c.first->close();
    };
    pyco::run(body());
}

TEST(Server, SeveralHostsAndPortZero) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        std::vector<std::string> hosts{"127.0.0.1", "127.0.0.1"};  // built first: GCC 12 (docs/design.md)
        pyco::server_options o;
        pyco::server srv = co_await loop.create_server(counting(), hosts, 0, o);
        EXPECT_EQ(srv.sockets().size(), 1u);  // the same address is bound once
        EXPECT_NE(port_of(srv), 0);
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Server, ReusePortLetsTwoServersShareAPort) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::server_options o;
        o.reuse_port = true;
        pyco::server a = co_await loop.create_server(counting(), "127.0.0.1", 0, o);
        pyco::server b = co_await loop.create_server(counting(), "127.0.0.1", port_of(a), o);
        EXPECT_EQ(port_of(a), port_of(b));
        bool in_use = false;
        try {
            (void)co_await loop.create_server(counting(), "127.0.0.1", port_of(a));
        } catch (const std::system_error& e) {
            in_use = e.code().value() == EADDRINUSE &&
                     std::string(e.what()).find("error while attempting to bind on address") != std::string::npos;
        }
        EXPECT_TRUE(in_use);
        a.close();
        b.close();
        co_await a.wait_closed();
        co_await b.wait_closed();
    };
    pyco::run(body());
}

TEST(Server, ConnectionErrorsAreTyped) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::server srv = co_await loop.create_server(counting(), "127.0.0.1", 0);
        const std::uint16_t port = port_of(srv);
        srv.close();
        co_await srv.wait_closed();
        bool refused = false;
        try {
            (void)co_await loop.create_connection(counting(), "127.0.0.1", port);
        } catch (const pyco::connection_refused_error&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
        pyco::connection_options o;
        o.all_errors = true;
        bool group = false;
        try {
            (void)co_await loop.create_connection(counting(), "127.0.0.1", port, o);
        } catch (const pyco::exception_group& g) {
            group = std::string(g.what()).find("create_connection failed") == 0 && g.exceptions().size() == 1;
        }
        EXPECT_TRUE(group);
    };
    pyco::run(body());
}

TEST(Server, HappyEyeballsFindsTheAddressThatListens) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::server srv = co_await loop.create_server(counting(), "127.0.0.1", 0);
        pyco::connection_options o;
        o.happy_eyeballs_delay = 50ms;
        // "localhost" may give ::1 first; nothing listens there, so the race
        // goes on to 127.0.0.1.
        auto [t, p] = co_await loop.create_connection(counting(), "localhost", port_of(srv), o);
        auto peer = std::any_cast<pyco::sock_address>(t->get_extra_info("peername"));
        EXPECT_EQ(peer.host(), "127.0.0.1");
        t->close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// EMFILE on accept (in a child, with a low RLIMIT_NOFILE): the error is
// reported, accepting pauses, and the server accepts again once fds free up.
TEST(Server, AcceptUnderEmfileReportsPausesAndRecovers) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // The sanitizers' runtime needs spare fds (it probes memory through a
    // pipe), which this test must not leave: run it in the plain builds.
    GTEST_SKIP() << "needs an fd table with no spare fd, which the sanitizers' runtime cannot live with";
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    GTEST_SKIP() << "needs an fd table with no spare fd, which the sanitizers' runtime cannot live with";
#endif
#endif
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::alarm(30);
        // Lowered before the loop exists: io_uring's accept takes the
        // RLIMIT_NOFILE of the moment it is armed (io_accept_prep), so a limit
        // lowered after start_serving would not reach it.
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = 64;
        ::setrlimit(RLIMIT_NOFILE, &rl);
        int reported = 0;
        auto body = [&]() -> coroutine<int> {
            pyco::event_loop& loop = pyco::get_running_loop();
            loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context& c) {
                if (c.message == "socket.accept() out of system resource") ++reported;
            });
            pyco::server srv = co_await loop.create_server(counting(), "127.0.0.1", 0);
            const std::uint16_t port = port_of(srv);
            // Use up the fd table but a few.
            std::vector<int> hog;
            for (;;) {
                int fd = ::dup(0);
                if (fd < 0) break;
                hog.push_back(fd);
            }
            ::close(hog.back());  // room for one client socket
            hog.pop_back();
            int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            sockaddr_in sa{};
            sa.sin_family = AF_INET;
            sa.sin_port = htons(port);
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
            co_await pyco::sleep(100ms);
            if (reported != 1) co_return 10 + reported;  // reported once, then paused (no spin)
            for (int fd : hog) ::close(fd);
            co_await pyco::sleep(1500ms);  // past ACCEPT_RETRY_DELAY
            ::close(c);
            srv.close();
            co_await srv.wait_closed();
            co_return counting_protocol::made >= 1 ? 0 : 20;
        };
        counting_protocol::made = 0;
        int rc = 99;
        try {
            rc = pyco::run(body());
        } catch (...) {
            rc = 98;
        }
        ::_exit(rc);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ------------------------------------------------- CPython's test_server.py

using reader_ptr = std::shared_ptr<pyco::stream_reader>;
using net_test::echo_lines;

// A unique temporary directory for Unix sockets, removed at the end.
struct temp_dir {
    std::string path;
    temp_dir() {
        path = testing::TempDir() + "pyco-nethard-srv-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::filesystem::create_directories(path);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

// test_start_server_1 / test_start_unix_server_1: a server made with
// start_serving off, served by serve_forever inside `async with`, whose
// handler cancels the task serving it: the task raises cancelled_error and
// the server ends closed, its sockets gone, serve_forever refused.
coroutine<void> start_server_1(bool unix_socket, std::string path) {
    std::optional<pyco::task<void>> main_task;
    auto serve = [&](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
        (void)co_await r->readline();
        main_task->cancel();
        w.write("1");
        w.close();
        co_await w.wait_closed();
    };
    pyco::start_server_options o;
    o.start_serving = false;
    // (GCC 12: not `cond ? co_await a : co_await b`, which it miscompiles.)
    pyco::server srv;
    if (unix_socket) {
        srv = co_await pyco::start_unix_server(serve, path, pyco::stream_reader::default_limit, 100, false);
    } else {
        srv = co_await pyco::start_server(serve, "127.0.0.1", 0, o);
    }
    EXPECT_FALSE(srv.is_serving());
    auto in_with = [&](pyco::server& s) -> coroutine<void> {
        if (unix_socket) {
            EXPECT_FALSE(s.is_serving());
            co_await s.start_serving();
            EXPECT_TRUE(s.is_serving());
        }
        co_await s.serve_forever();
    };
    auto run_main = [&]() -> coroutine<void> { co_await pyco::async_with(srv, in_with); };
    main_task = pyco::create_task(run_main());
    const pyco::sock_address addr = srv.sockets().at(0);
    auto client = [&]() -> coroutine<std::string> {
        for (int i = 0; i < 100 && !srv.is_serving(); ++i) co_await pyco::sleep(0s);
        EXPECT_TRUE(srv.is_serving());
        pyco::stream_pair c;
        if (unix_socket) {
            c = co_await pyco::open_unix_connection(path);
        } else {
            c = co_await pyco::open_connection("127.0.0.1", addr.port());
        }
        c.second.write(std::string(5 * 1024, '1') + "\n");
        std::string one = co_await c.first->readexactly(1);
        c.second.close();
        co_return one;
    };
    auto client_task = pyco::create_task(client());
    bool cancelled = false;
    try {
        co_await *main_task;
    } catch (const pyco::cancelled_error&) {
        cancelled = true;
    }
    EXPECT_TRUE(cancelled);
    std::string one = co_await client_task;
    EXPECT_EQ(one, "1");
    EXPECT_TRUE(srv.sockets().empty());
    EXPECT_FALSE(srv.is_serving());
    bool closed = false;
    try {
        co_await srv.serve_forever();
    } catch (const pyco::runtime_error& e) {
        closed = std::string(e.what()).find("is closed") != std::string::npos;
    }
    EXPECT_TRUE(closed);
}

TEST(ServerCPython, StartServer1) { pyco::run(start_server_1(false, {})); }

TEST(ServerCPython, StartUnixServer1) {
    temp_dir dir;
    pyco::run(start_server_1(true, dir.path + "/s1.sock"));
}

// `try: await rd.read() finally: wr.close(); await wr.wait_closed()`
coroutine<void> read_then_close(reader_ptr r, pyco::stream_writer w) {
    try {
        (void)co_await r->read();
    } catch (...) {
    }
    w.close();
    co_await w.wait_closed();
}

// test_wait_closed_basic: wait_closed blocks until the server is closed
// AND its connections are gone, whenever it was called.
TEST(ServerCPython, WaitClosedBasic) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(read_then_close, "127.0.0.1", 0);
        auto task1 = pyco::create_task(srv.wait_closed());
        co_await pyco::sleep(0s);
        EXPECT_FALSE(task1.done());  // active 0, not closed
        auto [rd, wr] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        auto task2 = pyco::create_task(srv.wait_closed());
        co_await pyco::sleep(0s);
        EXPECT_FALSE(task1.done());  // active 1, not closed
        EXPECT_FALSE(task2.done());
        srv.close();
        co_await pyco::sleep(0s);
        auto task3 = pyco::create_task(srv.wait_closed());
        co_await pyco::sleep(0s);
        EXPECT_FALSE(task1.done());  // active 1, closed
        EXPECT_FALSE(task2.done());
        EXPECT_FALSE(task3.done());
        wr.close();
        co_await wr.wait_closed();
        co_await task1;  // active 0, closed
        co_await task2;
        co_await task3;
        co_await srv.wait_closed();  // at once
    };
    pyco::run(body());
}

// test_wait_closed_race (a 3.12.0 regression): close and the last
// connection's end come in the same iteration.
TEST(ServerCPython, WaitClosedRace) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(read_then_close, "127.0.0.1", 0);
        auto task = pyco::create_task(srv.wait_closed());
        co_await pyco::sleep(0s);
        EXPECT_FALSE(task.done());
        auto [rd, wr] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::stream_writer writer = wr;
        loop.call_soon([srv]() mutable { srv.close(); });
        loop.call_soon([writer]() mutable { writer.close(); });
        co_await srv.wait_closed();
        co_await task;
    };
    pyco::run(body());
}

// test_close_clients (3.13)
TEST(ServerCPython, CloseClients) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(read_then_close, "127.0.0.1", 0);
        auto [rd, wr] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        auto task = pyco::create_task(srv.wait_closed());
        co_await pyco::sleep(0s);
        EXPECT_FALSE(task.done());
        srv.close();
        srv.close_clients();
        co_await pyco::sleep(0s);
        co_await pyco::sleep(0s);
        EXPECT_TRUE(task.done());
        std::string rest = co_await rd->read();
        EXPECT_EQ(rest, "");  // the client sees the server's EOF
        wr.close();
    };
    pyco::run(body());
}

// test_abort_clients (3.13): a connection whose server side has data it
// cannot send (the client's reader paused, the kernel's buffers full) is
// aborted at once, and wait_closed returns.
TEST(ServerCPython, AbortClients) {
    auto body = []() -> coroutine<void> {
        std::optional<pyco::stream_writer> server_writer;
        pyco::event connected;
        auto serve = [&](reader_ptr, pyco::stream_writer w) -> coroutine<void> {
            server_writer = w;
            connected.set();
            try {
                co_await w.wait_closed();
            } catch (...) {
            }
        };
        pyco::server srv = co_await pyco::start_server(serve, "127.0.0.1", 0);
        pyco::open_connection_options o;
        o.limit = 4096;
        auto [c_rd, c_wr] = co_await pyco::open_connection("127.0.0.1", port_of(srv), o);
        co_await connected.wait();
        pyco::stream_writer s_wr = *server_writer;
        server_writer.reset();
        const int s_fd = std::any_cast<int>(s_wr.get_extra_info("socket"));
        const int c_fd = std::any_cast<int>(c_wr.get_extra_info("socket"));
        int sz = 65536;
        ::setsockopt(s_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        ::setsockopt(c_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        // More than twice the reader's limit: the client stops reading.
        for (int i = 0; i < 3; ++i) s_wr.write(std::string(4096, 'a'));
        for (int i = 0; i < 1000 && c_wr.transport().is_reading(); ++i) co_await pyco::sleep(0s);
        EXPECT_FALSE(c_wr.transport().is_reading());
        int c_buf = 0, s_buf = 0;
        socklen_t len = sizeof c_buf;
        ::getsockopt(c_fd, SOL_SOCKET, SO_RCVBUF, &c_buf, &len);
        len = sizeof s_buf;
        ::getsockopt(s_fd, SOL_SOCKET, SO_SNDBUF, &s_buf, &len);
        for (int i = 0; i < 10 && s_wr.get_write_buffer_size() == 0; ++i) {
            s_wr.write(std::string(static_cast<std::size_t>(c_buf), 'a'));
            s_wr.write(std::string(static_cast<std::size_t>(s_buf), 'a'));
        }
        EXPECT_NE(s_wr.get_write_buffer_size(), 0u);
        auto task = pyco::create_task(srv.wait_closed());
        co_await pyco::sleep(0s);
        EXPECT_FALSE(task.done());
        srv.close();
        srv.abort_clients();
        co_await pyco::sleep(0s);
        co_await pyco::sleep(0s);
        EXPECT_TRUE(task.done());
        c_wr.close();
    };
    pyco::run(body());
}

// UnixServerCleanupTests (3.13): close() removes the socket file only if it
// is still the server's.
coroutine<void> unix_cleanup(std::string path, int scenario) {
    pyco::event_loop& loop = pyco::get_running_loop();
    pyco::unix_server_options o;
    o.cleanup_socket = scenario != 3;
    pyco::server srv = co_await loop.create_unix_server(counting(), path, o);
    EXPECT_TRUE(std::filesystem::exists(path));
    std::optional<pyco::socket> theirs;
    if (scenario == 1) {  // someone else removed it
        std::filesystem::remove(path);
    } else if (scenario == 2) {  // someone else put their own socket there
        std::filesystem::remove(path);
        theirs.emplace(AF_UNIX, SOCK_STREAM);
        theirs->bind(pyco::sock_address::unix_path(path));
    }
    srv.close();
    EXPECT_EQ(std::filesystem::exists(path), scenario >= 2) << "scenario " << scenario;
    co_await srv.wait_closed();
}

TEST(ServerCPython, UnixServerCleanup) {
    temp_dir dir;
    for (int scenario = 0; scenario < 4; ++scenario) {
        const std::string path = dir.path + "/c" + std::to_string(scenario) + ".sock";
        pyco::run(unix_cleanup(path, scenario));
    }
}

// --------------------------------------------- closed with clients connected

coroutine<std::string> round_trip(pyco::stream_pair& c, std::string msg) {
    c.second.write(msg);
    co_await c.second.drain();
    co_return co_await c.first->readline();
}

// close() stops listening at once; the connections it accepted are still
// served, and wait_closed returns after the last of them ends.
TEST(ServerClosed, ConnectedClientsAreStillServedUntilTheyLeave) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0);
        const std::uint16_t port = port_of(srv);
        std::vector<pyco::stream_pair> clients;
        for (int i = 0; i < 3; ++i) {
            pyco::stream_pair c = co_await pyco::open_connection("127.0.0.1", port);
            std::string got = co_await round_trip(c, "before\n");
            EXPECT_EQ(got, "before\n");
            clients.push_back(std::move(c));
        }
        srv.close();
        EXPECT_FALSE(srv.is_serving());
        EXPECT_TRUE(srv.sockets().empty());
        bool refused = false;
        try {
            (void)co_await pyco::open_connection("127.0.0.1", port);
        } catch (const pyco::connection_refused_error&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
        auto waiting = pyco::create_task(srv.wait_closed());
        for (auto& c : clients) {
            std::string got = co_await round_trip(c, "after\n");
            EXPECT_EQ(got, "after\n");
        }
        for (auto& c : clients) {
            EXPECT_FALSE(waiting.done());
            c.second.close();
            co_await c.second.wait_closed();
            for (int i = 0; i < 4; ++i) co_await pyco::sleep(0s);  // the server side sees EOF
        }
        co_await waiting;
    };
    pyco::run(body());
}

// abort_clients: the clients see the connection end (EOF or a reset), and
// wait_closed returns without them doing anything.
TEST(ServerClosed, AbortClientsEndsEveryConnection) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0);
        std::vector<pyco::stream_pair> clients;
        for (int i = 0; i < 3; ++i) {
            pyco::stream_pair c = co_await pyco::open_connection("127.0.0.1", port_of(srv));
            std::string got = co_await round_trip(c, "hi\n");
            EXPECT_EQ(got, "hi\n");
            clients.push_back(std::move(c));
        }
        srv.close();
        srv.abort_clients();
        co_await srv.wait_closed();
        for (auto& c : clients) {
            std::string end = "unread";
            try {
                end = co_await c.first->read();
            } catch (const pyco::connection_reset_error&) {
                end = "";
            }
            EXPECT_EQ(end, "");
            c.second.close();
        }
    };
    pyco::run(body());
}

}  // namespace
