// What the server contexts (context.cc) and the upstream contexts
// (upstream.cc) both load at start, and how they report OpenSSL's errors.
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tls/tls_private.h"

namespace terminus::tls {

namespace {

struct Password {
    const std::string* value = nullptr;
};

int password_cb(char* buf, int size, int, void* u) {
    const auto* p = static_cast<const Password*>(u);
    if (!p->value) return 0;
    const int n = static_cast<int>(std::min<size_t>(p->value->size(), static_cast<size_t>(size)));
    std::memcpy(buf, p->value->data(), static_cast<size_t>(n));
    return n;
}

}  // namespace

std::string openssl_error() {
    std::string out;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

Error fail_at(const config::Location& loc, const std::string& what) {
    return make_error(loc.file + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column) + ": " +
                      what + ": " + openssl_error());
}

std::vector<std::string> read_lines(const std::string& path) {
    std::vector<std::string> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
        if (!line.empty()) out.push_back(line);
    }
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

EVP_PKEY* load_key(OSSL_LIB_CTX* libctx, const std::string& path, const std::vector<std::string>& passwords) {
    const std::string pem = read_file(path);
    const size_t tries = passwords.empty() ? 1 : passwords.size();
    for (size_t i = 0; i < tries; ++i) {
        BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
        if (!bio) return nullptr;
        Password pw{passwords.empty() ? nullptr : &passwords[i]};
        EVP_PKEY* key = PEM_read_bio_PrivateKey_ex(bio, nullptr, password_cb, &pw, libctx, nullptr);
        BIO_free(bio);
        if (key) {
            ERR_clear_error();
            return key;
        }
    }
    return nullptr;
}

int version_of(config::TlsVersion v) {
    switch (v) {
        case config::TlsVersion::kTls1: return TLS1_VERSION;
        case config::TlsVersion::kTls11: return TLS1_1_VERSION;
        case config::TlsVersion::kTls12: return TLS1_2_VERSION;
        case config::TlsVersion::kTls13: return TLS1_3_VERSION;
    }
    return 0;
}

}  // namespace terminus::tls
