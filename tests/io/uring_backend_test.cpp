// What only the io_uring backend has: the provided-buffer ring running out
// (a multishot receive ended by ENOBUFS is re-armed, and no byte is lost),
// its growth, the kernel's cancellation rule (bytes a cancelled receive got
// are delivered), which tried sends it batches, wake-ups from another
// thread, and choosing the backend.
// Skipped, saying why, where io_uring is unavailable.
#include <pyco/detail/io_backend.hpp>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

namespace {

using pyco::detail::io_op;
using pyco::detail::io_opcode;
using pyco::detail::io_result;
using pyco::detail::io_status;
using namespace std::chrono_literals;

#define SKIP_WITHOUT_URING()                                                      \
    do {                                                                          \
        if (!pyco::detail::io_uring_unavailable_reason().empty()) {               \
            GTEST_SKIP() << pyco::detail::io_uring_unavailable_reason();          \
        }                                                                         \
    } while (0)

struct recorder {
    std::vector<io_result> results;
    std::string bytes;
    static void on(io_op& op, const io_result& r) {
        auto* self = static_cast<recorder*>(op.user);
        self->results.push_back(r);
        if (r.data && r.res > 0) self->bytes.append(reinterpret_cast<const char*>(r.data), static_cast<std::size_t>(r.res));
    }
    bool finished() const { return !results.empty() && !results.back().more; }
};

struct sock_pair {
    int a = -1, b = -1;
    sock_pair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        a = fds[0];
        b = fds[1];
    }
    ~sock_pair() {
        ::close(a);
        ::close(b);
    }
};

// A backend of its own (so its buffer ring can be tiny), driven by hand as
// the loop drives it: wait, then run what the wait queued.
struct bare_backend {
    pyco::detail::ready_ring ready;
    std::unique_ptr<pyco::detail::io_backend> b;
    explicit bare_backend(const pyco::detail::uring_config& c) : b(pyco::detail::make_io_uring_backend(ready, c)) {}
    ~bare_backend() {
        while (!ready.empty()) {
            auto e = ready.pop();
            e.fn(e.a, e.b, false);
        }
        b.reset();
    }
    void turn(std::chrono::nanoseconds timeout = 1ms) {
        b->wait(timeout);
        for (std::size_t n = ready.size(); n > 0; --n) {
            auto e = ready.pop();
            e.fn(e.a, e.b, true);
        }
    }
    template <class P>
    void until(P pred, int n = 500) {
        for (int i = 0; i < n && !pred(); ++i) turn();
    }
};

io_op stream_op(int fd, recorder& rec) {
    io_op op;
    op.on_complete = &recorder::on;
    op.user = &rec;
    op.fd = fd;
    op.code = io_opcode::recv_stream;
    op.flags = pyco::detail::io_flag_stream;
    return op;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
}

// Tried sends (the transport's first attempt at a write): a small one is
// left for the next enter (-EAGAIN, no syscall, so sends batch); one of
// direct_send_min bytes or more is sent at once, as on epoll, so that a
// large write does not wait in the transport's buffer over its high-water
// mark.
TEST(UringBackend, SmallTriedSendsWaitForTheEnterLargeOnesGoAtOnce) {
    SKIP_WITHOUT_URING();
    bare_backend bb(pyco::detail::uring_config{});
    sock_pair sp;
    auto try_send = [&](const std::string& data) {
        io_op t;
        t.fd = sp.a;
        t.code = io_opcode::send;
        t.flags = pyco::detail::io_flag_try;
        iovec v{const_cast<char*>(data.data()), data.size()};
        t.iov = &v;
        t.iovcnt = 1;
        EXPECT_EQ(bb.b->submit(t), io_status::done);
        return t.result;
    };
    char buf[256];
    EXPECT_EQ(try_send(pattern(100)), -EAGAIN);
    EXPECT_EQ(::recv(sp.b, buf, sizeof buf, MSG_DONTWAIT), -1);  // nothing was sent
    const std::string large = pattern(pyco::detail::uring_config{}.direct_send_min);
    const long sent = try_send(large);
    EXPECT_GT(sent, 0);
    EXPECT_EQ(::recv(sp.b, buf, sizeof buf, MSG_DONTWAIT), 256);
    EXPECT_EQ(std::string(buf, 256), large.substr(0, 256));
}

// Two 64-byte buffers for 5000 bytes: the multishot receive ends with
// ENOBUFS again and again; each time it is re-armed once the callbacks gave
// the buffers back, and every byte arrives, in order.
TEST(UringBackend, ReceiveIsReArmedWhenTheBufferRingRunsOut) {
    SKIP_WITHOUT_URING();
    pyco::detail::uring_config c;
    c.buffers = 2;
    c.max_buffers = 2;
    c.buffer_size = 64;
    bare_backend be(c);
    sock_pair p;
    recorder rec;
    io_op op = stream_op(p.a, rec);
    ASSERT_EQ(be.b->submit(op), io_status::pending);
    const std::string text = pattern(5000);
    ASSERT_EQ(::write(p.b, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    be.until([&] { return rec.bytes.size() >= text.size(); });
    EXPECT_EQ(rec.bytes, text);
    for (const io_result& r : rec.results) {
        EXPECT_TRUE(r.more);
        EXPECT_LE(r.res, 64);
    }
    ::shutdown(p.b, SHUT_WR);
    be.until([&] { return rec.finished(); });
    ASSERT_TRUE(rec.finished());
    EXPECT_EQ(rec.results.back().res, 0);  // EOF ends it
    EXPECT_EQ(be.b->pending(), 0u);
}

TEST(UringBackend, TheBufferRingGrowsWhenItRunsOut) {
    SKIP_WITHOUT_URING();
    pyco::detail::uring_config c;
    c.buffers = 2;
    c.max_buffers = 64;
    c.buffer_size = 64;
    bare_backend be(c);
    std::vector<std::unique_ptr<sock_pair>> pairs;
    std::vector<recorder> recs(8);
    std::vector<io_op> ops;
    ops.reserve(8);
    for (int i = 0; i < 8; ++i) {
        pairs.push_back(std::make_unique<sock_pair>());
        ops.push_back(stream_op(pairs.back()->a, recs[static_cast<std::size_t>(i)]));
        ASSERT_EQ(be.b->submit(ops.back()), io_status::pending);
    }
    const std::string text = pattern(1000);
    for (auto& p : pairs) ASSERT_EQ(::write(p->b, text.data(), text.size()), 1000);
    be.until([&] {
        for (const recorder& r : recs) {
            if (r.bytes.size() < text.size()) return false;
        }
        return true;
    });
    for (const recorder& r : recs) EXPECT_EQ(r.bytes, text);
    for (io_op& op : ops) be.b->cancel(op);
    be.until([&] {
        for (const recorder& r : recs) {
            if (!r.finished()) return false;
        }
        return true;
    });
    for (const recorder& r : recs) EXPECT_EQ(r.results.back().res, -ECANCELED);
}

// The kernel's rule: a receive that got bytes before its cancel landed
// delivers them, then finishes. Whatever it did not take stays in the
// socket: together, every byte.
TEST(UringBackend, ACancelledReceiveKeepsItsBytes) {
    SKIP_WITHOUT_URING();
    bare_backend be(pyco::detail::uring_config{});
    sock_pair p;
    recorder rec;
    io_op op = stream_op(p.a, rec);
    ASSERT_EQ(be.b->submit(op), io_status::pending);
    be.turn(0ns);  // armed
    ASSERT_EQ(::write(p.b, "first", 5), 5);
    be.b->wait(10ms);  // its completion is queued, not yet delivered
    ASSERT_EQ(::write(p.b, "second", 6), 6);
    be.b->cancel(op);
    be.until([&] { return rec.finished(); });
    ASSERT_TRUE(rec.finished());
    EXPECT_EQ(rec.results.back().res, -ECANCELED);
    std::string all = rec.bytes;
    char rest[64];
    ssize_t n = ::recv(p.a, rest, sizeof rest, 0);
    if (n > 0) all.append(rest, static_cast<std::size_t>(n));
    EXPECT_EQ(all, "firstsecond");
    EXPECT_EQ(rec.bytes.substr(0, 5), "first");
}

// A one-shot receive whose bytes came before the cancel: its result is the
// bytes, not -ECANCELED.
TEST(UringBackend, AOneShotReceiveThatGotBytesIsNotCancelled) {
    SKIP_WITHOUT_URING();
    bare_backend be(pyco::detail::uring_config{});
    sock_pair p;
    recorder rec;
    std::byte buf[16];
    io_op op = stream_op(p.a, rec);
    op.code = io_opcode::recv;
    op.buf = buf;
    op.len = sizeof buf;
    ASSERT_EQ(be.b->submit(op), io_status::pending);
    be.turn(0ns);
    ASSERT_EQ(::write(p.b, "abc", 3), 3);
    be.b->wait(10ms);
    be.b->cancel(op);
    be.until([&] { return rec.finished(); });
    ASSERT_EQ(rec.results.size(), 1u);
    EXPECT_EQ(rec.results[0].res, 3);
    EXPECT_EQ(std::memcmp(buf, "abc", 3), 0);
}

// Paused (cancelled) after the kernel had read data and the peer's EOF: the
// data comes (the issuer holds it while paused), the EOF does not overtake
// it — the op ends with -ECANCELED, and the next receive reads the EOF again.
TEST(UringBackend, AnEofReadBeforeAPauseIsReadAgainAfterIt) {
    SKIP_WITHOUT_URING();
    bare_backend be(pyco::detail::uring_config{});
    sock_pair p;
    recorder rec;
    io_op op = stream_op(p.a, rec);
    ASSERT_EQ(be.b->submit(op), io_status::pending);
    be.turn(0ns);
    ASSERT_EQ(::write(p.b, "tail", 4), 4);
    ::shutdown(p.b, SHUT_WR);
    be.b->wait(10ms);  // data and EOF reaped, not yet delivered
    be.b->cancel(op);
    be.until([&] { return rec.finished(); });
    EXPECT_EQ(rec.bytes, "tail");
    EXPECT_EQ(rec.results.back().res, -ECANCELED);
    rec.results.clear();
    ASSERT_EQ(be.b->submit(op), io_status::pending);
    be.until([&] { return rec.finished(); });
    ASSERT_TRUE(rec.finished());
    EXPECT_EQ(rec.results.back().res, 0);
}

TEST(UringBackend, WakeupFromAnotherThreadEndsAWaitWithoutTimeout) {
    SKIP_WITHOUT_URING();
    pyco::loop_options o;
    o.backend = pyco::io_backend_kind::io_uring;
    pyco::event_loop loop(o);
    std::atomic<bool> ran{false};
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        loop.call_soon_threadsafe([&] {
            ran = true;
            loop.stop();
        });
    });
    loop.run_forever();  // nothing pending: waits in io_uring_enter until woken
    t.join();
    EXPECT_TRUE(ran);
    // Many wake-ups while it runs are all absorbed.
    std::atomic<int> n{0};
    std::thread u([&] {
        for (int i = 0; i < 100; ++i) loop.call_soon_threadsafe([&] { ++n; });
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    loop.run_forever();
    u.join();
    while (n < 100) {
        loop.stop();
        loop.run_forever();
    }
    EXPECT_EQ(n, 100);
}

// SINGLE_ISSUER binds the ring to the thread that first entered it: a loop
// made on one thread and run on another works; run later from a third, it
// refuses with an error that says why (epoll has no such rule).
TEST(UringBackend, TheLoopBelongsToTheThreadThatFirstRanIt) {
    SKIP_WITHOUT_URING();
    pyco::loop_options o;
    o.backend = pyco::io_backend_kind::io_uring;
    pyco::event_loop loop(o);
    sock_pair p;
    std::thread t([&] {
        loop.add_reader(p.a, [] {});  // an SQE: this iteration enters the ring
        loop.stop();
        loop.run_forever();
    });
    t.join();
    loop.remove_reader(p.a);  // a cancel SQE: the next iteration enters too
    std::string error;
    try {
        loop.stop();
        loop.run_forever();
    } catch (const pyco::runtime_error& e) {
        error = e.what();
    }
    // Kernels without SINGLE_ISSUER have no owner thread: then it just runs.
    if (!error.empty()) {
        EXPECT_NE(error.find("SINGLE_ISSUER"), std::string::npos) << error;
    }
}

TEST(UringBackend, AnOptionOrTheEnvironmentChoosesIt) {
    SKIP_WITHOUT_URING();
    const char* old = std::getenv("PYCO_BACKEND");
    const std::string saved = old ? old : "";
    ::setenv("PYCO_BACKEND", "io_uring", 1);
    {
        pyco::event_loop loop;
        EXPECT_STREQ(loop.backend_name(), "io_uring");
        pyco::loop_options o;
        o.backend = pyco::io_backend_kind::epoll;  // the option wins
        pyco::event_loop other(o);
        EXPECT_STREQ(other.backend_name(), "epoll");
    }
    ::setenv("PYCO_BACKEND", "epoll", 1);
    {
        pyco::event_loop loop;
        EXPECT_STREQ(loop.backend_name(), "epoll");
    }
    ::setenv("PYCO_BACKEND", "kqueue", 1);
    EXPECT_THROW(pyco::event_loop{}, pyco::value_error);
    if (old) {
        ::setenv("PYCO_BACKEND", saved.c_str(), 1);
    } else {
        ::unsetenv("PYCO_BACKEND");
    }
}

// Without io_uring, asking for it says why; automatic quietly uses epoll.
TEST(UringBackend, AskingForItWhereUnavailableSaysWhy) {
    const std::string& why = pyco::detail::io_uring_unavailable_reason();
    if (why.empty()) GTEST_SKIP() << "io_uring is available here";
    pyco::loop_options o;
    o.backend = pyco::io_backend_kind::io_uring;
    try {
        pyco::event_loop loop(o);
        ADD_FAILURE() << "no error";
    } catch (const pyco::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("io_uring is unavailable"), std::string::npos) << e.what();
    }
}

}  // namespace
