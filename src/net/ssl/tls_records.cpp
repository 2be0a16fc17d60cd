// The TLS layer's records (tls_layer_impl.hpp): encrypting app writes and
// decrypting into the app with both directions' flow control, the custom
// BIO OpenSSL reads and writes through, and the app's transport.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

#include <pyco/errors.hpp>

#include "tls_layer_impl.hpp"

namespace pyco::detail::tls_impl {

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

void tls_layer_impl::write_appdata(std::span<const std::byte> data) {
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

void tls_layer_impl::resume_app_reading() {
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

std::size_t tls_layer_impl::write_buffer_size() const noexcept {
    std::size_t n = backlog_.size() - backlog_pos_ + out_.size();
    if (raw_) n += raw_->get_write_buffer_size();
    return n;
}

void tls_layer_impl::set_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) {
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

int tls_layer_impl::bio_read(char* dst, std::size_t n, std::size_t* got) {
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

void tls_layer_impl::keep_unread() {
    if (in_pos_ > 0) {
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_pos_));
        in_pos_ = 0;
    }
    if (!view_.empty()) {
        in_.insert(in_.end(), view_.begin(), view_.end());
        view_ = {};
    }
}

std::size_t tls_layer_impl::encrypt(std::span<const std::byte> data) {
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

void tls_layer_impl::do_write() {
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

void tls_layer_impl::flush_out() {
    if (out_.empty()) return;
    if (raw_ && !raw_->is_closing()) {
        raw_->write(std::span<const std::byte>(out_.data(), out_.size()));
    }
    out_.clear();
}

void tls_layer_impl::do_read() {
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

void tls_layer_impl::read_some() {
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
            // Nothing left to decrypt, here or inside OpenSSL: skip the call
            // that could only answer WANT_READ (a small message's second
            // SSL_read, its error-queue clearing and SSL_get_error).
            if (incoming() == 0 && SSL_has_pending(ssl()) == 0) {
                err = SSL_ERROR_WANT_READ;
                break;
            }
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

void tls_layer_impl::call_eof_received() {
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

void tls_layer_impl::control_app_writing() {
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

void tls_layer_impl::control_ssl_reading() {
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

}  // namespace pyco::detail::tls_impl
