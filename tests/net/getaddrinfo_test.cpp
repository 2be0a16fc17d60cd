// loop.getaddrinfo / getnameinfo through the default executor (threads).
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include <gtest/gtest.h>

#include <pyco/pyco.hpp>

namespace {

using pyco::coroutine;
using pyco::sock_address;

coroutine<void> resolve_localhost() {
    auto& loop = pyco::get_running_loop();
    auto rows = co_await loop.getaddrinfo("localhost", 80, AF_INET, SOCK_STREAM);
    EXPECT_FALSE(rows.empty());
    for (const auto& r : rows) {
        EXPECT_EQ(r.family, AF_INET);
        EXPECT_EQ(r.type, SOCK_STREAM);
        EXPECT_EQ(r.address.port(), 80);
    }
    // A name went to a thread (asyncio runs socket.getaddrinfo there).
    auto& pool = dynamic_cast<pyco::thread_pool_executor&>(loop.default_executor());
    EXPECT_GE(pool.threads_started(), 1u);
    // AI_CANONNAME names the first row; a literal with it takes the slow path.
    auto canon = co_await loop.getaddrinfo("127.0.0.1", 80, 0, SOCK_STREAM, 0, AI_CANONNAME);
    EXPECT_EQ(canon.at(0).canonname, "127.0.0.1");
    // A literal and type 0: every socket type, as getaddrinfo(3) answers.
    auto all = co_await loop.getaddrinfo("127.0.0.1", "80");
    EXPECT_GE(all.size(), 2u);
    // host and port "" are Python's None: with AI_PASSIVE, the wildcard.
    auto passive = co_await loop.getaddrinfo("", "8080", AF_INET, SOCK_STREAM, 0, AI_PASSIVE);
    EXPECT_EQ(passive.at(0).address.to_string(), "('0.0.0.0', 8080)");
}

TEST(Getaddrinfo, NamesResolveOnTheExecutor) { pyco::run(resolve_localhost()); }

coroutine<void> failures() {
    auto& loop = pyco::get_running_loop();
    try {
        co_await loop.getaddrinfo("nonexistent.invalid", 80, 0, SOCK_STREAM);
        ADD_FAILURE();
    } catch (const pyco::gaierror& e) {
        // Python: socket.gaierror: [Errno -2] Name or service not known
        // (EAI_AGAIN where there is no resolver at all).
        EXPECT_TRUE(e.code().value() == EAI_NONAME || e.code().value() == EAI_AGAIN) << e.what();
        EXPECT_EQ(e.code().category(), pyco::gai_category());
    }
    try {
        co_await loop.getaddrinfo("127.0.0.1", "nope", 0, SOCK_STREAM);
        ADD_FAILURE();
    } catch (const pyco::gaierror& e) {
        EXPECT_EQ(e.code().value(), EAI_SERVICE);  // "Servname not supported for ai_socktype"
        EXPECT_EQ(std::string(e.what()), std::string("getaddrinfo: ") + ::gai_strerror(EAI_SERVICE));
    }
    try {
        co_await loop.getaddrinfo("", "");
        ADD_FAILURE();
    } catch (const std::system_error& e) {  // gaierror is an OSError
        EXPECT_EQ(e.code().value(), EAI_NONAME);
    }
}

TEST(Getaddrinfo, FailuresAreGaierrors) { pyco::run(failures()); }

coroutine<void> nameinfo() {
    auto& loop = pyco::get_running_loop();
    auto [host, serv] = co_await loop.getnameinfo(sock_address::ipv4("127.0.0.1", 80));
    EXPECT_FALSE(host.empty());  // "localhost" here, from /etc/hosts
    EXPECT_EQ(serv, "http");
    auto [h6, s6] = co_await loop.getnameinfo(sock_address::ipv6("::1", 80), NI_NUMERICHOST);
    EXPECT_EQ(h6, "::1");
}

TEST(Getaddrinfo, Getnameinfo) { pyco::run(nameinfo()); }

}  // namespace
