// ssl_error and its subclasses, made from OpenSSL's error queue with the
// shape of CPython's _ssl module (fill_and_set_sslerror): "[LIB: REASON]
// reason text", and for a failed certificate verification "...: <what
// X509_verify_cert_error_string says>" or, for a name mismatch, Python 3.12's
// "Hostname mismatch, certificate is not valid for 'x'.". The mnemonic
// REASON is the reason text upper-cased with '_' for ' ' (OpenSSL keeps no
// mnemonic at run time; every reason pyco's tests meet matches CPython's).
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <string>

#include "internal.hpp"

namespace pyco {

namespace {

class ssl_category_t final : public std::error_category {
public:
    const char* name() const noexcept override { return "ssl"; }
    std::string message(int kind) const override {
        switch (kind) {
            case SSL_ERROR_SSL: return "SSL_ERROR_SSL";
            case SSL_ERROR_WANT_READ: return "SSL_ERROR_WANT_READ";
            case SSL_ERROR_WANT_WRITE: return "SSL_ERROR_WANT_WRITE";
            case SSL_ERROR_SYSCALL: return "SSL_ERROR_SYSCALL";
            case SSL_ERROR_ZERO_RETURN: return "SSL_ERROR_ZERO_RETURN";
            default: {
                std::string m = "SSL error ";
                m += std::to_string(kind);
                return m;
            }
        }
    }
};

std::string lib_name(int lib) {
    switch (lib) {
        case ERR_LIB_SSL: return "SSL";
        case ERR_LIB_X509: return "X509";
        case ERR_LIB_X509V3: return "X509V3";
        case ERR_LIB_PEM: return "PEM";
        case ERR_LIB_EVP: return "EVP";
        case ERR_LIB_ASN1: return "ASN1";
        case ERR_LIB_SYS: return "SYS";
        case ERR_LIB_BIO: return "BIO";
        case ERR_LIB_PKCS12: return "PKCS12";
        default: {
            const char* s = ERR_lib_error_string(ERR_PACK(lib, 0, 0));
            return s ? s : "";
        }
    }
}

std::string mnemonic(const std::string& text) {
    std::string m;
    for (char c : text) m += c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return m;
}

}  // namespace

const std::error_category& ssl_category() noexcept {
    static const ssl_category_t c;
    return c;
}

ssl_error::ssl_error(int kind, std::string message, std::string library, std::string reason)
    : std::system_error(kind, ssl_category(), message),
      message_(std::move(message)),
      library_(std::move(library)),
      reason_(std::move(reason)) {}

ssl_cert_verification_error::ssl_cert_verification_error(std::string message, std::string library,
                                                         std::string reason, long verify_code,
                                                         std::string verify_message)
    : ssl_error(SSL_ERROR_SSL, std::move(message), std::move(library), std::move(reason)),
      verify_code_(verify_code),
      verify_message_(std::move(verify_message)) {}

namespace detail {

std::exception_ptr make_ssl_error(int kind, const SSL* ssl) {
    // The earliest error is the cause (CPython looks at ERR_peek_last_error,
    // which is what the failing call pushed last: take the last).
    unsigned long e = 0;
    for (unsigned long x; (x = ERR_get_error()) != 0;) e = x;
    if (kind == SSL_ERROR_ZERO_RETURN) {
        return std::make_exception_ptr(
            ssl_zero_return_error(kind, "TLS/SSL connection has been closed (EOF)"));
    }
    if (e == 0) {
        if (kind == SSL_ERROR_SYSCALL || kind == SSL_ERROR_SSL) {
            return std::make_exception_ptr(ssl_eof_error(8 /* Python's SSL_ERROR_EOF */, "EOF occurred in violation of protocol"));
        }
        return std::make_exception_ptr(ssl_error(kind, "unknown error"));
    }
    const int lib = ERR_GET_LIB(e);
    const int reason = ERR_GET_REASON(e);
    const char* rs = ERR_reason_error_string(e);
    std::string reason_text = rs ? rs : "unknown error";
    std::string libs = lib_name(lib);
    std::string reason_m = mnemonic(reason_text);
    if (lib == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return std::make_exception_ptr(ssl_eof_error(8 /* Python's SSL_ERROR_EOF */, "[" + libs + ": " + reason_m +
                                                                             "] EOF occurred in violation of protocol",
                                                     libs, reason_m));
    }
    if (lib == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED && ssl) {
        const long code = SSL_get_verify_result(ssl);
        std::string vm;
        if (code == X509_V_ERR_HOSTNAME_MISMATCH || code == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            X509_VERIFY_PARAM* p = SSL_get0_param(const_cast<SSL*>(ssl));
            const char* host = X509_VERIFY_PARAM_get0_host(p, 0);
            std::string name = host ? host : "";
            if (code == X509_V_ERR_HOSTNAME_MISMATCH) {
                vm = "Hostname mismatch, certificate is not valid for '" + name + "'.";
            } else {
                char* ip = X509_VERIFY_PARAM_get1_ip_asc(p);
                name = ip ? ip : name;
                OPENSSL_free(ip);
                vm = "IP address mismatch, certificate is not valid for '" + name + "'.";
            }
        } else {
            vm = X509_verify_cert_error_string(code);
        }
        std::string msg = "[" + libs + ": " + reason_m + "] " + reason_text + ": " + vm;
        return std::make_exception_ptr(ssl_cert_verification_error(msg, libs, reason_m, code, vm));
    }
    std::string msg = "[" + libs + ": " + reason_m + "] " + reason_text;
    return std::make_exception_ptr(ssl_error(kind ? kind : SSL_ERROR_SSL, msg, libs, reason_m));
}

void throw_ssl_error(int kind, const SSL* ssl) { std::rethrow_exception(make_ssl_error(kind, ssl)); }

bool is_os_error(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace detail
}  // namespace pyco
