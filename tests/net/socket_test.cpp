// pyco::socket without a loop: ownership, flags, options, addresses, errors.
#include <pyco/net/socket.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/net/os_error.hpp>

namespace {

using pyco::sock_address;

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

void expect_nonblocking_cloexec(int fd) {
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/pyco-sock-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::system(("rm -rf " + path).c_str()); }
};

TEST(Socket, NewSocketsAreNonBlockingAndCloseOnExec) {
    pyco::socket s(AF_INET, SOCK_STREAM);
    ASSERT_TRUE(s.is_open());
    expect_nonblocking_cloexec(s.fileno());
    EXPECT_EQ(s.family(), AF_INET);
    EXPECT_EQ(s.type(), SOCK_STREAM);  // the flags are not part of the type
    pyco::socket u(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC);
    EXPECT_EQ(u.type(), SOCK_DGRAM);
    expect_nonblocking_cloexec(u.fileno());
}

TEST(Socket, OwnsItsFdAndMovesIt) {
    int fd;
    {
        pyco::socket s(AF_UNIX, SOCK_STREAM);
        fd = s.fileno();
        pyco::socket t(std::move(s));
        EXPECT_EQ(s.fileno(), -1);
        EXPECT_FALSE(s);
        EXPECT_EQ(t.fileno(), fd);
        EXPECT_EQ(t.family(), AF_UNIX);
        pyco::socket u;
        u = std::move(t);
        EXPECT_EQ(u.fileno(), fd);
        EXPECT_TRUE(fd_open(fd));
    }
    EXPECT_FALSE(fd_open(fd));  // the destructor closed it
}

TEST(Socket, CloseTwiceAndReleaseAsPythonsDetach) {
    pyco::socket s(AF_INET, SOCK_STREAM);
    const int fd = s.fileno();
    s.close();
    EXPECT_EQ(s.fileno(), -1);  // Python's fileno() after close
    EXPECT_FALSE(fd_open(fd));
    s.close();

    pyco::socket t(AF_INET, SOCK_STREAM);
    const int fd2 = t.release();
    EXPECT_EQ(t.fileno(), -1);
    EXPECT_TRUE(fd_open(fd2));
    ::close(fd2);
}

TEST(Socket, AdoptSetsTheFlagsAndLearnsTheKind) {
    const int fd = ::socket(AF_INET6, SOCK_DGRAM, 0);  // blocking, inheritable
    ASSERT_GE(fd, 0);
    auto s = pyco::socket::adopt(fd);
    EXPECT_EQ(s.fileno(), fd);
    EXPECT_EQ(s.family(), AF_INET6);
    EXPECT_EQ(s.type(), SOCK_DGRAM);
    EXPECT_EQ(s.proto(), IPPROTO_UDP);
    expect_nonblocking_cloexec(fd);

    EXPECT_THROW(pyco::socket::adopt(-1), pyco::value_error);
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    try {
        pyco::socket::adopt(p[0]);
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOTSOCK);
    }
    EXPECT_TRUE(fd_open(p[0]));  // still the caller's
    ::close(p[0]);
    ::close(p[1]);
}

TEST(Socket, BadFamilyIsAnOsError) {
    try {
        pyco::socket s(9999);
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EAFNOSUPPORT);
        EXPECT_NE(std::string(e.what()).find("socket"), std::string::npos);
    }
}

TEST(Socket, BindListenAndNames) {
    pyco::socket s(AF_INET, SOCK_STREAM);
    s.set_reuse_address();
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_REUSEADDR), 1);
    s.bind(sock_address::ipv4("127.0.0.1", 0));
    s.listen();
    sock_address name = s.getsockname();
    EXPECT_EQ(name.host(), "127.0.0.1");
    EXPECT_NE(name.port(), 0);
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_ACCEPTCONN), 1);
    try {
        s.getpeername();
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOTCONN);
        EXPECT_NE(std::string(e.what()).find("getpeername"), std::string::npos);
    }

    // The port is taken now.
    pyco::socket t(AF_INET, SOCK_STREAM);
    try {
        t.bind(name);
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EADDRINUSE);
        EXPECT_EQ(std::string(e.what()).rfind("bind: ", 0), 0u);
    }
}

TEST(Socket, Ipv6Loopback) {
    pyco::socket s(AF_INET6, SOCK_STREAM);
    s.bind(sock_address::ipv6("::1", 0));
    sock_address name = s.getsockname();
    EXPECT_EQ(name.host(), "::1");
    EXPECT_EQ(name.to_string(), "('::1', " + std::to_string(name.port()) + ", 0, 0)");
}

TEST(Socket, Options) {
    pyco::socket s(AF_INET, SOCK_STREAM);
    s.set_nodelay();
    EXPECT_NE(s.getsockopt(IPPROTO_TCP, TCP_NODELAY), 0);
    s.set_nodelay(false);
    EXPECT_EQ(s.getsockopt(IPPROTO_TCP, TCP_NODELAY), 0);
    s.set_reuse_port();
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_REUSEPORT), 1);
    s.setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
    EXPECT_EQ(s.getsockopt(SOL_SOCKET, SO_KEEPALIVE), 1);
    pyco::socket u(AF_UNIX, SOCK_STREAM);
    EXPECT_THROW(u.set_nodelay(), std::system_error);  // TCP only
}

TEST(Socket, ClosedSocketsFailWithEbadf) {
    pyco::socket s(AF_INET, SOCK_STREAM);
    s.close();
    try {
        s.bind(sock_address::ipv4("127.0.0.1", 0));
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF);
    }
    EXPECT_THROW(s.listen(), std::system_error);
    EXPECT_THROW(s.getsockname(), std::system_error);
    EXPECT_THROW(s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1), std::system_error);
}

TEST(Socket, SocketPairIsConnected) {
    auto [a, b] = pyco::socket_pair();
    EXPECT_EQ(a.family(), AF_UNIX);
    EXPECT_EQ(a.type(), SOCK_STREAM);
    expect_nonblocking_cloexec(a.fileno());
    expect_nonblocking_cloexec(b.fileno());
    ASSERT_EQ(::write(a.fileno(), "x", 1), 1);
    char c = 0;
    ASSERT_EQ(::read(b.fileno(), &c, 1), 1);
    EXPECT_EQ(c, 'x');
    // Unnamed Unix sockets: '' as Python shows them.
    EXPECT_EQ(a.getsockname().to_string(), "''");
    EXPECT_EQ(a.getpeername().to_string(), "''");

    auto [d1, d2] = pyco::socket_pair(AF_UNIX, SOCK_DGRAM);
    EXPECT_EQ(d1.type(), SOCK_DGRAM);
    EXPECT_THROW(pyco::socket_pair(AF_INET), std::system_error);  // Linux: Unix only
}

TEST(Socket, UnixPathsAndShutdown) {
    temp_dir dir;
    const std::string path = dir.path + "/s";
    pyco::socket l(AF_UNIX, SOCK_STREAM);
    l.bind(sock_address::unix_path(path));
    l.listen(0);
    EXPECT_EQ(l.getsockname().path(), path);
    struct stat st{};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);

    auto [a, b] = pyco::socket_pair();
    a.shutdown(SHUT_WR);
    char c;
    EXPECT_EQ(::read(b.fileno(), &c, 1), 0);  // EOF
    a.close();
    EXPECT_THROW(a.shutdown(SHUT_RD), std::system_error);
}

TEST(Socket, AbstractNamespace) {
    using namespace std::string_literals;
    const std::string name = "\0pyco-test-"s + std::to_string(::getpid());
    pyco::socket s(AF_UNIX, SOCK_DGRAM);
    s.bind(sock_address::unix_path(name));
    EXPECT_EQ(s.getsockname().path(), name);
    EXPECT_TRUE(s.getsockname().is_abstract());
}

}  // namespace
