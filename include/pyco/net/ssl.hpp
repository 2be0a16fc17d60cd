// pyco/net/ssl.hpp — TLS: Python's ssl.SSLContext / SSLObject and errors,
// for the ssl= option of create_connection, create_server, open_connection,
// start_server and for start_tls.
//
//   pyco::ssl_context ctx = pyco::ssl_context::create_default_context();
//   pyco::connection_options o;
//   o.ssl = ctx;
//   auto [t, p] = co_await loop.create_connection(factory, "example.test", 443, o);
//
// Library split: the core library (pyco::pyco) does not link OpenSSL. Every
// member of ssl_context, ssl_object and the errors is defined in pyco_ssl
// (pyco::ssl, built when CMake finds OpenSSL); link it to use them. The core
// only copies ssl_context handles and reaches TLS through
// detail::tls_engine, an abstract base the context's implementation
// derives from, so the core's connection code can wrap a protocol in TLS
// without a link dependency.
//
// The TLS layer (src/net/ssl/tls_layer.cpp) is a protocol on the socket's
// transport that gives the user's protocol a transport of its own, as
// CPython's sslproto (3.11+). It runs over any pyco transport, so over
// every backend.
//
// Behaviour, as CPython 3.12's asyncio:
//   - create_connection / open_connection return after the handshake; a
//     server's protocol gets connection_made after its handshake. A failed
//     server handshake aborts that connection and the server keeps serving;
//     like CPython it is not reported (an ssl_error is an OSError) unless
//     the loop is in debug mode.
//   - ssl_handshake_timeout (60 s): connection_aborted_error "SSL handshake
//     is taking longer than N seconds: aborting the connection".
//   - close() sends close_notify after the buffered data and waits at most
//     ssl_shutdown_timeout (30 s) for the peer's, then aborts; the protocol's
//     connection_lost then gets timeout_error("SSL shutdown timed out").
//   - can_write_eof() is false; write_eof() throws not_implemented_error.
//   - get_extra_info: "ssl_object" (ssl_object), "peercert"
//     (std::optional<peer_certificate>), "cipher" (cipher_info), "compression"
//     (std::optional<std::string>), "sslcontext" (ssl_context), and whatever
//     the socket's transport knows ("peername", "sockname", "socket").
//
// Thread rule: a context may be shared between loops and threads once it is
// configured (OpenSSL's SSL_CTX is); configure it from one thread. An
// ssl_object and a TLS transport are loop-thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <pyco/errors.hpp>
#include <pyco/net/os_error.hpp>

namespace pyco {

class event_loop;
class protocol;
class transport;
class ssl_object;

// ssl.Purpose.
enum class ssl_purpose { server_auth, client_auth };
// ssl.CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED.
enum class verify_mode { cert_none, cert_optional, cert_required };
// ssl.TLSVersion.
enum class tls_version { minimum_supported, tlsv1, tlsv1_1, tlsv1_2, tlsv1_3, maximum_supported };

// NotImplementedError (the TLS transport's write_eof()).
class not_implemented_error : public runtime_error {
public:
    using runtime_error::runtime_error;
};

// ssl.SSLError, an OSError: a std::system_error whose what() is Python's
// str(): "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed:
// self-signed certificate" (without CPython's "(_ssl.c:NNNN)").
// code() holds the SSL_ERROR_* kind (ssl_category()).
class ssl_error : public std::system_error {
public:
    ssl_error(int kind, std::string message, std::string library = {}, std::string reason = {});
    const char* what() const noexcept override { return message_.c_str(); }
    // "SSL", "X509", ... and "CERTIFICATE_VERIFY_FAILED", as Python's
    // SSLError.library / .reason (empty when unknown).
    const std::string& library() const noexcept { return library_; }
    const std::string& reason() const noexcept { return reason_; }

private:
    std::string message_;
    std::string library_;
    std::string reason_;
};
const std::error_category& ssl_category() noexcept;

// ssl.SSLCertVerificationError (also Python's ValueError; here an ssl_error).
class ssl_cert_verification_error : public ssl_error {
public:
    ssl_cert_verification_error(std::string message, std::string library, std::string reason, long verify_code,
                                std::string verify_message);
    long verify_code() const noexcept { return verify_code_; }
    const std::string& verify_message() const noexcept { return verify_message_; }

private:
    long verify_code_;
    std::string verify_message_;
};
// ssl.SSLZeroReturnError: "TLS/SSL connection has been closed (EOF)".
class ssl_zero_return_error : public ssl_error {
public:
    using ssl_error::ssl_error;
};
// ssl.SSLEOFError: "EOF occurred in violation of protocol".
class ssl_eof_error : public ssl_error {
public:
    using ssl_error::ssl_error;
};

// SSLSocket.cipher(): (name, protocol, secret bits).
using cipher_info = std::tuple<std::string, std::string, int>;

// SSLSocket.getpeercert() (the parts Python's dict has): each name as
// (attribute, value) pairs, e.g. {"commonName", "localhost"}; dates in
// Python's format "Nov 29 21:00:00 2026 GMT"; subject_alt_name as
// {"DNS", "localhost"}, {"IP Address", "127.0.0.1"}.
struct peer_certificate {
    std::vector<std::pair<std::string, std::string>> subject;
    std::vector<std::pair<std::string, std::string>> issuer;
    std::string not_before;
    std::string not_after;
    std::string serial_number;  // upper-case hex
    int version = 0;            // 3 for X.509 v3
    std::vector<std::pair<std::string, std::string>> subject_alt_name;
};

namespace detail {
struct tls_options {
    bool server_side = false;
    std::string server_hostname;  // "" : no SNI and no hostname check
    std::chrono::milliseconds handshake_timeout{60'000};
    std::chrono::milliseconds shutdown_timeout{30'000};
    // start_tls: the app protocol already has its connection.
    bool call_connection_made = true;
};
// What the core sees of TLS: a layer is a protocol to put under the user's
// protocol (and over the socket's transport).
class tls_layer {
public:
    virtual ~tls_layer() = default;
    // The protocol to hand to the socket's transport.
    virtual std::shared_ptr<protocol> as_protocol() = 0;
    // The transport the user's protocol sees.
    virtual std::shared_ptr<transport> app_transport() = 0;
    // Resolves (on the loop) once the handshake is done; raises its error.
    // The core awaits this future through wait_handshake().
    virtual void on_handshake(std::function<void(std::exception_ptr)> fn) = 0;
    // Abort the connection (a cancelled create_connection / start_tls).
    virtual void abort() = 0;
};
class tls_engine {
public:
    virtual ~tls_engine() = default;
    virtual std::shared_ptr<tls_layer> make_layer(event_loop& loop, std::shared_ptr<protocol> app,
                                                  const tls_options& options) = 0;
};
}  // namespace detail

// ssl.SSLContext. A handle: copies share one context (as Python objects do).
class ssl_context {
public:
    // An empty handle (no context); the factories below make real ones.
    ssl_context() = default;

    // ssl.SSLContext(PROTOCOL_TLS_CLIENT): cert_required, check_hostname on,
    // no CA loaded.
    static ssl_context client();
    // ssl.SSLContext(PROTOCOL_TLS_SERVER): cert_none, check_hostname off.
    static ssl_context server();
    // ssl.create_default_context(purpose, cafile, capath, cadata): for
    // server_auth (a client's context) the given CAs, or the system's when
    // none is given; TLS 1.2 at least.
    static ssl_context create_default_context(ssl_purpose purpose = ssl_purpose::server_auth,
                                              std::optional<std::string> cafile = std::nullopt,
                                              std::optional<std::string> capath = std::nullopt,
                                              std::optional<std::string> cadata = std::nullopt);

    // ssl_error when a file is missing or the key does not match; password
    // for an encrypted key.
    void load_cert_chain(const std::string& certfile, std::optional<std::string> keyfile = std::nullopt,
                         std::optional<std::string> password = std::nullopt);
    // cadata: PEM text. value_error "cafile, capath and cadata cannot be all
    // omitted" when all three are missing.
    void load_verify_locations(std::optional<std::string> cafile = std::nullopt,
                               std::optional<std::string> capath = std::nullopt,
                               std::optional<std::string> cadata = std::nullopt);
    void set_default_verify_paths();
    void load_default_certs(ssl_purpose purpose = ssl_purpose::server_auth);

    pyco::verify_mode verify_mode() const;
    // value_error "Cannot set verify_mode to CERT_NONE when check_hostname is
    // enabled." as Python.
    void set_verify_mode(pyco::verify_mode m);
    bool check_hostname() const;
    // Turning it on makes verify_mode cert_required if it was cert_none.
    void set_check_hostname(bool on);
    tls_version minimum_version() const;
    void set_minimum_version(tls_version v);
    tls_version maximum_version() const;
    void set_maximum_version(tls_version v);
    // ssl_error "No cipher can be selected." when none matches.
    void set_ciphers(const std::string& ciphers);
    // value_error "ALPN protocols must be 1 to 255 in length" as Python.
    void set_alpn_protocols(const std::vector<std::string>& protocols);
    // Server side: called during the handshake with the connection and the
    // name the client asked for ("" if none). It may switch the connection
    // to another context (ssl_object::set_context); an exception fails the
    // handshake. An empty function removes it.
    using sni_callback = std::function<void(ssl_object&, const std::string& server_name)>;
    void set_sni_callback(sni_callback fn);

    // Client side: sessions are kept per context and host, and offered again
    // on the next connection (ssl_object::session_reused()).
    std::size_t session_cache_size() const;

    // SSL_CTX*.
    void* native_handle() const noexcept;
    explicit operator bool() const noexcept { return st_ != nullptr; }
    bool operator==(const ssl_context& o) const noexcept { return st_ == o.st_; }

    // For the core's connection code (inline: the core does not link
    // pyco_ssl). value_error on an empty handle.
    detail::tls_engine& engine() const {
        if (!st_) throw value_error("ssl_context is empty");
        return *st_;
    }
    explicit ssl_context(std::shared_ptr<detail::tls_engine> st) noexcept : st_(std::move(st)) {}
    const std::shared_ptr<detail::tls_engine>& state() const noexcept { return st_; }

private:
    std::shared_ptr<detail::tls_engine> st_;
};

// loop.start_tls's keyword arguments (stream_writer::start_tls takes
// server_side from how its stream was made and ignores this one).
struct start_tls_options {
    bool server_side = false;
    // Clients: SNI and the name checked; none: no SNI and no name check
    // (the chain is still verified), as CPython's start_tls.
    std::optional<std::string> server_hostname;
    std::optional<std::chrono::milliseconds> ssl_handshake_timeout;  // 60 s
    std::optional<std::chrono::milliseconds> ssl_shutdown_timeout;   // 30 s
};

// ssl.SSLObject: a view of one connection's TLS state (get_extra_info
// "ssl_object"). Valid while its transport lives (it holds the SSL).
class ssl_object {
public:
    ssl_object() = default;
    explicit ssl_object(std::shared_ptr<void> ssl) noexcept : ssl_(std::move(ssl)) {}

    // "TLSv1.3"; empty before the handshake.
    std::string version() const;
    std::optional<cipher_info> cipher() const;
    std::optional<std::string> selected_alpn_protocol() const;
    std::optional<std::string> compression() const;
    // Empty when the peer sent none (or it was not verified: Python's {}
    // for an unverified certificate is an empty peer_certificate here).
    std::optional<peer_certificate> getpeercert() const;
    // getpeercert(binary_form=True): DER bytes; empty if none.
    std::string getpeercert_der() const;
    std::optional<std::string> server_hostname() const;
    bool server_side() const;
    bool session_reused() const;
    ssl_context context() const;
    // SSLObject.context = ctx (for an SNI callback).
    void set_context(const ssl_context& ctx);
    // SSL*.
    void* native_handle() const noexcept { return ssl_.get(); }
    explicit operator bool() const noexcept { return ssl_ != nullptr; }

private:
    std::shared_ptr<void> ssl_;
};

}  // namespace pyco
