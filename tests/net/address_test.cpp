// sock_address: Python's address tuples, numeric parsing, Unix paths.
#include <pyco/net/address.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>

namespace {

using pyco::sock_address;

TEST(SockAddress, EmptyIsPythonsNone) {
    sock_address a;
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(a.family(), AF_UNSPEC);
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(a.to_string(), "None");
    EXPECT_EQ(a, sock_address());
}

TEST(SockAddress, Ipv4) {
    auto a = sock_address::ipv4("127.0.0.1", 8080);
    EXPECT_EQ(a.family(), AF_INET);
    EXPECT_EQ(a.host(), "127.0.0.1");
    EXPECT_EQ(a.port(), 8080);
    EXPECT_EQ(a.size(), sizeof(sockaddr_in));
    EXPECT_EQ(a.to_string(), "('127.0.0.1', 8080)");
    const auto* sin = reinterpret_cast<const sockaddr_in*>(a.data());
    EXPECT_EQ(ntohs(sin->sin_port), 8080);
    EXPECT_EQ(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
    // Python's special hosts.
    EXPECT_EQ(sock_address::ipv4("", 1).host(), "0.0.0.0");
    EXPECT_EQ(sock_address::ipv4("<broadcast>", 1).host(), "255.255.255.255");
}

TEST(SockAddress, Ipv6WithFlowinfoAndScope) {
    auto a = sock_address::ipv6("::1", 443);
    EXPECT_EQ(a.family(), AF_INET6);
    EXPECT_EQ(a.host(), "::1");
    EXPECT_EQ(a.port(), 443);
    EXPECT_EQ(a.to_string(), "('::1', 443, 0, 0)");
    auto b = sock_address::ipv6("fe80::1", 80, 5, 7);
    EXPECT_EQ(b.flowinfo(), 5u);
    EXPECT_EQ(b.scope_id(), 7u);
    EXPECT_EQ(b.to_string(), "('fe80::1', 80, 5, 7)");
    // A "%scope" suffix: a number, or an interface name ("lo" exists here).
    EXPECT_EQ(sock_address::ipv6("fe80::1%3", 80).scope_id(), 3u);
    const unsigned lo = ::if_nametoindex("lo");
    ASSERT_NE(lo, 0u);
    auto c = sock_address::ipv6("fe80::1%lo", 80);
    EXPECT_EQ(c.scope_id(), lo);
    EXPECT_EQ(c.host(), "fe80::1");  // shown without the suffix, as Python
    EXPECT_EQ(sock_address::ipv6("", 1).host(), "::");
}

TEST(SockAddress, IllegalHostsAreOsErrorsWithPythonsMessage) {
    for (const char* h : {"abc", "127.1", "1.2.3.4.5", "::1"}) {
        try {
            sock_address::ipv4(h, 1);
            ADD_FAILURE() << h;
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), EINVAL);
            EXPECT_NE(std::string(e.what()).find("illegal IP address string passed to inet_pton"),
                      std::string::npos);
        }
    }
    EXPECT_THROW(sock_address::ipv6("1.2.3.4", 1), std::system_error);
    EXPECT_THROW(sock_address::ipv6("fe80::1%no-such-interface0", 1), std::system_error);
    EXPECT_THROW(sock_address::ipv6("fe80::1%", 1), std::system_error);
}

TEST(SockAddress, ParseNumericOnly) {
    auto a = sock_address::parse("10.1.2.3", 53);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->family(), AF_INET);
    EXPECT_EQ(a->to_string(), "('10.1.2.3', 53)");
    auto b = sock_address::parse("2001:db8::5", 53);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->family(), AF_INET6);
    EXPECT_EQ(b->host(), "2001:db8::5");
    auto c = sock_address::parse("fe80::1%lo", 9);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->scope_id(), ::if_nametoindex("lo"));
    EXPECT_FALSE(sock_address::parse("localhost", 80));  // a name: no DNS here
    EXPECT_FALSE(sock_address::parse("", 80));
    EXPECT_FALSE(sock_address::parse("fe80::1%nosuchif0", 80));
    EXPECT_FALSE(sock_address::parse("256.1.1.1", 80));
}

TEST(SockAddress, UnixPaths) {
    auto a = sock_address::unix_path("/tmp/pyco.sock");
    EXPECT_EQ(a.family(), AF_UNIX);
    EXPECT_EQ(a.path(), "/tmp/pyco.sock");
    EXPECT_FALSE(a.is_abstract());
    EXPECT_EQ(a.to_string(), "'/tmp/pyco.sock'");
    EXPECT_EQ(a.host(), "");
    EXPECT_EQ(a.port(), 0);

    using namespace std::string_literals;
    auto b = sock_address::unix_path("\0pyco"s);
    EXPECT_TRUE(b.is_abstract());
    EXPECT_EQ(b.path(), "\0pyco"s);
    EXPECT_EQ(b.to_string(), "b'\\x00pyco'");
    EXPECT_EQ(b.size(), offsetof(sockaddr_un, sun_path) + 5);

    // Python's repr picks its quotes and escapes.
    EXPECT_EQ(sock_address::unix_path("it's").to_string(), "\"it's\"");
    EXPECT_EQ(sock_address::unix_path("a\\b\n").to_string(), "'a\\\\b\\n'");

    // An unnamed socket's address (what getsockname gives before bind).
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    sock_address unnamed(reinterpret_cast<sockaddr*>(&un), sizeof(sa_family_t));
    EXPECT_EQ(unnamed.to_string(), "''");
    EXPECT_EQ(unnamed.path(), "");
}

TEST(SockAddress, UnixPathLimitsAreCPythons) {
    const std::size_t room = sizeof(sockaddr_un{}.sun_path);  // 108
    EXPECT_NO_THROW(sock_address::unix_path(std::string(room - 1, 'x')));
    try {
        sock_address::unix_path(std::string(room, 'x'));  // no room for the NUL
        ADD_FAILURE();
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find("AF_UNIX path too long"), std::string::npos);
    }
    std::string abstract(room, 'x');
    abstract[0] = '\0';
    EXPECT_NO_THROW(sock_address::unix_path(abstract));  // may fill sun_path
    abstract += 'x';
    EXPECT_THROW(sock_address::unix_path(abstract), std::system_error);
}

TEST(SockAddress, EqualityComparesTheAddressNotTheBytes) {
    EXPECT_EQ(sock_address::ipv4("127.0.0.1", 1), sock_address::ipv4("127.0.0.1", 1));
    EXPECT_NE(sock_address::ipv4("127.0.0.1", 1), sock_address::ipv4("127.0.0.1", 2));
    EXPECT_NE(sock_address::ipv4("127.0.0.1", 1), sock_address::ipv4("127.0.0.2", 1));
    EXPECT_NE(sock_address::ipv4("0.0.0.0", 1), sock_address::ipv6("::", 1));
    EXPECT_NE(sock_address::ipv6("fe80::1", 1, 0, 1), sock_address::ipv6("fe80::1", 1, 0, 2));
    // A path counted with or without its NUL is the same path.
    auto a = sock_address::unix_path("/tmp/x");
    sock_address b(a.data(), a.size() + 1);
    EXPECT_EQ(a, b);
    using namespace std::string_literals;
    EXPECT_NE(sock_address::unix_path("\0x"s), sock_address::unix_path("x"));
}

TEST(SockAddress, FromASyscallsSockaddr) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(9);
    sin6.sin6_addr = in6addr_loopback;
    sock_address a(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6);
    EXPECT_EQ(a, sock_address::ipv6("::1", 9));
    EXPECT_THROW(sock_address(reinterpret_cast<sockaddr*>(&sin6), sock_address::capacity() + 1), pyco::value_error);
    // Filled in place, as a syscall would.
    sock_address b;
    std::memcpy(b.data(), &sin6, sizeof sin6);
    b.resize(sizeof sin6);
    EXPECT_EQ(a, b);
}

TEST(GaiError, CarriesTheEaiCodeAndGaiStrerror) {
    pyco::gaierror e(EAI_NONAME, "getaddrinfo");
    EXPECT_EQ(e.code().value(), EAI_NONAME);
    EXPECT_EQ(e.code().category(), pyco::gai_category());
    EXPECT_EQ(e.code().message(), ::gai_strerror(EAI_NONAME));
    EXPECT_EQ(std::string(e.what()), std::string("getaddrinfo: ") + ::gai_strerror(EAI_NONAME));
    const std::system_error& base = e;  // Python: gaierror is an OSError
    EXPECT_STREQ(base.code().category().name(), "getaddrinfo");
}

}  // namespace
