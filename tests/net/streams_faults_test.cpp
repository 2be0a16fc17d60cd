// Faults on real loopback connections (issue 8, section 6): a peer that
// resets in the middle of a large write, and half-close in both directions
// with streams and with protocols. The loop must go on after each.
#include <pyco/net/streams.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/event.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/transport.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

#include "net/net_test_util.hpp"

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;
using net_test::echo_lines;

std::uint16_t port_of(const pyco::server& s) { return s.sockets().at(0).port(); }

// The server reads a little of a 32 MiB write, then resets the connection
// (SO_LINGER 0). The writer, waiting in drain() with most of the data still
// buffered, gets connection_reset_error or broken_pipe_error as CPython's
// would (which one depends on whether the send or the receive sees the RST
// first); nothing goes to the exception handler (asyncio ignores connection
// errors in _fatal_error), and the loop serves the next connection.
TEST(StreamFaults, PeerResetInTheMiddleOfALargeWrite) {
    auto body = []() -> coroutine<void> {
        std::vector<std::string> reported;
        pyco::get_running_loop().set_exception_handler(
            [&](pyco::event_loop&, const pyco::exception_context& c) { reported.push_back(c.message); });
        pyco::event read_some;
        auto resetter = [&](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            std::string got = co_await r->readexactly(64 * 1024);
            EXPECT_EQ(got.size(), 64u * 1024);
            int fd = std::any_cast<int>(w.get_extra_info("socket"));
            linger lg{1, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            w.transport().abort();  // RST, with the client's data unread
            read_some.set();
        };
        pyco::server srv = co_await pyco::start_server(resetter, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        const std::string big(32u << 20, 'w');
        w.write(big);
        EXPECT_GT(w.get_write_buffer_size(), 0u);  // the kernel did not take it all
        std::string error = "none";
        try {
            co_await w.drain();
        } catch (const pyco::connection_reset_error&) {
            error = "reset";
        } catch (const pyco::broken_pipe_error&) {
            error = "broken pipe";
        } catch (const std::exception& e) {
            error = e.what();
        }
        EXPECT_TRUE(error == "reset" || error == "broken pipe") << error;
        EXPECT_TRUE(read_some.is_set());
        EXPECT_TRUE(w.is_closing());
        w.close();
        bool lost_with_error = false;
        try {
            co_await w.wait_closed();
        } catch (const pyco::connection_error&) {
            lost_with_error = true;  // wait_closed raises what the connection was lost with
        }
        EXPECT_TRUE(lost_with_error);
        EXPECT_EQ(reported, std::vector<std::string>{});
        srv.close();
        co_await srv.wait_closed();

        // The loop goes on: a fresh echo round trip.
        pyco::server echo = co_await pyco::start_server(echo_lines, "127.0.0.1", 0);
        auto [r2, w2] = co_await pyco::open_connection("127.0.0.1", port_of(echo));
        w2.write("still alive\n");
        std::string line = co_await r2->readline();
        EXPECT_EQ(line, "still alive\n");
        w2.close();
        co_await w2.wait_closed();
        echo.close();
        co_await echo.wait_closed();
    };
    pyco::run(body());
}

// The server half-closes first (write_eof after its greeting); the client
// reads to EOF, then keeps writing, and the server reads all of it.
TEST(StreamFaults, ServerHalfClosesFirstAndTheClientKeepsWriting) {
    auto body = []() -> coroutine<void> {
        std::string server_got;
        pyco::event server_done;
        auto greeter = [&](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            w.write("greeting");
            EXPECT_TRUE(w.can_write_eof());
            w.write_eof();
            bool refused = false;
            try {
                w.write("more");
            } catch (const pyco::runtime_error&) {
                refused = true;  // "Cannot call write() after write_eof()"
            }
            EXPECT_TRUE(refused);
            server_got = co_await r->read();  // the client still writes, until its EOF
            w.close();
            server_done.set();
        };
        pyco::server srv = co_await pyco::start_server(greeter, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        std::string greeting = co_await r->read();
        EXPECT_EQ(greeting, "greeting");
        EXPECT_TRUE(r->at_eof());
        EXPECT_FALSE(w.is_closing());  // EOF from the peer leaves our side open
        const std::string tail(1 << 20, 't');  // more than the socket buffers hold
        w.write("after your eof: ");
        w.write(tail);
        co_await w.drain();
        w.write_eof();
        co_await server_done.wait();  // it read everything up to our EOF
        // Both directions are shut, yet the transport stays open until
        // closed: the stream protocol's eof_received keeps it (as asyncio's).
        EXPECT_FALSE(w.is_closing());
        w.close();
        co_await w.wait_closed();
        EXPECT_EQ(server_got, "after your eof: " + tail);
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// The same with protocols on both ends, each direction in turn: a protocol
// whose eof_received returns true keeps its transport open and writes on.
struct half_close_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    std::string data;
    bool eof = false;
    bool lost = false;
    std::string reply_after_eof;  // written once the peer's EOF arrives
    void connection_made(pyco::transport& tr) override { t = &tr; }
    void data_received(std::span<const std::byte> d) override { data += as_text(d); }
    bool eof_received() override {
        eof = true;
        if (!reply_after_eof.empty()) {
            t->write(reply_after_eof);
            t->write_eof();
        }
        return true;
    }
    void connection_lost(std::exception_ptr) override { lost = true; }
};

coroutine<void> wait_until(const bool& flag) {
    for (int i = 0; i < 5000 && !flag; ++i) co_await pyco::sleep(1ms);
}

TEST(StreamFaults, ProtocolsHalfCloseEitherWay) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        for (const bool client_first : {true, false}) {
            std::shared_ptr<half_close_protocol> server_side;
            auto factory = [&]() -> std::shared_ptr<pyco::protocol> {
                server_side = std::make_shared<half_close_protocol>();
                if (client_first) server_side->reply_after_eof = "server writes on";
                return server_side;
            };
            pyco::server srv = co_await loop.create_server(factory, "127.0.0.1", 0);
            auto client = std::make_shared<half_close_protocol>();
            if (!client_first) client->reply_after_eof = "client writes on";
            auto cf = [client]() -> std::shared_ptr<pyco::protocol> { return client; };
            auto [t, p] = co_await loop.create_connection(cf, "127.0.0.1", port_of(srv));
            for (int i = 0; i < 1000 && !server_side; ++i) co_await pyco::sleep(1ms);
            EXPECT_TRUE(server_side);
            if (!server_side) co_return;
            half_close_protocol& first = client_first ? *client : *server_side;
            half_close_protocol& second = client_first ? *server_side : *client;
            first.t->write("from the first side");
            first.t->write_eof();
            co_await wait_until(first.eof);  // the second side answered, then half-closed
            EXPECT_TRUE(second.eof);
            EXPECT_EQ(second.data, "from the first side");
            EXPECT_EQ(first.data, client_first ? "server writes on" : "client writes on");
            EXPECT_FALSE(first.lost);  // both directions shut, both transports still open
            EXPECT_FALSE(second.lost);
            first.t->close();
            second.t->close();
            co_await wait_until(first.lost);
            co_await wait_until(second.lost);
            EXPECT_TRUE(first.lost && second.lost);
            srv.close();
            co_await srv.wait_closed();
        }
    };
    pyco::run(body());
}

}  // namespace
