// Certificates made at test time (none checked in), with OpenSSL's X509 API
// so that any validity period can be made (an expired one, too), into a
// fresh directory under /tmp that lives as long as the test process:
//   ca.pem                       a CA (EC P-256)
//   server.pem / server.key      localhost, 127.0.0.1, ::1, signed by the CA
//   other.pem / other.key        other.test (for SNI), signed by the CA
//   client.pem / client.key      a client certificate for mutual TLS
//   self.pem / self.key          self-signed localhost
//   expired.pem / expired.key    localhost, signed by the CA, expired
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ssl_test {

struct key_cert {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
};

inline EVP_PKEY* new_key() {
    EVP_PKEY* k = EVP_EC_gen("P-256");
    if (!k) throw std::runtime_error("EVP_EC_gen failed");
    return k;
}

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext) throw std::runtime_error(std::string("bad extension ") + value);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// Valid from now + from_s to now + to_s (seconds).
inline key_cert make_cert(const std::string& cn, const char* san, const key_cert* issuer, long from_s, long to_s,
                          bool ca, long serial) {
    key_cert kc;
    kc.key = new_key();
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, kc.key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pyco tests"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                               0);
    X509* iss = issuer ? issuer->cert : x;
    X509_set_issuer_name(x, X509_get_subject_name(iss));
    if (ca) {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, iss, NID_basic_constraints, "CA:FALSE");
    }
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (issuer) add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    if (san) add_ext(x, iss, NID_subject_alt_name, san);
    if (!X509_sign(x, issuer ? issuer->key : kc.key, EVP_sha256())) throw std::runtime_error("X509_sign failed");
    kc.cert = x;
    return kc;
}

inline void write_pem(const std::string& path, const key_cert& kc, bool with_key_file, const std::string& key_path) {
    FILE* f = std::fopen(path.c_str(), "w");
    PEM_write_X509(f, kc.cert);
    std::fclose(f);
    if (with_key_file) {
        FILE* k = std::fopen(key_path.c_str(), "w");
        PEM_write_PrivateKey(k, kc.key, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(k);
    }
}

class certs {
public:
    static const certs& get() {
        static certs c;
        return c;
    }
    std::string path(const std::string& name) const { return dir_ + "/" + name; }
    const std::string& dir() const { return dir_; }

private:
    certs() {
        char tmpl[] = "/tmp/tls-pyco-certs-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        const long year = 365L * 24 * 3600;
        key_cert ca = make_cert("pyco test CA", nullptr, nullptr, -3600, 10 * year, true, 1);
        key_cert server = make_cert("localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", &ca, -3600, year, false, 2);
        key_cert other = make_cert("other.test", "DNS:other.test", &ca, -3600, year, false, 3);
        key_cert client = make_cert("pyco client", nullptr, &ca, -3600, year, false, 4);
        key_cert self = make_cert("localhost", "DNS:localhost,IP:127.0.0.1", nullptr, -3600, year, false, 5);
        key_cert expired = make_cert("localhost", "DNS:localhost,IP:127.0.0.1", &ca, -30 * 24 * 3600,
                                     -24 * 3600, false, 6);
        write_pem(path("ca.pem"), ca, true, path("ca.key"));
        write_pem(path("server.pem"), server, true, path("server.key"));
        write_pem(path("other.pem"), other, true, path("other.key"));
        write_pem(path("client.pem"), client, true, path("client.key"));
        write_pem(path("self.pem"), self, true, path("self.key"));
        write_pem(path("expired.pem"), expired, true, path("expired.key"));
        for (key_cert* k : {&ca, &server, &other, &client, &self, &expired}) {
            X509_free(k->cert);
            EVP_PKEY_free(k->key);
        }
    }
    ~certs() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    std::string dir_;
};

}  // namespace ssl_test
