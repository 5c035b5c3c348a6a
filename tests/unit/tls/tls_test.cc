// TLS termination in one process: a real OpenSSL client against the
// Endpoint over an in-memory Transport (no TCP, no DPDK), with contexts
// built from configurations as terminusd builds them.
#include <gtest/gtest.h>
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <deque>
#include <memory>
#include <string>

#include "config/config.h"
#include "tests/support/memory_pipe.h"
#include "tls/tls.h"
#include "tls/tls_private.h"

namespace terminus::tls {
namespace {

std::string cert(const std::string& f) {
    const char* d = std::getenv("TERMINUS_TEST_CERTS");
    return std::string(d ? d : "/nonexistent") + "/" + f;
}

// The server's side of a connection: bytes in from the client, bytes out.
using Pipe = terminus::testing::MemoryPipe;

struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
struct SessFree {
    void operator()(SSL_SESSION* s) const { SSL_SESSION_free(s); }
};

// The description of the last alert a client received.
int last_alert_received = -1;
void client_info_cb(const SSL*, int where, int ret) {
    if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ)) last_alert_received = ret & 0xff;
}

// An OpenSSL client with memory BIOs.
struct Client {
    std::unique_ptr<SSL_CTX, CtxFree> ctx{SSL_CTX_new(TLS_client_method())};
    std::unique_ptr<SSL, SslFree> ssl;
    BIO* rbio = nullptr;  // what the server sent, for the client to read
    BIO* wbio = nullptr;  // what the client wrote
    Client() {
        SSL_CTX_load_verify_file(ctx.get(), cert("ca.crt").c_str());
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
        SSL_CTX_set_info_callback(ctx.get(), client_info_cb);
    }
    void start(const char* sni = "example.com") {
        ssl.reset(SSL_new(ctx.get()));
        rbio = BIO_new(BIO_s_mem());
        wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl.get(), rbio, wbio);
        if (sni) SSL_set_tlsext_host_name(ssl.get(), sni);
        SSL_set_connect_state(ssl.get());
    }
};

// Moves bytes both ways until both sides stop making progress.
struct Result2 {
    Endpoint::Status server;
    bool client_done;
};
Result2 run(Client& c, Endpoint& ep, Pipe& p) {
    Endpoint::Status st = Endpoint::Status::kAgain;
    bool client_done = false;
    for (int round = 0; round < 20; ++round) {
        const int rc = SSL_do_handshake(c.ssl.get());
        client_done = rc == 1;
        // Now, before a write into its BIO clears the retry flags.
        const int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c.ssl.get(), rc);
        char buf[65536];
        int n;
        while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
        st = ep.handshake();
        if (!p.out.empty()) {
            BIO_write(c.rbio, p.out.data(), static_cast<int>(p.out.size()));
            p.out.clear();
        }
        if (st == Endpoint::Status::kFailed) {
            SSL_do_handshake(c.ssl.get());  // reads the alert
            ERR_clear_error();
            break;
        }
        if (client_done && st == Endpoint::Status::kDone) break;
        if (rc <= 0) {
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
                ERR_clear_error();
                // The server may still have to read the client's alert.
                while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
                st = ep.handshake();
                break;
            }
        }
    }
    ERR_clear_error();
    return {st, client_done};
}

// A client's handshake against a new Endpoint; both stay for inspection.
struct Handshake {
    Pipe pipe;
    Endpoint ep;
    Endpoint::Status status;
    Handshake(Client& c, CoreTls& core, const ListenGroup& g) : ep(core, g, pipe), status(run(c, ep, pipe).server) {}
};

class Tls : public ::testing::Test {
  protected:
    // Loads TEXT (a stream{} body) and builds two cores' contexts.
    void load(const std::string& stream_body) {
        const std::string text = "stream {\n    upstream b { server 198.18.0.1:8080; }\n" + stream_body + "}\n";
        auto r = config::load_string(text, "/tmp/tls-test.conf");
        std::string errors;
        for (const auto& d : r.diagnostics) errors += d.to_string() + "\n";
        ASSERT_TRUE(r.ok()) << errors;
        cfg = r.config;
        auto sh = SharedTls::create(*cfg, 2);
        ASSERT_TRUE(sh) << sh.error();
        shared = std::move(*sh);
        auto c0 = CoreTls::create(*cfg, *shared, 0);
        ASSERT_TRUE(c0) << c0.error();
        core0 = std::move(*c0);
        auto c1 = CoreTls::create(*cfg, *shared, 1);
        ASSERT_TRUE(c1) << c1.error();
        core1 = std::move(*c1);
        groups = listen_groups(*cfg);
    }
    std::string pair(const std::string& name) {
        return "ssl_certificate " + cert(name + ".crt") + "; ssl_certificate_key " + cert(name + ".key") + ";";
    }
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<SharedTls> shared;
    std::unique_ptr<CoreTls> core0, core1;
    std::vector<ListenGroup> groups;
};

TEST_F(Tls, Tls13HandshakeAndDataBothWays) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    c.start();
    Pipe p;
    Endpoint ep(*core0, groups[0], p);
    auto r = run(c, ep, p);
    ASSERT_EQ(r.server, Endpoint::Status::kDone);
    ASSERT_TRUE(r.client_done);
    EXPECT_EQ(SSL_version(c.ssl.get()), TLS1_3_VERSION);
    EXPECT_EQ(core0->counters.handshakes_full, 1u);
    EXPECT_EQ(core0->counters.proto_tls13, 1u);
    EXPECT_EQ(core0->counters.cert_ecdsa, 1u);
    // Client to server.
    ASSERT_EQ(SSL_write(c.ssl.get(), "hello", 5), 5);
    char buf[64];
    int n;
    while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
    char plain[64];
    ASSERT_EQ(ep.read(plain, sizeof plain), 5);
    EXPECT_EQ(std::string(plain, 5), "hello");
    EXPECT_EQ(ep.read(plain, sizeof plain), 0);  // nothing more yet
    // Server to client.
    ASSERT_EQ(ep.write("world", 5), 5);
    BIO_write(c.rbio, p.out.data(), static_cast<int>(p.out.size()));
    p.out.clear();
    // The client first reads the session tickets, then the data.
    ASSERT_EQ(SSL_read(c.ssl.get(), buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "world");
    EXPECT_EQ(core0->counters.bytes_decrypted, 5u);
    EXPECT_EQ(core0->counters.bytes_encrypted, 5u);
}

TEST_F(Tls, TheClientsSignatureAlgorithmsPickRsaOrEcdsa) {
    load("server { listen 443 ssl; " + pair("rsa") + " " + pair("ecdsa") + " proxy_pass b; }\n");
    for (const char* sigalgs : {"ECDSA+SHA256", "rsa_pss_rsae_sha256"}) {
        Client c;
        ASSERT_EQ(SSL_CTX_set1_sigalgs_list(c.ctx.get(), sigalgs), 1) << sigalgs;
        c.start();
        Handshake hs(c, *core0, groups[0]);
        ASSERT_EQ(hs.status, Endpoint::Status::kDone) << sigalgs;
    }
    EXPECT_EQ(core0->counters.cert_ecdsa, 1u);
    EXPECT_EQ(core0->counters.cert_rsa, 1u);
}

TEST_F(Tls, Tls12WithEachCipherFamily) {
    load("server { listen 443 ssl; " + pair("rsa") + " " + pair("ecdsa") + " proxy_pass b; }\n");
    for (const char* cipher : {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                               "ECDHE-ECDSA-CHACHA20-POLY1305"}) {
        Client c;
        SSL_CTX_set_max_proto_version(c.ctx.get(), TLS1_2_VERSION);
        ASSERT_EQ(SSL_CTX_set_cipher_list(c.ctx.get(), cipher), 1);
        c.start();
        Handshake hs(c, *core0, groups[0]);
        ASSERT_EQ(hs.status, Endpoint::Status::kDone) << cipher;
        EXPECT_STREQ(SSL_get_cipher_name(c.ssl.get()), cipher);
    }
    EXPECT_EQ(core0->counters.proto_tls12, 3u);
    EXPECT_EQ(core0->counters.cipher_aes128_gcm, 1u);
    EXPECT_EQ(core0->counters.cipher_aes256_gcm, 1u);
    EXPECT_EQ(core0->counters.cipher_chacha20_poly1305, 1u);
}

// A client of protocols MIN..MAX, at security level 0 as TLS 1.0/1.1 need.
void old_protocols(Client& c, int min, int max) {
    SSL_CTX_set_security_level(c.ctx.get(), 0);
    SSL_CTX_set_min_proto_version(c.ctx.get(), min);
    SSL_CTX_set_max_proto_version(c.ctx.get(), max);
    c.start();
}

TEST_F(Tls, OldProtocolsAreRefusedByDefault) {
    load("server { listen 443 ssl; " + pair("rsa") + " proxy_pass b; }\n");
    Client c;
    old_protocols(c, TLS1_VERSION, TLS1_1_VERSION);
    Handshake hs(c, *core0, groups[0]);
    EXPECT_EQ(hs.status, Endpoint::Status::kFailed);
    EXPECT_EQ(hs.ep.failure(), Failure::k_no_shared_protocol);
    EXPECT_EQ(core0->counters.failed[static_cast<size_t>(Failure::k_no_shared_protocol)], 1u);
}

TEST_F(Tls, Tls11WhenAskedFor) {
    load("server { listen 443 ssl; ssl_protocols TLSv1.1 TLSv1.2; ssl_ciphers DEFAULT; " + pair("rsa") +
         " proxy_pass b; }\n");
    Client c;
    old_protocols(c, TLS1_1_VERSION, TLS1_1_VERSION);
    Handshake hs(c, *core0, groups[0]);
    ASSERT_EQ(hs.status, Endpoint::Status::kDone);
    EXPECT_EQ(core0->counters.proto_tls11, 1u);
}

TEST_F(Tls, SniPicksTheServerBlock) {
    load("server { listen 443 ssl; server_name api.example.com; " + pair("rsa") + " proxy_pass b; }\n"
         "server { listen 443 ssl; server_name *.example.com; " + pair("ecdsa") + " proxy_pass b; }\n"
         "server { listen 443 ssl; server_name www.example.*; " + pair("rsa") + " proxy_pass b; }\n"
         "server { listen 443 ssl default_server; server_name other.test; " + pair("server") +
         " proxy_pass b; }\n");
    ASSERT_EQ(groups.size(), 1u);
    const auto& g = groups[0];
    EXPECT_EQ(select_server(*cfg, g, "api.example.com"), 0u);
    EXPECT_EQ(select_server(*cfg, g, "API.Example.COM"), 0u);
    EXPECT_EQ(select_server(*cfg, g, "app.example.com"), 1u);
    EXPECT_EQ(select_server(*cfg, g, "a.b.example.com"), 1u);
    EXPECT_EQ(select_server(*cfg, g, "www.example.org"), 2u);
    EXPECT_EQ(select_server(*cfg, g, "unknown.test"), 3u);
    EXPECT_EQ(select_server(*cfg, g, nullptr), 3u);
    EXPECT_EQ(select_server(*cfg, g, ""), 3u);

    Client c;
    c.start("app.example.com");
    Pipe p;
    Endpoint ep(*core0, g, p);
    ASSERT_EQ(run(c, ep, p).server, Endpoint::Status::kDone);
    EXPECT_EQ(ep.server(), 1u);
    EXPECT_EQ(ep.sni(), "app.example.com");
    EXPECT_EQ(core0->counters.cert_ecdsa, 1u);  // block 1's certificate
}

TEST_F(Tls, RejectHandshakeForUnknownNames) {
    load("server { listen 443 ssl; server_name example.com; " + pair("rsa") + " proxy_pass b; }\n"
         "server { listen 443 ssl default_server; ssl_reject_handshake on; proxy_pass b; }\n");
    Client good;
    good.start("example.com");
    Handshake ok(good, *core0, groups[0]);
    EXPECT_EQ(ok.status, Endpoint::Status::kDone);

    Client bad;
    bad.start("nobody.test");
    Handshake refused(bad, *core0, groups[0]);
    EXPECT_EQ(refused.status, Endpoint::Status::kFailed);
    EXPECT_EQ(refused.ep.failure(), Failure::k_unknown_sni);
    EXPECT_EQ(core0->server(1)->failed[static_cast<size_t>(Failure::k_unknown_sni)], 1u);
    // The client got an unrecognized_name alert.
    EXPECT_EQ(last_alert_received, SSL_AD_UNRECOGNIZED_NAME);
}

TEST_F(Tls, AlpnFollowsTheServersOrder) {
    load("server { listen 443 ssl; ssl_alpn h2 http/1.1; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    const unsigned char protos[] = "\x08http/1.1\x02h2";
    SSL_CTX_set_alpn_protos(c.ctx.get(), protos, sizeof protos - 1);
    c.start();
    Handshake hs(c, *core0, groups[0]);
    ASSERT_EQ(hs.status, Endpoint::Status::kDone);
    const unsigned char* sel = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(c.ssl.get(), &sel, &len);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(sel), len), "h2");

    Client other;
    const unsigned char smtp[] = "\x04smtp";
    SSL_CTX_set_alpn_protos(other.ctx.get(), smtp, sizeof smtp - 1);
    other.start();
    Handshake refused(other, *core0, groups[0]);
    EXPECT_EQ(refused.status, Endpoint::Status::kFailed);
    EXPECT_EQ(refused.ep.failure(), Failure::k_no_shared_alpn);
}

TEST_F(Tls, ClientCertificatesAreVerified) {
    load("server { listen 443 ssl; ssl_verify_client on; ssl_client_certificate " + cert("client-ca.crt") +
         "; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client good;
    SSL_CTX_use_certificate_file(good.ctx.get(), cert("client.crt").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(good.ctx.get(), cert("client.key").c_str(), SSL_FILETYPE_PEM);
    good.start();
    Handshake e1(good, *core0, groups[0]);
    ASSERT_EQ(e1.status, Endpoint::Status::kDone);
    EXPECT_EQ(core0->counters.client_certs, 1u);

    Client none;
    none.start();
    Handshake e2(none, *core0, groups[0]);
    EXPECT_EQ(e2.status, Endpoint::Status::kFailed);
    EXPECT_EQ(e2.ep.failure(), Failure::k_no_client_cert);

    Client stranger;
    SSL_CTX_use_certificate_file(stranger.ctx.get(), cert("other-client.crt").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(stranger.ctx.get(), cert("other-client.key").c_str(), SSL_FILETYPE_PEM);
    stranger.start();
    Handshake e3(stranger, *core0, groups[0]);
    EXPECT_EQ(e3.status, Endpoint::Status::kFailed);
    EXPECT_EQ(e3.ep.failure(), Failure::k_bad_client_cert);
}

// A CRL of the client CA that revokes SERIALS (may be none), written to
// a temporary file; returns its path.
std::string client_ca_crl(const std::vector<const ASN1_INTEGER*>& serials) {
    BIO* kb = BIO_new_file(cert("client-ca.key").c_str(), "r");
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    BIO* cb = BIO_new_file(cert("client-ca.crt").c_str(), "r");
    X509* ca = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    X509_CRL* crl = X509_CRL_new();
    X509_CRL_set_version(crl, X509_CRL_VERSION_2);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    ASN1_TIME* now = ASN1_TIME_set(nullptr, time(nullptr) - 60);
    ASN1_TIME* next = ASN1_TIME_set(nullptr, time(nullptr) + 86400);
    X509_CRL_set1_lastUpdate(crl, now);
    X509_CRL_set1_nextUpdate(crl, next);
    for (const ASN1_INTEGER* serial : serials) {
        X509_REVOKED* r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, const_cast<ASN1_INTEGER*>(serial));
        X509_REVOKED_set_revocationDate(r, now);
        X509_CRL_add0_revoked(crl, r);
    }
    X509_CRL_sort(crl);
    X509_CRL_sign(crl, key, EVP_sha256());
    char tmpl[] = "/tmp/terminus-crl-XXXXXX";
    const std::string path = std::string(mkdtemp(tmpl)) + "/client-ca.crl";
    BIO* out = BIO_new_file(path.c_str(), "w");
    PEM_write_bio_X509_CRL(out, crl);
    BIO_free(out);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    X509_free(ca);
    EVP_PKEY_free(key);
    return path;
}

TEST_F(Tls, ClientCertificatesRevokedByTheCrlAreRefused) {
    BIO* b = BIO_new_file(cert("client.crt").c_str(), "r");
    X509* client = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    ASSERT_TRUE(client);
    for (bool revoked : {false, true}) {
        std::vector<const ASN1_INTEGER*> serials;
        if (revoked) serials.push_back(X509_get0_serialNumber(client));
        const std::string crl = client_ca_crl(serials);
        load("server { listen 443 ssl; ssl_verify_client on; ssl_client_certificate " + cert("client-ca.crt") +
             "; ssl_crl " + crl + "; " + pair("ecdsa") + " proxy_pass b; }\n");
        Client c;
        SSL_CTX_use_certificate_file(c.ctx.get(), cert("client.crt").c_str(), SSL_FILETYPE_PEM);
        SSL_CTX_use_PrivateKey_file(c.ctx.get(), cert("client.key").c_str(), SSL_FILETYPE_PEM);
        c.start();
        Handshake hs(c, *core0, groups[0]);
        const auto status = hs.status;
        if (revoked) {
            EXPECT_EQ(status, Endpoint::Status::kFailed);
            EXPECT_EQ(hs.ep.failure(), Failure::k_bad_client_cert);
        } else {
            EXPECT_EQ(status, Endpoint::Status::kDone);
        }
    }
    X509_free(client);
}

TEST_F(Tls, TicketsFromOneCoreResumeOnAnother) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        Client c;
        SSL_CTX_set_max_proto_version(c.ctx.get(), version);
        c.start();
        Handshake hs(c, *core0, groups[0]);
        ASSERT_EQ(hs.status, Endpoint::Status::kDone);
        // TLS 1.3 tickets arrive after the handshake: read them.
        char b[16];
        SSL_read(c.ssl.get(), b, sizeof b);
        ERR_clear_error();
        std::unique_ptr<SSL_SESSION, SessFree> sess(SSL_get1_session(c.ssl.get()));
        ASSERT_TRUE(sess);
        ASSERT_TRUE(SSL_SESSION_has_ticket(sess.get()));

        Client again;
        SSL_CTX_set_max_proto_version(again.ctx.get(), version);
        again.start();
        SSL_set_session(again.ssl.get(), sess.get());
        Handshake ep2(again, *core1, groups[0]);  // the other core
        ASSERT_EQ(ep2.status, Endpoint::Status::kDone);
        EXPECT_TRUE(SSL_session_reused(again.ssl.get())) << version;
    }
    EXPECT_EQ(core1->counters.handshakes_resumed_ticket, 2u);
}

TEST_F(Tls, SessionsDoNotCrossServerBlocksWithOtherClientPolicies) {
    load("server { listen 443 ssl; server_name open.example.com; " + pair("ecdsa") + " proxy_pass b; }\n"
         "server { listen 443 ssl; server_name api.example.com; ssl_verify_client optional; "
         "ssl_client_certificate " + cert("client-ca.crt") + "; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    c.start("open.example.com");
    Handshake hs(c, *core0, groups[0]);
    ASSERT_EQ(hs.status, Endpoint::Status::kDone);
    char b[16];
    SSL_read(c.ssl.get(), b, sizeof b);
    ERR_clear_error();
    std::unique_ptr<SSL_SESSION, SessFree> sess(SSL_get1_session(c.ssl.get()));

    Client other;
    other.start("api.example.com");
    SSL_set_session(other.ssl.get(), sess.get());
    Handshake ep2(other, *core0, groups[0]);
    ASSERT_EQ(ep2.status, Endpoint::Status::kDone);
    EXPECT_FALSE(SSL_session_reused(other.ssl.get()));
    EXPECT_EQ(core0->counters.handshakes_full, 2u);
}

// A handshake on CORE offering SESS (may be null); returns the client's
// session after it, and whether it resumed.
std::pair<SSL_SESSION*, bool> connect_once(CoreTls& core, const ListenGroup& g, SSL_SESSION* sess, int version) {
    Client c;
    SSL_CTX_set_max_proto_version(c.ctx.get(), version);
    c.start();
    if (sess) SSL_set_session(c.ssl.get(), sess);
    Pipe p;
    Endpoint ep(core, g, p);
    if (run(c, ep, p).server != Endpoint::Status::kDone) return {nullptr, false};
    char b[16];
    SSL_read(c.ssl.get(), b, sizeof b);  // TLS 1.3: the ticket naming the cached session
    ERR_clear_error();
    // Freed without close_notify, the client would mark the session not
    // resumable (ssl_clear_bad_session).
    SSL_set_shutdown(c.ssl.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    return {SSL_get1_session(c.ssl.get()), SSL_session_reused(c.ssl.get()) == 1};
}

TEST_F(Tls, SharedCacheSessionsResumeOnTheOtherCore) {
    load("server { listen 443 ssl; ssl_session_cache shared:SSL:1m; ssl_session_tickets off; " + pair("ecdsa") +
         " proxy_pass b; }\n");
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        auto [sess, resumed] = connect_once(*core0, groups[0], nullptr, version);
        ASSERT_TRUE(sess);
        EXPECT_FALSE(resumed);
        // Core 1 learns of it only through the exchange.
        EXPECT_TRUE(core1->poll());
        auto [again, resumed2] = connect_once(*core1, groups[0], sess, version);
        EXPECT_TRUE(resumed2) << version;
        SSL_SESSION_free(again);
        SSL_SESSION_free(sess);
    }
    EXPECT_EQ(core1->counters.handshakes_resumed_cache, 2u);
    EXPECT_GE(core0->counters.sessions_sent, 2u);
    EXPECT_GE(core1->counters.sessions_received, 2u);
}

TEST_F(Tls, SessionRemovedOnOneCoreIsGoneOnEveryCore) {
    load("server { listen 443 ssl; ssl_session_cache shared:SSL:1m; ssl_session_tickets off; " + pair("ecdsa") +
         " proxy_pass b; }\n");
    auto [sess, resumed] = connect_once(*core0, groups[0], nullptr, TLS1_2_VERSION);
    ASSERT_TRUE(sess);
    core1->poll();
    EXPECT_EQ(SSL_CTX_sess_number(core1->server(0)->ctx), 1);
    // Core 0 drops it (as a timeout or a bad close does): core 1 hears.
    SSL_CTX_flush_sessions(core0->server(0)->ctx, static_cast<long>(time(nullptr)) + 3600);
    EXPECT_EQ(SSL_CTX_sess_number(core0->server(0)->ctx), 0);
    EXPECT_TRUE(core1->poll());
    EXPECT_EQ(SSL_CTX_sess_number(core1->server(0)->ctx), 0);
    SSL_SESSION_free(sess);
}

TEST_F(Tls, BuiltinCacheIsPerCore) {
    load("server { listen 443 ssl; ssl_session_cache builtin:1000; ssl_session_tickets off; " + pair("ecdsa") +
         " proxy_pass b; }\n");
    auto [sess, resumed] = connect_once(*core0, groups[0], nullptr, TLS1_2_VERSION);
    ASSERT_TRUE(sess);
    EXPECT_FALSE(core1->poll());  // builtin is per core, as nginx's is per worker
    auto [again, resumed2] = connect_once(*core1, groups[0], sess, TLS1_2_VERSION);
    EXPECT_FALSE(resumed2);
    auto [same, resumed3] = connect_once(*core0, groups[0], sess, TLS1_2_VERSION);
    EXPECT_TRUE(resumed3);
    SSL_SESSION_free(sess);
    SSL_SESSION_free(again);
    SSL_SESSION_free(same);
}

TEST_F(Tls, SessionCacheOffNeverResumes) {
    load("server { listen 443 ssl; ssl_session_cache off; ssl_session_tickets off; " + pair("ecdsa") +
         " proxy_pass b; }\n");
    auto [sess, resumed] = connect_once(*core0, groups[0], nullptr, TLS1_2_VERSION);
    ASSERT_TRUE(sess);
    auto [again, resumed2] = connect_once(*core0, groups[0], sess, TLS1_2_VERSION);
    EXPECT_FALSE(resumed2);
    SSL_SESSION_free(sess);
    SSL_SESSION_free(again);
}

TEST_F(Tls, TicketKeyFilesInBothFormats) {
    for (const char* file : {"ticket48.key", "ticket80.key"}) {
        load("server { listen 443 ssl; ssl_session_ticket_key " + cert(file) + "; " + pair("ecdsa") +
             " proxy_pass b; }\n");
        Client c;
        SSL_CTX_set_max_proto_version(c.ctx.get(), TLS1_2_VERSION);
        c.start();
        Handshake hs(c, *core0, groups[0]);
        ASSERT_EQ(hs.status, Endpoint::Status::kDone);
        std::unique_ptr<SSL_SESSION, SessFree> sess(SSL_get1_session(c.ssl.get()));
        Client again;
        SSL_CTX_set_max_proto_version(again.ctx.get(), TLS1_2_VERSION);
        again.start();
        SSL_set_session(again.ssl.get(), sess.get());
        Handshake ep2(again, *core1, groups[0]);
        ASSERT_EQ(ep2.status, Endpoint::Status::kDone);
        EXPECT_TRUE(SSL_session_reused(again.ssl.get())) << file;
    }
}

TEST_F(Tls, RotatedKeysStillOpenTheLastTickets) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    SSL_CTX_set_max_proto_version(c.ctx.get(), TLS1_2_VERSION);
    c.start();
    Handshake hs(c, *core0, groups[0]);
    ASSERT_EQ(hs.status, Endpoint::Status::kDone);
    std::unique_ptr<SSL_SESSION, SessFree> sess(SSL_get1_session(c.ssl.get()));
    auto resumes = [&]() {
        Client again;
        SSL_CTX_set_max_proto_version(again.ctx.get(), TLS1_2_VERSION);
        again.start();
        SSL_set_session(again.ssl.get(), sess.get());
        Handshake ep2(again, *core1, groups[0]);
        EXPECT_EQ(ep2.status, Endpoint::Status::kDone);
        return SSL_session_reused(again.ssl.get()) == 1;
    };
    shared->random_keys->rotate();
    EXPECT_TRUE(resumes());  // the previous key decrypts
    shared->random_keys->rotate();
    EXPECT_FALSE(resumes());  // two rotations later it is gone
}

TEST_F(Tls, KeysPushedByMgmtdAreInstalledOnceAndBringBackThePrevious) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    using Keys = tls::TicketKeys;
    auto key = [](char fill) {
        Keys::Key k;
        EXPECT_TRUE(Keys::parse_hex(std::string(160, fill), k));
        return k;
    };
    const Keys::Key k1 = key('1'), k2 = key('2'), k3 = key('3');
    EXPECT_EQ(Keys::to_hex(k2), std::string(160, '2'));
    Keys::Key bad;
    EXPECT_FALSE(Keys::parse_hex(std::string(159, '1'), bad));
    EXPECT_FALSE(Keys::parse_hex(std::string(158, '1') + "zz", bad));
    // The clients stay: one freed unshut would mark its session not
    // resumable (OpenSSL's ssl_clear_bad_session).
    std::vector<std::unique_ptr<Client>> clients;
    auto ticket = [&]() {
        clients.push_back(std::make_unique<Client>());
        Client& c = *clients.back();
        SSL_CTX_set_max_proto_version(c.ctx.get(), TLS1_2_VERSION);
        c.start();
        Handshake hs(c, *core0, groups[0]);
        EXPECT_EQ(hs.status, Endpoint::Status::kDone);
        return std::unique_ptr<SSL_SESSION, SessFree>(SSL_get1_session(c.ssl.get()));
    };
    auto resumes = [&](SSL_SESSION* sess) {
        Client again;
        SSL_CTX_set_max_proto_version(again.ctx.get(), TLS1_2_VERSION);
        again.start();
        SSL_set_session(again.ssl.get(), sess);
        Handshake ep2(again, *core1, groups[0]);
        EXPECT_EQ(ep2.status, Endpoint::Status::kDone);
        return SSL_session_reused(again.ssl.get()) == 1;
    };
    Keys& keys = *shared->random_keys;
    auto own = ticket();  // under terminusd's own random key
    EXPECT_TRUE(keys.set(k1, nullptr));
    EXPECT_EQ(Keys::name_hex(keys.current_name()), std::string(32, '1'));
    EXPECT_TRUE(resumes(own.get()));   // its own key is the previous one now
    EXPECT_FALSE(keys.set(k1, nullptr));  // held already: nothing changes
    EXPECT_TRUE(keys.set(k2, &k1));       // a rotation by mgmtd: K1 is held, only K2 goes in
    EXPECT_EQ(Keys::name_hex(keys.previous_name()), std::string(32, '1'));
    auto under_k2 = ticket();
    // A terminusd that restarted: its own random keys, K2 gone.
    keys.rotate();
    keys.rotate();
    EXPECT_FALSE(resumes(under_k2.get()));
    // mgmtd's next push brings K2 back as the previous key.
    EXPECT_TRUE(keys.set(k3, &k2));
    EXPECT_EQ(Keys::name_hex(keys.current_name()), std::string(32, '3'));
    EXPECT_EQ(Keys::name_hex(keys.previous_name()), std::string(32, '2'));
    EXPECT_TRUE(resumes(under_k2.get()));
    // terminusctl tickets rotate moved past K3: a push of K3 changes nothing.
    keys.rotate();
    EXPECT_FALSE(keys.set(k3, &k2));
}

// TLS 1.3 session tickets as a client counts them: one new session per
// NewSessionTicket message (RFC 8446 4.6.1), the last one kept.
int tickets_received = 0;
SSL_SESSION* last_ticket = nullptr;
int ticket_cb(SSL*, SSL_SESSION* sess) {
    ++tickets_received;
    SSL_SESSION_free(last_ticket);
    last_ticket = sess;
    return 1;  // the reference is ours
}
void count_tickets(Client& c) {
    SSL_CTX_set_session_cache_mode(c.ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c.ctx.get(), ticket_cb);
    tickets_received = 0;
    SSL_SESSION_free(last_ticket);
    last_ticket = nullptr;
}
// Moves what the client wrote to the server.
void to_server(Client& c, Pipe& p) {
    char buf[16384];
    int n;
    while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
}
// Moves what the server wrote to the client.
void to_client(Client& c, Pipe& p) {
    BIO_write(c.rbio, p.out.data(), static_cast<int>(p.out.size()));
    p.out.clear();
}
// The client reads what it was sent; returns the application bytes.
std::string client_reads(Client& c) {
    std::string got;
    char buf[4096];
    int n;
    while ((n = SSL_read(c.ssl.get(), buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
    ERR_clear_error();
    return got;
}
// Tickets a client gets from one handshake on SNI NAME, offering SESS
// (may be null); the client reads everything the server sent.
int tickets_from(CoreTls& core, const ListenGroup& g, const char* name, SSL_SESSION* sess = nullptr) {
    Client c;
    count_tickets(c);
    c.start(name);
    if (sess) SSL_set_session(c.ssl.get(), sess);
    Handshake hs(c, core, g);
    EXPECT_EQ(hs.status, Endpoint::Status::kDone);
    EXPECT_EQ(SSL_session_reused(c.ssl.get()), sess ? 1 : 0);
    client_reads(c);
    // Freed without close_notify, the client would mark the session it
    // was last given not resumable (ssl_clear_bad_session).
    SSL_set_shutdown(c.ssl.get(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    return tickets_received;
}

TEST_F(Tls, Tls13TicketsLeaveWithTheLastHandshakeFlight) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    count_tickets(c);
    c.start();
    Pipe p;
    Endpoint ep(*core0, groups[0], p);
    ASSERT_EQ(SSL_do_handshake(c.ssl.get()), -1);  // ClientHello
    to_server(c, p);
    ASSERT_EQ(ep.handshake(), Endpoint::Status::kAgain);  // ServerHello ... Finished
    to_client(c, p);
    ASSERT_EQ(SSL_do_handshake(c.ssl.get()), 1);  // the client's Finished
    to_server(c, p);
    const int flushes = p.flushes;
    ASSERT_EQ(ep.handshake(), Endpoint::Status::kDone);
    // The step that ends the handshake sends the tickets and flushes them:
    // they leave before any application data, however long the upstream
    // takes to answer, so a client that reads one response and goes away
    // has them.
    EXPECT_FALSE(p.out.empty());
    EXPECT_GT(p.flushes, flushes);
    to_client(c, p);
    EXPECT_EQ(client_reads(c), "");
    EXPECT_EQ(tickets_received, 2);
    // One request, one response, and the client leaves.
    ASSERT_EQ(SSL_write(c.ssl.get(), "GET", 3), 3);
    to_server(c, p);
    char req[16];
    ASSERT_EQ(ep.read(req, sizeof req), 3);
    ASSERT_EQ(ep.write("200", 3), 3);
    to_client(c, p);
    EXPECT_EQ(client_reads(c), "200");
    EXPECT_EQ(tickets_received, 2);
    ASSERT_TRUE(last_ticket);
    std::unique_ptr<SSL_SESSION, SessFree> sess(SSL_SESSION_dup(last_ticket));
    // Its ticket resumes, on either core.
    tickets_from(*core1, groups[0], "example.com", sess.get());
    EXPECT_EQ(core1->counters.handshakes_resumed_ticket, 1u);
}

TEST_F(Tls, Tls13TicketsFromTheSessionCacheLeaveWithTheHandshakeToo) {
    // ssl_session_tickets off: TLS 1.3 tickets name cached sessions.
    load("server { listen 443 ssl; ssl_session_cache shared:SSL:1m; ssl_session_tickets off; " + pair("ecdsa") +
         " proxy_pass b; }\n");
    Client c;
    count_tickets(c);
    c.start();
    Handshake hs(c, *core0, groups[0]);
    ASSERT_EQ(hs.status, Endpoint::Status::kDone);
    EXPECT_EQ(client_reads(c), "");  // before any data
    EXPECT_EQ(tickets_received, 2);
    ASSERT_TRUE(last_ticket);
    std::unique_ptr<SSL_SESSION, SessFree> sess(SSL_SESSION_dup(last_ticket));
    EXPECT_EQ(tickets_from(*core0, groups[0], "example.com", sess.get()), 1);
    EXPECT_EQ(core0->counters.handshakes_resumed_cache, 1u);
}

TEST_F(Tls, NumTicketsConfCommandSetsTheTicketsPerHandshake) {
    // OpenSSL sends two TLS 1.3 tickets after a full handshake;
    // "ssl_conf_command NumTickets N" makes it N.
    load("server { listen 443 ssl; server_name two.example.com; " + pair("ecdsa") + " proxy_pass b; }\n"
         "server { listen 443 ssl; server_name one.example.com; ssl_conf_command NumTickets 1; " + pair("ecdsa") +
         " proxy_pass b; }\n"
         "server { listen 443 ssl; server_name none.example.com; ssl_conf_command NumTickets 0; " + pair("ecdsa") +
         " proxy_pass b; }\n"
         "server { listen 8443 ssl; ssl_conf_command NumTickets 1; " + pair("ecdsa") + " proxy_pass b; }\n");
    ASSERT_EQ(groups.size(), 2u);
    for (CoreTls* core : {core0.get(), core1.get()}) {
        EXPECT_EQ(tickets_from(*core, groups[1], "example.com"), 1);
        // The server block SNI picks decides, not the listen's default.
        EXPECT_EQ(tickets_from(*core, groups[0], "two.example.com"), 2);
        EXPECT_EQ(tickets_from(*core, groups[0], "one.example.com"), 1);
        EXPECT_EQ(tickets_from(*core, groups[0], "none.example.com"), 0);
    }
    // A resumption from a ticket gets none: OpenSSL issues a new ticket
    // on a TLS 1.3 resumption only when the ticket key callback asks for
    // renewal (a key that no longer encrypts), or for a cached session.
    tickets_from(*core0, groups[0], "one.example.com");
    ASSERT_TRUE(last_ticket);
    std::unique_ptr<SSL_SESSION, SessFree> sess(SSL_SESSION_dup(last_ticket));
    EXPECT_EQ(tickets_from(*core0, groups[0], "one.example.com", sess.get()), 0);
    EXPECT_EQ(core0->counters.handshakes_resumed_ticket, 1u);
}

// Stands in for an offloading provider: the first time the certificate
// is chosen, the handshake's async job pauses, as it would while a QAT
// request is in flight.
int pauses = 0;
int pausing_cert_cb(SSL*, void*) {
    if (pauses == 0 && ASYNC_get_current_job() != nullptr) {
        ++pauses;
        ASYNC_pause_job();
    }
    return 1;
}

TEST_F(Tls, AParkedHandshakeResumesWhereItStopped) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    pauses = 0;
    SSL_CTX_set_cert_cb(core0->server(0)->ctx, pausing_cert_cb, nullptr);
    Client c;
    c.start();
    SSL_do_handshake(c.ssl.get());
    Pipe p;
    char buf[4096];
    int n;
    while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
    Endpoint ep(*core0, groups[0], p);
    // SSL_MODE_ASYNC: the handshake runs in a job, and the job paused.
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kAgain);
    EXPECT_TRUE(ep.parked());
    EXPECT_EQ(core0->counters.async_parked, 1u);
    EXPECT_TRUE(p.out.empty());  // nothing sent while parked
    // The next turn of the loop picks the job up again.
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kAgain);  // now waiting for the client's Finished
    EXPECT_FALSE(ep.parked());
    EXPECT_FALSE(p.out.empty());
    BIO_write(c.rbio, p.out.data(), static_cast<int>(p.out.size()));
    p.out.clear();
    ASSERT_EQ(SSL_do_handshake(c.ssl.get()), 1);
    while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kDone);
    EXPECT_EQ(pauses, 1);
}

// An offload that calls back: it stores the job's completion callback,
// says it will call it (ASYNC_STATUS_OK) and pauses; the test then plays
// the device finishing.
ASYNC_callback_fn device_done = nullptr;
void* device_arg = nullptr;
int calling_back_cert_cb(SSL*, void*) {
    ASYNC_JOB* job = ASYNC_get_current_job();
    if (pauses == 0 && job) {
        ++pauses;
        ASYNC_WAIT_CTX* w = ASYNC_get_wait_ctx(job);
        if (ASYNC_WAIT_CTX_get_callback(w, &device_done, &device_arg) == 1) {
            ASYNC_WAIT_CTX_set_status(w, ASYNC_STATUS_OK);
        }
        ASYNC_pause_job();
    }
    return 1;
}

TEST_F(Tls, AParkedHandshakeIsNamedByItsCompletionCallback) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    pauses = 0;
    device_done = nullptr;
    SSL_CTX_set_cert_cb(core0->server(0)->ctx, calling_back_cert_cb, nullptr);
    Client c;
    c.start();
    SSL_do_handshake(c.ssl.get());
    Pipe p;
    char buf[4096];
    int n;
    while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
    AsyncReady ready;
    ready.cookies.reserve(4);
    Endpoint ep(*core0, groups[0], p);
    ep.notify_async(&ready, 7);
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kAgain);
    EXPECT_TRUE(ep.parked());
    EXPECT_TRUE(ep.parked_with_callback());  // no retry needed: it will call
    EXPECT_TRUE(ready.cookies.empty());
    ASSERT_NE(device_done, nullptr);
    device_done(device_arg);  // the device finished
    ASSERT_EQ(ready.cookies.size(), 1u);
    EXPECT_EQ(ready.cookies[0], 7u);
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kAgain);  // on to the client's Finished
    EXPECT_FALSE(ep.parked());
    BIO_write(c.rbio, p.out.data(), static_cast<int>(p.out.size()));
    p.out.clear();
    ASSERT_EQ(SSL_do_handshake(c.ssl.get()), 1);
    while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kDone);
}

// Without callback support (the plain pause above) the park says so, and
// the proxy retries it each turn.
TEST_F(Tls, AParkWithoutCallbackSupportAsksForRetries) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    pauses = 0;
    SSL_CTX_set_cert_cb(core0->server(0)->ctx, pausing_cert_cb, nullptr);
    Client c;
    c.start();
    SSL_do_handshake(c.ssl.get());
    Pipe p;
    char buf[4096];
    int n;
    while ((n = BIO_read(c.wbio, buf, sizeof buf)) > 0) p.in.append(buf, static_cast<size_t>(n));
    AsyncReady ready;
    Endpoint ep(*core0, groups[0], p);
    ep.notify_async(&ready, 3);
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kAgain);
    EXPECT_TRUE(ep.parked());
    EXPECT_FALSE(ep.parked_with_callback());
}

TEST_F(Tls, RepeatedHandshakesDoNotGrowTheHeap) {
    load("server { listen 443 ssl; ssl_session_cache none; " + pair("ecdsa") + " proxy_pass b; }\n");
    auto handshakes = [&](int n) {
        for (int i = 0; i < n; ++i) {
            Client c;
            c.start();
            Handshake hs(c, *core0, groups[0]);
            ASSERT_EQ(hs.status, Endpoint::Status::kDone);
        }
    };
    handshakes(500);  // OpenSSL's caches and pools settle
    const size_t before = mallinfo2().uordblks;
    handshakes(2000);
    const size_t after = mallinfo2().uordblks;
    EXPECT_LT(after, before + 64 * 1024) << before << " -> " << after << " bytes in use";
}

TEST_F(Tls, GarbageIsAMalformedHandshake) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Pipe p;
    Endpoint ep(*core0, groups[0], p);
    p.in = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kFailed);
    EXPECT_EQ(ep.failure(), Failure::k_malformed);
}

TEST_F(Tls, OversizedRecordGetsAnAlert) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Pipe p;
    Endpoint ep(*core0, groups[0], p);
    // A handshake record header claiming 2^14 + 2049 bytes.
    const uint16_t len = 16384 + 2049;
    p.in = std::string("\x16\x03\x01", 3) + static_cast<char>(len >> 8) + static_cast<char>(len & 0xff) +
           std::string(len, '\0');
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kFailed);
    EXPECT_EQ(ep.failure(), Failure::k_malformed);
    // An alert record went back.
    ASSERT_GE(p.out.size(), 7u);
    EXPECT_EQ(p.out[0], '\x15');
}

TEST_F(Tls, HalfAClientHelloWaits) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    c.start();
    SSL_do_handshake(c.ssl.get());
    char buf[4096];
    const int n = BIO_read(c.wbio, buf, sizeof buf);
    ASSERT_GT(n, 20);
    Pipe p;
    Endpoint ep(*core0, groups[0], p);
    p.in.assign(buf, static_cast<size_t>(n / 2));
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kAgain);
    EXPECT_TRUE(p.out.empty());
    ep.fail(Failure::k_timeout);  // what the dataplane does at ssl_handshake_timeout
    EXPECT_EQ(core0->counters.failed[static_cast<size_t>(Failure::k_timeout)], 1u);
}

TEST_F(Tls, StaplesTheOcspResponseFromItsFile) {
    load("server { listen 443 ssl; ssl_stapling on; ssl_stapling_file " + cert("ocsp.der") + "; " +
         pair("rsa") + " proxy_pass b; }\n");
    Client c;
    c.start();
    SSL_set_tlsext_status_type(c.ssl.get(), TLSEXT_STATUSTYPE_ocsp);
    Handshake hs(c, *core0, groups[0]);
    ASSERT_EQ(hs.status, Endpoint::Status::kDone);
    const unsigned char* resp = nullptr;
    const long len = SSL_get_tlsext_status_ocsp_resp(c.ssl.get(), &resp);
    EXPECT_GT(len, 0);
}


// Half-aborted handshakes, each in its class (not "internal").

TEST_F(Tls, HalfAClientHelloThenEofIsPeerClosed) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    c.start();
    SSL_do_handshake(c.ssl.get());
    char buf[4096];
    const int n = BIO_read(c.wbio, buf, sizeof buf);
    ASSERT_GT(n, 20);
    Pipe p;
    Endpoint ep(*core0, groups[0], p);
    p.in.assign(buf, static_cast<size_t>(n / 2));
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kAgain);
    p.closed = true;  // the client's FIN
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kFailed);
    EXPECT_EQ(ep.failure(), Failure::k_peer_closed);
    EXPECT_EQ(core0->counters.failed[static_cast<size_t>(Failure::k_peer_closed)], 1u);
    EXPECT_EQ(core0->counters.failed[static_cast<size_t>(Failure::k_internal)], 0u);
}

TEST_F(Tls, EofBeforeAnyByteIsPeerClosed) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Pipe p;
    p.closed = true;
    Endpoint ep(*core0, groups[0], p);
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kFailed);
    EXPECT_EQ(ep.failure(), Failure::k_peer_closed);
}

TEST_F(Tls, GarbageThenEofIsStillMalformed) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Pipe p;
    p.in = std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01\xff", 10);  // a ClientHello of one byte
    p.closed = true;
    Endpoint ep(*core0, groups[0], p);
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kFailed);
    EXPECT_EQ(ep.failure(), Failure::k_malformed);
    EXPECT_EQ(ERR_GET_LIB(ep.error()), ERR_LIB_SSL);
    ASSERT_GE(p.out.size(), 7u);
    EXPECT_EQ(p.out[0], '\x15');  // the alert went back all the same
}

TEST_F(Tls, ASecondClientHelloInTheFirstFlightIsMalformed) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    c.start();
    SSL_do_handshake(c.ssl.get());
    Pipe p;
    to_server(c, p);
    p.in += p.in;  // a plaintext ClientHello where the encrypted Finished belongs
    Endpoint ep(*core0, groups[0], p);
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kFailed);
    EXPECT_EQ(ep.failure(), Failure::k_malformed);
}

TEST_F(Tls, AClientAlertInPlaceOfItsSecondFlightIsPeerAlert) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Client c;
    SSL_CTX_set_max_proto_version(c.ctx.get(), TLS1_2_VERSION);
    c.start();
    SSL_do_handshake(c.ssl.get());
    Pipe p;
    to_server(c, p);
    Endpoint ep(*core0, groups[0], p);
    ASSERT_EQ(ep.handshake(), Endpoint::Status::kAgain);  // ServerHello ... ServerHelloDone
    p.in = std::string("\x15\x03\x03\x00\x02\x02\x28", 7);  // fatal handshake_failure
    EXPECT_EQ(ep.handshake(), Endpoint::Status::kFailed);
    EXPECT_EQ(ep.failure(), Failure::k_peer_alert);
    EXPECT_EQ(ERR_GET_REASON(ep.error()), SSL_AD_REASON_OFFSET + SSL_AD_HANDSHAKE_FAILURE);
}

TEST_F(Tls, AClientThatDistrustsOurCertificateIsPeerAlert) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        Client c;
        SSL_CTX_set_max_proto_version(c.ctx.get(), version);
        // Another CA than ours: the client's verification fails, and it
        // sends its alert (unknown_ca), encrypted in TLS 1.3.
        X509_STORE* store = X509_STORE_new();
        X509_STORE_load_file(store, cert("client-ca.crt").c_str());
        SSL_CTX_set_cert_store(c.ctx.get(), store);
        c.start();
        Handshake hs(c, *core0, groups[0]);
        EXPECT_EQ(hs.status, Endpoint::Status::kFailed) << version;
        EXPECT_EQ(hs.ep.failure(), Failure::k_peer_alert) << version;
        EXPECT_EQ(ERR_GET_REASON(hs.ep.error()), SSL_R_TLSV1_ALERT_UNKNOWN_CA) << version;
    }
    EXPECT_EQ(core0->counters.failed[static_cast<size_t>(Failure::k_peer_alert)], 2u);
}

TEST(TlsClassify, CommonReasonsAreOursAndAlertsThePeers) {
    unsigned long cause = 0;
    // ERR_R_INTERNAL_ERROR's reason carries its flags, above any alert's
    // number: it is ours, not the client's.
    ERR_raise(ERR_LIB_SSL, ERR_R_INTERNAL_ERROR);
    EXPECT_EQ(classify_failure(SSL_ERROR_SSL, false, cause), Failure::k_internal);
    EXPECT_EQ(ERR_GET_REASON(cause), ERR_R_INTERNAL_ERROR);
    ERR_raise(ERR_LIB_SSL, SSL_R_TLSV1_ALERT_DECODE_ERROR);
    EXPECT_EQ(classify_failure(SSL_ERROR_SSL, false, cause), Failure::k_peer_alert);
    // A provider's error before the SSL library's: the SSL one decides.
    ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
    ERR_raise(ERR_LIB_SSL, SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
    EXPECT_EQ(classify_failure(SSL_ERROR_SSL, false, cause), Failure::k_malformed);
    EXPECT_EQ(ERR_GET_REASON(cause), SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
    EXPECT_EQ(ERR_peek_error(), 0u);  // drained
    // Only a provider's: ours.
    ERR_raise(ERR_LIB_PROV, ERR_R_PASSED_INVALID_ARGUMENT);
    EXPECT_EQ(classify_failure(SSL_ERROR_SSL, false, cause), Failure::k_internal);
    ERR_raise(ERR_LIB_SSL, SSL_R_UNEXPECTED_EOF_WHILE_READING);
    EXPECT_EQ(classify_failure(SSL_ERROR_SSL, false, cause), Failure::k_peer_closed);
    EXPECT_EQ(classify_failure(SSL_ERROR_ZERO_RETURN, false, cause), Failure::k_peer_closed);
    EXPECT_EQ(classify_failure(SSL_ERROR_SYSCALL, true, cause), Failure::k_peer_closed);
    EXPECT_EQ(classify_failure(SSL_ERROR_SYSCALL, false, cause), Failure::k_internal);
}

// After the handshake: what a strict peer (a TLS conformance suite)
// expects of protocol errors and KeyUpdates.

// The TLS 1.3 secrets a client logs (SSL_CTX_set_keylog_callback, the
// SSLKEYLOGFILE format), by label.
std::string keylog;
void keylog_cb(const SSL*, const char* line) { keylog += std::string(line) + "\n"; }
std::string logged_secret(const std::string& label) {
    const size_t at = keylog.find(label + " ");
    if (at == std::string::npos) return {};
    const size_t hex = keylog.find(' ', at + label.size() + 1) + 1;
    const size_t end = keylog.find('\n', hex);
    std::string out;
    for (size_t i = hex; i + 1 < end; i += 2) {
        out += static_cast<char>(std::stoi(keylog.substr(i, 2), nullptr, 16));
    }
    return out;
}

// HKDF-Expand-Label (RFC 8446 7.1) with SHA-256, for outputs up to 32
// bytes: one HMAC block of the label, then 0x01.
std::string expand_label(const std::string& secret, const std::string& label, size_t len) {
    const std::string full = "tls13 " + label;
    std::string info;
    info += static_cast<char>(len >> 8);
    info += static_cast<char>(len & 0xff);
    info += static_cast<char>(full.size());
    info += full;
    info += '\0';  // no context
    info += '\x01';
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned out_len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(info.data()), info.size(), out, &out_len);
    return std::string(reinterpret_cast<char*>(out), len);
}

// Records sealed as the client would seal them under its first
// application traffic key (TLS_AES_128_GCM_SHA256; RFC 8446 5.2, 5.3):
// what no stock client sends, made exactly.
struct Forger {
    std::string key, iv;
    uint64_t seq = 0;
    explicit Forger(const std::string& traffic_secret)
        : key(expand_label(traffic_secret, "key", 16)), iv(expand_label(traffic_secret, "iv", 12)) {}
    std::string seal(uint8_t type, const std::string& content) {
        const std::string inner = content + static_cast<char>(type);
        const size_t len = inner.size() + 16;
        const std::string header = std::string("\x17\x03\x03", 3) + static_cast<char>(len >> 8) +
                                   static_cast<char>(len & 0xff);
        unsigned char nonce[12];
        std::memcpy(nonce, iv.data(), 12);
        for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<unsigned char>(seq >> (8 * i));
        ++seq;
        std::string out(inner.size() + 16, '\0');
        auto* o = reinterpret_cast<unsigned char*>(out.data());
        EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
        int n = 0;
        EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), nullptr, reinterpret_cast<const unsigned char*>(key.data()), nonce);
        EVP_EncryptUpdate(c, nullptr, &n, reinterpret_cast<const unsigned char*>(header.data()),
                          static_cast<int>(header.size()));
        EVP_EncryptUpdate(c, o, &n, reinterpret_cast<const unsigned char*>(inner.data()),
                          static_cast<int>(inner.size()));
        EVP_EncryptFinal_ex(c, o + n, &n);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, o + inner.size());
        EVP_CIPHER_CTX_free(c);
        return header + out;
    }
};

// Handshake messages the client receives, by type (SSL_set_msg_callback).
int key_updates_seen = 0;
int last_key_update_type = -1;
void msg_cb(int write_p, int, int content_type, const void* buf, size_t len, SSL*, void*) {
    const auto* b = static_cast<const unsigned char*>(buf);
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len == 5 && b[0] == SSL3_MT_KEY_UPDATE) {
        ++key_updates_seen;
        last_key_update_type = b[4];
    }
}

// A TLS 1.3 connection (AES-128-GCM) whose client's secrets are known.
struct Tls13Conn {
    Client c;
    Pipe p;
    std::unique_ptr<Endpoint> ep;
    Tls13Conn(CoreTls& core, const ListenGroup& g) {
        keylog.clear();
        SSL_CTX_set_ciphersuites(c.ctx.get(), "TLS_AES_128_GCM_SHA256");
        SSL_CTX_set_keylog_callback(c.ctx.get(), keylog_cb);
        SSL_CTX_set_msg_callback(c.ctx.get(), msg_cb);
        c.start();
        ep = std::make_unique<Endpoint>(core, g, p);
        const Result2 r = run(c, *ep, p);
        EXPECT_EQ(r.server, Endpoint::Status::kDone);
        EXPECT_TRUE(r.client_done);
        EXPECT_EQ(client_reads(c), "");  // the tickets
        key_updates_seen = 0;
        last_key_update_type = -1;
        last_alert_received = -1;
    }
    Forger forger() const { return Forger(logged_secret("CLIENT_TRAFFIC_SECRET_0")); }
    // The server reads what the client sent: kAlerted, once counted, and
    // the client then reads the alert DESCRIPTION in what came back.
    void expect_alert(CoreTls& core, int description) {
        const uint64_t before = core.counters.bad_records;
        p.cork();  // as a transport left corked by someone else
        char buf[64];
        EXPECT_EQ(ep->read(buf, sizeof buf), RecordLayer::kAlerted);
        EXPECT_TRUE(p.held().empty());
        // One encrypted record: header, alert (2), content type, tag.
        EXPECT_EQ(p.out.size(), 5u + 2 + 1 + 16);
        EXPECT_EQ(p.out.substr(0, 3), std::string("\x17\x03\x03", 3));
        EXPECT_EQ(core.counters.bad_records, before + 1);
        EXPECT_EQ(ep->read(buf, sizeof buf), RecordLayer::kAlerted);  // and stays so
        EXPECT_EQ(core.counters.bad_records, before + 1);
        to_client(c, p);
        EXPECT_LE(SSL_read(c.ssl.get(), buf, sizeof buf), 0);
        EXPECT_EQ(SSL_get_error(c.ssl.get(), 0), SSL_ERROR_SSL);
        ERR_clear_error();
        EXPECT_EQ(last_alert_received, description);
    }
};

TEST_F(Tls, AKeyUpdateOfUnknownTypeGetsIllegalParameter) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Tls13Conn t(*core0, groups[0]);
    Forger f = t.forger();
    ASSERT_EQ(f.key.size(), 16u);
    // A forged record the server accepts first: the forgery is exact.
    t.p.in = f.seal(SSL3_RT_APPLICATION_DATA, "ping");
    char buf[16];
    ASSERT_EQ(t.ep->read(buf, sizeof buf), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    // KeyUpdate (24), length 1, update type 2: neither of the two defined.
    t.p.in = f.seal(SSL3_RT_HANDSHAKE, std::string("\x18\x00\x00\x01\x02", 5));
    t.expect_alert(*core0, SSL_AD_ILLEGAL_PARAMETER);
}

TEST_F(Tls, AKeyUpdateOfTheWrongLengthIsRefused) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    {
        // Empty: no update type to decode.
        Tls13Conn t(*core0, groups[0]);
        t.p.in = t.forger().seal(SSL3_RT_HANDSHAKE, std::string("\x18\x00\x00\x00", 4));
        t.expect_alert(*core0, SSL_AD_DECODE_ERROR);
    }
    {
        // Longer than a KeyUpdate can be: OpenSSL refuses its length
        // before it reads it (SSL_R_EXCESSIVE_MESSAGE_SIZE).
        Tls13Conn t(*core0, groups[0]);
        t.p.in = t.forger().seal(SSL3_RT_HANDSHAKE, std::string("\x18\x00\x00\x02\x00\x00", 6));
        t.expect_alert(*core0, SSL_AD_ILLEGAL_PARAMETER);
    }
}

TEST_F(Tls, AClientHelloAfterTheTls13HandshakeGetsUnexpectedMessage) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Tls13Conn t(*core0, groups[0]);
    // A new client's ClientHello, as a handshake message inside the
    // connection's encryption.
    Client other;
    other.start();
    SSL_do_handshake(other.ssl.get());
    char hello[4096];
    const int n = BIO_read(other.wbio, hello, sizeof hello);
    ASSERT_GT(n, 5);
    t.p.in = t.forger().seal(SSL3_RT_HANDSHAKE, std::string(hello + 5, static_cast<size_t>(n - 5)));
    t.expect_alert(*core0, SSL_AD_UNEXPECTED_MESSAGE);
}

TEST_F(Tls, AnUnrequestedCertificateAfterTheHandshakeGetsUnexpectedMessage) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Tls13Conn t(*core0, groups[0]);
    // Certificate (11): empty context, empty list.
    t.p.in = t.forger().seal(SSL3_RT_HANDSHAKE, std::string("\x0b\x00\x00\x04\x00\x00\x00\x00", 8));
    t.expect_alert(*core0, SSL_AD_UNEXPECTED_MESSAGE);
}

TEST_F(Tls, ATamperedRecordGetsBadRecordMac) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        Client c;
        SSL_CTX_set_max_proto_version(c.ctx.get(), version);
        c.start();
        Pipe p;
        Endpoint ep(*core0, groups[0], p);
        ASSERT_EQ(run(c, ep, p).server, Endpoint::Status::kDone);
        client_reads(c);
        last_alert_received = -1;
        ASSERT_EQ(SSL_write(c.ssl.get(), "hello", 5), 5);
        to_server(c, p);
        p.in[p.in.size() - 1] ^= 1;  // the tag
        const uint64_t before = core0->counters.bad_records;
        char buf[16];
        EXPECT_EQ(ep.read(buf, sizeof buf), RecordLayer::kAlerted);
        EXPECT_EQ(core0->counters.bad_records, before + 1);
        ASSERT_FALSE(p.out.empty());
        // TLS 1.2 alerts go as alert records, TLS 1.3 ones inside
        // application_data records.
        EXPECT_EQ(p.out[0], version == TLS1_2_VERSION ? '\x15' : '\x17');
        to_client(c, p);
        EXPECT_LE(SSL_read(c.ssl.get(), buf, sizeof buf), 0);
        ERR_clear_error();
        EXPECT_EQ(last_alert_received, SSL_AD_BAD_RECORD_MAC) << version;
    }
}

TEST_F(Tls, TheClientsFatalAlertClosesWithoutABadRecord) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Tls13Conn t(*core0, groups[0]);
    t.p.in = t.forger().seal(SSL3_RT_ALERT, std::string("\x02\x50", 2));  // fatal internal_error
    char buf[16];
    EXPECT_EQ(t.ep->read(buf, sizeof buf), RecordLayer::kAlerted);
    EXPECT_TRUE(t.p.out.empty());  // no alert answers an alert
    EXPECT_EQ(core0->counters.bad_records, 0u);
}

TEST_F(Tls, CloseNotifyIsPeerClosed) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Tls13Conn t(*core0, groups[0]);
    SSL_shutdown(t.c.ssl.get());
    to_server(t.c, t.p);
    char buf[16];
    EXPECT_EQ(t.ep->read(buf, sizeof buf), RecordLayer::kPeerClosed);
    EXPECT_EQ(core0->counters.bad_records, 0u);
}

TEST_F(Tls, AKeyUpdateRequestIsAnsweredWithoutDataToSend) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Tls13Conn t(*core0, groups[0]);
    ASSERT_EQ(SSL_key_update(t.c.ssl.get(), SSL_KEY_UPDATE_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(t.c.ssl.get()), 1);  // the client's KeyUpdate leaves
    to_server(t.c, t.p);
    ASSERT_FALSE(t.p.in.empty());
    char buf[64];
    // Nothing to read, nothing of ours to write: our KeyUpdate all the
    // same, one record (header, message of 5, content type, tag).
    EXPECT_EQ(t.ep->read(buf, sizeof buf), 0);
    EXPECT_EQ(SSL_get_key_update_type(t.ep->ssl()), SSL_KEY_UPDATE_NONE);
    EXPECT_EQ(t.p.out.size(), 5u + 5 + 1 + 16);
    to_client(t.c, t.p);
    EXPECT_EQ(client_reads(t.c), "");
    EXPECT_EQ(key_updates_seen, 1);
    EXPECT_EQ(last_key_update_type, SSL_KEY_UPDATE_NOT_REQUESTED);  // no loop of requests
    // Both sides use the new keys.
    ASSERT_EQ(t.ep->write("after", 5), 5);
    to_client(t.c, t.p);
    EXPECT_EQ(client_reads(t.c), "after");
    ASSERT_EQ(SSL_write(t.c.ssl.get(), "again", 5), 5);
    to_server(t.c, t.p);
    ASSERT_EQ(t.ep->read(buf, sizeof buf), 5);
    EXPECT_EQ(std::string(buf, 5), "again");
    // An update that asks for nothing gets nothing.
    ASSERT_EQ(SSL_key_update(t.c.ssl.get(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(t.c.ssl.get()), 1);
    to_server(t.c, t.p);
    EXPECT_EQ(t.ep->read(buf, sizeof buf), 0);
    EXPECT_TRUE(t.p.out.empty());
}

TEST_F(Tls, AKeyUpdateAnswerThatDidNotFitLeavesBeforeTheNextData) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    Tls13Conn t(*core0, groups[0]);
    ASSERT_EQ(SSL_key_update(t.c.ssl.get(), SSL_KEY_UPDATE_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(t.c.ssl.get()), 1);
    to_server(t.c, t.p);
    t.p.capacity = 10;  // room for part of the answer only
    char buf[64];
    EXPECT_EQ(t.ep->read(buf, sizeof buf), 0);
    EXPECT_EQ(t.p.out.size(), 10u);
    const std::string head = t.p.out;
    t.p.out.clear();
    t.p.capacity = 1 << 20;
    // A write shorter than the KeyUpdate message (5 bytes): the rest of
    // the answer first, then the data.
    ASSERT_EQ(t.ep->write("ok", 2), 2);
    t.p.out = head + t.p.out;
    to_client(t.c, t.p);
    EXPECT_EQ(client_reads(t.c), "ok");
    EXPECT_EQ(key_updates_seen, 1);
}

// ClientEndpoint against Endpoint, over two connected memory pipes.
struct ClientConn {
    std::unique_ptr<SSL_CTX, CtxFree> ctx{SSL_CTX_new(TLS_client_method())};
    terminus::testing::Pair pipes;
    std::unique_ptr<ClientEndpoint> client;
    std::unique_ptr<Endpoint> server;
    ClientConn(CoreTls& core, const ListenGroup& g, const char* sni = "example.com", const char* ca = "ca.crt") {
        SSL_CTX_load_verify_file(ctx.get(), cert(ca).c_str());
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
        client = std::make_unique<ClientEndpoint>(ctx.get(), pipes.client, sni, nullptr);
        server = std::make_unique<Endpoint>(core, g, pipes.server);
    }
    // Both handshakes as far as they go; the client's status.
    ClientEndpoint::Status run() {
        ClientEndpoint::Status cs = ClientEndpoint::Status::kAgain;
        for (int i = 0; i < 10; ++i) {
            cs = client->handshake();
            const Endpoint::Status ss = server->handshake();
            if (cs != ClientEndpoint::Status::kAgain && ss != Endpoint::Status::kAgain) break;
            if (cs == ClientEndpoint::Status::kFailed) break;
        }
        return cs;
    }
};

// Key updates the server reads (its msg callback).
int server_key_updates = 0;
void server_msg_cb(int write_p, int, int content_type, const void* buf, size_t len, SSL*, void*) {
    const auto* b = static_cast<const unsigned char*>(buf);
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && len == 5 && b[0] == SSL3_MT_KEY_UPDATE) {
        ++server_key_updates;
    }
}

TEST_F(Tls, TheClientEndpointAnswersAKeyUpdateRequest) {
    load("server { listen 443 ssl; " + pair("ecdsa") + " proxy_pass b; }\n");
    ClientConn cc(*core0, groups[0]);
    ASSERT_EQ(cc.run(), ClientEndpoint::Status::kDone);
    ASSERT_TRUE(cc.server->established());
    char buf[64];
    EXPECT_EQ(cc.client->read(buf, sizeof buf), 0);  // the tickets
    SSL* s = cc.server->ssl();
    server_key_updates = 0;
    SSL_set_msg_callback(s, server_msg_cb);
    // The server asks (as a peer would; Terminus itself never does).
    ASSERT_EQ(SSL_key_update(s, SSL_KEY_UPDATE_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(s), 1);
    ASSERT_FALSE(cc.pipes.client.in.empty());
    EXPECT_EQ(cc.client->read(buf, sizeof buf), 0);
    EXPECT_EQ(cc.pipes.server.in.size(), 5u + 5 + 1 + 16);
    EXPECT_EQ(cc.server->read(buf, sizeof buf), 0);
    EXPECT_EQ(server_key_updates, 1);
    EXPECT_EQ(SSL_get_key_update_type(s), SSL_KEY_UPDATE_NONE);  // nothing asked back
    ASSERT_EQ(cc.server->write("down", 4), 4);
    ASSERT_EQ(cc.client->read(buf, sizeof buf), 4);
    ASSERT_EQ(cc.client->write("up", 2), 2);
    ASSERT_EQ(cc.server->read(buf, sizeof buf), 2);
    EXPECT_EQ(std::string(buf, 2), "up");
}

TEST_F(Tls, TheClientEndpointClassifiesItsFailures) {
    load("server { listen 443 ssl; server_name example.com; " + pair("ecdsa") + " proxy_pass b; }\n"
         "server { listen 443 ssl default_server; ssl_reject_handshake on; proxy_pass b; }\n");
    {
        // The server's alert (unrecognized_name).
        ClientConn cc(*core0, groups[0], "nobody.test");
        EXPECT_EQ(cc.run(), ClientEndpoint::Status::kFailed);
        EXPECT_EQ(cc.client->failure(), Failure::k_peer_alert);
        EXPECT_EQ(ERR_GET_REASON(cc.client->error()), SSL_R_TLSV1_UNRECOGNIZED_NAME);
    }
    {
        // A certificate that does not verify.
        ClientConn cc(*core0, groups[0], "example.com", "client-ca.crt");
        EXPECT_EQ(cc.run(), ClientEndpoint::Status::kFailed);
        EXPECT_EQ(cc.client->failure(), Failure::k_bad_client_cert);
        EXPECT_NE(SSL_get_verify_result(cc.client->ssl()), X509_V_OK);
    }
    {
        // Not TLS at all.
        ClientConn cc(*core0, groups[0]);
        EXPECT_EQ(cc.client->handshake(), ClientEndpoint::Status::kAgain);
        cc.pipes.client.in = "HTTP/1.1 400 Bad Request\r\n\r\n";
        EXPECT_EQ(cc.client->handshake(), ClientEndpoint::Status::kFailed);
        EXPECT_EQ(cc.client->failure(), Failure::k_malformed);
        EXPECT_EQ(ERR_GET_LIB(cc.client->error()), ERR_LIB_SSL);
    }
    {
        // The server closes before its ServerHello is whole.
        ClientConn cc(*core0, groups[0]);
        EXPECT_EQ(cc.client->handshake(), ClientEndpoint::Status::kAgain);
        EXPECT_EQ(cc.server->handshake(), Endpoint::Status::kAgain);
        cc.pipes.client.in.resize(20);
        cc.pipes.server.close_write();
        EXPECT_EQ(cc.client->handshake(), ClientEndpoint::Status::kFailed);
        EXPECT_EQ(cc.client->failure(), Failure::k_peer_closed);
    }
}

}  // namespace
}  // namespace terminus::tls
