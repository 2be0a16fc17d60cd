// TLS failures, each a clear typed error, and the server keeps serving
// (checked by a good connection after each): a plaintext client, a wrong
// host name, expired and self-signed certificates, a truncated record, a
// peer that closes mid-handshake, a handshake timeout, a peer that never
// answers close_notify; and ssl_context's and the options' own rules, with
// CPython 3.12's messages.
#include <pyco/net/ssl.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <any>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/event.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

#include "net/ssl_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using reader_ptr = std::shared_ptr<pyco::stream_reader>;

using namespace ssl_test;

// Connects with a verifying client to a server with `name`'s certificate;
// returns what open_connection raised.
coroutine<std::string> failure_against(std::string name, std::string host, long* verify_code) {
    pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server(server_ctx(name)));
    std::string what;
    try {
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client(client_ctx(), host));
        w.close();
    } catch (const pyco::ssl_cert_verification_error& e) {
        what = e.what();
        *verify_code = e.verify_code();
        EXPECT_EQ(e.library(), "SSL");
        EXPECT_EQ(e.reason(), "CERTIFICATE_VERIFY_FAILED");
    }
    srv.close();
    co_await srv.wait_closed();
    co_return what;
}

TEST(SslErrors, SelfSignedCertificate) {
    long code = 0;
    std::string what = pyco::run(failure_against("self", "localhost", &code));
    EXPECT_EQ(what, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate");
    EXPECT_EQ(code, 18);  // X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
}

TEST(SslErrors, ExpiredCertificate) {
    long code = 0;
    std::string what = pyco::run(failure_against("expired", "localhost", &code));
    EXPECT_EQ(what, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired");
    EXPECT_EQ(code, 10);
}

TEST(SslErrors, WrongHostName) {
    long code = 0;
    std::string what = pyco::run(failure_against("server", "wrong.test", &code));
    EXPECT_EQ(what, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is "
                    "not valid for 'wrong.test'.");
    EXPECT_EQ(code, 62);
    std::string ip = pyco::run(failure_against("other", "127.0.0.1", &code));
    EXPECT_EQ(ip, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, certificate is "
                  "not valid for '127.0.0.1'.");
}

// asyncio (3.12): server_hostname="" skips the name check (and SNI) but
// still verifies the chain.
TEST(SslErrors, EmptyServerHostnameSkipsTheNameCheckOnly) {
    auto body = []() -> coroutine<void> {
        pyco::server bad = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server(server_ctx("self")));
        EXPECT_THROW((void)co_await pyco::open_connection("127.0.0.1", port_of(bad), tls_client(client_ctx(), "")),
                     pyco::ssl_cert_verification_error);
        bad.close();
        co_await bad.wait_closed();
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server(server_ctx("other")));
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client(client_ctx(), ""));
        w.write("x\n");
        std::string got = co_await r->readline();
        EXPECT_EQ(got, "x\n");
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// Raw sockets: the peer misbehaves at the byte level.
coroutine<pyco::socket> raw_connect(std::uint16_t port) {
    pyco::event_loop& loop = pyco::get_running_loop();
    pyco::socket s(AF_INET, SOCK_STREAM, 0);
    co_await loop.sock_connect(s, pyco::sock_address::ipv4("127.0.0.1", port));
    co_return s;
}

TEST(SslErrors, PlaintextClientToATlsServer) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        std::vector<std::string> reported;
        loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context& c) { reported.push_back(c.message); });
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server());
        pyco::socket s = co_await raw_connect(port_of(srv));
        co_await loop.sock_sendall(s, std::string_view("GET / HTTP/1.0\r\n\r\n"));
        std::string got = co_await pyco::wait_for(loop.sock_recv(s, 4096), 10s);
        // The server answers with an alert (or nothing) and closes.
        for (int i = 0; i < 10 && !got.empty(); ++i) {
            std::string more = co_await pyco::wait_for(loop.sock_recv(s, 4096), 10s);
            if (more.empty()) break;
        }
        co_await still_serving(port_of(srv));
        // As CPython 3.12: an SSLError is an OSError, reported in debug mode only.
        EXPECT_TRUE(reported.empty());
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(SslErrors, PlaintextServerToATlsClient) {
    auto body = []() -> coroutine<void> {
        auto liar = [](reader_ptr, pyco::stream_writer w) -> coroutine<void> {
            w.write("HTTP/1.0 400 Bad Request\r\n\r\n");
            co_await w.drain();
            w.close();
        };
        pyco::server srv = co_await pyco::start_server(liar, "127.0.0.1", 0);
        std::string what;
        try {
            (void)co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client());
        } catch (const pyco::ssl_error& e) {
            what = e.what();
            EXPECT_EQ(e.reason(), "WRONG_VERSION_NUMBER");
        }
        EXPECT_EQ(what, "[SSL: WRONG_VERSION_NUMBER] wrong version number");
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(SslErrors, PeerClosesMidHandshake) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        // A server that accepts, reads the ClientHello and closes.
        pyco::socket ls = net_test::loopback_listener(5);
        const std::uint16_t port = ls.getsockname().port();
        auto closer = [&]() -> coroutine<void> {
            auto [c, addr] = co_await loop.sock_accept(ls);
            (void)co_await loop.sock_recv(c, 4096);
        };
        auto task = pyco::create_task(closer());
        bool reset = false;
        try {
            (void)co_await pyco::open_connection("127.0.0.1", port, tls_client());
        } catch (const pyco::connection_reset_error&) {
            reset = true;
        }
        EXPECT_TRUE(reset);
        co_await task;
        // The other way: a client that sends half a ClientHello and closes.
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server());
        pyco::socket s = co_await raw_connect(port_of(srv));
        co_await loop.sock_sendall(s, std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
        s.close();
        co_await still_serving(port_of(srv));
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(SslErrors, TruncatedRecordAfterTheHandshake) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        // The client completes the handshake over a pyco TLS connection; then
        // a record with a corrupted byte arrives: the connection is lost with
        // an ssl_error, and the server keeps serving.
        std::exception_ptr server_side_error;
        pyco::event done;
        int connections = 0;
        auto handler = [&](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            if (++connections > 1) {
                co_await echo_lines(r, w);
                co_return;
            }
            try {
                (void)co_await r->read();
            } catch (...) {
                server_side_error = std::current_exception();
            }
            done.set();
            w.close();
        };
        pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0, tls_server());
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client());
        // Garbage inside the TLS stream: write on the socket's transport
        // underneath, which the TLS transport does not expose; use the fd.
        int fd = std::any_cast<int>(w.get_extra_info("socket"));
        const char bad[] = "\x17\x03\x03\x00\x20garbagegarbagegarbagegarbage!!!!";
        EXPECT_EQ(::send(fd, bad, sizeof bad - 1, 0), static_cast<ssize_t>(sizeof bad - 1));
        co_await pyco::wait_for(done.wait(), 10s);
        EXPECT_TRUE(server_side_error != nullptr);
        try {
            if (server_side_error) std::rethrow_exception(server_side_error);
        } catch (const pyco::ssl_error& e) {
            EXPECT_EQ(e.library(), "SSL");
            EXPECT_FALSE(std::string(e.what()).empty());
        } catch (...) {
            ADD_FAILURE() << "not an ssl_error";
        }
        w.close();
        co_await still_serving(port_of(srv));
        srv.close();
        co_await srv.wait_closed();
        (void)loop;
    };
    pyco::run(body());
}

TEST(SslErrors, HandshakeTimeout) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        // Client side: a server that accepts and says nothing.
        pyco::socket ls = net_test::loopback_listener(5);
        pyco::open_connection_options o = tls_client();
        o.ssl_handshake_timeout = 200ms;
        std::string what;
        try {
            (void)co_await pyco::open_connection("127.0.0.1", ls.getsockname().port(), o);
        } catch (const pyco::connection_aborted_error& e) {
            what = e.what();
        }
        EXPECT_EQ(what.rfind("SSL handshake is taking longer than 0.2 seconds: aborting the connection", 0), 0u)
            << what;
        // Server side: a client that connects and sends nothing is dropped
        // after the timeout; the server keeps serving.
        pyco::start_server_options so = tls_server();
        so.ssl_handshake_timeout = 200ms;
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, so);
        pyco::socket s = co_await raw_connect(port_of(srv));
        std::string got = co_await pyco::wait_for(loop.sock_recv(s, 100), 10s);
        EXPECT_EQ(got, "");  // closed by the server
        co_await still_serving(port_of(srv));
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// aiohttp #11091: a peer that never answers close_notify does not hang close.
TEST(SslErrors, ShutdownTimeout) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        // The server: a pyco TLS server whose protocol pauses reading so it
        // never sees (nor answers) our close_notify.
        struct silent : pyco::protocol {
            void connection_made(pyco::transport& t) override { t.pause_reading(); }
        };
        pyco::protocol_factory factory1 = [] { return std::make_shared<silent>(); };
        pyco::server srv = co_await loop.create_server(factory1, "127.0.0.1", 0, tls_server<pyco::server_options>());
        struct waiter : pyco::protocol {
            std::optional<pyco::future<void>> lost;
            std::exception_ptr exc;
            void connection_lost(std::exception_ptr e) override {
                exc = e;
                lost->set_result();
            }
        };
        auto p = std::make_shared<waiter>();
        p->lost = loop.create_future<void>();
        pyco::connection_options co = tls_client<pyco::connection_options>();
        co.ssl_shutdown_timeout = 200ms;
        pyco::protocol_factory factory2 = [p] { return p; };
        auto [t, proto] = co_await loop.create_connection(factory2, "127.0.0.1", port_of(srv), co);
        t->close();
        EXPECT_TRUE(t->is_closing());
        co_await pyco::wait_for(*p->lost, 10s);
        std::string what;
        try {
            if (p->exc) std::rethrow_exception(p->exc);
        } catch (const pyco::timeout_error& e) {
            what = e.what();
        }
        EXPECT_EQ(what, "SSL shutdown timed out");
        srv.close();
        srv.close_clients();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(SslErrors, CancellingCreateConnectionDuringTheHandshakeClosesTheSocket) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::socket ls = net_test::loopback_listener(5);
        auto t = pyco::create_task(pyco::open_connection("127.0.0.1", ls.getsockname().port(), tls_client()));
        auto [c, addr] = co_await loop.sock_accept(ls);
        co_await pyco::sleep(50ms);
        t.cancel();
        bool cancelled = false;
        try {
            (void)co_await t;
        } catch (const pyco::cancelled_error&) {
            cancelled = true;
        }
        EXPECT_TRUE(cancelled);
        // The client's socket is closed: we read its ClientHello, then EOF.
        std::string all;
        for (;;) {
            std::string got = co_await pyco::wait_for(loop.sock_recv(c, 4096), 10s);
            if (got.empty()) break;
            all += got;
        }
        EXPECT_FALSE(all.empty());
    };
    pyco::run(body());
}

TEST(SslErrors, OptionsWithoutSslAreRefusedAsAsyncio) {
    auto body = []() -> coroutine<void> {
        auto expect = [](pyco::open_connection_options o, std::string host, std::string msg) -> coroutine<void> {
            std::string what;
            try {
                (void)co_await pyco::open_connection(host, 1, o);
            } catch (const pyco::value_error& e) {
                what = e.what();
            }
            EXPECT_EQ(what, msg);
        };
        pyco::open_connection_options a;
        a.server_hostname = "x";
        co_await expect(a, "127.0.0.1", "server_hostname is only meaningful with ssl");
        pyco::open_connection_options b;
        b.ssl_handshake_timeout = 1s;
        co_await expect(b, "127.0.0.1", "ssl_handshake_timeout is only meaningful with ssl");
        pyco::open_connection_options c;
        c.ssl_shutdown_timeout = 1s;
        co_await expect(c, "127.0.0.1", "ssl_shutdown_timeout is only meaningful with ssl");
        pyco::open_connection_options d;
        d.ssl = client_ctx();
        co_await expect(d, "", "You must set server_hostname when using ssl without a host");
        pyco::open_connection_options e = tls_client();
        e.ssl_handshake_timeout = 0ms;
        co_await expect(e, "127.0.0.1", "ssl_handshake_timeout should be a positive number, got 0.0");
        pyco::start_server_options s;
        s.ssl_handshake_timeout = 1s;
        std::string what;
        try {
            (void)co_await pyco::start_server(echo_lines, "127.0.0.1", 0, s);
        } catch (const pyco::value_error& x) {
            what = x.what();
        }
        EXPECT_EQ(what, "ssl_handshake_timeout is only meaningful with ssl");
    };
    pyco::run(body());
}

TEST(SslErrors, ContextRulesAsPython) {
    pyco::ssl_context c = pyco::ssl_context::client();
    EXPECT_EQ(c.verify_mode(), pyco::verify_mode::cert_required);
    EXPECT_TRUE(c.check_hostname());
    EXPECT_EQ(c.minimum_version(), pyco::tls_version::tlsv1_2);
    EXPECT_EQ(c.maximum_version(), pyco::tls_version::maximum_supported);
    try {
        c.set_verify_mode(pyco::verify_mode::cert_none);
        ADD_FAILURE() << "no error";
    } catch (const pyco::value_error& e) {
        EXPECT_STREQ(e.what(), "Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
    }
    c.set_check_hostname(false);
    c.set_verify_mode(pyco::verify_mode::cert_none);
    c.set_check_hostname(true);  // raises verify_mode again
    EXPECT_EQ(c.verify_mode(), pyco::verify_mode::cert_required);
    c.set_minimum_version(pyco::tls_version::tlsv1_3);
    EXPECT_EQ(c.minimum_version(), pyco::tls_version::tlsv1_3);
    EXPECT_NE(c.native_handle(), nullptr);

    pyco::ssl_context s = pyco::ssl_context::server();
    EXPECT_EQ(s.verify_mode(), pyco::verify_mode::cert_none);
    EXPECT_FALSE(s.check_hostname());
    EXPECT_THROW(s.load_cert_chain(cert("missing.pem")), pyco::file_not_found_error);
    // A key that does not match the certificate.
    try {
        s.load_cert_chain(cert("server.pem"), cert("other.key"));
        ADD_FAILURE() << "no error";
    } catch (const pyco::ssl_error& e) {
        EXPECT_EQ(e.reason(), "KEY_VALUES_MISMATCH") << e.what();
        EXPECT_EQ(std::string(e.what()), "[X509: KEY_VALUES_MISMATCH] key values mismatch");
    }
    EXPECT_THROW(s.set_ciphers("NOT-A-CIPHER"), pyco::ssl_error);
    EXPECT_THROW(c.load_verify_locations(), pyco::value_error);
    std::string pem;
    {
        FILE* f = std::fopen(cert("ca.pem").c_str(), "r");
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) pem.append(buf, n);
        std::fclose(f);
    }
    c.load_verify_locations(std::nullopt, std::nullopt, pem);
    auto d = pyco::ssl_context::create_default_context(pyco::ssl_purpose::client_auth);
    EXPECT_EQ(d.verify_mode(), pyco::verify_mode::cert_none);
    EXPECT_FALSE(d.check_hostname());
}

}  // namespace
