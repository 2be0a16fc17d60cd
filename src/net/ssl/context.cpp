// ssl_context (Python's ssl.SSLContext) and ssl_object (ssl.SSLObject) over
// OpenSSL 3.
//
// Python's rules kept here: PROTOCOL_TLS_CLIENT verifies and checks the host
// name; PROTOCOL_TLS_SERVER neither; TLS 1.2 is the default minimum (3.10+);
// check_hostname on raises verify_mode to cert_required, and cert_none is
// refused while check_hostname is on. Contexts set OP_NO_COMPRESSION and
// OP_CIPHER_SERVER_PREFERENCE as CPython's do.
//
// Thread rule: configuring a context is not thread-safe (as OpenSSL's
// SSL_CTX); using it from several loops at once is (the session cache has a
// mutex).
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <pyco/net/os_error.hpp>

#include "internal.hpp"

namespace pyco {

namespace detail {

namespace {

int state_index() {
    static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

// An SSL's extra reference to the context an SNI callback switched it to.
void free_ctx_ref(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<std::shared_ptr<tls_engine>*>(ptr);
}
int switched_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_ctx_ref);
    return idx;
}

// Client: keep the newest session of each host (TLS 1.3 sends it after the
// handshake).
int on_new_session(SSL* ssl, SSL_SESSION* sess) {
    auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, 0));
    ssl_context_state* st = ssl_context_state::of(SSL_get_SSL_CTX(ssl));
    if (!key || !st) return 0;
    st->remember_session(*key, sess);
    return 1;  // we took the reference
}

int on_servername(SSL* ssl, int* alert, void*) {
    ssl_context_state* st = ssl_context_state::of(SSL_get_SSL_CTX(ssl));
    if (!st || !st->sni) return SSL_TLSEXT_ERR_OK;
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    ssl_object view(std::shared_ptr<void>(std::shared_ptr<void>(), ssl));  // not owning
    try {
        st->sni(view, name ? std::string(name) : std::string());
    } catch (...) {
        *alert = SSL_AD_HANDSHAKE_FAILURE;  // Python: the handshake fails
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

int on_alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
    auto* wire = static_cast<std::string*>(arg);
    unsigned char* o = nullptr;
    int r = SSL_select_next_proto(&o, outlen, reinterpret_cast<const unsigned char*>(wire->data()),
                                  static_cast<unsigned>(wire->size()), in, inlen);
    if (r != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

std::string name_entries_text(X509_NAME* name, std::vector<std::pair<std::string, std::string>>& out) {
    for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
        X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
        const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        unsigned char* utf8 = nullptr;
        int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        std::string v = n >= 0 ? std::string(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n)) : "";
        OPENSSL_free(utf8);
        const char* ln = nid != NID_undef ? OBJ_nid2ln(nid) : nullptr;
        out.emplace_back(ln ? ln : "", v);
    }
    return {};
}

std::string time_text(const ASN1_TIME* t) {
    BIO* b = BIO_new(BIO_s_mem());
    ASN1_TIME_print(b, t);
    char* p = nullptr;
    long n = BIO_ctrl(b, BIO_CTRL_INFO, 0, &p);
    std::string s(p, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

}  // namespace

ssl_context_state::~ssl_context_state() {
    for (auto& [k, s] : sessions) SSL_SESSION_free(s);
    if (ctx) SSL_CTX_free(ctx);
}

ssl_context_state* ssl_context_state::of(SSL_CTX* c) {
    return static_cast<ssl_context_state*>(SSL_CTX_get_ex_data(c, state_index()));
}

void ssl_context_state::remember_session(const std::string& host, SSL_SESSION* s) {
    std::lock_guard lk(sessions_m);
    auto [it, fresh] = sessions.emplace(host, s);
    if (!fresh) {
        SSL_SESSION_free(it->second);
        it->second = s;
    }
}

SSL_SESSION* ssl_context_state::session_for(const std::string& host) {
    std::lock_guard lk(sessions_m);
    auto it = sessions.find(host);
    if (it == sessions.end()) return nullptr;
    SSL_SESSION_up_ref(it->second);
    return it->second;
}

ssl_context_state& state_of(const ssl_context& c) {
    if (!c) throw value_error("ssl_context is empty");
    return static_cast<ssl_context_state&>(*c.state());
}

}  // namespace detail

using detail::state_of;

namespace {

ssl_context make(bool server) {
    auto st = std::make_shared<detail::ssl_context_state>();
    st->server = server;
    st->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!st->ctx) detail::throw_ssl_error();
    SSL_CTX_set_ex_data(st->ctx, detail::state_index(), st.get());
    SSL_CTX_set_options(st->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_DH_USE |
                                     SSL_OP_SINGLE_ECDH_USE | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(st->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_AUTO_RETRY);
    SSL_CTX_clear_mode(st->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_min_proto_version(st->ctx, TLS1_2_VERSION);
    if (server) {
        SSL_CTX_set_verify(st->ctx, SSL_VERIFY_NONE, nullptr);
        static const unsigned char sid[] = "pyco";
        SSL_CTX_set_session_id_context(st->ctx, sid, sizeof sid - 1);
    } else {
        SSL_CTX_set_verify(st->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        st->check_hostname = true;
        SSL_CTX_set_session_cache_mode(st->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(st->ctx, &detail::on_new_session);
    }
    SSL_CTX_callback_ctrl(st->ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(&detail::on_servername));
    return ssl_context(std::move(st));
}

int to_openssl(tls_version v) {
    switch (v) {
        case tls_version::tlsv1: return TLS1_VERSION;
        case tls_version::tlsv1_1: return TLS1_1_VERSION;
        case tls_version::tlsv1_2: return TLS1_2_VERSION;
        case tls_version::tlsv1_3: return TLS1_3_VERSION;
        default: return 0;  // minimum_supported / maximum_supported
    }
}

tls_version from_openssl(long v, bool max) {
    switch (v) {
        case TLS1_VERSION: return tls_version::tlsv1;
        case TLS1_1_VERSION: return tls_version::tlsv1_1;
        case TLS1_2_VERSION: return tls_version::tlsv1_2;
        case TLS1_3_VERSION: return tls_version::tlsv1_3;
        default: return max ? tls_version::maximum_supported : tls_version::minimum_supported;
    }
}

void require_file(const std::string& path) {
    if (::access(path.c_str(), R_OK) != 0) throw_os_error(errno, path);
}

}  // namespace

ssl_context ssl_context::client() { return make(false); }
ssl_context ssl_context::server() { return make(true); }

ssl_context ssl_context::create_default_context(ssl_purpose purpose, std::optional<std::string> cafile,
                                                std::optional<std::string> capath, std::optional<std::string> cadata) {
    ssl_context c = purpose == ssl_purpose::server_auth ? client() : server();
    if (cafile || capath || cadata) {
        c.load_verify_locations(std::move(cafile), std::move(capath), std::move(cadata));
    } else if (c.verify_mode() != pyco::verify_mode::cert_none) {
        c.load_default_certs(purpose);
    }
    return c;
}

void ssl_context::load_cert_chain(const std::string& certfile, std::optional<std::string> keyfile,
                                  std::optional<std::string> password) {
    SSL_CTX* ctx = state_of(*this).ctx;
    require_file(certfile);
    const std::string key = keyfile.value_or(certfile);
    require_file(key);
    std::string pw = password.value_or(std::string());
    SSL_CTX_set_default_passwd_cb_userdata(ctx, password ? pw.data() : nullptr);
    ERR_clear_error();
    bool ok = SSL_CTX_use_certificate_chain_file(ctx, certfile.c_str()) == 1 &&
              SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) == 1 &&
              SSL_CTX_check_private_key(ctx) == 1;
    SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
    if (!ok) detail::throw_ssl_error();
}

void ssl_context::load_verify_locations(std::optional<std::string> cafile, std::optional<std::string> capath,
                                        std::optional<std::string> cadata) {
    SSL_CTX* ctx = state_of(*this).ctx;
    if (!cafile && !capath && !cadata) throw value_error("cafile, capath and cadata cannot be all omitted");
    ERR_clear_error();
    if (cafile) require_file(*cafile);
    if (cafile || capath) {
        if (SSL_CTX_load_verify_locations(ctx, cafile ? cafile->c_str() : nullptr,
                                          capath ? capath->c_str() : nullptr) != 1) {
            detail::throw_ssl_error();
        }
    }
    if (cadata) {
        BIO* b = BIO_new_mem_buf(cadata->data(), static_cast<int>(cadata->size()));
        X509_STORE* store = SSL_CTX_get_cert_store(ctx);
        int loaded = 0;
        while (X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr)) {
            X509_STORE_add_cert(store, x);
            X509_free(x);
            ++loaded;
        }
        BIO_free(b);
        ERR_clear_error();  // the PEM reader's end of input
        if (loaded == 0) throw ssl_error(SSL_ERROR_SSL, "[X509: NO_CERTIFICATE_OR_CRL_FOUND] no certificate or crl found",
                                         "X509", "NO_CERTIFICATE_OR_CRL_FOUND");
    }
}

void ssl_context::set_default_verify_paths() {
    if (SSL_CTX_set_default_verify_paths(state_of(*this).ctx) != 1) detail::throw_ssl_error();
}

void ssl_context::load_default_certs(ssl_purpose) { set_default_verify_paths(); }

verify_mode ssl_context::verify_mode() const {
    const int m = SSL_CTX_get_verify_mode(state_of(*this).ctx);
    if (!(m & SSL_VERIFY_PEER)) return pyco::verify_mode::cert_none;
    return (m & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) ? pyco::verify_mode::cert_required : pyco::verify_mode::cert_optional;
}

void ssl_context::set_verify_mode(pyco::verify_mode m) {
    auto& st = state_of(*this);
    if (m == pyco::verify_mode::cert_none && st.check_hostname) {
        throw value_error("Cannot set verify_mode to CERT_NONE when check_hostname is enabled.");
    }
    int mode = SSL_VERIFY_NONE;
    if (m == pyco::verify_mode::cert_optional) mode = SSL_VERIFY_PEER;
    if (m == pyco::verify_mode::cert_required) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(st.ctx, mode, nullptr);
}

bool ssl_context::check_hostname() const { return state_of(*this).check_hostname; }

void ssl_context::set_check_hostname(bool on) {
    auto& st = state_of(*this);
    if (on && verify_mode() == pyco::verify_mode::cert_none) set_verify_mode(pyco::verify_mode::cert_required);
    st.check_hostname = on;
}

tls_version ssl_context::minimum_version() const {
    return from_openssl(SSL_CTX_get_min_proto_version(state_of(*this).ctx), false);
}
void ssl_context::set_minimum_version(tls_version v) {
    SSL_CTX_set_min_proto_version(state_of(*this).ctx, to_openssl(v));
}
tls_version ssl_context::maximum_version() const {
    return from_openssl(SSL_CTX_get_max_proto_version(state_of(*this).ctx), true);
}
void ssl_context::set_maximum_version(tls_version v) {
    SSL_CTX_set_max_proto_version(state_of(*this).ctx, to_openssl(v));
}

void ssl_context::set_ciphers(const std::string& ciphers) {
    ERR_clear_error();
    if (SSL_CTX_set_cipher_list(state_of(*this).ctx, ciphers.c_str()) != 1) {
        ERR_clear_error();
        throw ssl_error(SSL_ERROR_SSL, "No cipher can be selected.");
    }
}

void ssl_context::set_alpn_protocols(const std::vector<std::string>& protocols) {
    auto& st = state_of(*this);
    auto wire = std::make_shared<std::string>();
    for (const std::string& p : protocols) {
        if (p.empty() || p.size() > 255) throw value_error("ALPN protocols must be 1 to 255 in length");
        wire->push_back(static_cast<char>(p.size()));
        *wire += p;
    }
    if (st.server) {
        // The callback's argument lives as long as the context's state.
        st.alpn_wire = wire;
        SSL_CTX_set_alpn_select_cb(st.ctx, &detail::on_alpn_select, st.alpn_wire.get());
    } else {
        SSL_CTX_set_alpn_protos(st.ctx, reinterpret_cast<const unsigned char*>(wire->data()),
                                static_cast<unsigned>(wire->size()));
    }
}

void ssl_context::set_sni_callback(sni_callback fn) { state_of(*this).sni = std::move(fn); }

std::size_t ssl_context::session_cache_size() const {
    auto& st = state_of(*this);
    std::lock_guard lk(st.sessions_m);
    return st.sessions.size();
}

void* ssl_context::native_handle() const noexcept {
    return st_ ? static_cast<detail::ssl_context_state&>(*st_).ctx : nullptr;
}

// --- ssl_object ---

std::string ssl_object::version() const {
    SSL* s = detail::ssl_of(ssl_);
    if (!s || !SSL_is_init_finished(s)) return {};
    return SSL_get_version(s);
}

std::optional<cipher_info> ssl_object::cipher() const {
    SSL* s = detail::ssl_of(ssl_);
    const SSL_CIPHER* c = s ? SSL_get_current_cipher(s) : nullptr;
    if (!c) return std::nullopt;
    return cipher_info{SSL_CIPHER_get_name(c), SSL_CIPHER_get_version(c), SSL_CIPHER_get_bits(c, nullptr)};
}

std::optional<std::string> ssl_object::selected_alpn_protocol() const {
    SSL* s = detail::ssl_of(ssl_);
    if (!s) return std::nullopt;
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(s, &p, &n);
    if (!p || n == 0) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(p), n);
}

std::optional<std::string> ssl_object::compression() const {
    SSL* s = detail::ssl_of(ssl_);
    const COMP_METHOD* m = s ? SSL_get_current_compression(s) : nullptr;
    if (!m) return std::nullopt;
    return std::string(SSL_COMP_get_name(m));
}

std::optional<peer_certificate> ssl_object::getpeercert() const {
    SSL* s = detail::ssl_of(ssl_);
    if (!s || !SSL_is_init_finished(s)) return std::nullopt;
    X509* x = SSL_get1_peer_certificate(s);
    if (!x) return std::nullopt;
    peer_certificate pc;
    if (SSL_get_verify_mode(s) & SSL_VERIFY_PEER) {  // Python: {} for a certificate not verified
        detail::name_entries_text(X509_get_subject_name(x), pc.subject);
        detail::name_entries_text(X509_get_issuer_name(x), pc.issuer);
        pc.not_before = detail::time_text(X509_get0_notBefore(x));
        pc.not_after = detail::time_text(X509_get0_notAfter(x));
        pc.version = static_cast<int>(X509_get_version(x)) + 1;
        BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
        char* hex = BN_bn2hex(bn);
        pc.serial_number = hex;
        OPENSSL_free(hex);
        BN_free(bn);
        auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
        for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
            GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
            if (g->type == GEN_DNS) {
                const ASN1_STRING* d = g->d.dNSName;
                pc.subject_alt_name.emplace_back(
                    "DNS", std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)),
                                       static_cast<std::size_t>(ASN1_STRING_length(d))));
            } else if (g->type == GEN_IPADD) {
                const unsigned char* b = ASN1_STRING_get0_data(g->d.iPAddress);
                const int n = ASN1_STRING_length(g->d.iPAddress);
                char buf[64];
                if (n == 4) {
                    std::snprintf(buf, sizeof buf, "%d.%d.%d.%d", b[0], b[1], b[2], b[3]);
                } else if (n == 16) {  // CPython's form: every group, upper-case hex
                    std::snprintf(buf, sizeof buf, "%X:%X:%X:%X:%X:%X:%X:%X", b[0] << 8 | b[1], b[2] << 8 | b[3],
                                  b[4] << 8 | b[5], b[6] << 8 | b[7], b[8] << 8 | b[9], b[10] << 8 | b[11],
                                  b[12] << 8 | b[13], b[14] << 8 | b[15]);
                } else {
                    std::snprintf(buf, sizeof buf, "<invalid>");
                }
                pc.subject_alt_name.emplace_back("IP Address", buf);
            }
        }
        GENERAL_NAMES_free(names);
    }
    X509_free(x);
    return pc;
}

std::string ssl_object::getpeercert_der() const {
    SSL* s = detail::ssl_of(ssl_);
    X509* x = s ? SSL_get1_peer_certificate(s) : nullptr;
    if (!x) return {};
    unsigned char* der = nullptr;
    const int n = i2d_X509(x, &der);
    std::string out = n > 0 ? std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(n)) : "";
    OPENSSL_free(der);
    X509_free(x);
    return out;
}

std::optional<std::string> ssl_object::server_hostname() const {
    SSL* s = detail::ssl_of(ssl_);
    auto* key = s ? static_cast<const std::string*>(SSL_get_ex_data(s, 0)) : nullptr;
    if (!s || SSL_is_server(s) || !key || key->empty()) return std::nullopt;
    return *key;
}

bool ssl_object::server_side() const {
    SSL* s = detail::ssl_of(ssl_);
    return s && SSL_is_server(s);
}

bool ssl_object::session_reused() const {
    SSL* s = detail::ssl_of(ssl_);
    return s && SSL_session_reused(s);
}

ssl_context ssl_object::context() const {
    SSL* s = detail::ssl_of(ssl_);
    if (!s) return {};
    detail::ssl_context_state* st = detail::ssl_context_state::of(SSL_get_SSL_CTX(s));
    if (!st) return {};
    return ssl_context(st->shared_from_this());
}

void ssl_object::set_context(const ssl_context& ctx) {
    SSL* s = detail::ssl_of(ssl_);
    if (!s) throw value_error("ssl_object is empty");
    detail::ssl_context_state& st = state_of(ctx);
    SSL_set_SSL_CTX(s, st.ctx);
    // Keep the new context's state alive as long as the SSL.
    delete static_cast<std::shared_ptr<detail::tls_engine>*>(SSL_get_ex_data(s, detail::switched_index()));
    SSL_set_ex_data(s, detail::switched_index(), new std::shared_ptr<detail::tls_engine>(ctx.state()));
}

}  // namespace pyco
