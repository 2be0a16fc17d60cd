// loop.create_datagram_endpoint over real UDP on 127.0.0.1 and Unix datagram
// sockets in a temp dir: datagrams keep their boundaries and senders, a
// connected endpoint refuses other addresses, ICMP errors reach
// error_received and the endpoint stays open.
#include <pyco/net/datagram.hpp>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;

struct udp_echo : pyco::datagram_protocol {
    pyco::datagram_transport* t = nullptr;
    void connection_made(pyco::datagram_transport& tr) override { t = &tr; }
    void datagram_received(std::span<const std::byte> d, const pyco::sock_address& from) override {
        t->sendto(d, &from);
    }
};

struct udp_client : pyco::datagram_protocol {
    std::vector<std::string> got;
    std::vector<std::exception_ptr> errors;
    bool lost = false;
    void datagram_received(std::span<const std::byte> d, const pyco::sock_address&) override {
        got.emplace_back(reinterpret_cast<const char*>(d.data()), d.size());
    }
    void error_received(std::exception_ptr e) override { errors.push_back(e); }
    void connection_lost(std::exception_ptr) override { lost = true; }
};

template <class P>
pyco::datagram_protocol_factory make(std::shared_ptr<P>& out) {
    return [&out] {
        out = std::make_shared<P>();
        return out;
    };
}

TEST(Datagram, EchoKeepsBoundariesAndSenders) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        std::shared_ptr<udp_echo> server;
        pyco::datagram_options so;
        so.local_addr = {{"127.0.0.1", 0}};
        auto [st, sp] = co_await loop.create_datagram_endpoint(make(server), so);
        auto addr = std::any_cast<pyco::sock_address>(st->get_extra_info("sockname"));
        std::shared_ptr<udp_client> client;
        pyco::datagram_options co;
        co.remote_addr = {{"127.0.0.1", addr.port()}};
        auto [ct, cp] = co_await loop.create_datagram_endpoint(make(client), co);
        for (std::string m : {"one", "two two", "three three three"}) ct->sendto(m);
        ct->sendto(std::string_view(""));  // dropped, as asyncio drops it
        for (int i = 0; i < 100 && client->got.size() < 3; ++i) co_await pyco::sleep(1ms);
        EXPECT_EQ(client->got, (std::vector<std::string>{"one", "two two", "three three three"}));
        pyco::sock_address other = pyco::sock_address::ipv4("127.0.0.1", 9);
        EXPECT_THROW(ct->sendto(std::string_view("x"), &other), pyco::value_error);
        ct->close();
        st->close();
        co_await pyco::sleep(1ms);
        EXPECT_TRUE(client->lost);
    };
    pyco::run(body());
}

TEST(Datagram, RefusedDatagramsReachErrorReceivedAndTheEndpointStaysOpen) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        // A port with nobody on it: bind one, note it, close it.
        std::uint16_t port;
        {
            std::shared_ptr<udp_client> tmp;
            pyco::datagram_options o;
            o.local_addr = {{"127.0.0.1", 0}};
            auto [t, p] = co_await loop.create_datagram_endpoint(make(tmp), o);
            port = std::any_cast<pyco::sock_address>(t->get_extra_info("sockname")).port();
            t->close();
            co_await pyco::sleep(1ms);
        }
        std::shared_ptr<udp_client> client;
        pyco::datagram_options o;
        o.remote_addr = {{"127.0.0.1", port}};
        auto [t, p] = co_await loop.create_datagram_endpoint(make(client), o);
        for (int i = 0; i < 50 && client->errors.empty(); ++i) {
            t->sendto(std::string_view("anyone?"));
            co_await pyco::sleep(2ms);
        }
        EXPECT_FALSE(client->errors.empty());
        if (!client->errors.empty()) {
            EXPECT_THROW(std::rethrow_exception(client->errors[0]), pyco::connection_refused_error);
        }
        EXPECT_FALSE(t->is_closing());
        t->close();
    };
    pyco::run(body());
}

TEST(Datagram, UnixDatagramSockets) {
    auto dir = std::filesystem::temp_directory_path() / ("pyco-dgram-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string spath = (dir / "server.sock").string();
    const std::string cpath = (dir / "client.sock").string();
    auto body = [&]() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        std::shared_ptr<udp_echo> server;
        pyco::datagram_options so;
        so.local_path = spath;
        auto [st, sp] = co_await loop.create_datagram_endpoint(make(server), so);
        std::shared_ptr<udp_client> client;
        pyco::datagram_options co;
        co.local_path = cpath;  // a named client, so the server can answer
        co.remote_path = spath;
        auto [ct, cp] = co_await loop.create_datagram_endpoint(make(client), co);
        ct->sendto(std::string_view("over unix"));
        for (int i = 0; i < 100 && client->got.empty(); ++i) co_await pyco::sleep(1ms);
        EXPECT_EQ(client->got, std::vector<std::string>{"over unix"});
        ct->close();
        st->close();
        co_await pyco::sleep(1ms);
    };
    pyco::run(body());
    std::filesystem::remove_all(dir);
}

// test_sendto_closing / test_sendto_exception (test_selector_events.py):
// after close, datagrams are dropped, and from the fifth on each logs
// "socket.send() raised exception." (LOG_THRESHOLD_FOR_CONNLOST_WRITES).
TEST(DatagramCPython, SendtoAfterCloseIsDroppedAndWarnsFromTheFifth) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        std::shared_ptr<udp_client> server;
        pyco::datagram_options so;
        so.local_addr = {{"127.0.0.1", 0}};
        auto [st, sp] = co_await loop.create_datagram_endpoint(make(server), so);
        auto addr = std::any_cast<pyco::sock_address>(st->get_extra_info("sockname"));
        std::shared_ptr<udp_client> client;
        pyco::datagram_options co;
        co.remote_addr = {{"127.0.0.1", addr.port()}};
        auto [ct, cp] = co_await loop.create_datagram_endpoint(make(client), co);
        ct->close();
        EXPECT_TRUE(ct->is_closing());
        testing::internal::CaptureStderr();
        for (int i = 0; i < 4; ++i) ct->sendto(std::string_view("late"));
        const std::string quiet = testing::internal::GetCapturedStderr();
        testing::internal::CaptureStderr();
        for (int i = 0; i < 2; ++i) ct->sendto(std::string_view("late"));
        const std::string loud = testing::internal::GetCapturedStderr();
        EXPECT_EQ(quiet, "");
        EXPECT_EQ(loud, "socket.send() raised exception.\nsocket.send() raised exception.\n");
        EXPECT_EQ(ct->get_write_buffer_size(), 0u);
        for (int i = 0; i < 100 && !client->lost; ++i) co_await pyco::sleep(1ms);
        EXPECT_TRUE(client->lost);
        co_await pyco::sleep(5ms);
        EXPECT_TRUE(server->got.empty());  // nothing was sent
        st->close();
    };
    pyco::run(body());
}

}  // namespace
