// The TLS layer: a protocol on the socket's transport ("raw") that gives the
// user's protocol ("app") a transport of its own — CPython 3.11+'s
// sslproto.SSLProtocol and _SSLProtocolTransport, whose states and flows
// this follows (UNWRAPPED -> DO_HANDSHAKE -> WRAPPED -> FLUSHING -> SHUTDOWN).
//
// I/O with OpenSSL goes through one custom BIO instead of two memory BIOs:
//   - incoming: a chunk from the raw transport is read by OpenSSL in place
//     (`view_`) while data_received runs; only an unconsumed tail (a partial
//     record, or bytes held while the app paused reading) is copied into
//     `in_`. So bulk data is copied once less than with a memory BIO.
//   - outgoing: records are appended to `out_` (its capacity kept), then
//     handed to the raw transport in one write, which sends in place when
//     its buffer is empty. App writes are encrypted in chunks of
//     `write_chunk` so that a large write is sent while it is encrypted and
//     nothing is copied quadratically.
//
// Flow control (bounded, as CPython's):
//   - app writes: the app is paused when the backlog (plaintext not yet
//     encrypted, only during a handshake) + `out_` + the raw transport's
//     buffer reach the high-water mark (512 KiB, asyncio's
//     FLOW_CONTROL_HIGH_WATER_SSL_WRITE), resumed at low (high / 4); the raw
//     transport's resume_writing re-checks.
//   - reads: pause_reading on the app transport stops deliveries; ciphertext
//     then accumulates in `in_` and the raw transport is paused once it
//     holds 256 KiB (FLOW_CONTROL_HIGH_WATER_SSL_READ), resumed at 64 KiB.
//
// Ownership: the raw transport holds this layer (its protocol) until its
// connection_lost; the layer holds the app transport; the app transport
// holds the layer only weakly, so there is no cycle: a user keeping the app
// transport after the connection is gone gets a transport whose calls do
// nothing. `raw_` is valid from connection_made to connection_lost (the
// protocol contract).
//
// Re-entrancy: the app's callbacks may call back (write, close, abort,
// pause_reading) from inside data_received; do_read notices a state change
// after each delivery and stops, and a nested do_read only marks `again_`.
//
// Thread rule: loop thread only. Cancellation: the core aborts the layer
// when the task awaiting the handshake is cancelled (connection.cpp).
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

#include <pyco/event_loop.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/transport.hpp>

#include "internal.hpp"

namespace pyco::detail {

namespace {

constexpr std::size_t write_high_default = 512 * 1024;
constexpr std::size_t read_high = 256 * 1024;
constexpr std::size_t read_low = 64 * 1024;
constexpr std::size_t read_chunk = 256 * 1024;
constexpr std::size_t write_chunk = 256 * 1024;

enum class tls_state { unwrapped, do_handshake, wrapped, flushing, shutdown };
enum class app_state { init, con_made, eof, con_lost };

class tls_layer_impl;

class tls_transport final : public transport {
public:
    explicit tls_transport(std::weak_ptr<tls_layer_impl> l) : layer_(std::move(l)) {}
    std::any get_extra_info(std::string_view name) const override;
    bool is_closing() const noexcept override { return closed_; }
    void close() override;
    bool is_reading() const noexcept override;
    void pause_reading() override;
    void resume_reading() override;
    void write(std::span<const std::byte> data) override;
    void writelines(std::span<const std::string_view> lines) override;
    void write_eof() override { throw not_implemented_error(); }
    bool can_write_eof() const noexcept override { return false; }
    void abort() override;
    std::size_t get_write_buffer_size() const noexcept override;
    std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept override;
    void set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) override;
    void set_protocol(std::shared_ptr<protocol> p) override;
    std::shared_ptr<protocol> get_protocol() const override;

    bool closed_ = false;
    // asyncio keeps the TLS extra info after the connection is gone.
    std::shared_ptr<void> ssl_;
    ssl_context ctx_;
    std::shared_ptr<const struct tls_info> info_;

private:
    std::weak_ptr<tls_layer_impl> layer_;
};

// What the handshake established, taken once (as sslproto's _extra).
struct tls_info {
    std::optional<peer_certificate> peercert;
    std::optional<cipher_info> cipher;
    std::optional<std::string> compression;
};

std::any tls_extra(const std::shared_ptr<void>& ssl, const ssl_context& ctx, const tls_info* info,
                   std::string_view name) {
    if (name == "ssl_object") return ssl_object(ssl);
    if (name == "sslcontext") return ctx;
    if (info) {
        if (name == "peercert") return info->peercert;
        if (name == "cipher") {
            if (info->cipher) return *info->cipher;
            return {};
        }
        if (name == "compression") return info->compression;
    }
    return {};
}

BIO_METHOD* bio_method();

class tls_layer_impl final : public tls_layer, public protocol, public std::enable_shared_from_this<tls_layer_impl> {
public:
    tls_layer_impl(event_loop& loop, std::shared_ptr<ssl_context_state> ctx, std::shared_ptr<protocol> app,
                   const tls_options& o)
        : loop_(&loop), ctx_(std::move(ctx)), opts_(o) {
        set_app(std::move(app));
        SSL* s = SSL_new(ctx_->ctx);
        if (!s) throw_ssl_error();
        ssl_ = std::shared_ptr<void>(s, [](void* p) { SSL_free(static_cast<SSL*>(p)); });
        BIO* b = BIO_new(bio_method());
        BIO_set_data(b, this);
        BIO_set_init(b, 1);
        SSL_set_bio(s, b, b);  // one reference for both directions
        host_ = o.server_side ? std::string() : o.server_hostname;
        SSL_set_ex_data(s, 0, &host_);
        if (o.server_side) {
            SSL_set_accept_state(s);
        } else {
            SSL_set_connect_state(s);
            if (!host_.empty()) {
                in6_addr a6{};
                in_addr a4{};
                const bool ip = ::inet_pton(AF_INET, host_.c_str(), &a4) == 1 ||
                                ::inet_pton(AF_INET6, host_.c_str(), &a6) == 1;
                if (!ip) SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, host_.data());  // SNI: names only (RFC 6066)
                if (ctx_->check_hostname) {
                    X509_VERIFY_PARAM* p = SSL_get0_param(s);
                    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(p, host_.c_str())
                                      : X509_VERIFY_PARAM_set1_host(p, host_.c_str(), 0);
                    if (ok != 1) throw_ssl_error();
                }
            }
            // No name: no SNI and no name check, the chain is still verified
            // (CPython 3.12's SSLObject, unlike SSLSocket, does not refuse it).
            if (SSL_SESSION* sess = ctx_->session_for(host_)) {
                SSL_set_session(s, sess);
                SSL_SESSION_free(sess);
            }
        }
    }

    ~tls_layer_impl() override {
        if (SSL* s = ssl()) SSL_set_ex_data(s, 0, nullptr);
    }

    SSL* ssl() const noexcept { return static_cast<SSL*>(ssl_.get()); }

    // --- tls_layer ---
    std::shared_ptr<protocol> as_protocol() override { return std::shared_ptr<protocol>(shared_from_this(), this); }
    std::shared_ptr<transport> app_transport() override {
        if (!app_transport_) {
            app_transport_ = std::make_shared<tls_transport>(weak_from_this());
            app_transport_->ssl_ = ssl_;
            app_transport_->ctx_ = ssl_context(ctx_);
            app_transport_->info_ = info_;
        }
        return app_transport_;
    }
    void on_handshake(std::function<void(std::exception_ptr)> fn) override {
        if (handshake_done_) {
            fn(handshake_exc_);
            return;
        }
        waiter_ = std::move(fn);
    }
    void abort() override { do_abort(); }

    // --- protocol (from the raw transport) ---
    void connection_made(transport& t) override {
        raw_ = &t;
        start_handshake();
    }

    void data_received(std::span<const std::byte> data) override {
        std::shared_ptr<tls_layer_impl> keep = shared_from_this();
        // OpenSSL reads what `in_` holds first, then `data` in place.
        view_ = data;
        switch (state_) {
            case tls_state::do_handshake: do_handshake(); break;
            case tls_state::wrapped: do_read(); break;
            case tls_state::flushing: do_flush(); break;
            case tls_state::shutdown: do_shutdown(); break;
            case tls_state::unwrapped: break;
        }
        keep_unread();
        control_ssl_reading();
    }

    bool eof_received() override {
        std::shared_ptr<tls_layer_impl> keep = shared_from_this();
        eof_received_ = true;
        switch (state_) {
            case tls_state::do_handshake:
                on_handshake_complete(std::make_exception_ptr(
                    connection_reset_error(ECONNRESET, "Connection lost during the SSL handshake")));
                break;
            case tls_state::wrapped:
                set_state(tls_state::flushing);
                if (app_reading_paused_) return true;
                do_flush();
                break;
            case tls_state::flushing:
                do_write();
                set_state(tls_state::shutdown);
                do_shutdown();
                break;
            case tls_state::shutdown: do_shutdown(); break;
            case tls_state::unwrapped: break;
        }
        return false;
    }

    void connection_lost(std::exception_ptr exc) override {
        std::shared_ptr<tls_layer_impl> keep = shared_from_this();
        if (pending_exc_) exc = std::exchange(pending_exc_, nullptr);
        backlog_.clear();
        backlog_pos_ = 0;
        out_.clear();
        if (app_transport_) app_transport_->closed_ = true;
        const bool had_handshake = state_ != tls_state::do_handshake;
        state_ = tls_state::unwrapped;
        raw_ = nullptr;
        handshake_timer_.cancel();
        shutdown_timer_.cancel();
        if (!handshake_done_) {
            wake_waiter(exc ? exc
                            : std::make_exception_ptr(connection_reset_error(
                                  ECONNRESET, "Connection lost during the SSL handshake")));
        }
        if (had_handshake && (app_state_ == app_state::con_made || app_state_ == app_state::eof)) {
            app_state_ = app_state::con_lost;
            std::shared_ptr<protocol> app = app_;
            app->connection_lost(exc);
        }
        app_transport_.reset();
    }

    void pause_writing() override {}
    void resume_writing() override {
        std::shared_ptr<tls_layer_impl> keep = shared_from_this();
        control_app_writing();
    }

    // --- what the app transport calls ---
    std::any extra(std::string_view name) const {
        std::any a = tls_extra(ssl_, ssl_context(ctx_), info_.get(), name);
        if (a.has_value() || !raw_) return a;
        return raw_->get_extra_info(name);
    }

    void start_shutdown() {
        if (state_ == tls_state::flushing || state_ == tls_state::shutdown || state_ == tls_state::unwrapped) return;
        if (app_transport_) app_transport_->closed_ = true;
        if (state_ == tls_state::do_handshake) {
            do_abort();
            return;
        }
        set_state(tls_state::flushing);
        std::weak_ptr<tls_layer_impl> weak = weak_from_this();
        shutdown_timer_ = loop_->call_later(opts_.shutdown_timeout, [weak] {
            if (auto l = weak.lock()) l->check_shutdown_timeout();
        });
        do_flush();
    }

    void do_abort(std::exception_ptr exc = nullptr) {
        state_ = tls_state::unwrapped;
        if (app_transport_) app_transport_->closed_ = true;
        if (raw_) {
            if (exc && !pending_exc_) pending_exc_ = exc;
            raw_->abort();
        }
    }

    void write_appdata(std::span<const std::byte> data) {
        if (state_ == tls_state::flushing || state_ == tls_state::shutdown || state_ == tls_state::unwrapped) {
            return;  // asyncio drops them (and warns from the fifth on)
        }
        if (data.empty()) return;
        if (state_ == tls_state::wrapped && backlog_pos_ == backlog_.size()) {
            backlog_.clear();
            backlog_pos_ = 0;
            const std::size_t n = encrypt(data);
            if (n < data.size()) backlog_.insert(backlog_.end(), data.begin() + static_cast<std::ptrdiff_t>(n), data.end());
            flush_out();
        } else {
            backlog_.insert(backlog_.end(), data.begin(), data.end());
            if (state_ == tls_state::wrapped) do_write();
        }
        control_app_writing();
    }

    void pause_app_reading() { app_reading_paused_ = true; }

    void resume_app_reading() {
        if (!app_reading_paused_) return;
        app_reading_paused_ = false;
        std::weak_ptr<tls_layer_impl> weak = weak_from_this();
        loop_->call_soon([weak] {
            auto l = weak.lock();
            if (!l) return;
            if (l->state_ == tls_state::wrapped) {
                l->do_read();
            } else if (l->state_ == tls_state::flushing) {
                l->do_flush();
            } else if (l->state_ == tls_state::shutdown) {
                l->do_shutdown();
            }
            l->control_ssl_reading();
        });
    }

    bool app_reading() const noexcept { return !app_reading_paused_; }

    std::size_t write_buffer_size() const noexcept {
        std::size_t n = backlog_.size() - backlog_pos_ + out_.size();
        if (raw_) n += raw_->get_write_buffer_size();
        return n;
    }

    void set_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) {
        std::size_t h = 0, l = 0;
        if (!high) {
            if (!low) {
                h = write_high_default;
            } else {
                h = 4 * *low;
            }
        } else {
            h = *high;
        }
        l = low ? *low : h / 4;
        if (h < l) {
            std::string m = "high (";
            m += std::to_string(h);
            m += ") must be >= low (";
            m += std::to_string(l);
            m += ") must be >= 0";
            throw value_error(m);
        }
        high_ = h;
        low_ = l;
        control_app_writing();
    }
    std::pair<std::size_t, std::size_t> limits() const noexcept { return {low_, high_}; }

    void set_app(std::shared_ptr<protocol> p) {
        app_ = std::move(p);
        app_buffered_ = dynamic_cast<buffered_protocol*>(app_.get());
    }
    const std::shared_ptr<protocol>& app() const noexcept { return app_; }

    // --- the BIO ---
    int bio_read(char* dst, std::size_t n, std::size_t* got) {
        std::size_t k = 0;
        if (in_pos_ < in_.size()) {
            k = std::min(n, in_.size() - in_pos_);
            std::memcpy(dst, in_.data() + in_pos_, k);
            in_pos_ += k;
            if (in_pos_ == in_.size()) {
                in_.clear();
                in_pos_ = 0;
            }
        } else if (!view_.empty()) {
            k = std::min(n, view_.size());
            std::memcpy(dst, view_.data(), k);
            view_ = view_.subspan(k);
        }
        *got = k;
        return k > 0 ? 1 : 0;
    }
    void bio_write(const char* src, std::size_t n) {
        auto* b = reinterpret_cast<const std::byte*>(src);
        out_.insert(out_.end(), b, b + n);
    }
    std::size_t incoming() const noexcept { return in_.size() - in_pos_ + view_.size(); }

    // After a chunk: what OpenSSL did not take (a partial record, or all of
    // it while the app is paused) is kept in `in_`, its consumed front
    // dropped first so that `in_` never grows past what is unread.
    void keep_unread() {
        if (in_pos_ > 0) {
            in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_pos_));
            in_pos_ = 0;
        }
        if (!view_.empty()) {
            in_.insert(in_.end(), view_.begin(), view_.end());
            view_ = {};
        }
    }

private:
    void set_state(tls_state s) { state_ = s; }

    void wake_waiter(std::exception_ptr e) {
        if (handshake_done_) return;
        handshake_done_ = true;
        handshake_exc_ = e;
        if (auto w = std::exchange(waiter_, nullptr)) w(e);
    }

    void start_handshake() {
        set_state(tls_state::do_handshake);
        std::weak_ptr<tls_layer_impl> weak = weak_from_this();
        handshake_timer_ = loop_->call_later(opts_.handshake_timeout, [weak] {
            if (auto l = weak.lock()) l->check_handshake_timeout();
        });
        do_handshake();
    }

    void check_handshake_timeout() {
        if (state_ != tls_state::do_handshake) return;
        std::ostringstream secs;
        secs << static_cast<double>(opts_.handshake_timeout.count()) / 1000.0;
        std::string s = secs.str();
        if (s.find('.') == std::string::npos) s += ".0";  // Python prints a float: 60.0
        fatal_error(std::make_exception_ptr(connection_aborted_error(
                        ECONNABORTED, "SSL handshake is taking longer than " + s + " seconds: aborting the connection")),
                    "Fatal error on transport");
    }

    void do_handshake() {
        ERR_clear_error();
        const int r = SSL_do_handshake(ssl());
        if (r == 1) {
            flush_out();
            on_handshake_complete(nullptr);
            return;
        }
        const int err = SSL_get_error(ssl(), r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            flush_out();
            return;
        }
        std::exception_ptr e = make_ssl_error(err, ssl());
        flush_out();  // the alert, so that the peer learns why
        on_handshake_complete(e);
    }

    void on_handshake_complete(std::exception_ptr exc) {
        handshake_timer_.cancel();
        if (exc) {
            bool cert = false;
            try {
                std::rethrow_exception(exc);
            } catch (const ssl_cert_verification_error&) {
                cert = true;
            } catch (...) {
            }
            set_state(tls_state::unwrapped);
            fatal_error(exc, cert ? "SSL handshake failed on verifying the certificate" : "SSL handshake failed");
            wake_waiter(exc);
            return;
        }
        set_state(tls_state::wrapped);
        {
            ssl_object o(ssl_);
            auto info = std::make_shared<tls_info>();
            info->peercert = o.getpeercert();
            info->cipher = o.cipher();
            info->compression = o.compression();
            info_ = std::move(info);
        }
        if (app_transport_) app_transport_->info_ = info_;
        if (app_state_ == app_state::init) {
            app_state_ = app_state::con_made;
            if (opts_.call_connection_made) {
                std::shared_ptr<protocol> app = app_;
                std::shared_ptr<transport> t = app_transport();
                try {
                    app->connection_made(*t);
                } catch (...) {
                    fatal_error(std::current_exception(), "Error calling connection_made()");
                    wake_waiter(nullptr);
                    return;
                }
            }
        }
        wake_waiter(nullptr);
        if (backlog_pos_ < backlog_.size()) do_write();
        do_read();
    }

    void check_shutdown_timeout() {
        if (state_ != tls_state::flushing && state_ != tls_state::shutdown) return;
        do_abort(std::make_exception_ptr(timeout_error("SSL shutdown timed out")));
    }

    void do_flush() {
        do_read();
        if (state_ != tls_state::flushing) return;
        set_state(tls_state::shutdown);
        do_shutdown();
    }

    void do_shutdown() {
        if (state_ != tls_state::shutdown) return;
        if (!eof_received_) {
            ERR_clear_error();
            const int r = SSL_shutdown(ssl());
            if (r != 1) {
                const int err = r == 0 ? SSL_ERROR_WANT_READ : SSL_get_error(ssl(), r);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                    flush_out();
                    return;
                }
                flush_out();
                on_shutdown_complete(make_ssl_error(err, ssl()));
                return;
            }
        }
        flush_out();
        call_eof_received();
        on_shutdown_complete(nullptr);
    }

    void on_shutdown_complete(std::exception_ptr exc) {
        shutdown_timer_.cancel();
        if (exc) {
            fatal_error(exc, "Fatal error on transport");
            return;
        }
        if (!raw_) return;
        std::weak_ptr<transport> weak = raw_->shared_from_this();
        loop_->call_soon([weak] {
            if (auto t = weak.lock()) t->close();
        });
    }

    // Encrypts from data into out_, sending as it goes; the bytes taken.
    std::size_t encrypt(std::span<const std::byte> data) {
        std::size_t done = 0;
        while (done < data.size()) {
            const std::size_t chunk = std::min(write_chunk, data.size() - done);
            std::size_t n = 0;
            ERR_clear_error();
            const int r = SSL_write_ex(ssl(), data.data() + done, chunk, &n);
            if (r != 1) {
                const int err = SSL_get_error(ssl(), r);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
                fatal_error(make_ssl_error(err, ssl()), "Fatal error on SSL protocol");
                return data.size();
            }
            done += n;
            flush_out();
        }
        return done;
    }

    void do_write() {
        if (backlog_pos_ < backlog_.size()) {
            std::span<const std::byte> rest(backlog_.data() + backlog_pos_, backlog_.size() - backlog_pos_);
            backlog_pos_ += encrypt(rest);
            if (backlog_pos_ >= backlog_.size()) {
                backlog_.clear();
                backlog_pos_ = 0;
            }
        }
        flush_out();
        control_app_writing();
    }

    void flush_out() {
        if (out_.empty()) return;
        if (raw_ && !raw_->is_closing()) {
            raw_->write(std::span<const std::byte>(out_.data(), out_.size()));
        }
        out_.clear();
    }

    void do_read() {
        if (state_ != tls_state::wrapped && state_ != tls_state::flushing) return;
        if (reading_) {
            again_ = true;
            return;
        }
        reading_ = true;
        try {
            do {
                again_ = false;
                if (!app_reading_paused_) read_some();
            } while (again_ && (state_ == tls_state::wrapped || state_ == tls_state::flushing));
        } catch (...) {
            reading_ = false;
            fatal_error(std::current_exception(), "Fatal error on SSL protocol");
            return;
        }
        reading_ = false;
        if (state_ == tls_state::wrapped || state_ == tls_state::flushing) {
            if (backlog_pos_ < backlog_.size()) {
                do_write();
            } else {
                flush_out();
            }
        }
    }

    // Decrypts and delivers until OpenSSL wants more, the app pauses, or the
    // state changes under us (the app closed or aborted).
    void read_some() {
        bool zero = false;
        for (;;) {
            if (app_reading_paused_ || (state_ != tls_state::wrapped && state_ != tls_state::flushing)) return;
            std::span<std::byte> room;
            if (app_buffered_) {
                room = app_buffered_->get_buffer(incoming() ? incoming() : read_chunk);
                if (room.empty()) throw runtime_error("get_buffer() returned an empty buffer");
            } else {
                if (rbuf_.size() < read_chunk) rbuf_.resize(read_chunk);
                room = rbuf_;
            }
            std::size_t got = 0;
            int err = SSL_ERROR_NONE;
            while (got < room.size()) {
                std::size_t n = 0;
                ERR_clear_error();
                const int r = SSL_read_ex(ssl(), room.data() + got, room.size() - got, &n);
                if (r != 1) {
                    err = SSL_get_error(ssl(), r);
                    break;
                }
                got += n;
            }
            if (got > 0) {
                std::shared_ptr<protocol> app = app_;  // the app may replace itself
                if (app_buffered_) {
                    app_buffered_->buffer_updated(got);
                } else {
                    app->data_received(std::span<const std::byte>(room.data(), got));
                }
            }
            if (err == SSL_ERROR_NONE) continue;  // the room was full: there may be more
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
            if (err == SSL_ERROR_ZERO_RETURN) {
                zero = true;
                break;
            }
            std::rethrow_exception(make_ssl_error(err, ssl()));
        }
        if (zero) {  // the peer's close_notify
            call_eof_received();
            start_shutdown();
        }
    }

    void call_eof_received() {
        if (app_state_ != app_state::con_made) return;
        app_state_ = app_state::eof;
        try {
            std::shared_ptr<protocol> app = app_;
            if (app->eof_received()) {
                detail::log_warning("returning true from eof_received() has no effect when using ssl");  // asyncio's
            }
        } catch (...) {
            fatal_error(std::current_exception(), "Error calling eof_received()");
        }
    }

    void control_app_writing() {
        const std::size_t size = write_buffer_size();
        if (size >= high_ && !app_writing_paused_ && app_state_ == app_state::con_made) {
            app_writing_paused_ = true;
            try {
                app_->pause_writing();
            } catch (...) {
                loop_->call_exception_handler({"protocol.pause_writing() failed", std::current_exception(), {}, {}});
            }
        } else if (size <= low_ && app_writing_paused_) {
            app_writing_paused_ = false;
            try {
                app_->resume_writing();
            } catch (...) {
                loop_->call_exception_handler({"protocol.resume_writing() failed", std::current_exception(), {}, {}});
            }
        }
    }

    void control_ssl_reading() {
        if (!raw_) return;
        const std::size_t size = incoming();
        if (size >= read_high && !ssl_reading_paused_) {
            ssl_reading_paused_ = true;
            raw_->pause_reading();
        } else if (size <= read_low && ssl_reading_paused_) {
            ssl_reading_paused_ = false;
            raw_->resume_reading();
        }
    }

    void fatal_error(std::exception_ptr exc, const std::string& message) {
        do_abort(exc);
        bool cancelled = false;
        try {
            std::rethrow_exception(exc);
        } catch (const cancelled_error&) {
            cancelled = true;
        } catch (...) {
        }
        if (cancelled) return;
        // asyncio's _fatal_error: an OSError (SSLError is one) is logged in
        // debug mode only.
        if (!is_os_error(exc) || loop_->get_debug()) loop_->call_exception_handler({message, exc, {}, {}});
    }

    event_loop* loop_;
    std::shared_ptr<ssl_context_state> ctx_;
    tls_options opts_;
    std::shared_ptr<void> ssl_;
    std::string host_;  // the session key and SSL's app data (server_hostname)
    std::shared_ptr<protocol> app_;
    buffered_protocol* app_buffered_ = nullptr;
    std::shared_ptr<tls_transport> app_transport_;
    transport* raw_ = nullptr;
    tls_state state_ = tls_state::unwrapped;
    app_state app_state_ = app_state::init;
    std::function<void(std::exception_ptr)> waiter_;
    bool handshake_done_ = false;
    std::shared_ptr<const tls_info> info_;  // once the handshake succeeded
    std::exception_ptr handshake_exc_;
    std::exception_ptr pending_exc_;  // what connection_lost reports after our abort
    handle handshake_timer_;
    handle shutdown_timer_;
    std::vector<std::byte> in_;
    std::size_t in_pos_ = 0;
    std::span<const std::byte> view_;
    std::vector<std::byte> out_;
    std::vector<std::byte> backlog_;
    std::size_t backlog_pos_ = 0;
    std::vector<std::byte> rbuf_;
    std::size_t high_ = write_high_default;
    std::size_t low_ = write_high_default / 4;
    bool eof_received_ = false;
    bool app_reading_paused_ = false;
    bool app_writing_paused_ = false;
    bool ssl_reading_paused_ = false;
    bool reading_ = false;
    bool again_ = false;
};

// --- the BIO ---

int bio_write_ex(BIO* b, const char* data, std::size_t n, std::size_t* written) {
    static_cast<tls_layer_impl*>(BIO_get_data(b))->bio_write(data, n);
    *written = n;
    return 1;
}

int bio_read_ex(BIO* b, char* data, std::size_t n, std::size_t* got) {
    BIO_clear_retry_flags(b);
    const int ok = static_cast<tls_layer_impl*>(BIO_get_data(b))->bio_read(data, n, got);
    if (!ok) BIO_set_retry_read(b);
    return ok;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
        case BIO_CTRL_FLUSH: return 1;
        case BIO_CTRL_PENDING: return static_cast<long>(static_cast<tls_layer_impl*>(BIO_get_data(b))->incoming());
        case BIO_CTRL_WPENDING: return 0;
        default: return 0;
    }
}

BIO_METHOD* bio_method() {
    static BIO_METHOD* m = [] {
        BIO_METHOD* x = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pyco tls");
        BIO_meth_set_write_ex(x, &bio_write_ex);
        BIO_meth_set_read_ex(x, &bio_read_ex);
        BIO_meth_set_ctrl(x, &bio_ctrl);
        return x;
    }();
    return m;
}

// --- the app transport ---

std::any tls_transport::get_extra_info(std::string_view name) const {
    if (auto l = layer_.lock()) return l->extra(name);
    return tls_extra(ssl_, ctx_, info_.get(), name);
}
void tls_transport::close() {
    if (closed_) return;
    closed_ = true;
    if (auto l = layer_.lock()) l->start_shutdown();
}
bool tls_transport::is_reading() const noexcept {
    auto l = layer_.lock();
    return l && l->app_reading();
}
void tls_transport::pause_reading() {
    if (auto l = layer_.lock()) l->pause_app_reading();
}
void tls_transport::resume_reading() {
    if (auto l = layer_.lock()) l->resume_app_reading();
}
void tls_transport::write(std::span<const std::byte> data) {
    if (auto l = layer_.lock()) l->write_appdata(data);
}
void tls_transport::writelines(std::span<const std::string_view> lines) {
    auto l = layer_.lock();
    if (!l) return;
    std::size_t total = 0;
    for (std::string_view s : lines) total += s.size();
    std::vector<std::byte> joined;
    joined.reserve(total);
    for (std::string_view s : lines) {
        auto b = std::as_bytes(std::span<const char>(s.data(), s.size()));
        joined.insert(joined.end(), b.begin(), b.end());
    }
    l->write_appdata(joined);
}
void tls_transport::abort() {
    closed_ = true;
    if (auto l = layer_.lock()) l->do_abort();
}
std::size_t tls_transport::get_write_buffer_size() const noexcept {
    auto l = layer_.lock();
    return l ? l->write_buffer_size() : 0;
}
std::pair<std::size_t, std::size_t> tls_transport::get_write_buffer_limits() const noexcept {
    auto l = layer_.lock();
    return l ? l->limits() : std::pair<std::size_t, std::size_t>{write_high_default / 4, write_high_default};
}
void tls_transport::set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) {
    if (auto l = layer_.lock()) l->set_limits(high, low);
}
void tls_transport::set_protocol(std::shared_ptr<protocol> p) {
    if (auto l = layer_.lock()) l->set_app(std::move(p));
}
std::shared_ptr<protocol> tls_transport::get_protocol() const {
    auto l = layer_.lock();
    return l ? l->app() : nullptr;
}

}  // namespace

std::shared_ptr<tls_layer> ssl_context_state::make_layer(event_loop& loop, std::shared_ptr<protocol> app,
                                                         const tls_options& options) {
    if (options.server_side != server) {
        throw value_error(server ? "Cannot create a client socket with a PROTOCOL_TLS_SERVER context"
                                 : "Cannot create a server socket with a PROTOCOL_TLS_CLIENT context");
    }
    return std::make_shared<tls_layer_impl>(loop, shared_from_this(), std::move(app), options);
}

}  // namespace pyco::detail
