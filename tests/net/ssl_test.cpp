// TLS over pyco transports (include/pyco/net/ssl.hpp): echo with protocols
// and streams, large transfers both ways checked byte for byte, flow
// control, get_extra_info, mutual TLS, ALPN, SNI, session resumption,
// start_tls both ways — the observable cases of CPython's
// test_asyncio/test_sslproto.py and the TLS cases of test_streams.py.
#include <pyco/net/ssl.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <any>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/event.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/connection.hpp>
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

TEST(Ssl, StreamsEcho) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server());
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client());
        for (std::string msg : {"hello\n", "world\n"}) {
            w.write(msg);
            co_await w.drain();
            std::string got = co_await r->readline();
            EXPECT_EQ(got, msg);
        }
        auto obj = std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object"));
        EXPECT_EQ(obj.version(), "TLSv1.3");
        EXPECT_FALSE(obj.server_side());
        EXPECT_EQ(obj.server_hostname(), "localhost");
        auto cipher = std::any_cast<pyco::cipher_info>(w.get_extra_info("cipher"));
        EXPECT_EQ(std::get<1>(cipher), "TLSv1.3");
        EXPECT_GE(std::get<2>(cipher), 128);
        auto peer = std::any_cast<std::optional<pyco::peer_certificate>>(w.get_extra_info("peercert"));
        EXPECT_TRUE(peer.has_value());
        if (peer) {
            EXPECT_EQ(peer->subject.back(), (std::pair<std::string, std::string>{"commonName", "localhost"}));
            EXPECT_EQ(peer->issuer.back(), (std::pair<std::string, std::string>{"commonName", "pyco test CA"}));
            EXPECT_EQ(peer->version, 3);
            EXPECT_EQ(peer->serial_number, "02");
            EXPECT_EQ(peer->subject_alt_name.size(), 3u);
            if (peer->subject_alt_name.size() < 3) co_return;
            EXPECT_EQ(peer->subject_alt_name[0], (std::pair<std::string, std::string>{"DNS", "localhost"}));
            EXPECT_EQ(peer->subject_alt_name[1], (std::pair<std::string, std::string>{"IP Address", "127.0.0.1"}));
            EXPECT_EQ(peer->subject_alt_name[2],
                      (std::pair<std::string, std::string>{"IP Address", "0:0:0:0:0:0:0:1"}));
            EXPECT_NE(peer->not_after.find("GMT"), std::string::npos);
        }
        EXPECT_FALSE(obj.getpeercert_der().empty());
        auto comp = std::any_cast<std::optional<std::string>>(w.get_extra_info("compression"));
        EXPECT_FALSE(comp.has_value());
        auto ctx = std::any_cast<pyco::ssl_context>(w.get_extra_info("sslcontext"));
        EXPECT_TRUE(static_cast<bool>(ctx));
        // What the socket's transport knows comes through.
        auto peername = std::any_cast<pyco::sock_address>(w.get_extra_info("peername"));
        EXPECT_EQ(peername.port(), port_of(srv));
        EXPECT_FALSE(w.can_write_eof());
        EXPECT_THROW(w.write_eof(), pyco::not_implemented_error);
        w.close();
        std::string rest = co_await r->read();  // the server's close_notify: EOF
        EXPECT_EQ(rest, "");
        co_await w.wait_closed();
        // As asyncio, the TLS extra info outlives the connection.
        auto after = std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object"));
        EXPECT_EQ(after.version(), "TLSv1.3");
        EXPECT_TRUE(w.get_extra_info("cipher").has_value());
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// Server echoes everything it reads (a protocol), the client a protocol too.
struct echo_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    void connection_made(pyco::transport& tr) override { t = &tr; }
    void data_received(std::span<const std::byte> d) override { t->write(d); }
};

struct collecting_protocol : pyco::protocol {
    pyco::transport* t = nullptr;
    std::string data;
    std::size_t want = 0;
    int made = 0, eofs = 0, pauses = 0, resumes = 0;
    std::optional<pyco::future<void>> done;
    std::optional<pyco::future<void>> lost_f;
    std::exception_ptr lost;
    void connection_made(pyco::transport& tr) override {
        t = &tr;
        ++made;
    }
    void data_received(std::span<const std::byte> d) override {
        data += as_text(d);
        if (done && !done->done() && data.size() >= want) done->set_result();
    }
    bool eof_received() override {
        ++eofs;
        return false;
    }
    void pause_writing() override { ++pauses; }
    void resume_writing() override { ++resumes; }
    void connection_lost(std::exception_ptr e) override {
        lost = e;
        if (lost_f && !lost_f->done()) lost_f->set_result();
    }
};

const pyco::protocol_factory echo_factory = [] { return std::make_shared<echo_protocol>(); };

// A TLS server of echo_protocol (the loop's calls) and a client connected
// to it with `proto`.
struct tls_echo_connection {
    pyco::server srv;
    std::shared_ptr<pyco::transport> t;
};

coroutine<tls_echo_connection> connect_to_tls_echo(std::shared_ptr<pyco::protocol> proto) {
    pyco::event_loop& loop = pyco::get_running_loop();
    pyco::server srv = co_await loop.create_server(echo_factory, "127.0.0.1", 0, tls_server<pyco::server_options>());
    pyco::protocol_factory factory = [proto] { return proto; };
    auto [t, p] = co_await loop.create_connection(factory, "127.0.0.1", port_of(srv),
                                                  tls_client<pyco::connection_options>());
    co_return tls_echo_connection{srv, t};
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

TEST(Ssl, ProtocolsLargeTransferBothWaysByteForByte) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        auto proto = std::make_shared<collecting_protocol>();
        proto->done = loop.create_future<void>();
        proto->lost_f = loop.create_future<void>();
        auto [srv, t] = co_await connect_to_tls_echo(proto);
        EXPECT_EQ(proto->made, 1);
        // asyncio's FLOW_CONTROL_HIGH_WATER_SSL_WRITE: 512 KiB, low = high / 4.
        EXPECT_EQ(t->get_write_buffer_limits(), (std::pair<std::size_t, std::size_t>{128 * 1024, 512 * 1024}));
        try {
            t->set_write_buffer_limits(1, 2);
            ADD_FAILURE() << "no error";
        } catch (const pyco::value_error& e) {
            EXPECT_STREQ(e.what(), "high (1) must be >= low (2) must be >= 0");
        }
        const std::string payload = pattern(8 * 1024 * 1024 + 13);
        proto->want = payload.size();
        t->write(payload);  // one big write: paused above the high-water mark
        EXPECT_GE(t->get_write_buffer_size(), 1u);
        EXPECT_EQ(proto->pauses, 1);
        co_await pyco::wait_for(*proto->done, 60s);
        EXPECT_TRUE(proto->data == payload);
        EXPECT_EQ(proto->resumes, 1);
        EXPECT_EQ(t->get_write_buffer_size(), 0u);
        t->close();
        co_await pyco::wait_for(*proto->lost_f, 10s);
        EXPECT_EQ(proto->lost, nullptr);
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// A buffered_protocol over TLS (asyncio supports BufferedProtocol over SSL).
struct buffered_collector : pyco::buffered_protocol {
    std::vector<std::byte> buf = std::vector<std::byte>(1000);  // small: many calls
    std::string data;
    std::size_t want = 0;
    std::optional<pyco::future<void>> done;
    pyco::transport* t = nullptr;
    void connection_made(pyco::transport& tr) override { t = &tr; }
    std::span<std::byte> get_buffer(std::size_t) override { return buf; }
    void buffer_updated(std::size_t n) override {
        data.append(reinterpret_cast<const char*>(buf.data()), n);
        if (done && !done->done() && data.size() >= want) done->set_result();
    }
};

TEST(Ssl, BufferedProtocolReceives) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        auto proto = std::make_shared<buffered_collector>();
        proto->done = loop.create_future<void>();
        auto [srv, t] = co_await connect_to_tls_echo(proto);
        const std::string payload = pattern(300000);
        proto->want = payload.size();
        t->write(payload);
        co_await pyco::wait_for(*proto->done, 30s);
        EXPECT_TRUE(proto->data == payload);
        t->close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// Reading paused on the TLS transport: nothing is delivered, and the
// socket's transport is paused once the layer holds its high-water mark.
TEST(Ssl, PauseReadingHoldsDataUntilResumed) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        auto proto = std::make_shared<collecting_protocol>();
        proto->done = loop.create_future<void>();
        auto [srv, t] = co_await connect_to_tls_echo(proto);
        t->pause_reading();
        EXPECT_FALSE(t->is_reading());
        const std::string payload = pattern(2 * 1024 * 1024);
        proto->want = payload.size();
        t->write(payload);
        co_await pyco::sleep(200ms);
        EXPECT_TRUE(proto->data.empty());
        t->resume_reading();
        co_await pyco::wait_for(*proto->done, 30s);
        EXPECT_TRUE(proto->data == payload);
        t->close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Ssl, StreamsLargeBothWays) {
    auto body = []() -> coroutine<void> {
        const std::string payload = pattern(5 * 1024 * 1024 + 7);
        auto handler = [&payload](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            std::string got = co_await r->readexactly(payload.size());
            EXPECT_TRUE(got == payload);
            w.write(got);
            co_await w.drain();
            w.close();
            co_await w.wait_closed();
        };
        pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0, tls_server());
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client());
        w.write(payload);
        co_await w.drain();
        std::string back = co_await r->read();
        EXPECT_EQ(back.size(), payload.size());
        EXPECT_TRUE(back == payload);
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Ssl, MutualTls) {
    auto body = []() -> coroutine<void> {
        pyco::ssl_context sctx = server_ctx();
        sctx.load_verify_locations(cert("ca.pem"));
        sctx.set_verify_mode(pyco::verify_mode::cert_required);
        std::optional<pyco::peer_certificate> seen;
        auto handler = [&seen](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            seen = std::any_cast<std::optional<pyco::peer_certificate>>(w.get_extra_info("peercert"));
            std::string line = co_await r->readline();
            w.write(line);
            co_await w.drain();
            w.close();
        };
        pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0, tls_server(sctx));
        // Without a client certificate: the server refuses.
        bool refused = false;
        try {
            auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client());
            w.write("x\n");
            std::string got = co_await r->readline();  // TLS 1.3: the refusal comes after the handshake
            refused = got.empty();
            w.close();
        } catch (const std::system_error&) {
            refused = true;
        }
        EXPECT_TRUE(refused);
        pyco::ssl_context cctx = client_ctx();
        cctx.load_cert_chain(cert("client.pem"), cert("client.key"));
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client(cctx));
        w.write("mutual\n");
        std::string got = co_await r->readline();
        EXPECT_EQ(got, "mutual\n");
        EXPECT_TRUE(seen.has_value());
        if (seen) {
            EXPECT_EQ(seen->subject.back().second, "pyco client");
        }
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Ssl, Alpn) {
    auto body = []() -> coroutine<void> {
        pyco::ssl_context sctx = server_ctx();
        sctx.set_alpn_protocols({"h2", "http/1.1"});
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server(sctx));
        pyco::ssl_context cctx = client_ctx();
        cctx.set_alpn_protocols({"http/1.1", "spdy/2"});
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client(cctx));
        auto obj = std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object"));
        EXPECT_EQ(obj.selected_alpn_protocol(), "http/1.1");
        w.close();
        co_await w.wait_closed();
        // No protocol in common: none selected, the connection works.
        pyco::ssl_context none = client_ctx();
        none.set_alpn_protocols({"spdy/2"});
        auto [r2, w2] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client(none));
        auto obj2 = std::any_cast<pyco::ssl_object>(w2.get_extra_info("ssl_object"));
        EXPECT_EQ(obj2.selected_alpn_protocol(), std::nullopt);
        w2.close();
        co_await w2.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
    EXPECT_THROW(client_ctx().set_alpn_protocols({""}), pyco::value_error);
    EXPECT_THROW(client_ctx().set_alpn_protocols({std::string(256, 'x')}), pyco::value_error);
}

TEST(Ssl, SniCallbackSwitchesTheContext) {
    auto body = []() -> coroutine<void> {
        pyco::ssl_context sctx = server_ctx();
        pyco::ssl_context other = server_ctx("other");
        std::vector<std::string> names;
        sctx.set_sni_callback([&](pyco::ssl_object& obj, const std::string& name) {
            names.push_back(name);
            EXPECT_TRUE(obj.server_side());
            if (name == "other.test") obj.set_context(other);
        });
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server(sctx));
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client(client_ctx(), "other.test"));
        auto peer = std::any_cast<std::optional<pyco::peer_certificate>>(w.get_extra_info("peercert"));
        EXPECT_TRUE(peer && peer->subject.back().second == "other.test");
        w.close();
        co_await w.wait_closed();
        auto [r2, w2] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client());
        auto peer2 = std::any_cast<std::optional<pyco::peer_certificate>>(w2.get_extra_info("peercert"));
        EXPECT_TRUE(peer2 && peer2->subject.back().second == "localhost");
        w2.close();
        co_await w2.wait_closed();
        EXPECT_EQ(names, (std::vector<std::string>{"other.test", "localhost"}));
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

TEST(Ssl, SessionResumption) {
    auto body = []() -> coroutine<void> {
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server());
        pyco::ssl_context cctx = client_ctx();
        for (int i = 0; i < 3; ++i) {
            auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv), tls_client(cctx));
            // TLS 1.3 tickets come after the handshake: one round trip.
            w.write("x\n");
            std::string got = co_await r->readline();
            EXPECT_EQ(got, "x\n");
            auto obj = std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object"));
            EXPECT_EQ(obj.session_reused(), i > 0) << "connection " << i;
            w.close();
            co_await w.wait_closed();
        }
        EXPECT_EQ(cctx.session_cache_size(), 1u);
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// loop.start_tls both ways, from a plaintext greeting (STARTTLS).
TEST(Ssl, StartTlsBothWaysOverStreams) {
    auto body = []() -> coroutine<void> {
        auto handler = [](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            std::string hello = co_await r->readline();
            EXPECT_EQ(hello, "STARTTLS\n");
            w.write("GO\n");
            co_await w.drain();
            co_await w.start_tls(server_ctx());
            EXPECT_TRUE(w.get_extra_info("ssl_object").has_value());
            std::string line = co_await r->readline();
            w.write("tls:" + line);
            co_await w.drain();
            w.close();
            co_await w.wait_closed();
        };
        pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0);
        auto [r, w] = co_await pyco::open_connection("127.0.0.1", port_of(srv));
        w.write("STARTTLS\n");
        std::string go = co_await r->readline();
        EXPECT_EQ(go, "GO\n");
        pyco::start_tls_options o;
        o.server_hostname = "localhost";
        co_await w.start_tls(client_ctx(), o);
        auto obj = std::any_cast<pyco::ssl_object>(w.get_extra_info("ssl_object"));
        EXPECT_EQ(obj.version(), "TLSv1.3");
        w.write("secret\n");
        std::string got = co_await r->readline();
        EXPECT_EQ(got, "tls:secret\n");
        std::string rest = co_await r->read();
        EXPECT_EQ(rest, "");
        w.close();
        co_await w.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// cpython gh-109051: start_tls on a transport paused for writing: the
// client's buffer is full of plain bytes the server has not read when the
// client starts TLS; its ClientHello waits behind them.
struct pausing_protocol : collecting_protocol {
    void connection_made(pyco::transport& tr) override {
        collecting_protocol::connection_made(tr);
        tr.pause_reading();  // nothing read before start_tls
    }
};

TEST(Ssl, StartTlsOnATransportPausedForWriting) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::socket ls = net_test::loopback_listener(5);
        auto proto = std::make_shared<collecting_protocol>();
        pyco::protocol_factory pf = [proto] { return proto; };
        auto [t, p] = co_await loop.create_connection(pf, "127.0.0.1", ls.getsockname().port());
        auto [conn, addr] = co_await loop.sock_accept(ls);
        t->set_write_buffer_limits(1);
        const std::string junk(8 * 1024 * 1024, 'j');
        t->write(junk);
        EXPECT_EQ(proto->pauses, 1);
        EXPECT_GT(t->get_write_buffer_size(), 0u);
        pyco::start_tls_options co;
        co.server_hostname = "localhost";
        auto client_up = pyco::create_task(loop.start_tls(t, proto, client_ctx(), co));
        co_await pyco::sleep(20ms);
        EXPECT_GT(t->get_write_buffer_size(), 0u);  // still paused, the ClientHello queued
        std::size_t got = 0;
        while (got < junk.size()) {
            std::string part = co_await loop.sock_recv(conn, std::min<std::size_t>(65536, junk.size() - got));
            if (part.empty()) break;
            got += part.size();
        }
        EXPECT_EQ(got, junk.size());
        auto sproto = std::make_shared<pausing_protocol>();
        pyco::protocol_factory sf = [sproto] { return sproto; };
        auto [st, sp] = co_await loop.connect_accepted_socket(sf, std::move(conn));
        pyco::start_tls_options so;
        so.server_side = true;
        std::shared_ptr<pyco::transport> stls = co_await loop.start_tls(st, sproto, server_ctx(), so);
        std::shared_ptr<pyco::transport> tls = co_await pyco::wait_for(client_up, 10s);
        sproto->want = 5;
        sproto->done = loop.create_future<void>();
        tls->write(std::string_view("hello"));
        co_await pyco::wait_for(*sproto->done, 10s);
        EXPECT_EQ(sproto->data, "hello");
        tls->close();
        stls->close();
    };
    pyco::run(body());
}

}  // namespace

namespace {

// A TLS server on a Unix socket; the client upgrades its plain Unix
// connection with loop.start_tls (STARTTLS over a Unix socket; ssl= on
// create_unix_connection is in ssl_unix_test.cpp).
TEST(Ssl, UnixServerWithStartTlsClient) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        std::string path = ssl_test::certs::get().dir() + "/tls-unix.sock";
        pyco::unix_server_options so;
        so.ssl = server_ctx();
        pyco::protocol_factory ef = echo_factory;
        pyco::server srv = co_await loop.create_unix_server(ef, path, so);
        auto proto = std::make_shared<collecting_protocol>();
        pyco::protocol_factory pf = [proto] { return proto; };
        auto [t, p] = co_await loop.create_unix_connection(pf, path);
        pyco::start_tls_options o;
        o.server_hostname = "localhost";
        std::shared_ptr<pyco::transport> tls = co_await loop.start_tls(t, proto, client_ctx(), o);
        proto->want = 4;
        proto->done = loop.create_future<void>();
        tls->write(std::string_view("unix"));
        co_await pyco::wait_for(*proto->done, 10s);
        EXPECT_EQ(proto->data, "unix");
        EXPECT_TRUE(tls->get_extra_info("ssl_object").has_value());
        tls->close();
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

}  // namespace

namespace {

// asyncio: over TLS, eof_received returning true has no effect (a warning
// is logged): the peer's close_notify closes the connection.
struct keep_open_protocol : collecting_protocol {
    bool eof_received() override {
        ++eofs;
        return true;
    }
};

TEST(Ssl, EofReceivedReturningTrueStillCloses) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        auto handler = [](reader_ptr r, pyco::stream_writer w) -> coroutine<void> {
            w.write("bye");
            co_await w.drain();
            w.close();
            co_await w.wait_closed();
            (void)r;
        };
        pyco::server srv = co_await pyco::start_server(handler, "127.0.0.1", 0, tls_server());
        auto proto = std::make_shared<keep_open_protocol>();
        proto->lost_f = loop.create_future<void>();
        pyco::protocol_factory pf = [proto] { return proto; };
        auto [t, p] = co_await loop.create_connection(pf, "127.0.0.1", port_of(srv),
                                                      tls_client<pyco::connection_options>());
        co_await pyco::wait_for(*proto->lost_f, 10s);
        EXPECT_EQ(proto->data, "bye");
        EXPECT_EQ(proto->eofs, 1);
        EXPECT_EQ(proto->lost, nullptr);
        EXPECT_TRUE(t->is_closing());
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

}  // namespace

namespace {

// test_sslproto.py's test_write_after_closing and test_data_received_after_closing:
// writes after close() are dropped quietly; the transport says it is closing.
TEST(Ssl, WriteAfterCloseIsIgnored) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::server srv = co_await pyco::start_server(echo_lines, "127.0.0.1", 0, tls_server());
        auto proto = std::make_shared<collecting_protocol>();
        proto->lost_f = loop.create_future<void>();
        pyco::protocol_factory pf = [proto] { return proto; };
        auto [t, p] = co_await loop.create_connection(pf, "127.0.0.1", port_of(srv),
                                                      tls_client<pyco::connection_options>());
        t->close();
        EXPECT_TRUE(t->is_closing());
        t->write(std::string_view("dropped\n"));
        t->close();  // twice: nothing more
        co_await pyco::wait_for(*proto->lost_f, 10s);
        EXPECT_EQ(proto->lost, nullptr);
        EXPECT_EQ(proto->data, "");
        t->write(std::string_view("after the loss\n"));
        srv.close();
        co_await srv.wait_closed();
    };
    pyco::run(body());
}

// test_sslproto.py's test_close_during_handshake: a server closed while a
// client is still in its handshake aborts that connection; the client's
// open_connection fails, nothing hangs.
TEST(Ssl, AbortDuringTheHandshake) {
    auto body = []() -> coroutine<void> {
        pyco::event_loop& loop = pyco::get_running_loop();
        pyco::socket ls = net_test::loopback_listener(5);
        auto client = pyco::create_task(pyco::open_connection("127.0.0.1", ls.getsockname().port(), tls_client()));
        auto [conn, addr] = co_await loop.sock_accept(ls);
        std::string hello = co_await loop.sock_recv(conn, 4096);
        EXPECT_EQ(hello.substr(0, 1), "\x16");  // a TLS handshake record
        conn.close();
        bool failed = false;
        try {
            (void)co_await pyco::wait_for(client, 10s);
        } catch (const std::system_error&) {
            failed = true;
        }
        EXPECT_TRUE(failed);
    };
    pyco::run(body());
}

}  // namespace
