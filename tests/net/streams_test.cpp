// Streams over real connections (127.0.0.1, ::1, Unix sockets in a temp
// dir): the observable cases of CPython's test_streams.py that need a
// connection, and pyco's own promises — drain wakes every waiter, a
// cancelled read loses no byte, a slow reader keeps the writer's memory
// bounded, a peer reset surfaces as connection_reset_error.
#include <pyco/net/streams.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/event.hpp>
#include <pyco/gather.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

coroutine<void> echo_lines(reader_ptr r, pyco::stream_writer w) {
    for (;;) {
        std::string line = co_await r->readline();
        if (line.empty()) break;
        w.write(line);
        co_await w.drain();
    }
    w.close();
}

std::uint16_t port_of(const pyco::server& s) { return s.sockets().at(0).port(); }

TEST(Streams, EchoOverTcp) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0);
        EXPECT_TRUE(srv.is_serving());
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        for (std::string msg : {"hello\n", "world\n"}) {
            w.write(msg);
            co_await w.drain();
            std::string got = co_await r->readline();
            EXPECT_EQ(got, msg);
        }
        auto peer = std::any_cast<pyco::sock_address>(w.get_extra_info("peername"));
        EXPECT_EQ(peer.port(), port_of(srv));
        w.write_eof();
        std::string rest = co_await r->read();
        EXPECT_EQ(rest, "");  // the server closed after our EOF
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
        EXPECT_FALSE(srv.is_serving());
    };
    pyco::run(body());
}

bool have_ipv6_loopback() {
    int s = ::socket(AF_INET6, SOCK_STREAM, 0);
    if (s < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    const bool ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
}

TEST(Streams, EchoOverIpv6Loopback) {
    if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback here";
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(echo_lines, "::1", 0);
        auto [r, w] = co_await pyco::open_connection("::1", port_of(srv));
        w.write("six\n");
        std::string got = co_await r->readline();
        EXPECT_EQ(got, "six\n");
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Streams, EchoOverAUnixSocket) {
    auto dir = std::filesystem::temp_directory_path() / ("pyco-streams-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "echo.sock").string();
    auto body = [&]() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_unix_server(echo_lines, path);
        EXPECT_TRUE(std::filesystem::exists(path));
        auto [r, w] = co_await pyco::open_unix_connection(path);
        w.write("unix\n");
        std::string got = co_await r->readline();
        EXPECT_EQ(got, "unix\n");
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
    EXPECT_FALSE(std::filesystem::exists(path));  // cleanup_socket (3.13)
    std::filesystem::remove_all(dir);
}

// The server never reads until told to: the client's buffer goes past the
// high-water mark, two tasks drain at once, and both wake (cpython #74116).
TEST(Streams, ConcurrentDrainsAllWake) {
    auto body = []() -> coroutine<void> {
        pyco::event go;
        std::size_t received = 0;
        auto slow = [&](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            co_await go.wait();
            for (;;) {
                std::string chunk = co_await r->read(1 << 16);
                if (chunk.empty()) break;
                received += chunk.size();
            }
            w.close();
        };
        pyco::server srv = co_await pyco::start_server(slow, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        // Write until the kernel's buffers are full and ours is above the
        // mark. The loop runs between writes: io_uring hands the bytes to
        // the kernel at its next io_uring_enter, not inside write().
        const std::string block(1 << 20, 'd');
        std::size_t total = 0;
        while (w.get_write_buffer_size() <= 65536 && total < (std::size_t{256} << 20)) {
            w.write(block);
            total += block.size();
            std::size_t before;
            do {  // until the kernel takes no more
                before = w.get_write_buffer_size();
                co_await pyco::sleep(10ms);
            } while (w.get_write_buffer_size() < before);
        }
        EXPECT_GT(w.get_write_buffer_size(), 65536u);
        int woke = 0;
        auto drainer = [&]() -> coroutine<void> {
            co_await w.drain();
            ++woke;
        };
        auto t1 = pyco::create_task(drainer());
        auto t2 = pyco::create_task(drainer());
        co_await pyco::sleep(20ms);
        EXPECT_EQ(woke, 0);  // still above the mark: both wait
        go.set();
        co_await t1;
        co_await t2;
        EXPECT_EQ(woke, 2);
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
        EXPECT_EQ(received, total);
    };
    pyco::run(body());
}

// A writer that drains, to a reader that reads slowly, never holds much
// more than the high-water mark.
TEST(Streams, SlowReaderKeepsTheWriterBounded) {
    auto body = []() -> coroutine<void> {
        std::size_t max_buffered = 0;
        std::size_t sent = 0;
        auto producer = [&](reader_ptr, pyco::stream_writer w) -> coroutine<void> {
            const std::string chunk(16 * 1024, 'p');
            for (int i = 0; i < 512; ++i) {  // 8 MiB
                w.write(chunk);
                sent += chunk.size();
                max_buffered = std::max(max_buffered, w.get_write_buffer_size());
                co_await w.drain();
            }
            w.close();
        };
        pyco::server srv = co_await pyco::start_server(producer, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        std::size_t got = 0;
        for (;;) {
            std::string part = co_await r->read(4096);
            if (part.empty()) break;
            got += part.size();
            if (got % (256 * 1024) < 4096) co_await pyco::sleep(1ms);  // slow
        }
        EXPECT_EQ(got, sent);
        EXPECT_LE(max_buffered, 64u * 1024 + 16 * 1024);
        w.close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Streams, CancelledReadlineLosesNoByte) {
    auto body = []() -> coroutine<void> {
        pyco::event sent_half;
        pyco::event send_rest;
        auto talker = [&](reader_ptr, pyco::stream_writer w) -> coroutine<void> {
            w.write("first half ");
            sent_half.set();
            co_await send_rest.wait();
            w.write("and the rest\n");
            co_await w.drain();
            w.close();
        };
        pyco::server srv = co_await pyco::start_server(talker, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        co_await sent_half.wait();
        auto reading = pyco::create_task(r->readline());
        co_await pyco::sleep(10ms);  // the half has arrived; readline waits for the rest
        reading.cancel();
        bool cancelled = false;
        try {
            co_await reading;
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        EXPECT_TRUE(cancelled);
        send_rest.set();
        std::string line = co_await r->readline();
        EXPECT_EQ(line, "first half and the rest\n");
        w.close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Streams, PeerResetSurfacesAsConnectionResetError) {
    auto body = []() -> coroutine<void> {
        pyco::event reset;
        auto resetter = [&](reader_ptr, pyco::stream_writer w) -> coroutine<void> {
            int fd = std::any_cast<int>(w.get_extra_info("socket"));
            linger lg{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            w.transport().abort();  // close with SO_LINGER 0: RST
            reset.set();
            co_return;
        };
        pyco::server srv = co_await pyco::start_server(resetter, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        co_await reset.wait();
        bool raised = false;
        try {
            for (int i = 0; i < 100; ++i) {
                w.write(std::string(65536, 'x'));
                co_await w.drain();
                co_await pyco::sleep(1ms);
            }
        } catch (const pyco::connection_error&) {
            raised = true;
        }
        EXPECT_TRUE(raised);
        bool read_raised = false;
        try {
            (void)co_await r->read();
        } catch (const pyco::connection_reset_error&) {
            read_raised = true;
        }
        EXPECT_TRUE(read_raised);
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Streams, HalfCloseBothWays) {
    auto body = []() -> coroutine<void> {
        auto upper = [](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            std::string all = co_await r->read();  // until the client's EOF
            for (char& c : all) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            w.write(all);
            w.write_eof();  // our half-close, after theirs
            co_await w.drain();
        };
        pyco::server srv = co_await pyco::start_server(upper, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        EXPECT_TRUE(w.can_write_eof());
        w.write("shout this");
        w.write_eof();
        std::string got = co_await r->read();
        EXPECT_EQ(got, "SHOUT THIS");
        EXPECT_TRUE(r->at_eof());
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Streams, ACallbackErrorIsReportedAndTheConnectionClosed) {
    std::vector<std::string> reported;
    auto body = [&]() -> coroutine<void> {
        pyco::get_running_loop().set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { reported.push_back(c.message); });
        auto failing = [](reader_ptr, pyco::stream_writer) -> coroutine<void> {
            throw pyco::value_error("handler failed");
            co_return;
        };
        pyco::server srv = co_await pyco::start_server(failing, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        std::string got = co_await r->read();
        EXPECT_EQ(got, "");  // closed by the server
        w.close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
    ASSERT_EQ(reported.size(), 1u);
    EXPECT_EQ(reported[0], "Unhandled exception in client_connected_cb");
}

TEST(Streams, RefusedConnectionIsConnectionRefusedError) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0);
        const std::uint16_t port = port_of(srv);
        srv.close();
        co_await srv.wait_closed();
        bool refused = false;
        try {
            (void)co_await pyco::open_connection("127.0.0.1", port);
        } catch (const pyco::connection_refused_error&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
    };
    pyco::run(body());
}

}  // namespace
