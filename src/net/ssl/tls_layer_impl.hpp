// Private to pyco_ssl: the TLS layer's classes, shared by its two files:
//   tls_layer.cpp    the protocol on the raw transport, the handshake and
//                    shutdown flows, errors;
//   tls_records.cpp  records both ways (encrypt, read, flow control), the
//                    custom BIO, and the app's transport.
//
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
#pragma once

#include <openssl/ssl.h>

#include <any>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pyco/event_loop.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/ssl.hpp>
#include <pyco/net/transport.hpp>

#include "internal.hpp"

namespace pyco::detail::tls_impl {

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
                   std::string_view name);

BIO_METHOD* bio_method();

class tls_layer_impl final : public tls_layer, public protocol, public std::enable_shared_from_this<tls_layer_impl> {
public:
    tls_layer_impl(event_loop& loop, std::shared_ptr<ssl_context_state> ctx, std::shared_ptr<protocol> app,
                   const tls_options& o);

    ~tls_layer_impl() override {
        if (SSL* s = ssl()) SSL_set_ex_data(s, 0, nullptr);
    }

    SSL* ssl() const noexcept { return static_cast<SSL*>(ssl_.get()); }

    // --- tls_layer ---
    std::shared_ptr<protocol> as_protocol() override { return std::shared_ptr<protocol>(shared_from_this(), this); }
    std::shared_ptr<transport> app_transport() override;
    void on_handshake(std::function<void(std::exception_ptr)> fn) override;
    void abort() override { do_abort(); }

    // --- protocol (from the raw transport) ---
    void connection_made(transport& t) override {
        raw_ = &t;
        start_handshake();
    }

    void data_received(std::span<const std::byte> data) override;
    bool eof_received() override;

    void connection_lost(std::exception_ptr exc) override;

    void pause_writing() override {}
    void resume_writing() override {
        std::shared_ptr<tls_layer_impl> keep = shared_from_this();
        control_app_writing();
    }

    // --- what the app transport calls ---
    std::any extra(std::string_view name) const;
    void start_shutdown();
    void do_abort(std::exception_ptr exc = nullptr);
    void write_appdata(std::span<const std::byte> data);

    void pause_app_reading() { app_reading_paused_ = true; }

    void resume_app_reading();

    bool app_reading() const noexcept { return !app_reading_paused_; }

    std::size_t write_buffer_size() const noexcept;
    void set_limits(std::optional<std::size_t> high, std::optional<std::size_t> low);
    std::pair<std::size_t, std::size_t> limits() const noexcept { return {low_, high_}; }

    void set_app(std::shared_ptr<protocol> p) {
        app_ = std::move(p);
        app_buffered_ = dynamic_cast<buffered_protocol*>(app_.get());
    }
    const std::shared_ptr<protocol>& app() const noexcept { return app_; }

    // --- the BIO ---
    int bio_read(char* dst, std::size_t n, std::size_t* got);
    void bio_write(const char* src, std::size_t n) {
        auto* b = reinterpret_cast<const std::byte*>(src);
        out_.insert(out_.end(), b, b + n);
    }
    std::size_t incoming() const noexcept { return in_.size() - in_pos_ + view_.size(); }

    // After a chunk: what OpenSSL did not take (a partial record, or all of
    // it while the app is paused) is kept in `in_`, its consumed front
    // dropped first so that `in_` never grows past what is unread.
    void keep_unread();

private:
    void set_state(tls_state s) { state_ = s; }

    void wake_waiter(std::exception_ptr e);
    void start_handshake();
    void check_handshake_timeout();
    void do_handshake();
    void on_handshake_complete(std::exception_ptr exc);

    void check_shutdown_timeout() {
        if (state_ != tls_state::flushing && state_ != tls_state::shutdown) return;
        do_abort(std::make_exception_ptr(timeout_error("SSL shutdown timed out")));
    }

    void do_flush();
    void do_shutdown();
    void on_shutdown_complete(std::exception_ptr exc);

    // Encrypts from data into out_, sending as it goes; the bytes taken.
    std::size_t encrypt(std::span<const std::byte> data);
    void do_write();
    void flush_out();
    void do_read();

    // Decrypts and delivers until OpenSSL wants more, the app pauses, or the
    // state changes under us (the app closed or aborted).
    void read_some();
    void call_eof_received();
    void control_app_writing();
    void control_ssl_reading();
    void fatal_error(std::exception_ptr exc, const std::string& message);

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

}  // namespace pyco::detail::tls_impl
