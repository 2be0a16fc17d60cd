// The TLS layer's protocol side: the handshake and shutdown flows and
// fatal errors (the state machine of tls_layer_impl.hpp); records, the BIO
// and the app's transport are in tls_records.cpp.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <sstream>

#include <pyco/net/os_error.hpp>

#include "tls_layer_impl.hpp"

namespace pyco::detail {

namespace tls_impl {

tls_layer_impl::tls_layer_impl(event_loop& loop, std::shared_ptr<ssl_context_state> ctx, std::shared_ptr<protocol> app,
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

std::shared_ptr<transport> tls_layer_impl::app_transport() {
    if (!app_transport_) {
        app_transport_ = std::make_shared<tls_transport>(weak_from_this());
        app_transport_->ssl_ = ssl_;
        app_transport_->ctx_ = ssl_context(ctx_);
        app_transport_->info_ = info_;
    }
    return app_transport_;
}

void tls_layer_impl::on_handshake(std::function<void(std::exception_ptr)> fn) {
    if (handshake_done_) {
        fn(handshake_exc_);
        return;
    }
    waiter_ = std::move(fn);
}

void tls_layer_impl::data_received(std::span<const std::byte> data) {
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

bool tls_layer_impl::eof_received() {
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

void tls_layer_impl::connection_lost(std::exception_ptr exc) {
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

std::any tls_layer_impl::extra(std::string_view name) const {
    std::any a = tls_extra(ssl_, ssl_context(ctx_), info_.get(), name);
    if (a.has_value() || !raw_) return a;
    return raw_->get_extra_info(name);
}

void tls_layer_impl::start_shutdown() {
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

void tls_layer_impl::do_abort(std::exception_ptr exc) {
    state_ = tls_state::unwrapped;
    if (app_transport_) app_transport_->closed_ = true;
    if (raw_) {
        if (exc && !pending_exc_) pending_exc_ = exc;
        raw_->abort();
    }
}

void tls_layer_impl::wake_waiter(std::exception_ptr e) {
    if (handshake_done_) return;
    handshake_done_ = true;
    handshake_exc_ = e;
    if (auto w = std::exchange(waiter_, nullptr)) w(e);
}

void tls_layer_impl::start_handshake() {
    set_state(tls_state::do_handshake);
    std::weak_ptr<tls_layer_impl> weak = weak_from_this();
    handshake_timer_ = loop_->call_later(opts_.handshake_timeout, [weak] {
        if (auto l = weak.lock()) l->check_handshake_timeout();
    });
    do_handshake();
}

void tls_layer_impl::check_handshake_timeout() {
    if (state_ != tls_state::do_handshake) return;
    std::ostringstream secs;
    secs << static_cast<double>(opts_.handshake_timeout.count()) / 1000.0;
    std::string s = secs.str();
    if (s.find('.') == std::string::npos) s += ".0";  // Python prints a float: 60.0
    fatal_error(std::make_exception_ptr(connection_aborted_error(
                    ECONNABORTED, "SSL handshake is taking longer than " + s + " seconds: aborting the connection")),
                "Fatal error on transport");
}

void tls_layer_impl::do_handshake() {
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

void tls_layer_impl::on_handshake_complete(std::exception_ptr exc) {
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

void tls_layer_impl::do_flush() {
    do_read();
    if (state_ != tls_state::flushing) return;
    set_state(tls_state::shutdown);
    do_shutdown();
}

void tls_layer_impl::do_shutdown() {
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

void tls_layer_impl::on_shutdown_complete(std::exception_ptr exc) {
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

void tls_layer_impl::fatal_error(std::exception_ptr exc, const std::string& message) {
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

}  // namespace tls_impl

std::shared_ptr<tls_layer> ssl_context_state::make_layer(event_loop& loop, std::shared_ptr<protocol> app,
                                                         const tls_options& options) {
    if (options.server_side != server) {
        throw value_error(server ? "Cannot create a client socket with a PROTOCOL_TLS_SERVER context"
                                 : "Cannot create a server socket with a PROTOCOL_TLS_CLIENT context");
    }
    return std::make_shared<tls_impl::tls_layer_impl>(loop, shared_from_this(), std::move(app), options);
}

}  // namespace pyco::detail
