// Complete TLS handshakes between an in-memory OpenSSL client and the
// Terminus server path (tls::CoreTls contexts, tls::Endpoint over a memory
// Transport) on one core, no NIC. The server's CPU time per handshake is
// counted around the server's calls only (SSL_new, every handshake step,
// SSL_free) and reported next to the bound the same primitives give on
// this machine, measured in the same run:
//   ECDSA: one P-256 signature + two X25519 operations (key generation
//   and the shared secret); RSA: one RSA-2048 signature + two X25519.
// BM_TlsScaling runs ECDSA handshakes (client and server) on 1 and 2
// threads, each with its own library contexts, to show that the cores do
// not contend inside OpenSSL.
#include <benchmark/benchmark.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.h"
#include "tls/tls.h"

namespace {

using namespace terminus;
using Clock = std::chrono::steady_clock;

std::string certs() {
    const char* d = std::getenv("TERMINUS_TEST_CERTS");
    return d ? d : TERMINUS_TEST_CERTS_DIR;
}

struct Pipe : tls::Transport {
    std::string in, out;
    uint32_t read(void* dst, uint32_t len) override {
        const uint32_t n = std::min<uint32_t>(len, static_cast<uint32_t>(in.size()));
        std::memcpy(dst, in.data(), n);
        in.erase(0, n);
        return n;
    }
    bool eof() const override { return false; }
    uint32_t write(const void* src, uint32_t len) override {
        out.append(static_cast<const char*>(src), len);
        return len;
    }
    uint32_t write_space() const override { return 1 << 20; }
    void cork() override {}
    void flush() override {}
};

enum Kind { kEcdsa13, kRsa13, kResumed13, kResumed12 };

// One thread's server (its own CoreTls) and client (its own library
// context), with the configuration for KIND.
struct Side {
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<tls::SharedTls> shared;
    std::unique_ptr<tls::CoreTls> core;
    std::vector<tls::ListenGroup> groups;
    OSSL_LIB_CTX* client_lib = nullptr;
    SSL_CTX* client = nullptr;
    SSL_SESSION* session = nullptr;

    explicit Side(Kind kind) {
        const std::string c = certs();
        const std::string pair = kind == kRsa13 ? "ssl_certificate " + c + "/rsa.crt; ssl_certificate_key " + c + "/rsa.key;"
                                                : "ssl_certificate " + c + "/ecdsa.crt; ssl_certificate_key " + c + "/ecdsa.key;";
        const std::string text = "stream { upstream b { server 198.18.0.1:1; }\n"
                                 "server { listen 443 ssl; ssl_ecdh_curve X25519:P-256; " + pair + " proxy_pass b; } }\n";
        auto r = config::load_string(text, "/tmp/tls-bench.conf");
        if (!r.ok()) std::abort();
        cfg = r.config;
        auto sh = tls::SharedTls::create(*cfg);
        if (!sh) std::abort();
        shared = std::move(sh.value());
        auto ct = tls::CoreTls::create(*cfg, *shared);
        if (!ct) std::abort();
        core = std::move(ct.value());
        groups = tls::listen_groups(*cfg);
        client_lib = OSSL_LIB_CTX_new();
        OSSL_PROVIDER_load(client_lib, "default");
        client = SSL_CTX_new_ex(client_lib, nullptr, TLS_client_method());
        SSL_CTX_set_verify(client, SSL_VERIFY_NONE, nullptr);
        SSL_CTX_set1_groups_list(client, "X25519:P-256");  // P-256: the ECDSA certificate's curve (TLS 1.2)
        if (kind == kResumed12) SSL_CTX_set_max_proto_version(client, TLS1_2_VERSION);
        if (kind == kResumed13 || kind == kResumed12) {
            uint64_t ns = 0;
            handshake(&ns);  // a session to resume from
        }
    }
    ~Side() {
        SSL_SESSION_free(session);
        SSL_CTX_free(client);
        OSSL_LIB_CTX_free(client_lib);
    }

    // One complete handshake; adds the server's time to *SERVER_NS.
    bool handshake(uint64_t* server_ns) {
        SSL* ssl = SSL_new(client);
        BIO* rbio = BIO_new(BIO_s_mem());
        BIO* wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl, rbio, wbio);
        SSL_set_tlsext_host_name(ssl, "example.com");
        if (session) SSL_set_session(ssl, session);
        SSL_set_connect_state(ssl);
        Pipe p;
        auto t0 = Clock::now();
        auto* ep = new tls::Endpoint(*core, groups[0], p);
        uint64_t ns = static_cast<uint64_t>((Clock::now() - t0).count());
        bool done = false;
        char buf[16384];
        for (int round = 0; round < 10 && !done; ++round) {
            const int rc = SSL_do_handshake(ssl);
            int n;
            while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
            t0 = Clock::now();
            const auto st = ep->handshake();
            ns += static_cast<uint64_t>((Clock::now() - t0).count());
            if (!p.out.empty()) {
                BIO_write(rbio, p.out.data(), static_cast<int>(p.out.size()));
                p.out.clear();
            }
            if (st == tls::Endpoint::Status::kFailed) break;
            done = rc == 1 && st == tls::Endpoint::Status::kDone;
        }
        if (done && !session) {
            // TLS 1.3 tickets follow the handshake.
            SSL_read(ssl, buf, 1);
            session = SSL_get1_session(ssl);
        }
        t0 = Clock::now();
        delete ep;
        ns += static_cast<uint64_t>((Clock::now() - t0).count());
        *server_ns += ns;
        SSL_free(ssl);
        ERR_clear_error();
        return done;
    }
};

// The time of one operation of each bounding primitive, measured once.
struct Bound {
    double p256_sign_us = 0, rsa2048_sign_us = 0, x25519_us = 0;
};

double time_us(int n, const std::function<void()>& f) {
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) f();
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
}

EVP_PKEY* keygen(const char* alg, const char* param = nullptr) {
    EVP_PKEY_CTX* kc = EVP_PKEY_CTX_new_from_name(nullptr, alg, nullptr);
    EVP_PKEY_keygen_init(kc);
    if (param && std::strcmp(alg, "EC") == 0) EVP_PKEY_CTX_set_group_name(kc, param);
    if (param && std::strcmp(alg, "RSA") == 0) EVP_PKEY_CTX_set_rsa_keygen_bits(kc, 2048);
    EVP_PKEY* k = nullptr;
    EVP_PKEY_keygen(kc, &k);
    EVP_PKEY_CTX_free(kc);
    return k;
}

const Bound& bound() {
    static Bound b = [] {
        Bound r;
        unsigned char digest[32] = {1};
        unsigned char sig[512];
        EVP_PKEY* ec = keygen("EC", "P-256");
        EVP_PKEY* rsa = keygen("RSA", "2048");
        auto sign = [&](EVP_PKEY* k, bool pss) {
            EVP_PKEY_CTX* sc = EVP_PKEY_CTX_new(k, nullptr);
            EVP_PKEY_sign_init(sc);
            if (pss) EVP_PKEY_CTX_set_rsa_padding(sc, RSA_PKCS1_PSS_PADDING);
            EVP_PKEY_CTX_set_signature_md(sc, EVP_sha256());
            size_t len = sizeof sig;
            EVP_PKEY_sign(sc, sig, &len, digest, sizeof digest);
            EVP_PKEY_CTX_free(sc);
        };
        r.p256_sign_us = time_us(2000, [&] { sign(ec, false); });
        r.rsa2048_sign_us = time_us(300, [&] { sign(rsa, true); });
        EVP_PKEY* peer = keygen("X25519");
        // Half of (a key generation + a shared secret): one X25519 each.
        r.x25519_us = time_us(2000, [&] {
                          EVP_PKEY* k = keygen("X25519");
                          EVP_PKEY_CTX* dc = EVP_PKEY_CTX_new(k, nullptr);
                          EVP_PKEY_derive_init(dc);
                          EVP_PKEY_derive_set_peer(dc, peer);
                          unsigned char secret[32];
                          size_t len = sizeof secret;
                          EVP_PKEY_derive(dc, secret, &len);
                          EVP_PKEY_CTX_free(dc);
                          EVP_PKEY_free(k);
                      }) / 2;
        EVP_PKEY_free(ec);
        EVP_PKEY_free(rsa);
        EVP_PKEY_free(peer);
        return r;
    }();
    return b;
}

void BM_TlsHandshake(benchmark::State& state) {
    const Kind kind = static_cast<Kind>(state.range(0));
    const Bound& b = bound();
    Side side(kind);
    uint64_t server_ns = 0, failed = 0;
    for (auto _ : state) failed += !side.handshake(&server_ns);
    const double us = static_cast<double>(server_ns) / 1000.0 / static_cast<double>(state.iterations());
    state.counters["server_us"] = us;
    state.counters["failed"] = static_cast<double>(failed);
    double bound_us = 0;
    if (kind == kEcdsa13) bound_us = b.p256_sign_us + 2 * b.x25519_us;
    if (kind == kRsa13) bound_us = b.rsa2048_sign_us + 2 * b.x25519_us;
    if (bound_us > 0) {
        state.counters["bound_us"] = bound_us;
        state.counters["ratio"] = us / bound_us;
    }
    state.SetLabel(kind == kEcdsa13 ? "TLS1.3 ECDSA-P256 X25519" : kind == kRsa13 ? "TLS1.3 RSA-2048 X25519"
                   : kind == kResumed13 ? "TLS1.3 resumed (ticket)" : "TLS1.2 resumed (ticket)");
}
BENCHMARK(BM_TlsHandshake)->Arg(kEcdsa13)->Arg(kRsa13)->Arg(kResumed13)->Arg(kResumed12)->Unit(benchmark::kMicrosecond);

// Client and server handshakes per second on 1 and 2 threads.
void BM_TlsScaling(benchmark::State& state) {
    Side side(kEcdsa13);
    uint64_t server_ns = 0;
    for (auto _ : state) side.handshake(&server_ns);
    state.counters["handshakes_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TlsScaling)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
