// Fuzz target: the TLS layer (src/net/ssl/tls_layer.cpp), both sides, over
// in-memory transports (fake_transport.hpp) on a real loop (the layer
// needs one for its timers and call_soon), no sockets.
//
// Byte 0 picks the mode:
//   raw server / raw client: the rest of the input, cut into chunks, is the
//     peer's byte stream to a server-side (or client-side) layer, then EOF
//     or not, then the connection is lost;
//   pipe: a pyco client and a pyco server talk through the two transports:
//     each app writes a message on connection_made, the client closes once
//     things settle (close_notify both ways). Every TLS record in flight is
//     passed, dropped, duplicated, corrupted, truncated, swapped with the
//     next or split in two, as the input says (no input left: passed).
// Checked, in every mode:
//   - the app protocol sees asyncio's order: connection_made at most once
//     and first, data only between it and EOF, at most one eof_received,
//     connection_lost exactly once when connection_made was called, never
//     otherwise;
//   - every error that reaches the app (connection_lost) or the handshake
//     waiter is a typed pyco error (an OSError: std::system_error, which
//     ssl_error and the connection errors are; or timeout_error), never
//     anything else;
//   - the handshake waiter is called exactly once;
//   - in pipe mode with no record changed (split is not a change): the
//     handshake succeeds on both sides and each app receives exactly the
//     other's message;
//   - no crash, UB or leak (ASan, UBSan, LSan in the libFuzzer build).
// Certificates (a CA and a "localhost" server certificate, EC P-256) are
// made once, in memory. The client's context is made per input, so that
// no session is resumed from an earlier input and each input replays alike.
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <typeinfo>
#include <vector>

#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/net/ssl.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

#include "../tests/net/ssl_certs.hpp"
#include "fake_transport.hpp"
#include "fuzz_input.hpp"

namespace {

using pyco_fuzz::fail;

struct certs_t {
    ssl_test::key_cert ca;
    ssl_test::key_cert server;
    pyco::ssl_context server_ctx;
};

const certs_t& certs() {
    static const certs_t c = [] {
        certs_t r;
        r.ca = ssl_test::make_cert("pyco fuzz CA", nullptr, nullptr, -3600, 86400 * 365, true, 1);
        r.server = ssl_test::make_cert("localhost", "DNS:localhost", &r.ca, -3600, 86400 * 365, false, 2);
        r.server_ctx = pyco::ssl_context::server();
        auto* ctx = static_cast<SSL_CTX*>(r.server_ctx.native_handle());
        if (SSL_CTX_use_certificate(ctx, r.server.cert) != 1 || SSL_CTX_use_PrivateKey(ctx, r.server.key) != 1) {
            fail("cannot load the server certificate");
        }
        return r;
    }();
    return c;
}

pyco::ssl_context client_ctx() {
    pyco::ssl_context c = pyco::ssl_context::client();
    auto* ctx = static_cast<SSL_CTX*>(c.native_handle());
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), certs().ca.cert) != 1) fail("cannot add the CA");
    return c;
}

void check_typed(std::exception_ptr e, const char* where) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error&) {
        return;
    } catch (const pyco::timeout_error&) {
        return;
    } catch (const std::exception& x) {
        std::fprintf(stderr, "%s: untyped error %s: %s\n", where, typeid(x).name(), x.what());
    } catch (...) {
        std::fprintf(stderr, "%s: an exception that is not a std::exception\n", where);
    }
    fail("an error outside the ssl_error / OSError family reached the app");
}

// The app protocol: checks asyncio's callback order and keeps what it got.
struct app_proto : pyco::protocol {
    const char* name = "app";
    std::string send;  // written on connection_made
    std::string got;
    int made = 0;
    int eofs = 0;
    int lost = 0;
    pyco::transport* t = nullptr;

    void connection_made(pyco::transport& tr) override {
        if (made != 0 || lost != 0) fail("connection_made twice or after connection_lost");
        ++made;
        t = &tr;
        if (!send.empty()) tr.write(std::string_view(send));
    }
    void data_received(std::span<const std::byte> data) override {
        if (made == 0 || eofs != 0 || lost != 0) fail("data_received outside connection_made .. eof/lost");
        got.append(as_text(data));
    }
    bool eof_received() override {
        if (made == 0 || eofs != 0 || lost != 0) fail("eof_received twice or out of order");
        ++eofs;
        return false;
    }
    void connection_lost(std::exception_ptr exc) override {
        if (made == 0) fail("connection_lost without connection_made");
        if (lost != 0) fail("connection_lost twice");
        ++lost;
        t = nullptr;
        check_typed(exc, name);
    }
};

// One end: the layer, its raw (fake) transport and its app.
struct side {
    std::shared_ptr<pyco_fuzz::fake_transport> raw = std::make_shared<pyco_fuzz::fake_transport>();
    std::shared_ptr<app_proto> app = std::make_shared<app_proto>();
    std::shared_ptr<pyco::detail::tls_layer> layer;
    std::shared_ptr<pyco::protocol> lp;
    bool lost_sent = false;
    int handshakes = 0;
    bool handshake_ok = false;

    side(pyco::event_loop& loop, const pyco::ssl_context& ctx, bool server) {
        app->name = server ? "server app" : "client app";
        raw->strict_after_close = false;
        pyco::detail::tls_options o;
        o.server_side = server;
        if (!server) o.server_hostname = "localhost";
        layer = ctx.engine().make_layer(loop, app, o);
        layer->on_handshake([this](std::exception_ptr e) {
            ++handshakes;
            handshake_ok = !e;
            check_typed(e, "handshake");
        });
        lp = layer->as_protocol();
        raw->set_protocol(lp);
        lp->connection_made(*raw);
    }
    bool open() const { return !raw->closed && !lost_sent; }
    void feed(std::string_view bytes) {
        if (open() && !bytes.empty()) lp->data_received(std::as_bytes(std::span<const char>(bytes.data(), bytes.size())));
    }
    void eof() {
        if (!open()) return;
        if (!lp->eof_received()) raw->close();
    }
    // What a real transport does after close()/abort(): connection_lost,
    // later. (Its argument is null: the layer reports its own error.)
    void settle_lost() {
        if (raw->closed && !lost_sent) {
            lost_sent = true;
            lp->connection_lost(nullptr);
        }
    }
    void lose(std::exception_ptr e) {
        if (lost_sent) return;
        lost_sent = true;
        lp->connection_lost(std::move(e));
    }
    void check_end() const {
        if (handshakes != 1) fail("the handshake waiter was not called exactly once");
        if (app->made != app->lost) fail("connection_made without connection_lost at the end");
    }
};

pyco::coroutine<void> tick() {
    co_await pyco::sleep(std::chrono::seconds(0));
    co_await pyco::sleep(std::chrono::seconds(0));
}

void settle(pyco::event_loop& loop, side& a, side* b = nullptr) {
    for (int i = 0; i < 3; ++i) {
        loop.run_until_complete(tick());
        a.settle_lost();
        if (b != nullptr) b->settle_lost();
    }
}

void run_raw(pyco_fuzz::input& in, bool server) {
    pyco::event_loop loop;
    {
        side s(loop, server ? certs().server_ctx : client_ctx(), server);
        const bool eof = in.flag();
        const std::size_t cut = 1 + in.below(64);
        const std::string rest = in.rest();
        for (std::size_t pos = 0; pos < rest.size() && s.open(); pos += cut) {
            s.feed(std::string_view(rest).substr(pos, cut));
            settle(loop, s);
        }
        if (eof) s.eof();
        settle(loop, s);
        s.lose(std::make_exception_ptr(pyco::connection_reset_error(ECONNRESET, "Connection reset by peer")));
        settle(loop, s);
        s.check_end();
    }
    loop.run_until_complete(tick());
}

// Splits a byte stream into TLS records (5-byte header, length in bytes
// 3..4); an incomplete tail is one more piece.
std::vector<std::string> records(const std::string& wire) {
    std::vector<std::string> r;
    std::size_t pos = 0;
    while (pos < wire.size()) {
        std::size_t len = wire.size() - pos;
        if (len >= 5) {
            const std::size_t body = (static_cast<std::size_t>(static_cast<unsigned char>(wire[pos + 3])) << 8) |
                                     static_cast<unsigned char>(wire[pos + 4]);
            len = std::min(len, 5 + body);
        }
        r.push_back(wire.substr(pos, len));
        pos += len;
    }
    return r;
}

struct wire {
    std::string bytes;
    static void on_write(void* ctx, std::string_view b) { static_cast<wire*>(ctx)->bytes.append(b); }
};

// Moves what `from` wrote to `to`, record by record, through the ops the
// input chooses. True when something moved.
bool pump(pyco_fuzz::input& in, wire& w, side& to, bool& mutated) {
    if (w.bytes.empty()) return false;
    std::vector<std::string> recs = records(w.bytes);
    w.bytes.clear();
    for (std::size_t i = 0; i < recs.size(); ++i) {
        std::string rec = recs[i];
        switch (in.below(16)) {  // 0 (no input left) and most values: pass
            case 1: mutated = true; continue;  // drop
            case 2: mutated = true; to.feed(rec); break;  // duplicate
            case 3:  // flip a byte
                mutated = true;
                rec[in.below(rec.size())] ^= static_cast<char>(1 + in.below(255));
                break;
            case 4: mutated = true; rec.resize(in.below(rec.size())); break;  // truncate
            case 5:  // swap with the next
                if (i + 1 < recs.size()) {
                    mutated = true;
                    std::swap(recs[i], recs[i + 1]);
                    rec = recs[i];
                }
                break;
            case 6: {  // split: not a change
                const std::size_t k = in.below(rec.size());
                to.feed(std::string_view(rec).substr(0, k));
                rec.erase(0, k);
                break;
            }
            default: break;
        }
        to.feed(rec);
    }
    return true;
}

void run_pipe(pyco_fuzz::input& in) {
    pyco::event_loop loop;
    {
        side client(loop, client_ctx(), false);
        side server(loop, certs().server_ctx, true);
        const std::size_t big = in.flag() ? 70000 : 0;  // more than one record
        client.app->send = in.text(in.below(48), "") + std::string(big, 'c');
        server.app->send = in.text(in.below(48), "");
        wire to_server;
        wire to_client;
        client.raw->on_write = &wire::on_write;
        client.raw->on_write_ctx = &to_server;
        server.raw->on_write = &wire::on_write;
        server.raw->on_write_ctx = &to_client;
        // The client's hello was written before on_write was set.
        to_server.bytes = client.raw->written;
        bool mutated = false;
        bool closed = false;
        for (int round = 0; round < 64; ++round) {
            bool moved = pump(in, to_server, server, mutated);
            settle(loop, client, &server);
            moved = pump(in, to_client, client, mutated) || moved;
            settle(loop, client, &server);
            if (!moved) {
                if (closed || client.app->t == nullptr) break;
                client.app->t->close();  // close_notify, then the peer's
                closed = true;
                settle(loop, client, &server);
            }
        }
        const bool clean = !mutated;
        if (clean) {
            if (!client.handshake_ok || !server.handshake_ok) fail("handshake failed with no record changed");
            if (server.app->got != client.app->send || client.app->got != server.app->send) {
                std::fprintf(stderr, "server got %zu of %zu bytes, client got %zu of %zu\n", server.app->got.size(),
                             client.app->send.size(), client.app->got.size(), server.app->send.size());
                fail("app data not intact with no record changed");
            }
        }
        // Whatever is still open goes away as a reset.
        for (side* s : {&client, &server}) {
            s->eof();
            settle(loop, client, &server);
            s->lose(std::make_exception_ptr(pyco::connection_reset_error(ECONNRESET, "Connection reset by peer")));
            settle(loop, client, &server);
        }
        client.check_end();
        server.check_end();
    }
    loop.run_until_complete(tick());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    (void)certs();
    pyco_fuzz::input in(data, size);
    switch (in.below(3)) {
        case 0: run_raw(in, true); break;
        case 1: run_raw(in, false); break;
        default: run_pipe(in); break;
    }
    return 0;
}
