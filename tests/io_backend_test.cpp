// The I/O seam's protocol, checked against the backend the loop uses:
// inline completion, parking, cancellation (always a final completion, never
// inline), multishot receive and accept, connect, datagrams, pipes.
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

#include <pyco/event_loop.hpp>

namespace {

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

io_op make_op(io_opcode code, int fd, recorder& rec) {
    io_op op;
    op.on_complete = &recorder::on;
    op.user = &rec;
    op.fd = fd;
    op.code = code;
    return op;
}

TEST(IoBackend, RecvCompletesInlineWhenBytesWait) {
    pyco::event_loop loop;
    sock_pair p;
    ASSERT_EQ(::write(p.b, "hi", 2), 2);
    recorder rec;
    std::byte buf[16];
    io_op op = make_op(io_opcode::recv, p.a, rec);
    op.buf = buf;
    op.len = sizeof buf;
    ASSERT_EQ(loop.backend().submit(op), io_status::done);
    EXPECT_EQ(op.result, 2);
    EXPECT_EQ(std::memcmp(buf, "hi", 2), 0);
    EXPECT_TRUE(rec.results.empty());  // no callback for an inline completion
}

TEST(IoBackend, RecvParksThenCompletesFromTheReadyPhase) {
    pyco::event_loop loop;
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

TEST(IoBackend, CancelNeverCompletesInlineAndFinishesWithEcanceled) {
    pyco::event_loop loop;
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

TEST(IoBackend, RecvStreamDeliversEveryChunkThenEof) {
    pyco::event_loop loop;
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
TEST(IoBackend, EofAfterAShortReadIsStillDelivered) {
    pyco::event_loop loop;
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

TEST(IoBackend, CancelledRecvStreamLosesNoByte) {
    pyco::event_loop loop;
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

TEST(IoBackend, SendTriesInlineAndParksWhenFull) {
    pyco::event_loop loop;
    sock_pair p;
    recorder rec;
    std::vector<char> chunk(1 << 20, 'x');
    iovec iov{chunk.data(), chunk.size()};
    io_op op = make_op(io_opcode::send, p.a, rec);
    op.iov = &iov;
    op.iovcnt = 1;
    ASSERT_EQ(loop.backend().submit(op), io_status::done);
    ASSERT_GT(op.result, 0);
    ASSERT_LT(op.result, static_cast<long>(chunk.size()));  // the socket buffer is smaller
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

TEST(IoBackend, AcceptIsMultishotAndConnectCompletes) {
    pyco::event_loop loop;
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

TEST(IoBackend, ConnectRefusedIsAnErrno) {
    pyco::event_loop loop;
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

TEST(IoBackend, DatagramsKeepTheirBoundariesAndSender) {
    pyco::event_loop loop;
    sock_pair p(SOCK_DGRAM);
    recorder rec;
    const char* msgs[] = {"one", "three"};
    for (const char* m : msgs) {
        iovec iov{const_cast<char*>(m), std::strlen(m)};
        io_op s = make_op(io_opcode::sendto, p.b, rec);
        s.iov = &iov;
        s.iovcnt = 1;
        ASSERT_EQ(loop.backend().submit(s), io_status::done);
    }
    for (const char* m : msgs) {
        std::byte buf[64];
        sockaddr_storage from{};
        io_op r = make_op(io_opcode::recvfrom, p.a, rec);
        r.buf = buf;
        r.len = sizeof buf;
        r.addr = reinterpret_cast<sockaddr*>(&from);
        r.addrlen = sizeof from;
        ASSERT_EQ(loop.backend().submit(r), io_status::done);
        EXPECT_EQ(r.result, static_cast<long>(std::strlen(m)));
        EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), static_cast<std::size_t>(r.result)), m);
    }
}

TEST(IoBackend, PipeReadAndWriteUseTheFdAsAFile) {
    pyco::event_loop loop;
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
    ASSERT_EQ(loop.backend().submit(w), io_status::done);
    EXPECT_EQ(w.result, 4);
    spin(loop, [&] { return !rec.results.empty(); });
    ASSERT_EQ(rec.results.size(), 1u);
    EXPECT_EQ(rec.results[0].res, 4);
    loop.backend().close_fd(fds[0]);
    loop.backend().close_fd(fds[1]);
}

TEST(IoBackend, ABadFdIsRefusedWithoutGrowingTheTable) {
    pyco::event_loop loop;
    recorder rec;
    std::byte buf[4];
    io_op op = make_op(io_opcode::recv, 987654, rec);
    op.buf = buf;
    op.len = sizeof buf;
    ASSERT_EQ(loop.backend().submit(op), io_status::done);
    EXPECT_EQ(op.result, -EBADF);
}

TEST(IoBackend, ReaderAndTransportModesDoNotMix) {
    pyco::event_loop loop;
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

TEST(IoBackend, RemoveReaderThenAddAgainBeforeTheCancelLands) {
    pyco::event_loop loop;
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

}  // namespace
