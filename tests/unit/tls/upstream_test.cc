// TLS towards upstreams in one process: UpstreamConnection over an
// in-memory Transport against a real OpenSSL server, with contexts built
// from configurations as terminusd builds them. Certificates the test set
// does not hold (expired, not yet valid, self-signed) and CRLs are made
// here, signed by the test CA.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "config/config.h"
#include "tls/tls.h"
#include "tls/upstream.h"

namespace terminus::tls {
namespace {

std::string cert(const std::string& f) {
    const char* d = std::getenv("TERMINUS_TEST_CERTS");
    return std::string(d ? d : "/nonexistent") + "/" + f;
}

// The proxy's side of a connection: bytes from the upstream in, bytes to
// it out.
struct Pipe : Transport {
    std::string in, out;
    bool closed = false;
    uint32_t read(void* dst, uint32_t len) override {
        const uint32_t n = std::min<uint32_t>(len, static_cast<uint32_t>(in.size()));
        std::memcpy(dst, in.data(), n);
        in.erase(0, n);
        return n;
    }
    bool eof() const override { return closed && in.empty(); }
    uint32_t write(const void* src, uint32_t len) override {
        out.append(static_cast<const char*>(src), len);
        return len;
    }
    uint32_t write_space() const override { return 1 << 20; }
    void cork() override {}
    void flush() override {}
};

struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

X509Ptr read_cert(const std::string& path) {
    BIO* b = BIO_new_file(path.c_str(), "r");
    X509* x = b ? PEM_read_bio_X509(b, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(b);
    return X509Ptr(x);
}

PkeyPtr read_key(const std::string& path) {
    BIO* b = BIO_new_file(path.c_str(), "r");
    EVP_PKEY* k = b ? PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(b);
    return PkeyPtr(k);
}

// What the upstream's server saw of our ClientHello, and what it chose.
struct Seen {
    std::string alpn_offered;  // wire format
    const char* alpn_accept = nullptr;
};

int alpn_cb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
            void* arg) {
    auto* seen = static_cast<Seen*>(arg);
    seen->alpn_offered.assign(reinterpret_cast<const char*>(in), inlen);
    if (!seen->alpn_accept) return SSL_TLSEXT_ERR_NOACK;
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (std::strlen(seen->alpn_accept) == in[i] && std::memcmp(in + i + 1, seen->alpn_accept, in[i]) == 0) {
            *out = in + i + 1;
            *outlen = in[i];
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
}

// The upstream: an OpenSSL server.
struct Server {
    std::unique_ptr<SSL_CTX, CtxFree> ctx{SSL_CTX_new(TLS_server_method())};
    Seen seen;
    explicit Server(const std::string& crt = cert("rsa.crt"), const std::string& key = cert("rsa.key")) {
        SSL_CTX_use_certificate_chain_file(ctx.get(), crt.c_str());
        SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM);
        SSL_CTX_set_alpn_select_cb(ctx.get(), alpn_cb, &seen);
        const unsigned char sid[] = "upstream test";
        SSL_CTX_set_session_id_context(ctx.get(), sid, sizeof sid - 1);
    }
    void versions(int min, int max) {
        SSL_CTX_set_min_proto_version(ctx.get(), min);
        SSL_CTX_set_max_proto_version(ctx.get(), max);
    }
    // ssl_verify_client on, with the CA for client certificates.
    void require_client_cert() {
        SSL_CTX_load_verify_file(ctx.get(), cert("client-ca.crt").c_str());
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
};

// One connection's upstream end, over memory BIOs joined to the Pipe.
struct Link {
    Pipe pipe;
    std::unique_ptr<SSL, SslFree> ssl;
    BIO* rbio = nullptr;
    BIO* wbio = nullptr;
    explicit Link(Server& s) : ssl(SSL_new(s.ctx.get())) {
        rbio = BIO_new(BIO_s_mem());
        wbio = BIO_new(BIO_s_mem());
        SSL_set_bio(ssl.get(), rbio, wbio);
        SSL_set_accept_state(ssl.get());
    }
    void to_server() {
        if (!pipe.out.empty()) BIO_write(rbio, pipe.out.data(), static_cast<int>(pipe.out.size()));
        pipe.out.clear();
    }
    void to_client() {
        char buf[16384];
        int n;
        while ((n = BIO_read(wbio, buf, sizeof buf)) > 0) pipe.in.append(buf, static_cast<size_t>(n));
    }
    // Bytes the upstream sends after the handshake (tickets, data).
    void send(const std::string& data) {
        SSL_write(ssl.get(), data.data(), static_cast<int>(data.size()));
        to_client();
    }
    const char* sni() const { return SSL_get_servername(ssl.get(), TLSEXT_NAMETYPE_host_name); }
};

// Both handshakes as far as they go.
UpstreamConnection::Status run(UpstreamConnection& c, Link& l) {
    UpstreamConnection::Status st = UpstreamConnection::Status::kAgain;
    for (int round = 0; round < 20; ++round) {
        st = c.handshake();
        l.to_server();
        const int rc = SSL_do_handshake(l.ssl.get());
        const int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(l.ssl.get(), rc);
        l.to_client();
        ERR_clear_error();
        if (st == UpstreamConnection::Status::kFailed) break;
        if (st == UpstreamConnection::Status::kDone && rc == 1) break;
        if (rc != 1 && err != SSL_ERROR_WANT_READ) {
            // The upstream gave up: its alert is on the way to us.
            if (st != UpstreamConnection::Status::kDone) st = c.handshake();
            break;
        }
    }
    ERR_clear_error();
    return st;
}

// Reads what the upstream sent after the handshake (TLS 1.3 tickets).
int drain(UpstreamConnection& c) {
    char buf[256];
    return c.read(buf, sizeof buf);
}

constexpr uint32_t kPeerAddr = (198u << 24) | (18u << 16) | 1u;
constexpr UpstreamKey kKey{0, kPeerAddr, 8443};

// Files made for one test, removed after it.
class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/upstream-test-XXXXXX";
        path_ = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

void write_pem(const std::string& path, X509* x) {
    BIO* b = BIO_new_file(path.c_str(), "w");
    PEM_write_bio_X509(b, x);
    BIO_free(b);
}

void write_key(const std::string& path, EVP_PKEY* k) {
    BIO* b = BIO_new_file(path.c_str(), "w");
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    BIO_free(b);
}

// A P-256 leaf for NAME valid from NOT_BEFORE to NOT_AFTER seconds from
// now, signed by ISSUER (null: by itself).
X509Ptr make_leaf(EVP_PKEY* key, const char* name, long not_before, long not_after, X509* issuer,
                  EVP_PKEY* issuer_key) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), not_before);
    X509_gmtime_adj(X509_getm_notAfter(x), not_after);
    X509_set_pubkey(x, key);
    X509_NAME* subject = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name), -1, -1,
                               0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, nullptr, nullptr, 0);
    const std::string san = std::string("DNS:") + name;
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
    return X509Ptr(x);
}

PkeyPtr new_key() { return PkeyPtr(EVP_EC_gen("P-256")); }

// An intermediate CA called NAME under ISSUER.
X509Ptr make_ca(EVP_PKEY* key, const char* name, X509* issuer, EVP_PKEY* issuer_key) {
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 77);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(name), -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer));
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer, x, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                              std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, issuer_key, EVP_sha256());
    return X509Ptr(x);
}

// A CRL from ISSUER revoking SERIAL (null: none).
void write_crl(const std::string& path, X509* issuer, EVP_PKEY* key, const ASN1_INTEGER* serial) {
    X509_CRL* crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
    ASN1_TIME* t = ASN1_TIME_adj(nullptr, std::time(nullptr), -1, 0);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME_adj(t, std::time(nullptr), 30, 0);
    X509_CRL_set1_nextUpdate(crl, t);
    if (serial) {
        X509_REVOKED* r = X509_REVOKED_new();
        X509_REVOKED_set_serialNumber(r, const_cast<ASN1_INTEGER*>(serial));
        ASN1_TIME_adj(t, std::time(nullptr), -1, 0);
        X509_REVOKED_set_revocationDate(r, t);
        X509_CRL_add0_revoked(crl, r);
    }
    ASN1_TIME_free(t);
    X509_CRL_sort(crl);
    X509_CRL_sign(crl, key, EVP_sha256());
    BIO* b = BIO_new_file(path.c_str(), "w");
    PEM_write_bio_X509_CRL(b, crl);
    BIO_free(b);
    X509_CRL_free(crl);
}

class Upstream : public ::testing::Test {
  protected:
    // A server{} proxying with "proxy_ssl on" plus BODY; CORES of them.
    // The second core borrows a CoreTls's library context, the first
    // makes its own, as terminusd does with and without ssl listeners.
    void load(const std::string& body, unsigned cores = 1) {
        const std::string text =
            "stream {\n    upstream b { server 198.18.0.1:8443; }\n"
            "    server { listen 443; proxy_pass b; proxy_ssl on; " +
            body + " }\n}\n";
        auto r = config::load_string(text, "/tmp/upstream-test.conf");
        std::string errors;
        for (const auto& d : r.diagnostics) errors += d.to_string() + "\n";
        ASSERT_TRUE(r.ok()) << errors;
        cfg = r.config;
        auto sh = SharedUpstreamTls::create(*cfg, cores);
        ASSERT_TRUE(sh) << sh.error();
        shared = std::move(*sh);
        auto c0 = UpstreamTls::create(*cfg, *shared, 0);
        ASSERT_TRUE(c0) << c0.error();
        core0 = std::move(*c0);
        if (cores > 1) {
            auto st = SharedTls::create(*cfg, cores);
            ASSERT_TRUE(st) << st.error();
            shared_tls = std::move(*st);
            auto ct = CoreTls::create(*cfg, *shared_tls, 1);
            ASSERT_TRUE(ct) << ct.error();
            core_tls = std::move(*ct);
            auto c1 = UpstreamTls::create(*cfg, *shared, 1, core_tls->libctx());
            ASSERT_TRUE(c1) << c1.error();
            core1 = std::move(*c1);
            ASSERT_EQ(core1->libctx(), core_tls->libctx());
        }
    }
    std::string trusted() { return "proxy_ssl_trusted_certificate " + cert("ca.crt") + ";"; }
    uint64_t failed(const UpstreamTls& c, UpstreamFailure f) const {
        return c.counters.failed[static_cast<size_t>(f)];
    }
    uint64_t failures(const UpstreamTls& c) const {
        uint64_t n = 0;
        for (uint64_t v : c.counters.failed) n += v;
        return n;
    }
    // One connection to SERVER as NAME that must fail: its reason.
    UpstreamFailure failure_of(Server& server, const char* name = "example.com") {
        Link l(server);
        UpstreamConnection c(*core0, kKey, l.pipe, name);
        EXPECT_EQ(run(c, l), UpstreamConnection::Status::kFailed);
        EXPECT_EQ(failures(*core0), 1u);
        EXPECT_EQ(core0->counters.handshakes_full, 0u);
        return c.failure();
    }

    TempDir dir;
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<SharedUpstreamTls> shared;
    std::unique_ptr<UpstreamTls> core0, core1;
    std::unique_ptr<SharedTls> shared_tls;
    std::unique_ptr<CoreTls> core_tls;
};

// ---------------------------------------------------------------------------
// Verification.

TEST_F(Upstream, VerifiesAgainstTheTrustedCa) {
    load(trusted());
    Server server;
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "api.example.com:8443");
    ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
    EXPECT_EQ(c.name(), "api.example.com");  // the port is not part of the name
    EXPECT_TRUE(c.established());
    EXPECT_EQ(SSL_get_verify_result(c.ssl()), X509_V_OK);
    EXPECT_EQ(c.verify_error(), nullptr);
    EXPECT_EQ(core0->counters.handshakes_full, 1u);
    EXPECT_EQ(failures(*core0), 0u);
    // Data both ways.
    ASSERT_EQ(c.write("ping", 4), 4);
    l.to_server();
    char buf[16];
    ASSERT_EQ(SSL_read(l.ssl.get(), buf, sizeof buf), 4);
    l.send("pong");
    int n;
    while ((n = c.read(buf, sizeof buf)) == 0) {
    }
    ASSERT_EQ(n, 4);
    EXPECT_EQ(std::string(buf, 4), "pong");
    EXPECT_EQ(core0->counters.bytes_encrypted, 4u);
    EXPECT_EQ(core0->counters.bytes_decrypted, 4u);
}

TEST_F(Upstream, VerificationIsOnByDefault) {
    load(trusted());
    EXPECT_TRUE(cfg->servers[0].settings.proxy_ssl_verify);
    ASSERT_NE(core0->server(0), nullptr);
    EXPECT_TRUE(core0->server(0)->verify);
    EXPECT_EQ(SSL_CTX_get_verify_mode(core0->server(0)->ctx), SSL_VERIFY_PEER);
}

TEST_F(Upstream, WithoutTrustedCertificateTheSystemStoreDecides) {
    // The test CA is in no system store.
    load("");
    Server server;
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_unknown_ca);
}

TEST_F(Upstream, WrongCaIsUnknownCa) {
    load("proxy_ssl_trusted_certificate " + cert("other-ca.crt") + ";");
    Server server;
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
    ASSERT_EQ(run(c, l), UpstreamConnection::Status::kFailed);
    EXPECT_EQ(c.failure(), UpstreamFailure::k_unknown_ca);
    EXPECT_EQ(failed(*core0, UpstreamFailure::k_unknown_ca), 1u);
    EXPECT_EQ(core0->server(0)->failed[static_cast<size_t>(UpstreamFailure::k_unknown_ca)], 1u);
    ASSERT_NE(c.verify_error(), nullptr);
    EXPECT_STREQ(c.verify_error(), X509_verify_cert_error_string(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
    EXPECT_STREQ(to_string(c.failure()), "unknown_ca");
    EXPECT_STREQ(describe(c.failure()), "certificate not issued by a trusted CA");
    // The upstream learnt why: our alert.
    EXPECT_EQ(c.trace().alert_sent, SSL_AD_UNKNOWN_CA);
}

TEST_F(Upstream, WrongNameIsNameMismatch) {
    load(trusted());
    Server server;
    EXPECT_EQ(failure_of(server, "db.example.org"), UpstreamFailure::k_name_mismatch);
}

TEST_F(Upstream, AddressLiteralIsCheckedAgainstIpAddresses) {
    load(trusted());
    Server server;  // its certificate names no address
    EXPECT_EQ(failure_of(server, "198.18.0.1:8443"), UpstreamFailure::k_name_mismatch);
}

TEST_F(Upstream, ExpiredAndNotYetValid) {
    auto ca = read_cert(cert("ca.crt"));
    auto ca_key = read_key(cert("ca.key"));
    ASSERT_TRUE(ca && ca_key);
    auto key = new_key();
    write_key(dir.file("leaf.key"), key.get());
    write_pem(dir.file("expired.crt"), make_leaf(key.get(), "example.com", -86400 * 2, -86400, ca.get(), ca_key.get()).get());
    write_pem(dir.file("future.crt"), make_leaf(key.get(), "example.com", 86400, 86400 * 2, ca.get(), ca_key.get()).get());
    load(trusted());
    {
        Server server(dir.file("expired.crt"), dir.file("leaf.key"));
        EXPECT_EQ(failure_of(server), UpstreamFailure::k_expired);
    }
    load(trusted());
    Server server(dir.file("future.crt"), dir.file("leaf.key"));
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_not_yet_valid);
}

TEST_F(Upstream, SelfSignedIsSelfSigned) {
    auto key = new_key();
    write_key(dir.file("self.key"), key.get());
    write_pem(dir.file("self.crt"), make_leaf(key.get(), "example.com", -60, 86400, nullptr, nullptr).get());
    load(trusted());
    Server server(dir.file("self.crt"), dir.file("self.key"));
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_self_signed);
}

TEST_F(Upstream, RevokedByCrl) {
    auto ca = read_cert(cert("ca.crt"));
    auto ca_key = read_key(cert("ca.key"));
    auto leaf = read_cert(cert("rsa.crt"));
    ASSERT_TRUE(ca && ca_key && leaf);
    write_crl(dir.file("revoked.pem"), ca.get(), ca_key.get(), X509_get0_serialNumber(leaf.get()));
    load(trusted() + " proxy_ssl_crl " + dir.file("revoked.pem") + ";");
    Server server;
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_revoked);
}

TEST_F(Upstream, CrlWithoutTheSerialPasses) {
    load(trusted() + " proxy_ssl_crl " + cert("crl.pem") + ";");
    Server server;
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
    EXPECT_EQ(run(c, l), UpstreamConnection::Status::kDone);
}

TEST_F(Upstream, CrlOfAnotherIssuerIsNoCrl) {
    auto other = read_cert(cert("other-ca.crt"));
    auto other_key = read_key(cert("other-ca.key"));
    ASSERT_TRUE(other && other_key);
    write_crl(dir.file("other.pem"), other.get(), other_key.get(), nullptr);
    load(trusted() + " proxy_ssl_crl " + dir.file("other.pem") + ";");
    Server server;
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_no_crl);
}

TEST_F(Upstream, VerifyDepthCountsIntermediates) {
    // OpenSSL's depth, as nginx's: the CAs between the leaf and the trust
    // anchor. The default, 1, allows one intermediate.
    auto ca = read_cert(cert("ca.crt"));
    auto ca_key = read_key(cert("ca.key"));
    ASSERT_TRUE(ca && ca_key);
    auto mid_key = new_key();
    auto mid = make_ca(mid_key.get(), "Terminus Test Intermediate", ca.get(), ca_key.get());
    auto key = new_key();
    auto leaf = make_leaf(key.get(), "example.com", -60, 86400, mid.get(), mid_key.get());
    write_key(dir.file("leaf.key"), key.get());
    write_pem(dir.file("chain.crt"), leaf.get());
    {
        BIO* b = BIO_new_file(dir.file("chain.crt").c_str(), "a");
        PEM_write_bio_X509(b, mid.get());
        BIO_free(b);
    }
    load(trusted());
    {
        Server server(dir.file("chain.crt"), dir.file("leaf.key"));
        Link l(server);
        UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
        EXPECT_EQ(run(c, l), UpstreamConnection::Status::kDone);
    }
    load(trusted() + " proxy_ssl_verify_depth 0;");
    Server server(dir.file("chain.crt"), dir.file("leaf.key"));
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_chain_too_long);
}

TEST_F(Upstream, VerifyOffAcceptsAnyCertificate) {
    auto key = new_key();
    write_key(dir.file("self.key"), key.get());
    write_pem(dir.file("self.crt"), make_leaf(key.get(), "elsewhere.test", -60, 86400, nullptr, nullptr).get());
    load("proxy_ssl_verify off;");
    EXPECT_FALSE(core0->server(0)->verify);
    Server server(dir.file("self.crt"), dir.file("self.key"));
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
    ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
    EXPECT_NE(SSL_get_verify_result(c.ssl()), X509_V_OK);  // it would not have verified
    EXPECT_EQ(c.verify_error(), nullptr);
    EXPECT_EQ(core0->counters.handshakes_full, 1u);
}

TEST_F(Upstream, AnonymousSuiteHasNoCertificate) {
    load(trusted() + " proxy_ssl_protocols TLSv1.2; proxy_ssl_ciphers ADH-AES128-GCM-SHA256:@SECLEVEL=0;");
    Server server;
    SSL_CTX_set_cipher_list(server.ctx.get(), "ADH-AES128-GCM-SHA256:@SECLEVEL=0");
    SSL_CTX_set_dh_auto(server.ctx.get(), 1);
    server.versions(TLS1_2_VERSION, TLS1_2_VERSION);
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_no_certificate);
}

// ---------------------------------------------------------------------------
// Client certificates (mTLS to the upstream), TLS 1.2 and 1.3.

class UpstreamClientCert : public Upstream, public ::testing::WithParamInterface<int> {};

TEST_P(UpstreamClientCert, PresentedAndAccepted) {
    load(trusted() + " proxy_ssl_certificate " + cert("client.crt") + "; proxy_ssl_certificate_key " +
         cert("client.key") + ";");
    Server server;
    server.require_client_cert();
    server.versions(GetParam(), GetParam());
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
    ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
    ASSERT_NE(SSL_get0_peer_certificate(l.ssl.get()), nullptr);
    EXPECT_EQ(SSL_get_verify_result(l.ssl.get()), X509_V_OK);
    EXPECT_TRUE(c.trace().cert_requested);
    l.send("ok");
    char buf[8];
    EXPECT_EQ(c.read(buf, sizeof buf), 2);
    EXPECT_EQ(core0->counters.handshakes_full, 1u);
    EXPECT_EQ(failures(*core0), 0u);
}

TEST_P(UpstreamClientCert, MissingIsClientCertRequired) {
    load(trusted());
    Server server;
    server.require_client_cert();
    server.versions(GetParam(), GetParam());
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
    const auto st = run(c, l);
    if (GetParam() == TLS1_3_VERSION) {
        // Our side finished first; the verdict comes as an alert, and the
        // handshake was not counted as done.
        ASSERT_EQ(st, UpstreamConnection::Status::kDone);
        EXPECT_EQ(core0->counters.handshakes_full, 0u);
        EXPECT_LT(drain(c), -1);
    } else {
        ASSERT_EQ(st, UpstreamConnection::Status::kFailed);
    }
    EXPECT_TRUE(c.failed());
    EXPECT_EQ(c.failure(), UpstreamFailure::k_client_cert_required);
    EXPECT_EQ(failed(*core0, UpstreamFailure::k_client_cert_required), 1u);
    EXPECT_EQ(failures(*core0), 1u);
    EXPECT_EQ(core0->counters.handshakes_full, 0u);
}

TEST_P(UpstreamClientCert, FromAnotherCaIsClientCertRefused) {
    load(trusted() + " proxy_ssl_certificate " + cert("other-client.crt") + "; proxy_ssl_certificate_key " +
         cert("other-client.key") + ";");
    Server server;
    server.require_client_cert();
    server.versions(GetParam(), GetParam());
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
    const auto st = run(c, l);
    if (GetParam() == TLS1_3_VERSION) {
        ASSERT_EQ(st, UpstreamConnection::Status::kDone);
        EXPECT_LT(drain(c), -1);
    } else {
        ASSERT_EQ(st, UpstreamConnection::Status::kFailed);
    }
    EXPECT_EQ(c.failure(), UpstreamFailure::k_client_cert_refused);
    EXPECT_EQ(failed(*core0, UpstreamFailure::k_client_cert_refused), 1u);
    EXPECT_EQ(core0->counters.handshakes_full, 0u);
}

INSTANTIATE_TEST_SUITE_P(Versions, UpstreamClientCert, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& i) {
                             return std::string(i.param == TLS1_3_VERSION ? "Tls13" : "Tls12");
                         });

// ---------------------------------------------------------------------------
// Failures that are not about certificates.

TEST_F(Upstream, NoSharedProtocol) {
    load(trusted() + " proxy_ssl_protocols TLSv1.3;");
    Server server;
    server.versions(TLS1_2_VERSION, TLS1_2_VERSION);
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_no_shared_protocol);
}

TEST_F(Upstream, NoSharedCipher) {
    load(trusted() + " proxy_ssl_protocols TLSv1.2; proxy_ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;");
    Server server;  // an RSA certificate only
    server.versions(TLS1_2_VERSION, TLS1_2_VERSION);
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_no_shared_cipher);
}

TEST_F(Upstream, NoSharedAlpn) {
    load(trusted() + " proxy_ssl_alpn h2;");
    Server server;
    server.seen.alpn_accept = "http/1.1";
    EXPECT_EQ(failure_of(server), UpstreamFailure::k_no_shared_alpn);
}

TEST_F(Upstream, GarbageIsMalformed) {
    load(trusted());
    Pipe p;
    UpstreamConnection c(*core0, kKey, p, "example.com");
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kAgain);
    ASSERT_FALSE(p.out.empty());  // our ClientHello
    p.in = "HTTP/1.1 400 Bad Request\r\n\r\n";
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kFailed);
    EXPECT_EQ(c.failure(), UpstreamFailure::k_malformed);
}

TEST_F(Upstream, CloseDuringHandshakeIsPeerClosed) {
    load(trusted());
    Pipe p;
    UpstreamConnection c(*core0, kKey, p, "example.com");
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kAgain);
    p.closed = true;
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kFailed);
    EXPECT_EQ(c.failure(), UpstreamFailure::k_peer_closed);
}

TEST_F(Upstream, AlertIsPeerAlert) {
    load(trusted());
    Pipe p;
    UpstreamConnection c(*core0, kKey, p, "example.com");
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kAgain);
    // A fatal internal_error alert record (RFC 8446 6).
    p.in = std::string("\x15\x03\x03\x00\x02\x02\x50", 7);
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kFailed);
    EXPECT_EQ(c.failure(), UpstreamFailure::k_peer_alert);
    EXPECT_EQ(c.trace().alert_received, SSL_AD_INTERNAL_ERROR);
}

TEST_F(Upstream, TimeoutIsCountedOnce) {
    load(trusted());
    Pipe p;
    UpstreamConnection c(*core0, kKey, p, "example.com");
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kAgain);
    c.fail(UpstreamFailure::k_timeout);
    c.fail(UpstreamFailure::k_internal);
    EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kFailed);
    EXPECT_EQ(c.failure(), UpstreamFailure::k_timeout);
    EXPECT_EQ(failed(*core0, UpstreamFailure::k_timeout), 1u);
    EXPECT_EQ(failures(*core0), 1u);
}

TEST(UpstreamClassify, VerificationFirstThenTheAlertThenTheError) {
    HandshakeTrace t;
    t.alert_received = SSL_AD_HANDSHAKE_FAILURE;
    EXPECT_EQ(classify(t, X509_V_ERR_CERT_REVOKED, true, false), UpstreamFailure::k_revoked);
    // With proxy_ssl_verify off the verify result is not a reason.
    EXPECT_EQ(classify(t, X509_V_ERR_CERT_REVOKED, false, false), UpstreamFailure::k_no_shared_cipher);
    t.cert_requested = true;
    EXPECT_EQ(classify(t, X509_V_OK, true, false), UpstreamFailure::k_client_cert_required);
    t = HandshakeTrace{};
    t.error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_WRONG_VERSION_NUMBER);
    EXPECT_EQ(classify(t, X509_V_OK, true, true), UpstreamFailure::k_malformed);
    t.error = ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL);
    EXPECT_EQ(classify(t, X509_V_OK, true, false), UpstreamFailure::k_no_shared_protocol);
    EXPECT_EQ(classify(HandshakeTrace{}, X509_V_OK, true, true), UpstreamFailure::k_peer_closed);
    EXPECT_EQ(classify(HandshakeTrace{}, X509_V_OK, true, false), UpstreamFailure::k_internal);
}

TEST(UpstreamClassify, EveryReasonHasANameAndAPhrase) {
    for (size_t i = 0; i < static_cast<size_t>(UpstreamFailure::kCount); ++i) {
        const auto f = static_cast<UpstreamFailure>(i);
        EXPECT_STRNE(to_string(f), "?");
        EXPECT_STRNE(describe(f), "?");
    }
}

// ---------------------------------------------------------------------------
// SNI and ALPN.

TEST_F(Upstream, SniOnlyWithProxySslServerName) {
    load(trusted() + " proxy_ssl_name api.example.com;");
    {
        Server server;
        Link l(server);
        UpstreamConnection c(*core0, kKey, l.pipe, cfg->servers[0].settings.proxy_ssl_name);
        ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
        EXPECT_EQ(l.sni(), nullptr);  // nginx's default: off
    }
    load(trusted() + " proxy_ssl_name api.example.com; proxy_ssl_server_name on;");
    Server server;
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, cfg->servers[0].settings.proxy_ssl_name);
    ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
    ASSERT_NE(l.sni(), nullptr);
    EXPECT_STREQ(l.sni(), "api.example.com");
}

TEST_F(Upstream, NoSniForAddressLiterals) {
    load("proxy_ssl_verify off; proxy_ssl_server_name on;");
    Server server;
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "198.18.0.1:8443");
    ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
    EXPECT_EQ(l.sni(), nullptr);  // RFC 6066 3
}

TEST_F(Upstream, AlpnFromConfigOrFromTheConnection) {
    load(trusted() + " proxy_ssl_alpn h2 http/1.1;");
    {
        Server server;
        server.seen.alpn_accept = "http/1.1";
        Link l(server);
        UpstreamConnection c(*core0, kKey, l.pipe, "example.com");
        ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
        EXPECT_EQ(server.seen.alpn_offered, std::string("\x02h2\x08http/1.1", 12));
        const unsigned char* p = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(c.ssl(), &p, &len);
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(p), len), "http/1.1");
    }
    // The client's negotiated protocol, passed through.
    Server server;
    server.seen.alpn_accept = "h2";
    Link l(server);
    UpstreamConnection c(*core0, kKey, l.pipe, "example.com", "h2");
    ASSERT_EQ(run(c, l), UpstreamConnection::Status::kDone);
    EXPECT_EQ(server.seen.alpn_offered, std::string("\x02h2", 3));
}

TEST_F(Upstream, ServerOnlyConfCommandIsRefusedWithItsLocation) {
    // Valid for OpenSSL in general (the configuration check passes it),
    // not for a client.
    const std::string text = "stream {\n    upstream b { server 198.18.0.1:8443; }\n"
                             "    server { listen 443; proxy_pass b; proxy_ssl on;\n"
                             "             proxy_ssl_conf_command DHParameters " +
                             cert("dhparam.pem") + "; }\n}\n";
    auto r = config::load_string(text, "/tmp/upstream-test.conf");
    ASSERT_TRUE(r.ok());
    auto sh = SharedUpstreamTls::create(*r.config, 1);
    ASSERT_TRUE(sh);
    auto c = UpstreamTls::create(*r.config, **sh, 0);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().rfind("/tmp/upstream-test.conf:4:14: proxy_ssl_conf_command \"DHParameters\"", 0), 0u)
        << c.error();
}

// ---------------------------------------------------------------------------
// Session reuse, TLS 1.2 and 1.3.

class UpstreamReuse : public Upstream, public ::testing::WithParamInterface<int> {
  protected:
    // One connection on CORE that ends cleanly; whether it resumed.
    bool connect(Server& server, UpstreamTls& core, const char* name = "example.com", bool clean = true) {
        Link l(server);
        UpstreamConnection c(core, kKey, l.pipe, name);
        EXPECT_EQ(run(c, l), UpstreamConnection::Status::kDone);
        EXPECT_EQ(SSL_version(c.ssl()), GetParam());
        EXPECT_EQ(drain(c), 0);  // TLS 1.3 tickets
        if (clean) c.shutdown();
        return c.resumed();
    }
};

TEST_P(UpstreamReuse, SecondConnectResumesOnTheSameCore) {
    load(trusted() + (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""));
    Server server;
    EXPECT_FALSE(connect(server, *core0));
    EXPECT_GE(core0->counters.sessions_saved, 1u);
    EXPECT_NE(core0->session_for(kKey, "example.com"), nullptr);
    EXPECT_TRUE(connect(server, *core0));
    EXPECT_TRUE(connect(server, *core0));
    EXPECT_EQ(core0->counters.handshakes_full, 1u);
    EXPECT_EQ(core0->counters.handshakes_resumed, 2u);
    EXPECT_EQ(core0->counters.sessions_offered, 2u);
    EXPECT_EQ(core0->counters.sessions_refused, 0u);
    const UpstreamPeer* p = core0->peer(kKey);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->handshakes_full, 1u);
    EXPECT_EQ(p->handshakes_resumed, 2u);
    // Another peer of the same server{} has sessions of its own.
    EXPECT_EQ(core0->session_for(UpstreamKey{0, kPeerAddr, 8444}, "example.com"), nullptr);
}

TEST_P(UpstreamReuse, SessionSavedOnOneCoreResumesOnAnother) {
    load(trusted() + (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""), 2);
    Server server;
    EXPECT_FALSE(connect(server, *core0));
    EXPECT_EQ(core1->session_for(kKey, "example.com"), nullptr);  // not before the exchange
    EXPECT_TRUE(core0->poll());   // sends
    EXPECT_TRUE(core1->poll());   // applies
    EXPECT_FALSE(core1->poll());  // nothing more
    // TLS 1.3's two tickets went as one message.
    EXPECT_EQ(core0->counters.sessions_sent, 1u);
    EXPECT_EQ(core1->counters.sessions_received, 1u);
    EXPECT_TRUE(connect(server, *core1));
    EXPECT_EQ(core1->counters.handshakes_resumed, 1u);
    EXPECT_EQ(core1->counters.handshakes_full, 0u);
    // The other way round: what core 1 got back, core 0 learns.
    core1->poll();
    core0->poll();
    EXPECT_TRUE(connect(server, *core0));
}

TEST_P(UpstreamReuse, SessionIsOfferedOnlyForTheNameItWasVerifiedFor) {
    load(trusted() + (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""));
    Server server;
    EXPECT_FALSE(connect(server, *core0, "api.example.com"));
    EXPECT_EQ(core0->session_for(kKey, "app.example.com"), nullptr);
    EXPECT_FALSE(connect(server, *core0, "app.example.com"));
    EXPECT_EQ(core0->counters.sessions_offered, 0u);
}

// A connection cut off at the TCP level (the client reset, an idle
// timeout) says nothing against its TLS session: it stays, as nginx's
// quiet shutdown keeps it. Only a failed handshake or a broken record
// drops a session (below).
TEST_P(UpstreamReuse, ACutOffConnectionKeepsTheSessionOnEveryCore) {
    load(trusted() + (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""), 2);
    Server server;
    EXPECT_FALSE(connect(server, *core0));
    core0->poll();
    core1->poll();
    ASSERT_NE(core1->session_for(kKey, "example.com"), nullptr);
    // Resumed on core 0, then cut off without close_notify either way.
    EXPECT_TRUE(connect(server, *core0, "example.com", false));
    EXPECT_EQ(core0->counters.sessions_dropped, 0u);
    EXPECT_NE(core0->session_for(kKey, "example.com"), nullptr);
    core0->poll();
    core1->poll();
    ASSERT_NE(core1->session_for(kKey, "example.com"), nullptr);
    EXPECT_TRUE(connect(server, *core1));
}

// Connections in flight never hold the saved object: each offers a copy,
// so that OpenSSL marking one connection's session unresumable (a fatal
// alert, a free without shutdown) cannot take the saved one down with it.
TEST_P(UpstreamReuse, EachConnectOffersACopyOfTheSavedSession) {
    load(trusted() + (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""));
    Server server;
    EXPECT_FALSE(connect(server, *core0));
    SSL_SESSION* saved = core0->session_for(kKey, "example.com");
    ASSERT_NE(saved, nullptr);
    Pipe p1, p2;
    UpstreamConnection a(*core0, kKey, p1, "example.com");
    UpstreamConnection b(*core0, kKey, p2, "example.com");
    ASSERT_NE(SSL_get_session(a.ssl()), nullptr);
    EXPECT_NE(SSL_get_session(a.ssl()), saved);
    EXPECT_NE(SSL_get_session(a.ssl()), SSL_get_session(b.ssl()));
    // Marking a's copy unresumable, as OpenSSL does on a fatal alert,
    // leaves the saved session offered to the next connect.
    SSL_SESSION_set_timeout(SSL_get_session(a.ssl()), 0);
    EXPECT_TRUE(SSL_SESSION_is_resumable(saved));
    EXPECT_EQ(core0->session_for(kKey, "example.com"), saved);
    EXPECT_EQ(core0->counters.sessions_offered, 2u);
}

TEST_P(UpstreamReuse, FailedHandshakeDropsTheOfferedSession) {
    load(trusted() + (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""));
    Server server;
    EXPECT_FALSE(connect(server, *core0));
    Pipe p;
    {
        UpstreamConnection c(*core0, kKey, p, "example.com");
        EXPECT_EQ(core0->counters.sessions_offered, 1u);
        EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kAgain);
        p.closed = true;
        EXPECT_EQ(c.handshake(), UpstreamConnection::Status::kFailed);
    }
    EXPECT_EQ(core0->session_for(kKey, "example.com"), nullptr);
    EXPECT_FALSE(connect(server, *core0));
}

TEST_P(UpstreamReuse, RefusedSessionIsReplaced) {
    load(trusted() + (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""));
    {
        Server first;
        EXPECT_FALSE(connect(first, *core0));
    }
    // The upstream restarted: its ticket keys and cache are new.
    Server server;
    EXPECT_FALSE(connect(server, *core0));
    EXPECT_EQ(core0->counters.sessions_offered, 1u);
    EXPECT_EQ(core0->counters.sessions_refused, 1u);
    EXPECT_TRUE(connect(server, *core0));
}

TEST_P(UpstreamReuse, OffMeansNoSessions) {
    load(trusted() + " proxy_ssl_session_reuse off;" +
         (GetParam() == TLS1_2_VERSION ? " proxy_ssl_protocols TLSv1.2;" : ""), 2);
    EXPECT_EQ(shared->exchange(), nullptr);
    Server server;
    EXPECT_FALSE(connect(server, *core0));
    EXPECT_FALSE(connect(server, *core0));
    EXPECT_EQ(core0->counters.sessions_saved, 0u);
}

INSTANTIATE_TEST_SUITE_P(Versions, UpstreamReuse, ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& i) {
                             return std::string(i.param == TLS1_3_VERSION ? "Tls13" : "Tls12");
                         });

}  // namespace
}  // namespace terminus::tls
