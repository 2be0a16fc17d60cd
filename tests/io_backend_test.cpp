// The I/O seam's protocol, checked against each backend (the tests are
// parameterised: epoll and io_uring; io_uring is skipped, saying why, where
// the kernel or the build lacks it): inline completion, parking,
// cancellation (always a final completion, never inline), multishot receive
// and accept, connect, datagrams, pipes, level-triggered readers.
#include <pyco/detail/io_backend.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

namespace {

using pyco::io_backend_kind;

using pyco::detail::io_op;
using pyco::detail::io_opcode;
using pyco::detail::io_result;
using pyco::detail::io_status;

struct recorder {
    std::vector<io_result> results;
    std::string bytes;
    static void on(io_op& op, const io_result& r) {
        auto* self = static_cast<recorder*>(op.user);
        self->results.push_back(r);
        if (r.data && r.res > 0) self->bytes.append(reinterpret_cast<const char*>(r.data), static_cast<std::size_t>(r.res));
    }
};

struct sock_pair {
    int a = -1, b = -1;
    explicit sock_pair(int type = SOCK_STREAM) {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        a = fds[0];
        b = fds[1];
    }
    ~sock_pair() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
    }
};

// Runs loop iterations until pred() or n iterations passed.
template <class P>
void spin(pyco::event_loop& loop, P pred, int n = 200) {
    for (int i = 0; i < n && !pred(); ++i) {
        loop.stop();  // before run_forever: exactly one iteration
        loop.run_forever();
        if (!pred()) ::usleep(1000);
    }
}

class IoBackend : public testing::TestWithParam<io_backend_kind> {
protected:
    void SetUp() override {
        if (GetParam() == io_backend_kind::io_uring && !pyco::detail::io_uring_unavailable_reason().empty()) {
            GTEST_SKIP() << pyco::detail::io_uring_unavailable_reason();
        }
    }
    pyco::loop_options opts() const {
        pyco::loop_options o;
        o.backend = GetParam();
        return o;
    }
    bool uring() const { return GetParam() == io_backend_kind::io_uring; }
};

INSTANTIATE_TEST_SUITE_P(Backends, IoBackend, testing::Values(io_backend_kind::epoll, io_backend_kind::io_uring),
                         [](const testing::TestParamInfo<io_backend_kind>& i) {
                             return std::string(i.param == io_backend_kind::epoll ? "epoll" : "io_uring");
                         });

// Submits op and gives its result, whether it completed inline or later.
long complete(pyco::event_loop& loop, io_op& op, recorder& rec) {
    const std::size_t before = rec.results.size();
    if (loop.backend().submit(op) == io_status::done) return op.result;
    spin(loop, [&] { return rec.results.size() > before; });
    if (rec.results.size() == before) return -ETIMEDOUT;
    return rec.results.back().res;
}

io_op make_op(io_opcode code, int fd, recorder& rec) {
    io_op op;
    op.on_complete = &recorder::on;
    op.user = &rec;
    op.fd = fd;
    op.code = code;
    return op;
}

// epoll tries the syscall first; io_uring submits (and the kernel finds the
// bytes in the same io_uring_enter).
TEST_P(IoBackend, RecvGetsBytesThatWait) {
    pyco::event_loop loop(opts());
    sock_pair p;
    ASSERT_EQ(::write(p.b, "hi", 2), 2);
    recorder rec;
    std::byte buf[16];
    io_op op = make_op(io_opcode::recv, p.a, rec);
    op.buf = buf;
    op.len = sizeof buf;
    if (!uring()) {
        ASSERT_EQ(loop.backend().submit(op), io_status::done);
        EXPECT_EQ(op.result, 2);
        EXPECT_TRUE(rec.results.empty());  // no callback for an inline completion
    } else {
        EXPECT_EQ(complete(loop, op, rec), 2);
    }
    EXPECT_EQ(std::memcmp(buf, "hi", 2), 0);
}

TEST_P(IoBackend, TriedOpsAreDoneAtOnce) {
    pyco::event_loop loop(opts());
    sock_pair p;
    recorder rec;
    char text[] = "now";
    iovec iov{text, 3};
    io_op w = make_op(io_opcode::send, p.a, rec);
    w.flags = pyco::detail::io_flag_try;
    w.iov = &iov;
    w.iovcnt = 1;
    ASSERT_EQ(loop.backend().submit(w), io_status::done);
    // io_uring may decline (-EAGAIN, no syscall): the issuer then submits.
    EXPECT_TRUE(w.result == 3 || (uring() && w.result == -EAGAIN)) << w.result;
    if (w.result == -EAGAIN) {
        ASSERT_EQ(::write(p.a, text, 3), 3);
    }
    std::byte buf[8];
    io_op r = make_op(io_opcode::recv, p.b, rec);
    r.flags = pyco::detail::io_flag_try;
    r.buf = buf;
    r.len = sizeof buf;
    ASSERT_EQ(loop.backend().submit(r), io_status::done);
    EXPECT_EQ(r.result, 3);
    ASSERT_EQ(loop.backend().submit(r), io_status::done);
    EXPECT_EQ(r.result, -EAGAIN);
    EXPECT_TRUE(rec.results.empty());
    EXPECT_EQ(loop.backend().pending(), 0u);
}

TEST_P(IoBackend, RecvParksThenCompletesFromTheReadyPhase) {
    pyco::event_loop loop(opts());
    sock_pair p;
    recorder rec;
    std::byte buf[16];
    io_op op = make_op(io_opcode::recv, p.a, rec);
    op.buf = buf;
    op.len = sizeof buf;
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    EXPECT_EQ(loop.backend().pending(), 1u);
    ASSERT_EQ(::write(p.b, "abc", 3), 3);
    spin(loop, [&] { return !rec.results.empty(); });
    ASSERT_EQ(rec.results.size(), 1u);
    EXPECT_EQ(rec.results[0].res, 3);
    EXPECT_FALSE(rec.results[0].more);
    EXPECT_EQ(loop.backend().pending(), 0u);
}

TEST_P(IoBackend, CancelNeverCompletesInlineAndFinishesWithEcanceled) {
    pyco::event_loop loop(opts());
    sock_pair p;
    recorder rec;
    std::byte buf[16];
    io_op op = make_op(io_opcode::recv, p.a, rec);
    op.buf = buf;
    op.len = sizeof buf;
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    loop.backend().cancel(op);
    EXPECT_TRUE(rec.results.empty());
    loop.backend().cancel(op);  // twice is harmless
    spin(loop, [&] { return !rec.results.empty(); });
    ASSERT_EQ(rec.results.size(), 1u);
    EXPECT_EQ(rec.results[0].res, -ECANCELED);
    // The bytes sent later are still there for the next reader.
    ASSERT_EQ(::write(p.b, "x", 1), 1);
    io_op again = make_op(io_opcode::recv, p.a, rec);
    again.buf = buf;
    again.len = sizeof buf;
    io_status st = loop.backend().submit(again);
    if (st == io_status::pending) {
        spin(loop, [&] { return rec.results.size() == 2; });
        EXPECT_EQ(rec.results.back().res, 1);
    } else {
        EXPECT_EQ(again.result, 1);
    }
}

std::span<std::byte> big_room(io_op& op) {
    static std::byte room[4];
    (void)op;
    return {room, sizeof room};
}

TEST_P(IoBackend, RecvStreamDeliversEveryChunkThenEof) {
    pyco::event_loop loop(opts());
    sock_pair p;
    recorder rec;
    io_op op = make_op(io_opcode::recv_stream, p.a, rec);
    op.flags = pyco::detail::io_flag_stream;
    op.get_buffer = &big_room;  // 4 bytes at a time: many completions
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    ASSERT_EQ(::write(p.b, "hello, world", 12), 12);
    spin(loop, [&] { return rec.bytes.size() == 12; });
    EXPECT_EQ(rec.bytes, "hello, world");
    for (const io_result& r : rec.results) EXPECT_TRUE(r.more);
    ::shutdown(p.b, SHUT_WR);
    spin(loop, [&] { return !rec.results.empty() && !rec.results.back().more; });
    EXPECT_EQ(rec.results.back().res, 0);  // EOF ends it
    EXPECT_FALSE(rec.results.back().more);
}

// The peer's FIN was already reported when a short read drained the queue:
// no further edge will come, yet the EOF must still be delivered.
TEST_P(IoBackend, EofAfterAShortReadIsStillDelivered) {
    pyco::event_loop loop(opts());
    sock_pair p;
    ASSERT_EQ(::write(p.b, "abcdef", 6), 6);
    ::shutdown(p.b, SHUT_WR);
    recorder rec;
    io_op op = make_op(io_opcode::recv_stream, p.a, rec);
    op.flags = pyco::detail::io_flag_stream;
    op.get_buffer = &big_room;  // 4, then a short 2
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    spin(loop, [&] { return !rec.results.empty() && !rec.results.back().more; });
    EXPECT_EQ(rec.bytes, "abcdef");
    ASSERT_FALSE(rec.results.empty());
    EXPECT_EQ(rec.results.back().res, 0);
}

TEST_P(IoBackend, CancelledRecvStreamLosesNoByte) {
    pyco::event_loop loop(opts());
    sock_pair p;
    recorder rec;
    io_op op = make_op(io_opcode::recv_stream, p.a, rec);
    op.flags = pyco::detail::io_flag_stream;
    op.get_buffer = &big_room;
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    ASSERT_EQ(::write(p.b, "abcdefgh", 8), 8);
    spin(loop, [&] { return !rec.bytes.empty(); }, 1);
    loop.backend().cancel(op);
    spin(loop, [&] { return !rec.results.empty() && !rec.results.back().more; });
    ASSERT_EQ(rec.results.back().res, -ECANCELED);
    // Whatever was not delivered is still in the socket: resubmitting gets it.
    ASSERT_EQ(::write(p.b, "ij", 2), 2);
    rec.results.clear();
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    spin(loop, [&] { return rec.bytes.size() == 10; });
    EXPECT_EQ(rec.bytes, "abcdefghij");
    loop.backend().cancel(op);
    spin(loop, [&] { return !rec.results.empty() && !rec.results.back().more; });
}

TEST_P(IoBackend, SendTriesInlineAndParksWhenFull) {
    pyco::event_loop loop(opts());
    sock_pair p;
    recorder rec;
    std::vector<char> chunk(1 << 20, 'x');
    iovec iov{chunk.data(), chunk.size()};
    io_op op = make_op(io_opcode::send, p.a, rec);
    op.iov = &iov;
    op.iovcnt = 1;
    const long first = complete(loop, op, rec);
    ASSERT_GT(first, 0);
    ASSERT_LT(first, static_cast<long>(chunk.size()));  // the socket buffer is smaller
    rec.results.clear();
    // Now it is full: the next send parks until the peer reads.
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    std::vector<char> sink(1 << 20);
    long drained = 0;
    spin(loop, [&] {
        ssize_t n = ::read(p.b, sink.data(), sink.size());
        if (n > 0) drained += n;
        return !rec.results.empty();
    });
    ASSERT_EQ(rec.results.size(), 1u);
    EXPECT_GT(rec.results[0].res, 0);
}

TEST_P(IoBackend, AcceptIsMultishotAndConnectCompletes) {
    pyco::event_loop loop(opts());
    int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(ls, 16), 0);
    socklen_t len = sizeof sa;
    ASSERT_EQ(::getsockname(ls, reinterpret_cast<sockaddr*>(&sa), &len), 0);

    recorder accepted;
    io_op acc = make_op(io_opcode::accept, ls, accepted);
    ASSERT_EQ(loop.backend().submit(acc), io_status::pending);

    recorder connected;
    std::vector<int> clients;
    std::vector<io_op> conns(3);
    for (int i = 0; i < 3; ++i) {
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        clients.push_back(c);
        conns[i] = make_op(io_opcode::connect, c, connected);
        conns[i].addr = reinterpret_cast<sockaddr*>(&sa);
        conns[i].addrlen = sizeof sa;
        if (loop.backend().submit(conns[i]) == io_status::done) {
            io_result r;
            r.res = conns[i].result;
            connected.results.push_back(r);
        }
    }
    spin(loop, [&] { return accepted.results.size() == 3 && connected.results.size() == 3; });
    ASSERT_EQ(accepted.results.size(), 3u);
    for (const io_result& r : accepted.results) {
        EXPECT_GE(r.res, 0);
        EXPECT_TRUE(r.more);
        ::close(static_cast<int>(r.res));
    }
    for (const io_result& r : connected.results) EXPECT_EQ(r.res, 0);
    loop.backend().cancel(acc);
    spin(loop, [&] { return !accepted.results.back().more; });
    EXPECT_EQ(accepted.results.back().res, -ECANCELED);
    for (int c : clients) loop.backend().close_fd(c);
    loop.backend().close_fd(ls);
}

TEST_P(IoBackend, ConnectRefusedIsAnErrno) {
    pyco::event_loop loop(opts());
    // A port nobody listens on: bind one, and close it.
    int tmp = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(tmp, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    socklen_t len = sizeof sa;
    ::getsockname(tmp, reinterpret_cast<sockaddr*>(&sa), &len);
    ::close(tmp);
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    recorder rec;
    io_op op = make_op(io_opcode::connect, c, rec);
    op.addr = reinterpret_cast<sockaddr*>(&sa);
    op.addrlen = sizeof sa;
    long res;
    if (loop.backend().submit(op) == io_status::done) {
        res = op.result;
    } else {
        spin(loop, [&] { return !rec.results.empty(); });
        ASSERT_EQ(rec.results.size(), 1u);
        res = rec.results[0].res;
    }
    EXPECT_EQ(res, -ECONNREFUSED);
    loop.backend().close_fd(c);
}

TEST_P(IoBackend, DatagramsKeepTheirBoundariesAndSender) {
    pyco::event_loop loop(opts());
    sock_pair p(SOCK_DGRAM);
    recorder rec;
    const char* msgs[] = {"one", "three"};
    for (const char* m : msgs) {
        iovec iov{const_cast<char*>(m), std::strlen(m)};
        io_op s = make_op(io_opcode::sendto, p.b, rec);
        s.iov = &iov;
        s.iovcnt = 1;
        ASSERT_EQ(complete(loop, s, rec), static_cast<long>(std::strlen(m)));
    }
    for (const char* m : msgs) {
        std::byte buf[64];
        sockaddr_storage from{};
        io_op r = make_op(io_opcode::recvfrom, p.a, rec);
        r.buf = buf;
        r.len = sizeof buf;
        r.addr = reinterpret_cast<sockaddr*>(&from);
        r.addrlen = sizeof from;
        const long n = complete(loop, r, rec);
        ASSERT_EQ(n, static_cast<long>(std::strlen(m)));
        EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n)), m);
        EXPECT_LE(r.addrlen, sizeof from);
    }
}

TEST_P(IoBackend, PipeReadAndWriteUseTheFdAsAFile) {
    pyco::event_loop loop(opts());
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    recorder rec;
    std::byte buf[8];
    io_op r = make_op(io_opcode::recv, fds[0], rec);
    r.flags = pyco::detail::io_flag_pipe | pyco::detail::io_flag_stream;
    r.buf = buf;
    r.len = sizeof buf;
    ASSERT_EQ(loop.backend().submit(r), io_status::pending);
    char text[] = "pipe";
    iovec iov{text, 4};
    io_op w = make_op(io_opcode::send, fds[1], rec);
    w.flags = pyco::detail::io_flag_pipe;
    w.iov = &iov;
    w.iovcnt = 1;
    recorder wrec;
    w.user = &wrec;
    EXPECT_EQ(complete(loop, w, wrec), 4);
    spin(loop, [&] { return !rec.results.empty(); });
    ASSERT_EQ(rec.results.size(), 1u);
    EXPECT_EQ(rec.results[0].res, 4);
    loop.backend().close_fd(fds[0]);
    loop.backend().close_fd(fds[1]);
}

TEST_P(IoBackend, ABadFdIsRefusedWithoutGrowingTheTable) {
    pyco::event_loop loop(opts());
    recorder rec;
    std::byte buf[4];
    io_op op = make_op(io_opcode::recv, 987654, rec);
    op.buf = buf;
    op.len = sizeof buf;
    EXPECT_EQ(complete(loop, op, rec), -EBADF);
    EXPECT_THROW(loop.add_reader(987654, [] {}), std::system_error);
}

// epoll keeps one fd in one mode (edge for operations, level for readers);
// io_uring has no modes, and asyncio refuses add_reader on a transport's fd
// above the seam.
TEST_P(IoBackend, ReaderAndTransportModesDoNotMix) {
    if (uring()) GTEST_SKIP() << "epoll's restriction only";
    pyco::event_loop loop(opts());
    sock_pair p;
    recorder rec;
    std::byte buf[4];
    io_op op = make_op(io_opcode::recv, p.a, rec);
    op.buf = buf;
    op.len = sizeof buf;
    ASSERT_EQ(loop.backend().submit(op), io_status::pending);
    EXPECT_THROW(loop.add_reader(p.a, [] {}), std::system_error);
    loop.backend().cancel(op);
    spin(loop, [&] { return !rec.results.empty(); });
}

TEST_P(IoBackend, RemoveReaderThenAddAgainBeforeTheCancelLands) {
    pyco::event_loop loop(opts());
    sock_pair p;
    int calls = 0;
    loop.add_reader(p.a, [&] { ++calls; });
    EXPECT_TRUE(loop.remove_reader(p.a));
    loop.add_reader(p.a, [&] { calls += 100; });
    ASSERT_EQ(::write(p.b, "z", 1), 1);
    spin(loop, [&] { return calls >= 100; });
    EXPECT_GE(calls, 100);
    EXPECT_EQ(calls % 100, 0);  // the removed callback never ran
    EXPECT_TRUE(loop.remove_reader(p.a));
    EXPECT_FALSE(loop.remove_reader(p.a));
}

// The seam's readers are level-triggered: a callback that leaves the byte
// unread runs again on the next iterations.
TEST_P(IoBackend, ReadersAreLevelTriggered) {
    pyco::event_loop loop(opts());
    sock_pair p;
    int calls = 0;
    loop.add_reader(p.a, [&] { ++calls; });
    ASSERT_EQ(::write(p.b, "z", 1), 1);
    spin(loop, [&] { return calls >= 3; });
    EXPECT_GE(calls, 3);
    char c;
    ASSERT_EQ(::read(p.a, &c, 1), 1);
    spin(loop, [] { return false; }, 3);  // the last wake-ups land
    const int seen = calls;
    spin(loop, [] { return false; }, 5);
    EXPECT_EQ(calls, seen);  // drained: no more calls
    EXPECT_TRUE(loop.remove_reader(p.a));
    spin(loop, [&] { return loop.backend().pending() == 0; });
    EXPECT_EQ(loop.backend().pending(), 0u);
}

TEST_P(IoBackend, WritersRunWhileWritable) {
    pyco::event_loop loop(opts());
    sock_pair p;
    int calls = 0;
    loop.add_writer(p.a, [&] {
        if (++calls == 2) loop.remove_writer(p.a);
    });
    spin(loop, [&] { return calls >= 2 && loop.backend().pending() == 0; });
    EXPECT_EQ(calls, 2);
}

TEST_P(IoBackend, AnIdleLoopHasNothingPending) {
    pyco::event_loop loop(opts());
    EXPECT_STREQ(loop.backend_name(), uring() ? "io_uring" : "epoll");
    // The backend's own wake-up watch is not counted: an idle loop sleeps.
    EXPECT_EQ(loop.backend().pending(), 0u);
    spin(loop, [] { return false; }, 2);
    EXPECT_EQ(loop.backend().pending(), 0u);
}

TEST_P(IoBackend, FileOpsOnlyWhereSupported) {
    pyco::event_loop loop(opts());
    char path[] = "/tmp/uring_io_backend_XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    recorder rec;
    char text[] = "hello, file";
    iovec iov{text, 11};
    io_op w = make_op(io_opcode::write_at, fd, rec);
    w.iov = &iov;
    w.iovcnt = 1;
    w.offset = 3;
    if (!loop.backend().supports(io_opcode::write_at)) {
        EXPECT_FALSE(uring());
        ASSERT_EQ(loop.backend().submit(w), io_status::done);
        EXPECT_EQ(w.result, -EOPNOTSUPP);
        ::close(fd);
        return;
    }
    EXPECT_EQ(complete(loop, w, rec), 11);
    io_op f = make_op(io_opcode::fsync, fd, rec);
    EXPECT_EQ(complete(loop, f, rec), 0);
    std::byte buf[32];
    io_op r = make_op(io_opcode::read_at, fd, rec);
    r.buf = buf;
    r.len = sizeof buf;
    r.offset = 5;
    ASSERT_EQ(complete(loop, r, rec), 9);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 9), "llo, file");
    r.offset = 100;
    EXPECT_EQ(complete(loop, r, rec), 0);  // past the end
    loop.backend().close_fd(fd);
}

}  // namespace
