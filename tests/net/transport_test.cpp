// The stream transport over a real socket pair: asyncio's protocol callback
// order, flow control at the water marks, pause/resume without losing a
// byte, half-close, close/abort, and errors from the peer.
#include <pyco/net/transport.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/datagram.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/server.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

#include "net/socket_transport.hpp"

namespace {

struct recording_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    std::vector<std::string> events;
    std::string data;
    bool keep_open_on_eof = false;
    std::exception_ptr lost;
    void connection_made(pyco::transport& tr) override {
        t = &tr;
        events.push_back("made");
    }
    void data_received(std::span<const std::byte> d) override {
        if (events.empty() || events.back() != "data") events.push_back("data");
        data += as_text(d);
    }
    bool eof_received() override {
        events.push_back("eof");
        return keep_open_on_eof;
    }
    void connection_lost(std::exception_ptr e) override {
        events.push_back("lost");
        lost = e;
    }
    void pause_writing() override { events.push_back("pause"); }
    void resume_writing() override { events.push_back("resume"); }
};

struct pair_fixture {
    int a = -1, b = -1;
    pair_fixture() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        a = fds[0];
        b = fds[1];
    }
    ~pair_fixture() {
        if (b >= 0) ::close(b);
    }
    std::string read_peer() {
        std::string out;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(b, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
        return out;
    }
};

template <class P>
void spin(pyco::event_loop& loop, P pred, int n = 500) {
    for (int i = 0; i < n && !pred(); ++i) {
        loop.stop();
        loop.run_forever();
        if (!pred()) ::usleep(500);
    }
}

TEST(Transport, CallbacksComeInAsyncioOrder) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    EXPECT_TRUE(proto->events.empty());  // connection_made comes from the loop
    ASSERT_EQ(::write(p.b, "ping", 4), 4);
    spin(loop, [&] { return proto->data == "ping"; });
    ::shutdown(p.b, SHUT_WR);
    spin(loop, [&] { return proto->events.size() >= 4; });
    EXPECT_EQ(proto->events, (std::vector<std::string>{"made", "data", "eof", "lost"}));
    EXPECT_EQ(proto->lost, nullptr);
    EXPECT_TRUE(t->is_closing());
}

TEST(Transport, WritesReachThePeerInOrder) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    t->write(std::string_view("hello "));
    std::string_view lines[] = {"wor", "ld"};
    t->writelines(lines);
    // epoll sends at once; io_uring with the loop's next io_uring_enter.
    spin(loop, [&] { return t->get_write_buffer_size() == 0; });
    EXPECT_EQ(p.read_peer(), "hello world");
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
    t->close();
    spin(loop, [&] { return !proto->events.empty() && proto->events.back() == "lost"; });
    EXPECT_EQ(proto->events.back(), "lost");
}

TEST(Transport, FlowControlPausesAboveHighAndResumesAtLow) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    EXPECT_EQ(t->get_write_buffer_limits(), (std::pair<std::size_t, std::size_t>{16384, 65536}));
    // Fill the socket, then the buffer past the high-water mark.
    std::string block(1 << 20, 'x');
    t->write(std::string_view(block));
    ASSERT_GT(t->get_write_buffer_size(), 65536u);
    EXPECT_EQ(proto->events.back(), "pause");
    // The peer reads: the buffer drains, and resume_writing comes once.
    std::size_t got = 0;
    spin(loop, [&] {
        got += p.read_peer().size();
        return t->get_write_buffer_size() == 0 && got == block.size();
    }, 5000);
    EXPECT_EQ(got, block.size());
    EXPECT_EQ(proto->events, (std::vector<std::string>{"made", "pause", "resume"}));
    t->close();
    spin(loop, [&] { return proto->events.back() == "lost"; });
}

TEST(Transport, BufferLimitsAreValidatedAsAsyncio) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    EXPECT_THROW(t->set_write_buffer_limits(10, 20), pyco::value_error);
    t->set_write_buffer_limits(400);
    EXPECT_EQ(t->get_write_buffer_limits(), (std::pair<std::size_t, std::size_t>{100, 400}));
    t->set_write_buffer_limits(std::nullopt, 100);
    EXPECT_EQ(t->get_write_buffer_limits(), (std::pair<std::size_t, std::size_t>{100, 400}));
    t->abort();
    spin(loop, [&] { return !proto->events.empty() && proto->events.back() == "lost"; });
}

TEST(Transport, PausedReadingLosesNoByte) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    ASSERT_EQ(::write(p.b, "one ", 4), 4);
    spin(loop, [&] { return proto->data == "one "; });
    t->pause_reading();
    EXPECT_FALSE(t->is_reading());
    ASSERT_EQ(::write(p.b, "two ", 4), 4);
    spin(loop, [] { return false; }, 20);
    EXPECT_EQ(proto->data, "one ");
    t->resume_reading();
    ASSERT_EQ(::write(p.b, "three", 5), 5);
    spin(loop, [&] { return proto->data == "one two three"; });
    EXPECT_EQ(proto->data, "one two three");
    t->close();
    spin(loop, [&] { return proto->events.back() == "lost"; });
}

TEST(Transport, HalfCloseKeepsWriting) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    proto->keep_open_on_eof = true;
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    ::shutdown(p.b, SHUT_WR);
    spin(loop, [&] { return proto->events.size() >= 2; });
    EXPECT_EQ(proto->events, (std::vector<std::string>{"made", "eof"}));
    t->write(std::string_view("after eof"));
    t->write_eof();
    EXPECT_THROW(t->write(std::string_view("x")), pyco::runtime_error);
    spin(loop, [&] { return t->get_write_buffer_size() == 0; });  // sent (io_uring: next enter)
    char buf[32];
    ssize_t n = ::read(p.b, buf, sizeof buf);
    ASSERT_EQ(n, 9);
    EXPECT_EQ(::read(p.b, buf, sizeof buf), 0);  // our EOF reached the peer
    t->close();
    spin(loop, [&] { return proto->events.back() == "lost"; });
}

TEST(Transport, CloseSendsTheBufferFirst) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    std::string block(1 << 20, 'y');
    t->write(std::string_view(block));
    t->close();
    EXPECT_TRUE(t->is_closing());
    std::size_t got = 0;
    spin(loop, [&] {
        got += p.read_peer().size();
        return proto->events.back() == "lost";
    }, 5000);
    got += p.read_peer().size();
    EXPECT_EQ(got, block.size());
    EXPECT_EQ(proto->lost, nullptr);
}

TEST(Transport, AbortDropsTheBufferAndReportsNoError) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    std::string block(1 << 20, 'z');
    t->write(std::string_view(block));
    t->abort();
    spin(loop, [&] { return proto->events.back() == "lost"; });
    EXPECT_EQ(proto->lost, nullptr);
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
}

// CPython's _force_close (abort, and every fatal error) clears the write
// buffer at once: get_write_buffer_size() is 0 right after abort() and in
// connection_lost, even while a send of those bytes is still in flight
// (io_uring, or a completion the loop has not delivered yet). The memory
// itself stays until the send's final completion.
struct buffer_size_at_lost : pyco::protocol {
    pyco::transport* t = nullptr;
    std::optional<std::size_t> size_at_lost;
    void connection_made(pyco::transport& tr) override { t = &tr; }
    void connection_lost(std::exception_ptr) override { size_at_lost = t->get_write_buffer_size(); }
};

TEST(Transport, AbortEmptiesTheWriteBufferAtOnce) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<buffer_size_at_lost>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    std::string block(4 << 20, 'z');  // more than the socket takes: most stays buffered
    t->write(std::string_view(block));
    spin(loop, [] { return false; }, 3);  // the rest's send is now in flight (parked or in the kernel)
    ASSERT_GT(t->get_write_buffer_size(), 0u);
    t->abort();
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
    spin(loop, [&] { return proto->size_at_lost.has_value(); });
    EXPECT_EQ(proto->size_at_lost, 0u);
}

TEST(Transport, PeerResetIsAConnectionResetError) {
    pyco::event_loop loop;
    int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(ls, 4), 0);
    socklen_t len = sizeof sa;
    ::getsockname(ls, reinterpret_cast<sockaddr*>(&sa), &len);
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    int s = ::accept4(ls, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_GE(s, 0);
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, s, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    linger lg{1, 0};
    ::setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(c);  // RST
    spin(loop, [&] { return proto->events.back() == "lost"; });
    ASSERT_NE(proto->lost, nullptr);
    EXPECT_THROW(std::rethrow_exception(proto->lost), pyco::connection_reset_error);
    ::close(ls);
}

struct chunky_protocol : pyco::buffered_protocol {
    std::vector<std::byte> store = std::vector<std::byte>(7);
    std::string data;
    bool lost = false;
    std::span<std::byte> get_buffer(std::size_t) override { return store; }
    void buffer_updated(std::size_t n) override { data.append(reinterpret_cast<const char*>(store.data()), n); }
    void connection_lost(std::exception_ptr) override { lost = true; }
};

TEST(Transport, BufferedProtocolGetsBytesInItsOwnBuffer) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<chunky_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    const std::string text = "a buffered protocol receives in place";
    ASSERT_EQ(::write(p.b, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    spin(loop, [&] { return proto->data.size() == text.size(); });
    EXPECT_EQ(proto->data, text);
    ::shutdown(p.b, SHUT_WR);
    spin(loop, [&] { return proto->lost; });
    EXPECT_TRUE(proto->lost);
}

struct throwing_protocol : recording_protocol {
    void data_received(std::span<const std::byte>) override { throw pyco::value_error("bad data"); }
};

TEST(Transport, AThrowingProtocolClosesTheTransportAndTheLoopGoesOn) {
    pyco::event_loop loop;
    std::vector<std::string> reported;
    loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context& c) { reported.push_back(c.message); });
    pair_fixture p;
    auto proto = std::make_shared<throwing_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    spin(loop, [&] { return !proto->events.empty() && proto->events.back() == "lost"; });
    ASSERT_EQ(reported.size(), 1u);
    EXPECT_EQ(reported[0], "Fatal error: protocol.data_received() call failed.");
    EXPECT_THROW(std::rethrow_exception(proto->lost), pyco::value_error);
}

// ------------------------------ CPython's test_selector_events.py, observable

// test_close: a second close() changes nothing; connection_lost comes once.
TEST(TransportCPython, CloseTwiceLosesOnce) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    t->close();
    EXPECT_TRUE(t->is_closing());
    t->close();
    t->abort();  // after close: nothing either
    spin(loop, [] { return false; }, 10);
    EXPECT_EQ(proto->events, (std::vector<std::string>{"made", "lost"}));
}

// test_close_write_buffer: close() with bytes buffered waits for them before
// connection_lost.
TEST(TransportCPython, CloseWithABufferLosesOnlyOnceItIsSent) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    t->write(std::string(4 << 20, 'b'));
    ASSERT_GT(t->get_write_buffer_size(), 0u);
    t->close();
    spin(loop, [] { return false; }, 10);
    EXPECT_NE(proto->events.back(), "lost");  // the peer reads nothing yet
    std::size_t got = 0;
    spin(loop, [&] {
        got += p.read_peer().size();
        return proto->events.back() == "lost";
    }, 5000);
    EXPECT_EQ(proto->events.back(), "lost");
    got += p.read_peer().size();
    EXPECT_EQ(got, std::size_t{4} << 20);
}

// test_pause_resume_reading: both are idempotent; a closed transport is not
// reading and pause/resume do nothing.
TEST(TransportCPython, PauseAndResumeReadingTwiceAndAfterClose) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    EXPECT_TRUE(t->is_reading());
    t->pause_reading();
    t->pause_reading();
    EXPECT_FALSE(t->is_reading());
    t->resume_reading();
    t->resume_reading();
    EXPECT_TRUE(t->is_reading());
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    spin(loop, [&] { return proto->data == "x"; });
    EXPECT_EQ(proto->data, "x");
    t->close();
    EXPECT_FALSE(t->is_reading());
    t->pause_reading();
    t->resume_reading();
    EXPECT_FALSE(t->is_reading());
    spin(loop, [&] { return proto->events.back() == "lost"; });
}

// test_pause_reading_connection_made: a protocol that pauses in
// connection_made receives nothing until it resumes.
struct pausing_protocol : recording_protocol {
    void connection_made(pyco::transport& tr) override {
        recording_protocol::connection_made(tr);
        tr.pause_reading();
    }
};

TEST(TransportCPython, PauseReadingInConnectionMade) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<pausing_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    ASSERT_EQ(::write(p.b, "early", 5), 5);
    spin(loop, [&] { return proto->t != nullptr; });
    spin(loop, [] { return false; }, 20);
    EXPECT_FALSE(t->is_reading());
    EXPECT_EQ(proto->data, "");
    t->resume_reading();
    EXPECT_TRUE(t->is_reading());
    spin(loop, [&] { return proto->data == "early"; });
    EXPECT_EQ(proto->data, "early");
    t->close();
    EXPECT_FALSE(t->is_reading());
    spin(loop, [&] { return proto->events.back() == "lost"; });
}

// test_read_eof_received_error: eof_received raising is a fatal error.
struct eof_throwing_protocol : recording_protocol {
    bool eof_received() override { throw pyco::value_error("bad eof"); }
};

TEST(TransportCPython, EofReceivedRaisingIsFatal) {
    pyco::event_loop loop;
    std::vector<std::string> reported;
    loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context& c) { reported.push_back(c.message); });
    pair_fixture p;
    auto proto = std::make_shared<eof_throwing_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    ::shutdown(p.b, SHUT_WR);
    spin(loop, [&] { return !proto->events.empty() && proto->events.back() == "lost"; });
    EXPECT_EQ(reported, std::vector<std::string>{"Fatal error: protocol.eof_received() call failed."});
    ASSERT_NE(proto->lost, nullptr);
    EXPECT_THROW(std::rethrow_exception(proto->lost), pyco::value_error);
}

// test_fatal_error: an OS error closes the transport with that error, and
// (3.12) is not reported — any OSError, not only the connection errors.
// Here: a receive on a listening socket fails with ENOTCONN.
TEST(TransportCPython, AnOsErrorIsFatalButNotReported) {
    pyco::event_loop loop;
    std::vector<std::string> reported;
    loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context& c) { reported.push_back(c.message); });
    int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(ls, 4), 0);
    socklen_t len = sizeof sa;
    ::getsockname(ls, reinterpret_cast<sockaddr*>(&sa), &len);
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, ls, proto);
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);  // readable now
    spin(loop, [&] { return !proto->events.empty() && proto->events.back() == "lost"; });
    ASSERT_NE(proto->lost, nullptr);
    try {
        std::rethrow_exception(proto->lost);
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOTCONN);
    }
    EXPECT_EQ(reported, std::vector<std::string>{});
    ::close(c);
}

// test_write_no_data / test_write_closing: empty writes do nothing; writes
// after the connection is lost are dropped, and from the fifth on each one
// logs "socket.send() raised exception." (LOG_THRESHOLD_FOR_CONNLOST_WRITES).
TEST(TransportCPython, WritesAfterCloseAreDroppedAndWarnFromTheFifth) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    t->write(std::string_view(""));
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
    t->close();
    testing::internal::CaptureStderr();
    for (int i = 0; i < 4; ++i) t->write(std::string_view("x"));
    const std::string quiet = testing::internal::GetCapturedStderr();
    testing::internal::CaptureStderr();
    for (int i = 0; i < 3; ++i) t->write(std::string_view("x"));
    const std::string loud = testing::internal::GetCapturedStderr();
    EXPECT_EQ(quiet, "");
    EXPECT_EQ(loud, "socket.send() raised exception.\nsocket.send() raised exception.\n"
                    "socket.send() raised exception.\n");
    EXPECT_EQ(t->get_write_buffer_size(), 0u);
    spin(loop, [&] { return proto->events.back() == "lost"; });
    EXPECT_EQ(p.read_peer(), "");
}

// test_write_eof_buffer / test_write_eof_after_close: write_eof sends the
// buffer first, then the EOF; after close() it does nothing.
TEST(TransportCPython, WriteEofAfterTheBufferAndNotAfterClose) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    proto->keep_open_on_eof = true;
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    const std::string block(2 << 20, 'e');
    t->write(block);
    ASSERT_GT(t->get_write_buffer_size(), 0u);
    t->write_eof();
    std::string got;
    bool eof = false;
    spin(loop, [&] {
        char buf[65536];
        ssize_t n;
        while ((n = ::read(p.b, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
        eof = n == 0;
        return eof;
    }, 5000);
    EXPECT_TRUE(eof);
    EXPECT_EQ(got.size(), block.size());
    EXPECT_FALSE(t->is_closing());
    t->close();
    t->write_eof();  // no error
    spin(loop, [&] { return proto->events.back() == "lost"; });
}

// writelines: refused after write_eof with its own name (3.12), and paused
// at the high-water mark like write() (cpython gh-127655, fixed in 3.12.9).
TEST(TransportCPython, WritelinesAfterWriteEofAndAboveTheHighWaterMark) {
    pyco::event_loop loop;
    pair_fixture p;
    auto proto = std::make_shared<recording_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
    spin(loop, [&] { return proto->t != nullptr; });
    const std::string block(1 << 20, 'l');
    std::string_view lines[] = {block, block};
    t->writelines(lines);
    EXPECT_GT(t->get_write_buffer_size(), 65536u);
    EXPECT_EQ(proto->events.back(), "pause");
    t->write_eof();
    try {
        t->writelines(lines);
        ADD_FAILURE() << "no error";
    } catch (const pyco::runtime_error& e) {
        EXPECT_STREQ(e.what(), "Cannot call writelines() after write_eof()");
    }
    t->abort();
    spin(loop, [&] { return proto->events.back() == "lost"; });
}

// SelectorSocketTransportBufferedProtocolTests: get_buffer or buffer_updated
// raising, or get_buffer returning no room, is a fatal error.
struct failing_buffered : pyco::buffered_protocol {
    int mode = 0;  // 0: get_buffer throws, 1: get_buffer empty, 2: buffer_updated throws
    std::vector<std::byte> store = std::vector<std::byte>(64);
    std::exception_ptr lost;
    bool lost_called = false;
    std::span<std::byte> get_buffer(std::size_t) override {
        if (mode == 0) throw pyco::value_error("no buffer");
        if (mode == 1) return {};
        return store;
    }
    void buffer_updated(std::size_t) override { throw pyco::value_error("no update"); }
    void connection_lost(std::exception_ptr e) override {
        lost = e;
        lost_called = true;
    }
};

TEST(TransportCPython, BufferedProtocolErrorsAreFatal) {
    const char* expected[] = {"Fatal error: protocol.get_buffer() call failed.",
                              "Fatal error: protocol.get_buffer() call failed.",
                              "Fatal error: protocol.buffer_updated() call failed."};
    for (int mode = 0; mode < 3; ++mode) {
        pyco::event_loop loop;
        std::vector<std::string> reported;
        loop.set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { reported.push_back(c.message); });
        pair_fixture p;
        auto proto = std::make_shared<failing_buffered>();
        proto->mode = mode;
        auto t = pyco::detail::make_stream_transport(loop, p.a, proto);
        ASSERT_EQ(::write(p.b, "data", 4), 4);
        spin(loop, [&] { return proto->lost_called; });
        EXPECT_EQ(reported, std::vector<std::string>{expected[mode]}) << "mode " << mode;
        ASSERT_NE(proto->lost, nullptr);
        if (mode == 1) {
            EXPECT_THROW(std::rethrow_exception(proto->lost), pyco::runtime_error);
        } else {
            EXPECT_THROW(std::rethrow_exception(proto->lost), pyco::value_error);
        }
    }
}

// test_proto_type_switch: set_protocol switches between a buffered and a
// plain protocol; the bytes go to whichever is set.
TEST(TransportCPython, SetProtocolSwitchesBetweenBufferedAndPlain) {
    pyco::event_loop loop;
    pair_fixture p;
    auto plain = std::make_shared<recording_protocol>();
    auto buffered = std::make_shared<chunky_protocol>();
    auto t = pyco::detail::make_stream_transport(loop, p.a, plain);
    spin(loop, [&] { return plain->t != nullptr; });
    ASSERT_EQ(::write(p.b, "one", 3), 3);
    spin(loop, [&] { return plain->data == "one"; });
    t->set_protocol(buffered);
    EXPECT_EQ(t->get_protocol(), buffered);
    ASSERT_EQ(::write(p.b, "two", 3), 3);
    spin(loop, [&] { return buffered->data == "two"; });
    t->set_protocol(plain);
    ASSERT_EQ(::write(p.b, "three", 5), 5);
    spin(loop, [&] { return plain->data == "onethree"; });
    EXPECT_EQ(plain->data, "onethree");
    EXPECT_EQ(buffered->data, "two");
    t->close();
    spin(loop, [&] { return plain->events.back() == "lost"; });
}

// A loop closed while a transport, a server and a datagram endpoint are
// still open (each holds itself alive while open): at close they are
// released — their fds closed, their protocols freed — and connection_lost
// is not called, as CPython's loop.close() does not call it. (LeakSanitizer
// checks the rest in the sanitize build.)
struct watched_protocol : pyco::protocol {
    static inline int made = 0;
    static inline int lost = 0;
    void connection_made(pyco::transport&) override { ++made; }
    void connection_lost(std::exception_ptr) override { ++lost; }
};

struct watched_datagram : pyco::datagram_protocol {
    static inline int lost = 0;
    void connection_lost(std::exception_ptr) override { ++lost; }
};

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(Transport, ALoopClosedWithOpenTransportsReleasesThemWithoutConnectionLost) {
    watched_protocol::made = watched_protocol::lost = 0;
    watched_datagram::lost = 0;
    std::vector<std::weak_ptr<void>> protocols;
    std::vector<int> fds;
    {
        pyco::event_loop loop;
        auto factory = [&]() -> std::shared_ptr<pyco::protocol> {
            auto p = std::make_shared<watched_protocol>();
            protocols.push_back(p);
            return p;
        };
        auto body = [&]() -> pyco::coroutine<void> {
            pyco::server srv = co_await loop.create_server(factory, "127.0.0.1", 0);
            for (int fd : srv.fds()) fds.push_back(fd);
            auto [t, p] = co_await loop.create_connection(factory, "127.0.0.1", srv.sockets().at(0).port());
            fds.push_back(std::any_cast<int>(t->get_extra_info("socket")));
            t->write(std::string_view("unsent"));
            for (int i = 0; i < 1000 && watched_protocol::made < 2; ++i) co_await pyco::sleep(std::chrono::milliseconds(1));
            EXPECT_EQ(watched_protocol::made, 2);  // the server side too
            auto dfactory = [&]() -> std::shared_ptr<pyco::datagram_protocol> {
                auto dgp = std::make_shared<watched_datagram>();
                protocols.push_back(dgp);
                return dgp;
            };
            pyco::datagram_options o;
            o.local_addr = {{"127.0.0.1", 0}};
            auto [dt, dp] = co_await loop.create_datagram_endpoint(dfactory, o);
            fds.push_back(std::any_cast<int>(dt->get_extra_info("socket")));
            // Every handle goes here: only the objects' own references remain.
        };
        loop.run_until_complete(body());
        ASSERT_EQ(protocols.size(), 3u);
        for (auto& w : protocols) EXPECT_FALSE(w.expired());  // open: alive
        for (int fd : fds) EXPECT_TRUE(fd_is_open(fd)) << fd;
        loop.close();
        for (auto& w : protocols) EXPECT_TRUE(w.expired());
        for (int fd : fds) EXPECT_FALSE(fd_is_open(fd)) << fd;
    }
    EXPECT_EQ(fds.size(), 3u);
    EXPECT_EQ(watched_protocol::lost, 0);
    EXPECT_EQ(watched_datagram::lost, 0);
}

}  // namespace
