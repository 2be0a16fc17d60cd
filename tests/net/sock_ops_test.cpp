// The loop's low-level socket API: CPython's test_sock_lowlevel.py, ported
// (its HTTP and UDP echo servers are tasks on the same loop here), plus the
// cancellation, close and error cases pyco states in event_loop.hpp.
// Real sockets on 127.0.0.1, ::1 and Unix paths in a temporary directory.
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/detail/io_backend.hpp>
#include <pyco/pyco.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::sock_address;

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/pyco-sock-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::system(("rm -rf " + path).c_str()); }
};

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

int open_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

// A listener of the family under test, bound to loopback (or a path).
struct endpoint {
    int family;
    std::string unix_path;  // for AF_UNIX
    sock_address any() const {
        if (family == AF_INET) return sock_address::ipv4("127.0.0.1", 0);
        if (family == AF_INET6) return sock_address::ipv6("::1", 0);
        return sock_address::unix_path(unix_path);
    }
    pyco::socket listener(int backlog = 16) const {
        pyco::socket l(family, SOCK_STREAM);
        l.bind(any());
        l.listen(backlog);
        return l;
    }
};

// test_utils.run_test_server's part that matters: answer a request.
coroutine<void> http_once(pyco::socket& listener) {
    auto& loop = pyco::get_running_loop();
    auto [conn, peer] = co_await loop.sock_accept(listener);
    std::string req;
    while (req.find("\r\n\r\n") == std::string::npos) {
        std::string part = co_await loop.sock_recv(conn, 1024);
        if (part.empty()) co_return;
        req += part;
    }
    std::string body = "Test message";
    std::string resp = "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    co_await loop.sock_sendall(conn, resp);
}

// POST /loop: the body comes back as it arrives, after the headers.
coroutine<void> echo_post(pyco::socket& listener) {
    auto& loop = pyco::get_running_loop();
    auto [conn, peer] = co_await loop.sock_accept(listener);
    std::string buf;
    std::size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) buf += co_await loop.sock_recv(conn, 65536);
    const auto cl = buf.find("Content-Length: ");
    std::size_t left = std::stoul(buf.substr(cl + 16));
    std::string body = buf.substr(end + 4);
    co_await loop.sock_sendall(conn, std::string_view("HTTP/1.0 200 OK\r\n\r\n"));
    while (true) {
        if (!body.empty()) {
            left -= body.size();
            co_await loop.sock_sendall(conn, body);
        }
        if (left == 0) break;
        body = co_await loop.sock_recv(conn, 65536);
        if (body.empty()) break;
    }
}

class SockOps : public ::testing::TestWithParam<int> {
protected:
    endpoint ep() const { return {GetParam(), dir_.path + "/s"}; }
    temp_dir dir_;
};

// _basetest_sock_client_ops / _basetest_sock_recv_into.
coroutine<void> client_ops(endpoint ep, bool into) {
    auto& loop = pyco::get_running_loop();
    pyco::socket l = ep.listener();
    auto server = loop.create_task(http_once(l));
    pyco::socket sock(ep.family, SOCK_STREAM);
    co_await loop.sock_connect(sock, l.getsockname());
    co_await loop.sock_sendall(sock, std::string_view("GET / HTTP/1.0\r\n\r\n"));
    std::string data;
    if (into) {
        std::vector<std::byte> buf(1024);
        std::size_t n = co_await loop.sock_recv_into(sock, buf);
        std::size_t m = co_await loop.sock_recv_into(sock, std::span(buf).subspan(n));  // consume
        data.assign(reinterpret_cast<const char*>(buf.data()), n + m);
    } else {
        data = co_await loop.sock_recv(sock, 1024);
        co_await loop.sock_recv(sock, 1024);  // consume
    }
    sock.close();
    EXPECT_EQ(data.rfind("HTTP/1.0 200 OK", 0), 0u) << data;
    co_await server;
}

TEST_P(SockOps, ClientOps) { pyco::run(client_ops(ep(), false)); }
TEST_P(SockOps, ClientOpsRecvInto) { pyco::run(client_ops(ep(), true)); }

// _basetest_sock_recv_racing / _into: a cancelled receive loses nothing.
coroutine<void> recv_racing(endpoint ep, bool into) {
    auto& loop = pyco::get_running_loop();
    pyco::socket l = ep.listener();
    auto server = loop.create_task(http_once(l));
    pyco::socket sock(ep.family, SOCK_STREAM);
    co_await loop.sock_connect(sock, l.getsockname());
    std::vector<std::byte> buf(1024);
    pyco::task<std::size_t> t;
    if (into) {
        t = loop.create_task(loop.sock_recv_into(sock, buf));
    } else {
        auto c = [](pyco::socket& s) -> coroutine<std::size_t> {
            std::string got = co_await pyco::get_running_loop().sock_recv(s, 1024);
            co_return got.size();
        };
        t = loop.create_task(c(sock));
    }
    co_await pyco::sleep(0s);
    t.cancel();
    auto send = loop.create_task(loop.sock_sendall(sock, std::string_view("GET / HTTP/1.0\r\n\r\n")));
    std::string data;
    if (into) {
        std::size_t n = co_await loop.sock_recv_into(sock, buf);
        std::size_t m = co_await loop.sock_recv_into(sock, std::span(buf).subspan(n));
        data.assign(reinterpret_cast<const char*>(buf.data()), n + m);
    } else {
        data = co_await loop.sock_recv(sock, 1024);
        co_await loop.sock_recv(sock, 1024);
    }
    EXPECT_EQ(data.rfind("HTTP/1.0 200 OK", 0), 0u) << data;
    EXPECT_TRUE(t.cancelled());
    co_await send;
    co_await server;
}

TEST_P(SockOps, RecvRacing) { pyco::run(recv_racing(ep(), false)); }
TEST_P(SockOps, RecvIntoRacing) { pyco::run(recv_racing(ep(), true)); }

// _basetest_sock_send_racing: a cancelled blocked sock_sendall, then another.
coroutine<std::string> recv_all(pyco::socket& s) {
    std::string rv;
    while (true) {
        std::string buf = co_await pyco::get_running_loop().sock_recv(s, 8192);
        if (buf.empty()) co_return rv;
        for (char c : buf) {
            if (c != ' ') rv += c;
        }
    }
}

coroutine<void> send_racing() {
    auto& loop = pyco::get_running_loop();
    pyco::socket listener(AF_INET, SOCK_STREAM);
    listener.bind(sock_address::ipv4("127.0.0.1", 0));
    listener.listen(1);
    pyco::socket sock(AF_INET, SOCK_STREAM);
    sock.setsockopt(SOL_SOCKET, SO_SNDBUF, 1024);
    auto conn = loop.create_task(loop.sock_connect(sock, listener.getsockname()));
    co_await pyco::sleep(0s);
    auto [server, peer] = co_await loop.sock_accept(listener);
    co_await conn;
    // Fill the buffers until sending 4 bytes would block.
    for (std::size_t size = 8192; size >= 4; size /= 2) {
        std::string spaces(size, ' ');
        while (::send(sock.fileno(), spaces.data(), spaces.size(), MSG_NOSIGNAL) > 0) {
        }
        EXPECT_EQ(errno, EAGAIN);
    }
    auto blocked = loop.create_task(loop.sock_sendall(sock, std::string_view("hello")));
    co_await pyco::sleep(0s);
    blocked.cancel();
    auto reader = loop.create_task(recv_all(server));
    co_await loop.sock_sendall(sock, std::string_view("world"));
    sock.shutdown(SHUT_WR);
    std::string data = co_await reader;
    EXPECT_TRUE(blocked.cancelled());
    EXPECT_EQ(data, "world");  // the cancelled send never ran on epoll
}

TEST(SockOpsTcp, SendRacing) { pyco::run(send_racing()); }

// _basetest_sock_connect_racing: a connect cancelled before the listener
// listens; then connecting works (after a retry or two, as on Linux).
coroutine<void> connect_racing() {
    auto& loop = pyco::get_running_loop();
    pyco::socket listener(AF_INET, SOCK_STREAM);
    listener.bind(sock_address::ipv4("127.0.0.1", 0));
    const sock_address addr = listener.getsockname();
    pyco::socket sock(AF_INET, SOCK_STREAM);
    auto t = loop.create_task(loop.sock_connect(sock, addr));
    co_await pyco::sleep(0s);
    t.cancel();
    listener.listen(1);
    std::string reason = "max retries reached";
    for (int i = 0; i < 128; ++i) {
        try {
            co_await loop.sock_connect(sock, addr);
            co_return;
        } catch (const std::system_error& e) {
            reason = e.what();
        }
    }
    ADD_FAILURE() << reason;
}

TEST(SockOpsTcp, ConnectRacing) { pyco::run(connect_racing()); }

// _basetest_huge_content / _recvinto: a megabyte each way, concurrently.
coroutine<void> huge_content(endpoint ep, bool into) {
    auto& loop = pyco::get_running_loop();
    pyco::socket l = ep.listener();
    auto server = loop.create_task(echo_post(l));
    constexpr std::size_t size = 1'000'000;
    std::string chunk;
    for (std::size_t i = 0; i < size; ++i) chunk += static_cast<char>('0' + i % 10);
    pyco::socket sock(ep.family, SOCK_STREAM);
    co_await loop.sock_connect(sock, l.getsockname());
    std::string head = "POST /loop HTTP/1.0\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n";
    co_await loop.sock_sendall(sock, head);
    auto sender = loop.create_task(loop.sock_sendall(sock, chunk));
    std::vector<std::byte> buf(size);
    auto recv = [&]() -> coroutine<std::string> {
        if (!into) co_return co_await loop.sock_recv(sock, size);
        std::size_t n = co_await loop.sock_recv_into(sock, buf);
        co_return std::string(reinterpret_cast<const char*>(buf.data()), n);
    };
    std::string data = co_await recv();
    EXPECT_EQ(data.rfind("HTTP/1.0 200 OK", 0), 0u);
    while (data.find("\r\n\r\n") == std::string::npos) data += co_await recv();
    data = data.substr(data.find("\r\n\r\n") + 4);
    std::size_t got = 0;
    bool same = true;
    while (true) {
        for (char c : data) same = same && c == static_cast<char>('0' + (got++) % 10);
        data = co_await recv();
        if (data.empty()) break;
    }
    EXPECT_TRUE(same);
    EXPECT_EQ(got, size);
    co_await sender;
    co_await server;
}

TEST_P(SockOps, HugeContent) { pyco::run(huge_content(ep(), false)); }
TEST_P(SockOps, HugeContentRecvInto) { pyco::run(huge_content(ep(), true)); }

INSTANTIATE_TEST_SUITE_P(Families, SockOps, ::testing::Values(AF_INET, AF_INET6, AF_UNIX),
                         [](const auto& param_info) {
                             return param_info.param == AF_INET    ? std::string("Ipv4")
                                    : param_info.param == AF_INET6 ? std::string("Ipv6")
                                                                   : std::string("Unix");
                         });

// test_recvfrom / test_recvfrom_into, with a UDP echo server task.
coroutine<void> udp_echo(pyco::socket& s, int count) {
    auto& loop = pyco::get_running_loop();
    for (int i = 0; i < count; ++i) {
        auto [data, from] = co_await loop.sock_recvfrom(s, 65536);
        co_await loop.sock_sendto(s, data, from);
    }
}

coroutine<void> datagrams(int family) {
    auto& loop = pyco::get_running_loop();
    pyco::socket server(family, SOCK_DGRAM);
    server.bind(family == AF_INET ? sock_address::ipv4("127.0.0.1", 0) : sock_address::ipv6("::1", 0));
    const sock_address server_address = server.getsockname();
    auto echo = loop.create_task(udp_echo(server, 3));
    pyco::socket sock(family, SOCK_DGRAM);
    const std::string data(4096, '\x01');
    const std::size_t sent = co_await loop.sock_sendto(sock, data, server_address);
    EXPECT_EQ(sent, 4096u);
    auto [received, from] = co_await loop.sock_recvfrom(sock, 4096);
    EXPECT_EQ(received, data);
    EXPECT_EQ(from, server_address);

    std::vector<std::byte> buf(4096);
    co_await loop.sock_sendto(sock, data, server_address);
    auto [n, from2] = co_await loop.sock_recvfrom_into(sock, buf);
    EXPECT_EQ(n, 4096u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(buf.data()), n), data);
    EXPECT_EQ(from2, server_address);

    // A datagram longer than the buffer is cut to it, as recvfrom does.
    std::vector<std::byte> big(8192);
    co_await loop.sock_sendto(sock, data, server_address);
    auto [m, from3] = co_await loop.sock_recvfrom_into(sock, std::span(big).first(100));
    EXPECT_EQ(m, 100u);
    EXPECT_EQ(from3, server_address);
    co_await echo;
}

TEST(SockOpsUdp, RecvfromIpv4) { pyco::run(datagrams(AF_INET)); }
TEST(SockOpsUdp, RecvfromIpv6) { pyco::run(datagrams(AF_INET6)); }

// test_sendto_blocking: a sendto that must wait for room (a full Unix
// datagram queue), and an unnamed sender's address (Python's None).
coroutine<void> sendto_blocking() {
    auto& loop = pyco::get_running_loop();
    auto [a, b] = pyco::socket_pair(AF_UNIX, SOCK_DGRAM);
    int queued = 0;
    while (::send(a.fileno(), "x", 1, 0) == 1) ++queued;
    EXPECT_EQ(errno, EAGAIN);
    auto t = loop.create_task(loop.sock_sendto(a, std::string_view("last"), sock_address()));
    co_await pyco::sleep(0s);
    EXPECT_FALSE(t.done());
    for (int i = 0; i < queued; ++i) {
        auto [d, from] = co_await loop.sock_recvfrom(b, 10);
        EXPECT_EQ(d, "x");
        EXPECT_TRUE(from.empty());
        EXPECT_EQ(from.to_string(), "None");
    }
    const std::size_t last_sent = co_await t;
    EXPECT_EQ(last_sent, 4u);
    auto [last, from] = co_await loop.sock_recvfrom(b, 10);
    EXPECT_EQ(last, "last");
}

TEST(SockOpsUdp, SendtoBlocking) { pyco::run(sendto_blocking()); }

// test_sock_client_fail: connection_refused_error, with CPython's message.
coroutine<void> client_fail() {
    auto& loop = pyco::get_running_loop();
    sock_address addr;
    {
        pyco::socket s(AF_INET, SOCK_STREAM);
        s.bind(sock_address::ipv4("127.0.0.1", 0));
        addr = s.getsockname();
    }
    pyco::socket sock(AF_INET, SOCK_STREAM);
    try {
        co_await loop.sock_connect(sock, addr);
        ADD_FAILURE();
    } catch (const pyco::connection_refused_error& e) {
        EXPECT_EQ(e.code().value(), ECONNREFUSED);
        EXPECT_EQ(std::string(e.what()).rfind("Connect call failed " + addr.to_string(), 0), 0u) << e.what();
    }
    // A Unix path nobody listens on fails at once: connect()'s own error.
    pyco::socket u(AF_UNIX, SOCK_STREAM);
    try {
        co_await loop.sock_connect(u, sock_address::unix_path("/nonexistent/pyco.sock"));
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
        EXPECT_EQ(std::string(e.what()).rfind("connect: ", 0), 0u) << e.what();
    }
}

TEST(SockOpsTcp, ClientFail) { pyco::run(client_fail()); }

// test_sock_accept: the peer's address, a non-blocking connection.
coroutine<void> sock_accept() {
    auto& loop = pyco::get_running_loop();
    pyco::socket listener(AF_INET, SOCK_STREAM);
    listener.bind(sock_address::ipv4("127.0.0.1", 0));
    listener.listen(1);
    pyco::socket client(AF_INET, SOCK_STREAM);
    co_await loop.sock_connect(client, listener.getsockname());
    auto [conn, addr] = co_await loop.sock_accept(listener);
    EXPECT_TRUE(::fcntl(conn.fileno(), F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(conn.fileno(), F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(conn.family(), AF_INET);
    EXPECT_EQ(conn.type(), SOCK_STREAM);
    EXPECT_EQ(addr, client.getsockname());
    EXPECT_EQ(client.getpeername(), listener.getsockname());
}

TEST(SockOpsTcp, Accept) { pyco::run(sock_accept()); }

// test_cancel_sock_accept: a timed-out accept leaves nothing behind; the
// closed listener refuses.
coroutine<void> cancel_accept() {
    auto& loop = pyco::get_running_loop();
    const int before = open_fds();
    pyco::socket listener(AF_INET, SOCK_STREAM);
    listener.bind(sock_address::ipv4("127.0.0.1", 0));
    listener.listen(1);
    const sock_address addr = listener.getsockname();
    EXPECT_THROW(co_await pyco::wait_for(loop.sock_accept(listener), 10ms), pyco::timeout_error);
    const int fd = listener.fileno();
    listener.close();
    EXPECT_FALSE(fd_open(fd));
    pyco::socket client(AF_INET, SOCK_STREAM);
    EXPECT_THROW(co_await loop.sock_connect(client, addr), pyco::connection_refused_error);
    client.close();
    EXPECT_EQ(open_fds(), before);
}

TEST(SockOpsTcp, CancelAccept) { pyco::run(cancel_accept(), {.virtual_time = true}); }

// test_create_connection_sock: a socket connected with sock_connect (to the
// first address getaddrinfo gives that connects) becomes a transport; its
// protocol gets what the server sends, then EOF.
struct counting_proto : pyco::protocol {
    std::size_t nbytes = 0;
    bool done = false;
    void data_received(std::span<const std::byte> d) override { nbytes += d.size(); }
    void connection_lost(std::exception_ptr) override { done = true; }
};

coroutine<void> create_connection_sock() {
    auto& loop = pyco::get_running_loop();
    pyco::socket listener(AF_INET, SOCK_STREAM);
    listener.bind(sock_address::ipv4("127.0.0.1", 0));
    listener.listen(1);
    auto serve_one = [&]() -> coroutine<void> {
        auto [conn, addr] = co_await loop.sock_accept(listener);
        co_await loop.sock_sendall(conn, std::string_view("HTTP/1.0 200 OK\r\n\r\nTest message"));
        conn.close();
    };
    auto server = pyco::create_task(serve_one());
    auto infos = co_await loop.getaddrinfo("127.0.0.1", listener.getsockname().port(), 0, SOCK_STREAM);
    pyco::socket sock;
    for (const pyco::addrinfo_entry& info : infos) {
        pyco::socket s(info.family, info.type, info.proto);
        try {
            co_await loop.sock_connect(s, info.address);
        } catch (const std::system_error&) {
            continue;
        }
        sock = std::move(s);
        break;
    }
    EXPECT_TRUE(sock.is_open()) << "Can not create socket.";
    if (!sock.is_open()) co_return;
    auto proto = std::make_shared<counting_proto>();
    auto factory = [proto]() -> std::shared_ptr<pyco::protocol> { return proto; };
    auto [tr, pr] = co_await loop.create_connection(factory, std::move(sock));
    EXPECT_EQ(pr, proto);
    EXPECT_FALSE(sock.is_open());  // the transport took it
    co_await server;
    for (int i = 0; i < 1000 && !proto->done; ++i) co_await pyco::sleep(1ms);
    EXPECT_TRUE(proto->done);
    EXPECT_GT(proto->nbytes, 0u);
    tr->close();
}

TEST(SockOpsTcp, CreateConnectionSock) { pyco::run(create_connection_sock()); }

// --- pyco's own cases: cancellation, closing, errors, loops ---

// Cancelled mid-wait: the op ends, nothing leaks, later data is all there.
coroutine<void> cancel_mid_wait(bool into) {
    auto& loop = pyco::get_running_loop();
    const int before = open_fds();
    {
        auto [a, b] = pyco::socket_pair();
        std::vector<std::byte> buf(16);
        for (int i = 0; i < 3; ++i) {
            bool timed_out = false;
            try {
                if (into) {
                    co_await pyco::wait_for(loop.sock_recv_into(a, buf), 5ms);
                } else {
                    co_await pyco::wait_for(loop.sock_recv(a, 16), 5ms);
                }
            } catch (const pyco::timeout_error&) {
                timed_out = true;
            }
            EXPECT_TRUE(timed_out);
        }
        co_await loop.sock_sendall(b, std::string_view("later"));
        std::string got = co_await loop.sock_recv(a, 16);
        EXPECT_EQ(got, "later");
    }
    EXPECT_EQ(open_fds(), before);
}

TEST(SockOpsCancel, RecvMidWait) { pyco::run(cancel_mid_wait(false), {.virtual_time = true}); }
TEST(SockOpsCancel, RecvIntoMidWait) { pyco::run(cancel_mid_wait(true), {.virtual_time = true}); }

// The delivery rule: the op completed, then the task was cancelled before
// it ran. The bytes are returned; the cancellation comes at the next await.
// (A timer due in the same iteration as the bytes runs right after the
// backend completed the op: the task's wake-up is queued, not yet run.)
struct delivery {
    std::string got;
    bool cancelled_after = false;
};

coroutine<void> receiver(pyco::socket& s, delivery& d) {
    d.got = co_await pyco::get_running_loop().sock_recv(s, 100);
    try {
        co_await pyco::sleep(0s);
    } catch (const pyco::cancelled_error&) {
        d.cancelled_after = true;
        throw;
    }
}

coroutine<void> recv_delivery() {
    auto& loop = pyco::get_running_loop();
    auto [a, b] = pyco::socket_pair();
    delivery d;
    auto t = loop.create_task(receiver(a, d));
    co_await pyco::sleep(0s);  // t waits in sock_recv now
    EXPECT_EQ(::write(b.fileno(), "hello", 5), 5);
    loop.call_later(0s, [&] { t.cancel(); });
    try {
        co_await t;
    } catch (const pyco::cancelled_error&) {
    }
    EXPECT_TRUE(t.cancelled());
    EXPECT_EQ(d.got, "hello");  // CPython would have dropped it
    EXPECT_TRUE(d.cancelled_after);
}

TEST(SockOpsCancel, RecvThatCompletedIsDeliveredAndCancelledAfter) { pyco::run(recv_delivery()); }

coroutine<void> acceptor(pyco::socket& l, std::optional<pyco::socket>& conn, bool& cancelled_after) {
    auto [c, addr] = co_await pyco::get_running_loop().sock_accept(l);
    conn.emplace(std::move(c));
    try {
        co_await pyco::sleep(0s);
    } catch (const pyco::cancelled_error&) {
        cancelled_after = true;
        throw;
    }
}

coroutine<void> accept_delivery() {
    auto& loop = pyco::get_running_loop();
    pyco::socket l(AF_INET, SOCK_STREAM);
    l.bind(sock_address::ipv4("127.0.0.1", 0));
    l.listen(4);
    std::optional<pyco::socket> conn;
    bool cancelled_after = false;
    auto t = loop.create_task(acceptor(l, conn, cancelled_after));
    co_await pyco::sleep(0s);  // t waits in sock_accept
    co_await pyco::sleep(0s);
    pyco::socket client(AF_INET, SOCK_STREAM);
    const sock_address addr = l.getsockname();
    ::connect(client.fileno(), addr.data(), addr.size());  // in progress
    pollfd pfd{l.fileno(), POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 10000), 1);  // the connection waits in the backlog
    // Next iteration the accept op takes it and cancels itself (one
    // connection per sock_accept); the one after, that final completion
    // queues t's wake-up, and the timer, due then, cancels t before it runs.
    co_await pyco::sleep(0s);
    loop.call_later(0s, [&] { t.cancel(); });
    try {
        co_await t;
    } catch (const pyco::cancelled_error&) {
    }
    EXPECT_TRUE(t.cancelled());
    EXPECT_TRUE(conn.has_value());  // CPython would have dropped it
    EXPECT_TRUE(cancelled_after);
}

TEST(SockOpsCancel, AcceptNeverDropsAConnection) { pyco::run(accept_delivery()); }

// Closing a socket under a pending op: the op raises EBADF, and the fd is
// closed only once the op has finished.
coroutine<void> close_under_recv() {
    auto& loop = pyco::get_running_loop();
    auto [a, b] = pyco::socket_pair();
    const int fd = a.fileno();
    auto t = loop.create_task(loop.sock_recv(a, 16));
    co_await pyco::sleep(0s);
    a.close();
    EXPECT_EQ(a.fileno(), -1);
    EXPECT_TRUE(fd_open(fd));  // the op is still in flight
    try {
        co_await t;
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
    }
    EXPECT_FALSE(fd_open(fd));
    // And a closed socket refuses at once.
    try {
        co_await loop.sock_recv(a, 1);
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
    }
}

TEST(SockOpsClose, CloseUnderAPendingRecv) { pyco::run(close_under_recv()); }

coroutine<void> close_under_accept() {
    auto& loop = pyco::get_running_loop();
    const int before = open_fds();
    {
        pyco::socket l(AF_INET, SOCK_STREAM);
        l.bind(sock_address::ipv4("127.0.0.1", 0));
        l.listen(1);
        auto t = loop.create_task(loop.sock_accept(l));
        co_await pyco::sleep(0s);
        l.close();
        EXPECT_THROW(co_await t, std::system_error);
    }
    EXPECT_EQ(open_fds(), before);
}

TEST(SockOpsClose, CloseUnderAPendingAccept) { pyco::run(close_under_accept()); }

// Peer reset: connection_reset_error (SO_LINGER 0 makes close send RST).
coroutine<void> peer_reset() {
    auto& loop = pyco::get_running_loop();
    pyco::socket l(AF_INET, SOCK_STREAM);
    l.bind(sock_address::ipv4("127.0.0.1", 0));
    l.listen(1);
    pyco::socket client(AF_INET, SOCK_STREAM);
    co_await loop.sock_connect(client, l.getsockname());
    auto [conn, addr] = co_await loop.sock_accept(l);
    auto reader = loop.create_task(loop.sock_recv(client, 100));
    co_await pyco::sleep(0s);
    linger lg{1, 0};
    ::setsockopt(conn.fileno(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    conn.close();
    try {
        co_await reader;
        ADD_FAILURE();
    } catch (const pyco::connection_reset_error& e) {
        EXPECT_EQ(e.code().value(), ECONNRESET);
        EXPECT_EQ(std::string(e.what()).rfind("recv: ", 0), 0u);
    }
    // Sending to a reset peer: ConnectionResetError or BrokenPipeError.
    EXPECT_THROW(co_await loop.sock_sendall(client, std::string(1 << 20, 'x')), pyco::connection_error);
}

TEST(SockOpsErrors, PeerResetIsConnectionResetError) { pyco::run(peer_reset()); }

coroutine<void> eof_and_zero() {
    auto& loop = pyco::get_running_loop();
    auto [a, b] = pyco::socket_pair();
    std::string none = co_await loop.sock_recv(a, 0);  // no syscall, as CPython
    EXPECT_EQ(none, "");
    std::vector<std::byte> empty;
    std::size_t zero = co_await loop.sock_recv_into(a, empty);
    EXPECT_EQ(zero, 0u);
    co_await loop.sock_sendall(b, std::string_view(""));
    b.shutdown(SHUT_WR);
    std::string eof = co_await loop.sock_recv(a, 10);
    EXPECT_EQ(eof, "");
}

TEST(SockOpsErrors, EofAndZeroLengths) { pyco::run(eof_and_zero()); }

// The loop rule of socket.hpp.
coroutine<std::string> recv_one(pyco::socket& s) { co_return co_await pyco::get_running_loop().sock_recv(s, 10); }

TEST(SockOpsLoops, ASocketBelongsToTheLoopThatUsedIt) {
    auto [a, b] = pyco::socket_pair();
    auto loop1 = std::make_unique<pyco::event_loop>();
    ASSERT_EQ(::write(b.fileno(), "1", 1), 1);
    EXPECT_EQ(loop1->run_until_complete(recv_one(a)), "1");
    EXPECT_EQ(a.used_by(), loop1.get());
    {
        pyco::event_loop loop2;
        EXPECT_THROW(loop2.run_until_complete(recv_one(a)), pyco::runtime_error);
    }
    loop1.reset();  // closed: the socket forgets it
    EXPECT_EQ(a.used_by(), nullptr);
    pyco::event_loop loop3;
    ASSERT_EQ(::write(b.fileno(), "3", 1), 1);
    EXPECT_EQ(loop3.run_until_complete(recv_one(a)), "3");
    EXPECT_EQ(a.used_by(), &loop3);
    const int fd = a.fileno();
    a.close();  // through loop3's backend
    EXPECT_FALSE(fd_open(fd));
}

TEST(SockOpsLoops, ReleasedFdStaysOpen) {
    auto [a, b] = pyco::socket_pair();
    pyco::event_loop loop;
    ASSERT_EQ(::write(b.fileno(), "x", 1), 1);
    EXPECT_EQ(loop.run_until_complete(recv_one(a)), "x");
    const int fd = a.release();
    EXPECT_EQ(a.used_by(), nullptr);
    EXPECT_TRUE(fd_open(fd));
    loop.backend().close_fd(fd);  // the taker's job (the loop rule)
    EXPECT_FALSE(fd_open(fd));
}

// A loop closed with a task waiting in a sock_* op: the task is abandoned,
// its op freed (ASan would see a leak), and the socket still closes.
TEST(SockOpsLoops, LoopClosedWithAnOpInFlight) {
    auto [a, b] = pyco::socket_pair();
    const int fd = a.fileno();
    {
        pyco::event_loop loop;
        loop.set_exception_handler([](pyco::event_loop&, const pyco::exception_context&) {});
        auto t = loop.create_task(recv_one(a));
        loop.stop();
        loop.run_forever();  // one iteration: t parks in sock_recv
        EXPECT_FALSE(t.done());
        loop.close();
    }
    EXPECT_TRUE(fd_open(fd));
    a.close();
    EXPECT_FALSE(fd_open(fd));
}

TEST(SockOpsLoops, LoopClosedAfterTheSocketWasClosedUnderAnOp) {
    auto [a, b] = pyco::socket_pair();
    const int fd = a.fileno();
    {
        pyco::event_loop loop;
        loop.set_exception_handler([](pyco::event_loop&, const pyco::exception_context&) {});
        auto t = loop.create_task(recv_one(a));
        loop.stop();
        loop.run_forever();
        a.close();  // the op is in flight: the fd waits for it
        EXPECT_TRUE(fd_open(fd));
        loop.close();  // ... or for the loop to close
    }
    EXPECT_FALSE(fd_open(fd));
}

// asyncio's _ipaddr_info: a literal needs no thread.
coroutine<void> numeric_getaddrinfo() {
    auto& loop = pyco::get_running_loop();
    auto v4 = co_await loop.getaddrinfo("127.0.0.1", 8080, 0, SOCK_STREAM);
    EXPECT_EQ(v4.size(), 1u);
    EXPECT_EQ(v4[0].family, AF_INET);
    EXPECT_EQ(v4[0].type, SOCK_STREAM);
    EXPECT_EQ(v4[0].proto, IPPROTO_TCP);
    EXPECT_EQ(v4[0].canonname, "");
    EXPECT_EQ(v4[0].address.to_string(), "('127.0.0.1', 8080)");
    auto v6 = co_await loop.getaddrinfo("::1", "53", 0, SOCK_DGRAM);
    EXPECT_EQ(v6.size(), 1u);
    EXPECT_EQ(v6[0].family, AF_INET6);
    EXPECT_EQ(v6[0].proto, IPPROTO_UDP);
    EXPECT_EQ(v6[0].address.to_string(), "('::1', 53, 0, 0)");
    auto none = co_await loop.getaddrinfo("10.0.0.1", "", AF_INET, SOCK_STREAM, IPPROTO_TCP);
    EXPECT_EQ(none.at(0).address.port(), 0);
    auto ni = co_await loop.getnameinfo(sock_address::ipv4("127.0.0.1", 80), NI_NUMERICHOST | NI_NUMERICSERV);
    EXPECT_EQ(ni.first, "127.0.0.1");
    EXPECT_EQ(ni.second, "80");
    auto& pool = dynamic_cast<pyco::thread_pool_executor&>(loop.default_executor());
    EXPECT_EQ(pool.threads_started(), 0u);
}

TEST(SockOpsResolve, NumericHostsNeedNoThread) { pyco::run(numeric_getaddrinfo()); }

}  // namespace
