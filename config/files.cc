// Checks of the files a configuration names, and of the OpenSSL strings it
// holds, with OpenSSL itself: what would fail when the dataplane loads them
// fails here first, at the directive that names them.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/schema.h"

namespace terminus::config::detail {

namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string dq(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string openssl_reason() {
    unsigned long e = ERR_peek_last_error();
    std::string r;
    if (e != 0) {
        const char* reason = ERR_reason_error_string(e);
        r = reason ? reason : "unknown OpenSSL error";
    }
    ERR_clear_error();
    return r.empty() ? "not valid" : r;
}

// Reads the whole file; reports why it cannot.
bool read_all(Builder& b, const std::string& path, const Location& loc, std::string& out) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        b.error(loc, "cannot open " + dq(path) + ": " + std::strerror(errno));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        b.error(loc, dq(path) + " is not a regular file");
        return false;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        b.error(loc, "cannot read " + dq(path) + ": " + std::strerror(errno));
        return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

// Returns true if KEY was checked before; *ok receives the earlier verdict.
bool seen_before(Builder& b, const std::string& key, bool* ok) {
    auto it = b.checked_files.find(key);
    if (it == b.checked_files.end()) return false;
    *ok = it->second;
    return true;
}

bool remember(Builder& b, const std::string& key, bool ok) {
    b.checked_files[key] = ok;
    return ok;
}

std::vector<std::string> read_passwords(const std::string& path) {
    std::vector<std::string> out;
    if (path.empty()) return out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) out.push_back(line);
    }
    return out;
}

struct PasswordCtx {
    const std::string* password;
};

int password_cb(char* buf, int size, int, void* u) {
    auto* ctx = static_cast<PasswordCtx*>(u);
    if (!ctx || !ctx->password) return 0;
    int n = static_cast<int>(ctx->password->size());
    if (n > size) return 0;
    std::memcpy(buf, ctx->password->data(), static_cast<size_t>(n));
    return n;
}

const char* key_type_name(const EVP_PKEY* k) {
    if (EVP_PKEY_is_a(k, "RSA")) return "RSA";
    if (EVP_PKEY_is_a(k, "EC")) return "ECDSA";
    if (EVP_PKEY_is_a(k, "ED25519")) return "Ed25519";
    if (EVP_PKEY_is_a(k, "ED448")) return "Ed448";
    return "other";
}

}  // namespace

bool check_certificate_file(Builder& b, const std::string& path, const Location& loc) {
    bool ok = false;
    if (seen_before(b, "cert:" + path, &ok)) return ok;
    std::string data;
    if (!read_all(b, path, loc, data)) return remember(b, "cert:" + path, false);
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
        ERR_clear_error();
        b.error(loc, dq(path) + " holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")");
        return remember(b, "cert:" + path, false);
    }
    // The rest of the chain must parse too.
    for (;;) {
        X509Ptr next(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!next) {
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                ERR_clear_error();
                break;
            }
            b.error(loc, "the certificate chain in " + dq(path) + " is damaged: " +
                             openssl_reason());
            return remember(b, "cert:" + path, false);
        }
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf.get())) < 0) {
        b.warning(loc, "the certificate in " + dq(path) + " has expired: clients will refuse it");
    } else if (X509_cmp_current_time(X509_get0_notBefore(leaf.get())) > 0) {
        b.warning(loc, "the certificate in " + dq(path) + " is not valid yet");
    }
    return remember(b, "cert:" + path, true);
}

bool check_key_matches(Builder& b, const PathAt& cert, const PathAt& key,
                       const std::string& password_file) {
    bool ok = false;
    const std::string memo = "pair:" + cert.path + "\n" + key.path + "\n" + password_file;
    if (seen_before(b, memo, &ok)) return ok;

    std::string data;
    if (!read_all(b, key.path, key.loc, data)) return remember(b, memo, false);
    struct stat st{};
    if (::stat(key.path.c_str(), &st) == 0 && (st.st_mode & S_IROTH)) {
        b.warning(key.loc, "private key " + dq(key.path) +
                               " is readable by every user: chmod 600 it (or 640 for a group)");
    }

    PkeyPtr pkey;
    const std::vector<std::string> passwords = read_passwords(password_file);
    std::vector<const std::string*> tries{nullptr};
    for (const auto& p : passwords) tries.push_back(&p);
    bool encrypted = false;
    for (const std::string* pw : tries) {
        BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
        PasswordCtx ctx{pw};
        pkey.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, password_cb, &ctx));
        if (pkey) break;
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ || ERR_GET_REASON(e) == PEM_R_BAD_DECRYPT ||
            ERR_GET_REASON(e) == EVP_R_BAD_DECRYPT || data.find("ENCRYPTED") != std::string::npos) {
            encrypted = true;
        }
        ERR_clear_error();
    }
    if (!pkey) {
        if (encrypted && passwords.empty()) {
            b.error(key.loc, "the private key in " + dq(key.path) +
                                 " is encrypted: name a file with its passphrase in "
                                 "ssl_password_file");
        } else if (encrypted) {
            b.error(key.loc, "no passphrase in " + dq(password_file) + " decrypts " +
                                 dq(key.path));
        } else {
            b.error(key.loc, dq(key.path) + " holds no PEM private key");
        }
        return remember(b, memo, false);
    }

    std::string cdata;
    if (!read_all(b, cert.path, cert.loc, cdata)) return remember(b, memo, false);
    BioPtr cbio(BIO_new_mem_buf(cdata.data(), static_cast<int>(cdata.size())));
    X509Ptr leaf(PEM_read_bio_X509_AUX(cbio.get(), nullptr, nullptr, nullptr));
    if (!leaf) {
        ERR_clear_error();
        return remember(b, memo, false);  // reported by check_certificate_file
    }
    if (X509_check_private_key(leaf.get(), pkey.get()) != 1) {
        ERR_clear_error();
        EVP_PKEY* cert_key = X509_get0_pubkey(leaf.get());
        b.error(key.loc, "the private key " + dq(key.written) + " (" + key_type_name(pkey.get()) +
                             ") does not match the certificate " + dq(cert.written) + " (" +
                             (cert_key ? key_type_name(cert_key) : "unknown") +
                             "): pair each ssl_certificate with its own key, in order");
        return remember(b, memo, false);
    }
    return remember(b, memo, true);
}

namespace {

enum class PemItem { kCertificate, kCrl };

// How many certificates (or CRLs) a PEM bundle holds.
int count_pem_items(const std::string& data, PemItem what) {
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr);
    int n = 0;
    if (infos) {
        for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
            const X509_INFO* info = sk_X509_INFO_value(infos, i);
            n += (what == PemItem::kCertificate ? info->x509 != nullptr : info->crl != nullptr);
        }
        sk_X509_INFO_pop_free(infos, X509_INFO_free);
    }
    ERR_clear_error();
    return n;
}

}  // namespace

bool check_ca_file(Builder& b, const std::string& path, const Location& loc, const char* what) {
    bool ok = false;
    if (seen_before(b, "ca:" + path, &ok)) return ok;
    std::string data;
    if (!read_all(b, path, loc, data)) return remember(b, "ca:" + path, false);
    if (count_pem_items(data, PemItem::kCertificate) == 0) {
        b.error(loc, dq(path) + " holds no PEM certificate, so " + what + " would trust nothing");
        return remember(b, "ca:" + path, false);
    }
    return remember(b, "ca:" + path, true);
}

bool check_crl_file(Builder& b, const std::string& path, const Location& loc) {
    bool ok = false;
    if (seen_before(b, "crl:" + path, &ok)) return ok;
    std::string data;
    if (!read_all(b, path, loc, data)) return remember(b, "crl:" + path, false);
    if (count_pem_items(data, PemItem::kCrl) == 0) {
        b.error(loc, dq(path) + " holds no PEM CRL (\"-----BEGIN X509 CRL-----\")");
        return remember(b, "crl:" + path, false);
    }
    return remember(b, "crl:" + path, true);
}

bool check_ticket_key_file(Builder& b, const std::string& path, const Location& loc) {
    bool ok = false;
    if (seen_before(b, "ticket:" + path, &ok)) return ok;
    std::string data;
    if (!read_all(b, path, loc, data)) return remember(b, "ticket:" + path, false);
    if (data.size() != 48 && data.size() != 80) {
        b.error(loc, "session ticket key " + dq(path) + " is " + std::to_string(data.size()) +
                         " bytes: it must be exactly 48 or 80 bytes (openssl rand 80 > FILE)");
        return remember(b, "ticket:" + path, false);
    }
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH)) {
        b.warning(loc, "session ticket key " + dq(path) +
                           " is readable by every user: whoever reads it can decrypt tickets");
    }
    return remember(b, "ticket:" + path, true);
}

bool check_stapling_file(Builder& b, const std::string& path, const Location& loc) {
    bool ok = false;
    if (seen_before(b, "ocsp:" + path, &ok)) return ok;
    std::string data;
    if (!read_all(b, path, loc, data)) return remember(b, "ocsp:" + path, false);
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    OCSP_RESPONSE* resp = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(data.size()));
    ERR_clear_error();
    if (!resp) {
        b.error(loc, dq(path) + " is not a DER-encoded OCSP response (openssl ocsp -respout)");
        return remember(b, "ocsp:" + path, false);
    }
    int status = OCSP_response_status(resp);
    OCSP_RESPONSE_free(resp);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        b.error(loc, "the OCSP response in " + dq(path) + " is not successful (status " +
                         OCSP_response_status_str(status) + ")");
        return remember(b, "ocsp:" + path, false);
    }
    return remember(b, "ocsp:" + path, true);
}

bool check_dhparam_file(Builder& b, const std::string& path, const Location& loc) {
    bool ok = false;
    if (seen_before(b, "dh:" + path, &ok)) return ok;
    std::string data;
    if (!read_all(b, path, loc, data)) return remember(b, "dh:" + path, false);
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    PkeyPtr params(PEM_read_bio_Parameters(bio.get(), nullptr));
    ERR_clear_error();
    // PKCS#3 ("DH PARAMETERS") or X9.42 ("X9.42 DH PARAMETERS", what
    // "openssl dhparam -dsaparam" writes): OpenSSL accepts both.
    if (!params || !(EVP_PKEY_is_a(params.get(), "DH") || EVP_PKEY_is_a(params.get(), "DHX"))) {
        b.error(loc, dq(path) + " holds no PEM DH parameters (openssl dhparam -out FILE 2048)");
        return remember(b, "dh:" + path, false);
    }
    if (EVP_PKEY_get_bits(params.get()) < 2048) {
        b.warning(loc, "DH parameters in " + dq(path) + " are " +
                           std::to_string(EVP_PKEY_get_bits(params.get())) +
                           " bits: use 2048 or more");
    }
    return remember(b, "dh:" + path, true);
}

bool check_password_file(Builder& b, const std::string& path, const Location& loc) {
    bool ok = false;
    if (seen_before(b, "pw:" + path, &ok)) return ok;
    std::string data;
    if (!read_all(b, path, loc, data)) return remember(b, "pw:" + path, false);
    if (read_passwords(path).empty()) {
        b.error(loc, "password file " + dq(path) + " holds no passphrase (one per line)");
        return remember(b, "pw:" + path, false);
    }
    return remember(b, "pw:" + path, true);
}

namespace {

SSL_CTX* scratch_ctx(Builder& b) {
    if (!b.scratch_ssl_ctx) b.scratch_ssl_ctx.reset(SSL_CTX_new(TLS_method()), SSL_CTX_free);
    return b.scratch_ssl_ctx.get();
}

}  // namespace

bool check_cipher_list(Builder& b, const std::string& ciphers, const Location& loc) {
    SSL_CTX* ctx = scratch_ctx(b);
    if (!ctx) return true;
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
        ERR_clear_error();
        b.error(loc, "no cipher in " + dq(ciphers) +
                         " is known to OpenSSL (TLS 1.3 suites go in ssl_conf_command "
                         "Ciphersuites ...)");
        return false;
    }
    return true;
}

bool check_ecdh_curve(Builder& b, const std::string& curves, const Location& loc) {
    if (curves == "auto") return true;
    SSL_CTX* ctx = scratch_ctx(b);
    if (!ctx) return true;
    if (SSL_CTX_set1_groups_list(ctx, curves.c_str()) != 1) {
        ERR_clear_error();
        b.error(loc, "unknown curve in " + dq(curves) +
                         ": expected auto or a list such as X25519:prime256v1:secp384r1");
        return false;
    }
    return true;
}

bool check_conf_command(Builder& b, const ConfCommand& cmd, const std::string& directive) {
    SSL_CTX* ctx = scratch_ctx(b);
    if (!ctx) return true;
    SSL_CONF_CTX* cctx = SSL_CONF_CTX_new();
    SSL_CONF_CTX_set_flags(cctx, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_SERVER |
                                     SSL_CONF_FLAG_CLIENT | SSL_CONF_FLAG_CERTIFICATE |
                                     SSL_CONF_FLAG_SHOW_ERRORS);
    SSL_CONF_CTX_set_ssl_ctx(cctx, ctx);
    int rc = SSL_CONF_cmd(cctx, cmd.name.c_str(), cmd.value.c_str());
    SSL_CONF_CTX_free(cctx);
    ERR_clear_error();
    if (rc == -2) {
        b.error(cmd.loc, "unknown OpenSSL command " + dq(cmd.name) +
                             " in " + directive +
                             " (see SSL_CONF_cmd(3): Ciphersuites, Groups, Options, ...)");
        return false;
    }
    if (rc <= 0) {
        b.error(cmd.loc, "OpenSSL refuses " + dq(cmd.name) + " " + dq(cmd.value) + " in " +
                             directive + ": " +
                             (cmd.name == "Ciphersuites"
                                  ? "expected TLS 1.3 suites such as TLS_AES_128_GCM_SHA256:"
                                    "TLS_CHACHA20_POLY1305_SHA256"
                                  : "see SSL_CONF_cmd(3) for its values"));
        return false;
    }
    return true;
}

bool check_regex(Builder& b, const std::string& re, bool caseless, const Location& loc) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(),
                                     caseless ? PCRE2_CASELESS : 0, &err, &offset, nullptr);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        b.error(loc, "invalid regular expression " + dq(re) + ": " +
                         reinterpret_cast<const char*>(msg) + " at offset " +
                         std::to_string(offset));
        return false;
    }
    uint32_t count = 0, entry_size = 0;
    PCRE2_SPTR table = nullptr;
    pcre2_pattern_info(code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
    pcre2_pattern_info(code, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < count; ++i) {
        // Each entry: a 2-byte group number, then the NUL-terminated name.
        const char* name = reinterpret_cast<const char*>(table + i * entry_size + 2);
        b.capture_variables.emplace_back(name);
    }
    pcre2_code_free(code);
    return true;
}

}  // namespace terminus::config::detail
