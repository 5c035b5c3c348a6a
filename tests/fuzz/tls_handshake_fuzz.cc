// Whatever a client sends before the handshake is done: the server side
// (tls::Endpoint with contexts built from a configuration, SNI choice on
// the ClientHello) must fail cleanly or wait, never crash or leak.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "config/config.h"
#include "tests/support/memory_pipe.h"
#include "tls/tls.h"

namespace {

using namespace terminus;

struct World {
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<tls::SharedTls> shared;
    std::unique_ptr<tls::CoreTls> core;
    std::vector<tls::ListenGroup> groups;
};

// A self-signed P-256 certificate in a fresh directory; returns its path.
std::string make_certificate() {
    char tmpl[] = "/tmp/terminus-fuzz-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("example.com"), -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_sign(x, key, EVP_sha256());
    FILE* f = std::fopen((dir + "/c.crt").c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen((dir + "/c.key").c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return dir;
}

World* world() {
    static World* w = [] {
        auto* out = new World;
        const std::string d = make_certificate();
        const std::string pair = "ssl_certificate " + d + "/c.crt; ssl_certificate_key " + d + "/c.key;";
        const std::string text = "stream { upstream b { server 198.18.0.1:1; }\n"
                                 "server { listen 443 ssl; server_name example.com; ssl_alpn h2; " + pair +
                                 " proxy_pass b; }\n"
                                 "server { listen 443 ssl default_server; ssl_reject_handshake on; proxy_pass b; }\n"
                                 "server { listen 443 ssl; server_name *.test ~^a[0-9]+\\.b$; ssl_protocols TLSv1.2; " +
                                 pair + " proxy_pass b; } }\n";
        auto r = config::load_string(text, d + "/fuzz.conf");
        if (!r.ok()) abort();
        out->cfg = r.config;
        auto sh = tls::SharedTls::create(*out->cfg);
        if (!sh) abort();
        out->shared = std::move(sh.value());
        auto ct = tls::CoreTls::create(*out->cfg, *out->shared);
        if (!ct) abort();
        out->core = std::move(ct.value());
        out->groups = tls::listen_groups(*out->cfg);
        return out;
    }();
    return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    World* w = world();
    // The input is all the client sends, then its FIN; what the server
    // answers is dropped.
    testing::MemoryPipe p;
    p.feed(data, size);
    p.discard = true;
    tls::Endpoint ep(*w->core, w->groups[0], p);
    // Feed it all; a handshake cannot finish without a real client.
    for (int i = 0; i < 64 && ep.handshake() == tls::Endpoint::Status::kAgain && p.fed_left() > 0; ++i) {
    }
    return 0;
}
