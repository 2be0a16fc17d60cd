// The stream transport over a real socket pair: asyncio's protocol callback
// order, flow control at the water marks, pause/resume without losing a
// byte, half-close, close/abort, and errors from the peer.
#include <pyco/net/transport.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>

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

}  // namespace
