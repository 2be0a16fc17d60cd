// TLS where there is no host name: Unix sockets (open_unix_connection and
// start_unix_server with ssl=, loop.create_unix_connection), a socket
// given ready-made (create_connection's sock=, connect_accepted_socket),
// with asyncio's keyword checks; and stream_writer::start_tls seen through
// every copy of the writer.
#include <pyco/net/ssl.hpp>

#include <sys/socket.h>

#include <any>
#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/address.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/run.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

#include "net/net_test_util.hpp"
#include "net/ssl_fixture.hpp"

namespace {

using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

using ssl_test::client_ctx;
using ssl_test::echo_lines;
using ssl_test::port_of;
using ssl_test::server_ctx;

std::string unix_path(const char* name) { return ssl_test::certs::get().dir() + "/" + name; }

pyco::start_unix_server_options unix_tls_server() { return ssl_test::tls_server<pyco::start_unix_server_options>(); }

pyco::open_unix_connection_options unix_tls_client(std::string hostname = "localhost") {
    return ssl_test::tls_client<pyco::open_unix_connection_options>(client_ctx(), std::move(hostname));
}

// Closes the writer and waits for it, then the server (wait_closed).
coroutine<void> close_all(pyco::stream_writer w, pyco::server& srv) {
    w.close();
    co_await w.wait_closed();
    srv.close();
    co_await srv.wait_closed();
}

coroutine<std::string> round_trip(reader_ptr r, pyco::stream_writer w, std::string line) {
    w.write(line);
    co_await w.drain();
    co_return co_await r->readline();
}

TEST(SslUnix, StreamsEchoOverTls) {
    auto body = []() -> coroutine<void> {
        const std::string path = unix_path("streams.sock");
        pyco::server srv = co_await pyco::start_unix_server(echo_lines, path, unix_tls_server());
        auto [r, w] = co_await pyco::open_unix_connection(path, unix_tls_client());
        EXPECT_EQ(co_await round_trip(r, w, "over unix\n"), "over unix\n");
        auto obj = std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object"));
        EXPECT_EQ(obj.version(), "TLSv1.3");
        EXPECT_EQ(obj.server_hostname(), "localhost");
        co_await close_all(w, srv);
    };
    pyco::run(body());
}

// "" turns the name check (and SNI) off; the chain is still verified.
TEST(SslUnix, EmptyServerHostnameSkipsTheNameCheckOnly) {
    auto body = []() -> coroutine<void> {
        const std::string path = unix_path("noname.sock");
        pyco::server srv = co_await pyco::start_unix_server(echo_lines, path, unix_tls_server());
        auto [r, w] = co_await pyco::open_unix_connection(path, unix_tls_client(""));
        EXPECT_EQ(co_await round_trip(r, w, "x\n"), "x\n");
        w.close();
        co_await w.wait_closed();
        // A wrong name fails verification; the server keeps serving.
        bool refused = false;
        try {
            (void)co_await pyco::open_unix_connection(path, unix_tls_client("wrong.example"));
        } catch (const pyco::ssl_cert_verification_error&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
        auto [r2, w2] = co_await pyco::open_unix_connection(path, unix_tls_client());
        EXPECT_EQ(co_await round_trip(r2, w2, "still\n"), "still\n");
        co_await close_all(w2, srv);
    };
    pyco::run(body());
}

// asyncio's checks, before anything is connected.
TEST(SslUnix, KeywordErrorsAreAsyncios) {
    auto body = []() -> coroutine<void> {
        const std::string path = unix_path("unused.sock");
        auto message = [](pyco::coroutine<pyco::stream_pair> c) -> coroutine<std::string> {
            try {
                (void)co_await std::move(c);
            } catch (const pyco::value_error& e) {
                co_return e.what();
            }
            co_return "no error";
        };
        pyco::open_unix_connection_options no_name;
        no_name.ssl = client_ctx();
        EXPECT_EQ(co_await message(pyco::open_unix_connection(path, no_name)),
                  "you have to pass server_hostname when using ssl");
        pyco::open_unix_connection_options name_only;
        name_only.server_hostname = "localhost";
        EXPECT_EQ(co_await message(pyco::open_unix_connection(path, name_only)),
                  "server_hostname is only meaningful with ssl");
        pyco::open_unix_connection_options timeout_only;
        timeout_only.ssl_handshake_timeout = std::chrono::seconds(1);
        EXPECT_EQ(co_await message(pyco::open_unix_connection(path, timeout_only)),
                  "ssl_handshake_timeout is only meaningful with ssl");
        pyco::start_unix_server_options server_timeout_only;
        server_timeout_only.ssl_shutdown_timeout = std::chrono::seconds(1);
        std::string got = "no error";
        try {
            (void)co_await pyco::start_unix_server(echo_lines, path, server_timeout_only);
        } catch (const pyco::value_error& e) {
            got = e.what();
        }
        EXPECT_EQ(got, "ssl_shutdown_timeout is only meaningful with ssl");
    };
    pyco::run(body());
}

// Collects what arrives, for the loop-level calls.
struct collecting : pyco::protocol {
    std::string data;
    std::optional<pyco::future<void>> got_line;
    void data_received(std::span<const std::byte> d) override {
        data.append(reinterpret_cast<const char*>(d.data()), d.size());
        if (got_line && !got_line->done() && data.find('\n') != std::string::npos) got_line->set_result();
    }
};

// A collecting protocol waiting for its first line, and its factory.
std::pair<std::shared_ptr<collecting>, pyco::protocol_factory> line_collector() {
    auto proto = std::make_shared<collecting>();
    proto->got_line = pyco::get_running_loop().create_future<void>();
    return {proto, [proto] { return proto; }};
}

// Until the protocol has a line (bounded: a broken TLS path fails the
// test instead of hanging it).
coroutine<void> first_line(collecting& proto) { co_await pyco::wait_for(*proto.got_line, std::chrono::seconds(10)); }

TEST(SslUnix, LoopCreateUnixConnectionWithSsl) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        const std::string path = unix_path("loop.sock");
        pyco::server srv = co_await pyco::start_unix_server(echo_lines, path, unix_tls_server());
        auto [proto, pf] = line_collector();
        auto [t, p] = co_await loop.create_unix_connection(
            pf, path, ssl_test::tls_client<pyco::unix_connection_options>());
        EXPECT_TRUE(t->get_extra_info("ssl_object").has_value());
        t->write(std::string_view("loop\n"));
        co_await first_line(*proto);
        EXPECT_EQ(proto->data, "loop\n");
        t->close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// Python's create_connection(sock=..., ssl=...) and, on the other end,
// connect_accepted_socket(sock, ssl=...).
TEST(SslUnix, ReadyMadeSocketsBothSides) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::socket listener = net_test::loopback_listener(1);
        const std::uint16_t port = listener.getsockname().port();

        // Server side: accept by hand, then hand the socket over with ssl=.
        auto serve = [&loop, &listener]() -> coroutine<void> {
            auto [conn, peer] = co_await loop.sock_accept(listener);
            (void)peer;
            auto reader = std::make_shared<pyco::stream_reader>();
            auto sp = std::make_shared<pyco::stream_reader_protocol>(reader);
            pyco::protocol_factory f = [sp] { return sp; };
            pyco::accepted_socket_options ao;
            ao.ssl = server_ctx();
            auto [st, spp] = co_await loop.connect_accepted_socket(f, std::move(conn), ao);
            (void)spp;
            pyco::stream_writer w(st, sp, reader);
            EXPECT_TRUE(w.get_extra_info("ssl_object").has_value());
            std::string line = co_await reader->readline();
            w.write("echo:" + line);
            co_await w.drain();
            w.close();
            co_await w.wait_closed();
        };
        auto server_task = pyco::create_task(serve());

        pyco::socket client(AF_INET, SOCK_STREAM, 0);
        co_await loop.sock_connect(client, pyco::sock_address::ipv4("127.0.0.1", port));
        auto [proto, pf] = line_collector();
        auto [t, p] = co_await loop.create_connection(pf, std::move(client),
                                                      ssl_test::tls_client<pyco::unix_connection_options>());
        t->write(std::string_view("ready-made\n"));
        co_await first_line(*proto);
        EXPECT_EQ(proto->data, "echo:ready-made\n");
        co_await pyco::wait_for(server_task, std::chrono::seconds(10));
        t->close();

        // Without a host there is nothing to default server_hostname to.
        pyco::socket another(AF_INET, SOCK_STREAM, 0);
        pyco::unix_connection_options no_name;
        no_name.ssl = client_ctx();
        std::string got = "no error";
        try {
            (void)co_await loop.create_connection(pf, std::move(another), no_name);
        } catch (const pyco::value_error& e) {
            got = e.what();
        }
        EXPECT_EQ(got, "You must set server_hostname when using ssl without a host");
    };
    pyco::run(body());
}

// stream_writer::start_tls moves every copy of the writer to TLS: a copy
// taken before the upgrade writes through TLS after it, and the last copy
// to go closes the TLS transport (close_notify: the peer reads a clean EOF).
TEST(SslUnix, StartTlsUpgradesEveryCopyOfTheWriter) {
    auto body = []() -> coroutine<void> {
        auto handler = [](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            std::string hello = co_await r->readline();
            w.write("GO\n");
            co_await w.drain();
            co_await w.start_tls(server_ctx());
            for (;;) {
                std::string line = co_await r->readline();
                if (line.empty()) break;
                w.write("tls:" + line);
                co_await w.drain();
            }
            w.close();
        };
        const std::string path = unix_path("copies.sock");
        pyco::server srv = co_await pyco::start_unix_server(handler, path);
        reader_ptr r;
        {
            auto [r0, w] = co_await pyco::open_unix_connection(path);
            r = r0;
            pyco::stream_writer early_copy = w;
            w.write("STARTTLS\n");
            EXPECT_EQ(co_await r->readline(), "GO\n");
            pyco::start_tls_options o;
            o.server_hostname = "localhost";
            co_await w.start_tls(client_ctx(), o);
            EXPECT_TRUE(early_copy.get_extra_info("ssl_object").has_value());
            EXPECT_EQ(&early_copy.transport(), &w.transport());
            // Plain bytes here would break the server's TLS layer.
            early_copy.write("from the copy\n");
            co_await early_copy.drain();
            EXPECT_EQ(co_await r->readline(), "tls:from the copy\n");
        }
        // Both copies are gone: the TLS transport was closed with
        // close_notify, so the server saw EOF and closed too.
        EXPECT_EQ(co_await r->read(), "");
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

}  // namespace
