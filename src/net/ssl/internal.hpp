// Private to pyco_ssl: the context's state, the error helpers.
//
// Invariants of ssl_context_state:
//   - ctx is owned (SSL_CTX_free at destruction); the SSL_CTX's ex_data slot
//     points back at this state, so OpenSSL callbacks (SNI, new session)
//     find it; it lives as long as any ssl_context handle or any SSL made
//     from it (each layer holds the state).
//   - check_hostname / verify mode follow Python's rules (context.cpp).
//   - sessions: one per host name, guarded by the mutex because a context may
//     be shared between loops on several threads.
#pragma once

#include <openssl/ssl.h>

#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <pyco/net/ssl.hpp>

namespace pyco::detail {

struct ssl_context_state final : tls_engine, std::enable_shared_from_this<ssl_context_state> {
    SSL_CTX* ctx = nullptr;
    bool server = false;
    bool check_hostname = false;
    ssl_context::sni_callback sni;
    std::shared_ptr<std::string> alpn_wire;  // server: what the ALPN callback chooses from
    std::mutex sessions_m;
    std::map<std::string, SSL_SESSION*> sessions;  // client: the last session per host (one reference each)

    ~ssl_context_state() override;
    std::shared_ptr<tls_layer> make_layer(event_loop& loop, std::shared_ptr<protocol> app,
                                          const tls_options& options) override;

    static ssl_context_state* of(SSL_CTX* c);
    void remember_session(const std::string& host, SSL_SESSION* s);  // takes a reference
    SSL_SESSION* session_for(const std::string& host);                // a new reference or null
};

ssl_context_state& state_of(const ssl_context& c);
// OpenSSL callbacks the layer needs to know about: the SSL's app data is the
// session key (the server_hostname, a std::string the layer owns).

// The error OpenSSL's queue describes (emptying the queue), as CPython's
// _ssl module builds it; `kind` is SSL_get_error's answer (0: a library call
// that failed outside a connection). ssl may be null.
std::exception_ptr make_ssl_error(int kind, const SSL* ssl);
[[noreturn]] void throw_ssl_error(int kind = 0, const SSL* ssl = nullptr);

// The SSL* of an ssl_object's shared handle.
inline SSL* ssl_of(const std::shared_ptr<void>& p) { return static_cast<SSL*>(p.get()); }

// Whether an error is an OSError in Python's hierarchy (reported only in
// debug mode, as asyncio's _fatal_error).
bool is_os_error(const std::exception_ptr& e);

}  // namespace pyco::detail
