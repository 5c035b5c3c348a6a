// Tests config/files.cc: the files a configuration names are opened and
// parsed with OpenSSL at load time, and the OpenSSL strings it holds are
// checked by OpenSSL, so that what would fail when the dataplane starts fails
// here, at the directive that names it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config/config.h"
#include "tests/unit/config/test_support.h"

namespace terminus::config {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;
using ::testing::StartsWith;

using namespace test_support;

// One TLS-terminating server; BODY holds its certificates and whatever else
// the test needs, one directive per line from line 5 on.
std::string tls_server(std::string_view body) {
    return "stream {\n"
           "    upstream b { server 198.18.0.1:8080; }\n"
           "    server {\n"
           "        listen 443 ssl;\n" +
           std::string(body) +
           "\n"
           "        proxy_pass b;\n"
           "    }\n"
           "}\n";
}

// The same without "ssl" on the listener.
std::string plain_server(std::string_view body) {
    return "stream {\n"
           "    upstream b { server 198.18.0.1:8080; }\n"
           "    server {\n"
           "        listen 443;\n" +
           std::string(body) +
           "\n"
           "        proxy_pass b;\n"
           "    }\n"
           "}\n";
}

std::string pair(const std::string& crt, const std::string& key) {
    return "ssl_certificate " + crt + ";\nssl_certificate_key " + key + ";\n";
}

std::string rsa_pair() { return pair(cert("server.crt"), cert("server.key")); }

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}


struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};

// A self-signed P-256 certificate valid from NOT_BEFORE to NOT_AFTER
// (seconds from now) and its key, as PEM.
struct SelfSigned {
    std::string certificate;
    std::string key;
};

SelfSigned make_self_signed(long not_before, long not_after) {
    SelfSigned out;
    std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
    std::unique_ptr<X509, X509Free> x(X509_new());
    if (!key || !x) return out;
    X509_set_version(x.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), not_before);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), not_after);
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("terminus-test"), -1, -1, 0);
    X509_set_issuer_name(x.get(), name);
    X509_set_pubkey(x.get(), key.get());
    if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) return out;

    auto pem = [](auto write) {
        std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
        write(bio.get());
        char* data = nullptr;
        long n = BIO_get_mem_data(bio.get(), &data);
        return std::string(data, static_cast<size_t>(n));
    };
    out.certificate = pem([&](BIO* b) { PEM_write_bio_X509(b, x.get()); });
    out.key = pem([&](BIO* b) {
        PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    });
    return out;
}

// 1024-bit PKCS#3 DH parameters ("openssl dhparam 1024"): valid, but weak.
constexpr const char* kDh1024 = R"(-----BEGIN DH PARAMETERS-----
MIGHAoGBAId49TJwjWpo1S0jOSDGCklwpvzvT3ja8SHSI4FxRbsGbZ1NBroKKIL/
SC7X42IyiAFOQyHRSE/CHhvqsVLVrf902HYu/8ddNK4zRrkQD9Q5z1f6M2kDlxeE
jqKuIZ1j0bpchkLG3JVBaYbaJ2KwgxUUYIq3dilB8yKDZky1zqanAgEC
-----END DH PARAMETERS-----
)";

// 2048-bit X9.42 DH parameters, what OpenSSL 3's "openssl dhparam -dsaparam
// 2048" writes.
constexpr const char* kDhX942 = R"(-----BEGIN X9.42 DH PARAMETERS-----
MIICKAKCAQEA/yms00cgzrjRY2Lg0tfLzHcTj3WRnA57p/owCi4rdVpHWH+RIwTV
pGdCzpNv9mFc8a4yi+ooX0ZvK7erC8sEpThUxg5gxAhDczJ3AI+/KZLBGWb+EgDc
uZNOOi4KkRonxtLiJh+miImKPn60Vzx7RT29V6C3dJ23GC147r/N6Z/qKkKZQW7d
wRTLSO6xQ11Q+ZSi84PVT77Z4Q6v46Ff/VK/D9bWwOfsQpK7Hm5UVSDB9bbbfGQm
n1pcGWH+tpJD1VyzvJW24UlSXvY4wKpz6mKjig2gLm8JcMkylktdMGwuzMMLrOfj
YajrpQv76PEOrYzguuCvdWtSPkmHyUQOaQKCAQBEMFXerdR/ZjBiIui/TieKvp05
f2TfCVFJEvmRhSzjhNeBkj60UmrgZf3d7j6Gi//3Nx5sJakxwHqLVg4LpfP+7yeE
W0TAWCYCug9YsK2Qs2/ocpDhf/vKJBqZGLCM6QJfAszlO6GcRNfckoMsNxQjrhQn
BmK63NGmd2oPhvWDRIBxXJ7mYjPz6XMRe5GzCjQZ6Z8kZAPAf6dkeB+H4y3A0/HA
3+3ZUPkpGtmO3MWUU5O+MJ9O4S838mss6hso54H5Cfsj5WjU92yaUkSxvbcJweJz
HNf6TLwX40u2+UkVKCvmtnUK0QI5zkAzTgNph1447IFsb6KMzJy40wJnwqnCAh0A
1B8MKO2olDLDMorqyhsdKkxbr3kQb7znaTZt7w==
-----END X9.42 DH PARAMETERS-----
)";

// ---------------------------------------------------------------------------
// Certificates and keys.

TEST(Files, TestCertificatesLoadCleanly) {
    EXPECT_TRUE(clean(load(tls_server(rsa_pair()))));
}

TEST(Files, MissingCertificateNamesThePathAndTheReason) {
    auto r = load(tls_server(pair("/nonexistent/terminus/server.crt", cert("server.key"))));
    EXPECT_FALSE(r.ok());
    ASSERT_THAT(r.diagnostics, SizeIs(1)) << listing(r);
    EXPECT_EQ(r.diagnostics[0].to_string(),
              "/tmp/dir/t.conf:5:17: error: cannot open \"/nonexistent/terminus/server.crt\": No "
              "such file or directory");
}

TEST(Files, MissingKeyNamesThePathAndTheReason) {
    auto r = load(tls_server(pair(cert("server.crt"), "/nonexistent/terminus/server.key")));
    EXPECT_THAT(messages(r), ElementsAre("cannot open \"/nonexistent/terminus/server.key\": No "
                                         "such file or directory"));
    ASSERT_FALSE(r.diagnostics.empty());
    EXPECT_EQ(r.diagnostics[0].loc.line, 6u);
}

TEST(Files, RelativePathsAreResolvedAgainstTheConfigurationDirectory) {
    auto r = load_string(tls_server("ssl_certificate server.crt;\nssl_certificate_key server.key;"),
                         certs_dir() + "/t.conf");
    EXPECT_TRUE(clean(r));
    auto missing = load(tls_server("ssl_certificate server.crt;\nssl_certificate_key server.key;"));
    EXPECT_THAT(messages(missing),
                ElementsAre("cannot open \"/tmp/dir/server.crt\": No such file or directory",
                            "cannot open \"/tmp/dir/server.key\": No such file or directory"));
}

TEST(Files, DirectoryInsteadOfCertificate) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    EXPECT_THAT(messages(load(tls_server(pair(dir.path(), cert("server.key"))))),
                ElementsAre("\"" + dir.path() + "\" is not a regular file"));
}

TEST(Files, CertificateFileWithoutPemCertificate) {
    // A key where the certificate belongs.
    EXPECT_THAT(messages(load(tls_server(pair(cert("server.key"), cert("server.key"))))),
                ElementsAre("\"" + cert("server.key") +
                            "\" holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")"));
}

TEST(Files, KeyFileWithoutPemKey) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string not_a_key = dir.write("not.key", "hello\n");
    EXPECT_THAT(messages(load(tls_server(pair(cert("server.crt"), not_a_key)))),
                ElementsAre("\"" + not_a_key + "\" holds no PEM private key"));
}

TEST(Files, DamagedChainAfterTheLeafIsReported) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string chain = dir.write(
        "chain.crt", read_file(cert("server.crt")) +
                         "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    auto r = load(tls_server(pair(chain, cert("server.key"))));
    EXPECT_FALSE(r.ok());
    EXPECT_THAT(messages(r),
                ElementsAre(StartsWith("the certificate chain in \"" + chain + "\" is damaged: ")));
}

TEST(Files, CertificateChainWithIntermediateIsAccepted) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string chain =
        dir.write("chain.crt", read_file(cert("server.crt")) + read_file(cert("ca.crt")), 0644);
    EXPECT_TRUE(clean(load(tls_server(pair(chain, cert("server.key"))))));
}

TEST(Files, KeyThatDoesNotMatchItsCertificate) {
    auto r = load(tls_server(pair(cert("rsa.crt"), cert("ecdsa.key"))));
    EXPECT_FALSE(r.ok());
    ASSERT_THAT(r.diagnostics, SizeIs(1)) << listing(r);
    EXPECT_EQ(r.diagnostics[0].to_string(),
              "/tmp/dir/t.conf:6:21: error: the private key \"" + cert("ecdsa.key") +
                  "\" (ECDSA) does not match the certificate \"" + cert("rsa.crt") +
                  "\" (RSA): pair each ssl_certificate with its own key, in order");
}

TEST(Files, KeyOfAnotherRsaCertificateDoesNotMatch) {
    EXPECT_THAT(messages(load(tls_server(pair(cert("rsa.crt"), cert("server.key"))))),
                ElementsAre("the private key \"" + cert("server.key") +
                            "\" (RSA) does not match the certificate \"" + cert("rsa.crt") +
                            "\" (RSA): pair each ssl_certificate with its own key, in order"));
}

TEST(Files, RsaAndEcdsaPairsSideBySideAreAccepted) {
    auto r = load(tls_server(pair(cert("rsa.crt"), cert("rsa.key")) +
                             pair(cert("ecdsa.crt"), cert("ecdsa.key"))));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->servers.at(0).settings.ssl_certificates.size(), 2u);
}

TEST(Files, CertificatesListedBeforeTheirKeysPairInOrder) {
    EXPECT_TRUE(clean(load(tls_server("ssl_certificate " + cert("rsa.crt") + ";\n" +
                                      "ssl_certificate " + cert("ecdsa.crt") + ";\n" +
                                      "ssl_certificate_key " + cert("rsa.key") + ";\n" +
                                      "ssl_certificate_key " + cert("ecdsa.key") + ";"))));
}

TEST(Files, SwappedKeysAreBothReported) {
    auto r = load(tls_server(pair(cert("rsa.crt"), cert("ecdsa.key")) +
                             pair(cert("ecdsa.crt"), cert("rsa.key"))));
    EXPECT_THAT(messages(r),
                ElementsAre("the private key \"" + cert("ecdsa.key") +
                                "\" (ECDSA) does not match the certificate \"" + cert("rsa.crt") +
                                "\" (RSA): pair each ssl_certificate with its own key, in order",
                            "the private key \"" + cert("rsa.key") +
                                "\" (RSA) does not match the certificate \"" + cert("ecdsa.crt") +
                                "\" (ECDSA): pair each ssl_certificate with its own key, in "
                                "order"));
}

TEST(Files, PairInheritedByTwoServersIsReportedOnce) {
    auto r = load("stream {\n"
                  "    ssl_certificate " + cert("rsa.crt") + ";\n"
                  "    ssl_certificate_key " + cert("ecdsa.key") + ";\n"
                  "    upstream b { server 198.18.0.1:8080; }\n"
                  "    server { listen 443 ssl; proxy_pass b; }\n"
                  "    server { listen 444 ssl; proxy_pass b; }\n"
                  "}\n");
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error_count(), 1u) << listing(r);
}

TEST(Files, EncryptedKeyWithoutPasswordFile) {
    auto r = load(tls_server(pair(cert("server.crt"), cert("encrypted.key"))));
    EXPECT_FALSE(r.ok());
    EXPECT_THAT(messages(r), ElementsAre("the private key in \"" + cert("encrypted.key") +
                                         "\" is encrypted: name a file with its passphrase in "
                                         "ssl_password_file"));
}

TEST(Files, EncryptedKeyWithPasswordFile) {
    EXPECT_TRUE(clean(load(tls_server(pair(cert("server.crt"), cert("encrypted.key")) +
                                      "ssl_password_file " + cert("password.txt") + ";"))));
}

TEST(Files, EncryptedKeyWithPasswordFileFromStream) {
    EXPECT_TRUE(clean(load("stream {\n"
                           "    ssl_password_file " + cert("password.txt") + ";\n"
                           "    upstream b { server 198.18.0.1:8080; }\n"
                           "    server { listen 443 ssl; ssl_certificate " + cert("server.crt") +
                           "; ssl_certificate_key " + cert("encrypted.key") +
                           "; proxy_pass b; }\n"
                           "}\n")));
}

// Each pair is checked once per load, but whether an encrypted key can be
// read depends on the server's ssl_password_file too: the second server has
// none and must fail, as it does when it comes first.
TEST(Files, EncryptedKeyWithoutPasswordFileFailsAfterAServerThatHasOne) {
    auto r = load("stream {\n"
                  "    upstream b { server 198.18.0.1:8080; }\n"
                  "    server { listen 443 ssl; " + pair(cert("server.crt"), cert("encrypted.key")) +
                  "             ssl_password_file " + cert("password.txt") + "; proxy_pass b; }\n"
                  "    server { listen 444 ssl; " + pair(cert("server.crt"), cert("encrypted.key")) +
                  "             proxy_pass b; }\n"
                  "}\n");
    EXPECT_THAT(messages(r), ElementsAre("the private key in \"" + cert("encrypted.key") +
                                         "\" is encrypted: name a file with its passphrase in "
                                         "ssl_password_file"));
}

TEST(Files, EncryptedKeyWithoutPasswordFileFailsBeforeAServerThatHasOne) {
    auto r = load("stream {\n"
                  "    upstream b { server 198.18.0.1:8080; }\n"
                  "    server { listen 444 ssl; " + pair(cert("server.crt"), cert("encrypted.key")) +
                  "             proxy_pass b; }\n"
                  "    server { listen 443 ssl; " + pair(cert("server.crt"), cert("encrypted.key")) +
                  "             ssl_password_file " + cert("password.txt") + "; proxy_pass b; }\n"
                  "}\n");
    EXPECT_THAT(messages(r), ElementsAre("the private key in \"" + cert("encrypted.key") +
                                         "\" is encrypted: name a file with its passphrase in "
                                         "ssl_password_file"));
}

TEST(Files, EncryptedKeyTriesEveryPassphraseInTheFile) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string pw =
        dir.write("passwords", "not-this-one\n" + read_file(cert("password.txt")));
    EXPECT_TRUE(clean(load(tls_server(pair(cert("server.crt"), cert("encrypted.key")) +
                                      "ssl_password_file " + pw + ";"))));
}

TEST(Files, EncryptedKeyWithWrongPassphrase) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string pw = dir.write("wrong", "wrong-passphrase\n");
    EXPECT_THAT(messages(load(tls_server(pair(cert("server.crt"), cert("encrypted.key")) +
                                         "ssl_password_file " + pw + ";"))),
                ElementsAre("no passphrase in \"" + pw + "\" decrypts \"" + cert("encrypted.key") +
                            "\""));
}

TEST(Files, EmptyPasswordFile) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string pw = dir.write("empty", "\n\n");
    EXPECT_THAT(messages(load(plain_server("ssl_password_file " + pw + ";"))),
                ElementsAre("password file \"" + pw + "\" holds no passphrase (one per line)"));
}

TEST(Files, PrivateKeyReadableByOtherUsersWarns) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string key = dir.write("server.key", read_file(cert("server.key")), 0644);
    auto r = load(tls_server(pair(cert("server.crt"), key)));
    ASSERT_TRUE(r.ok()) << listing(r);
    ASSERT_THAT(r.diagnostics, SizeIs(1)) << listing(r);
    EXPECT_EQ(r.diagnostics[0].severity, Severity::kWarning);
    EXPECT_EQ(r.diagnostics[0].message, "private key \"" + key +
                                            "\" is readable by every user: chmod 600 it (or 640 "
                                            "for a group)");
    EXPECT_EQ(r.diagnostics[0].loc.line, 6u);
}

TEST(Files, PrivateKeyReadableByItsGroupIsQuiet) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string key = dir.write("server.key", read_file(cert("server.key")), 0640);
    EXPECT_TRUE(clean(load(tls_server(pair(cert("server.crt"), key)))));
}

TEST(Files, ExpiredCertificateWarns) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    SelfSigned ss = make_self_signed(-2 * 86400, -86400);
    ASSERT_FALSE(ss.certificate.empty());
    const std::string crt = dir.write("expired.crt", ss.certificate, 0644);
    const std::string key = dir.write("expired.key", ss.key);
    auto r = load(tls_server(pair(crt, key)));
    ASSERT_TRUE(r.ok()) << listing(r);
    EXPECT_THAT(messages(r), ElementsAre("the certificate in \"" + crt +
                                         "\" has expired: clients will refuse it"));
}

TEST(Files, NotYetValidCertificateWarns) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    SelfSigned ss = make_self_signed(86400, 2 * 86400);
    ASSERT_FALSE(ss.certificate.empty());
    const std::string crt = dir.write("future.crt", ss.certificate, 0644);
    const std::string key = dir.write("future.key", ss.key);
    auto r = load(tls_server(pair(crt, key)));
    ASSERT_TRUE(r.ok()) << listing(r);
    EXPECT_THAT(messages(r), ElementsAre("the certificate in \"" + crt + "\" is not valid yet"));
}

// nginx loads the certificates of every server{} that names them, with or
// without "listen ... ssl" (ngx_stream_ssl_merge_conf), so "nginx -t" fails
// on a key it cannot read; the certificate itself is already checked here
// without an ssl listener.
TEST(Files, KeyIsCheckedWithoutSslListenerToo) {
    auto r = load(plain_server(pair(cert("server.crt"), "/nonexistent/terminus/server.key")));
    EXPECT_THAT(messages(r), ElementsAre("cannot open \"/nonexistent/terminus/server.key\": No "
                                         "such file or directory"));
}

TEST(Files, KeyMismatchIsReportedWithoutSslListenerToo) {
    auto r = load(plain_server(pair(cert("rsa.crt"), cert("ecdsa.key"))));
    EXPECT_FALSE(r.ok());
}

// ---------------------------------------------------------------------------
// Upstream-side client certificate.

TEST(Files, ProxySslClientCertificateAndKeyAreChecked) {
    EXPECT_TRUE(clean(load(plain_server("proxy_ssl on;\nproxy_ssl_certificate " +
                                        cert("client.crt") + ";\nproxy_ssl_certificate_key " +
                                        cert("client.key") + ";"))));
}

TEST(Files, ProxySslClientKeyThatDoesNotMatch) {
    EXPECT_THAT(messages(load(plain_server("proxy_ssl on;\nproxy_ssl_certificate " +
                                           cert("client.crt") + ";\nproxy_ssl_certificate_key " +
                                           cert("other-client.key") + ";"))),
                ElementsAre("the private key \"" + cert("other-client.key") +
                            "\" (RSA) does not match the certificate \"" + cert("client.crt") +
                            "\" (RSA): pair each ssl_certificate with its own key, in order"));
}

TEST(Files, ProxySslClientCertificateMissing) {
    EXPECT_THAT(messages(load(plain_server("proxy_ssl on;\nproxy_ssl_certificate "
                                           "/nonexistent/terminus/client.crt;\n"
                                           "proxy_ssl_certificate_key " +
                                           cert("client.key") + ";"))),
                ElementsAre("cannot open \"/nonexistent/terminus/client.crt\": No such file or "
                            "directory"));
}

TEST(Files, ProxySslEncryptedClientKeyWithPasswordFile) {
    EXPECT_TRUE(clean(load(plain_server("proxy_ssl on;\nproxy_ssl_certificate " +
                                        cert("server.crt") + ";\nproxy_ssl_certificate_key " +
                                        cert("encrypted.key") + ";\nproxy_ssl_password_file " +
                                        cert("password.txt") + ";"))));
}

// ---------------------------------------------------------------------------
// Session ticket keys.

TEST(Files, TicketKeysOf48And80BytesAreAccepted) {
    EXPECT_TRUE(clean(load(plain_server("ssl_session_ticket_key " + cert("ticket80.key") +
                                        ";\nssl_session_ticket_key " + cert("ticket48.key") +
                                        ";"))));
}

TEST(Files, TicketKeyOf47BytesIsRefused) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string key = dir.write("ticket47.key", std::string(47, 'k'));
    auto r = load(plain_server("ssl_session_ticket_key " + key + ";"));
    EXPECT_FALSE(r.ok());
    ASSERT_THAT(r.diagnostics, SizeIs(1)) << listing(r);
    EXPECT_EQ(r.diagnostics[0].to_string(),
              "/tmp/dir/t.conf:5:24: error: session ticket key \"" + key +
                  "\" is 47 bytes: it must be exactly 48 or 80 bytes (openssl rand 80 > FILE)");
}

TEST(Files, TicketKeyReadableByOtherUsersWarns) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string key = dir.write("ticket.key", std::string(80, 'k'), 0644);
    auto r = load(plain_server("ssl_session_ticket_key " + key + ";"));
    ASSERT_TRUE(r.ok()) << listing(r);
    EXPECT_THAT(messages(r), ElementsAre("session ticket key \"" + key +
                                         "\" is readable by every user: whoever reads it can "
                                         "decrypt tickets"));
}

TEST(Files, MissingTicketKey) {
    EXPECT_THAT(messages(load(plain_server("ssl_session_ticket_key /nonexistent/t.key;"))),
                ElementsAre("cannot open \"/nonexistent/t.key\": No such file or directory"));
}

// ---------------------------------------------------------------------------
// CA bundles, CRLs, OCSP responses, DH parameters.

TEST(Files, CaBundlesWithCertificatesAreAccepted) {
    EXPECT_TRUE(clean(load(tls_server(rsa_pair() + "ssl_verify_client on;\n" +
                                      "ssl_client_certificate " + cert("client-ca.crt") + ";\n" +
                                      "ssl_trusted_certificate " + cert("ca.crt") + ";\n" +
                                      "proxy_ssl_trusted_certificate " + cert("other-ca.crt") +
                                      ";"))));
}

TEST(Files, CaBundleWithoutCertificates) {
    EXPECT_THAT(messages(load(plain_server("ssl_client_certificate " + cert("crl.pem") + ";"))),
                ElementsAre("\"" + cert("crl.pem") +
                            "\" holds no PEM certificate, so ssl_client_certificate would trust "
                            "nothing"));
}

TEST(Files, TrustedCertificateBundleWithoutCertificatesNamesItsDirective) {
    EXPECT_THAT(
        messages(load(plain_server("proxy_ssl_trusted_certificate " + cert("ca.key") + ";"))),
        ElementsAre("\"" + cert("ca.key") +
                    "\" holds no PEM certificate, so proxy_ssl_trusted_certificate would trust "
                    "nothing"));
}

TEST(Files, CrlIsAccepted) {
    EXPECT_TRUE(clean(load(plain_server("ssl_crl " + cert("crl.pem") + ";\nproxy_ssl_crl " +
                                        cert("crl.pem") + ";"))));
}

TEST(Files, CrlFileThatIsNotACrl) {
    auto r = load(plain_server("ssl_crl " + cert("ca.crt") + ";"));
    ASSERT_THAT(r.diagnostics, SizeIs(1)) << listing(r);
    EXPECT_EQ(r.diagnostics[0].to_string(),
              "/tmp/dir/t.conf:5:9: error: \"" + cert("ca.crt") +
                  "\" holds no PEM CRL (\"-----BEGIN X509 CRL-----\")");
}

TEST(Files, StaplingFileWithDerOcspResponseIsAccepted) {
    EXPECT_TRUE(clean(load(plain_server("ssl_stapling_file " + cert("ocsp.der") + ";"))));
}

TEST(Files, StaplingFileThatIsNotDerOcsp) {
    EXPECT_THAT(messages(load(plain_server("ssl_stapling_file " + cert("ca.crt") + ";"))),
                ElementsAre("\"" + cert("ca.crt") +
                            "\" is not a DER-encoded OCSP response (openssl ocsp -respout)"));
}

TEST(Files, DhparamIsAccepted) {
    EXPECT_TRUE(clean(load(plain_server("ssl_dhparam " + cert("dhparam.pem") + ";"))));
}

TEST(Files, DhparamGarbageIsRefused) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string dh = dir.write("dh.pem", "garbage\n", 0644);
    EXPECT_THAT(messages(load(plain_server("ssl_dhparam " + dh + ";"))),
                ElementsAre("\"" + dh +
                            "\" holds no PEM DH parameters (openssl dhparam -out FILE 2048)"));
}

TEST(Files, DhparamThatIsACertificateIsRefused) {
    EXPECT_THAT(messages(load(plain_server("ssl_dhparam " + cert("ca.crt") + ";"))),
                ElementsAre("\"" + cert("ca.crt") +
                            "\" holds no PEM DH parameters (openssl dhparam -out FILE 2048)"));
}

TEST(Files, DhparamBelow2048BitsWarns) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string dh = dir.write("dh1024.pem", kDh1024, 0644);
    auto r = load(plain_server("ssl_dhparam " + dh + ";"));
    ASSERT_TRUE(r.ok()) << listing(r);
    EXPECT_THAT(messages(r), ElementsAre("DH parameters in \"" + dh +
                                         "\" are 1024 bits: use 2048 or more"));
}

// "openssl dhparam -dsaparam" writes X9.42 parameters with OpenSSL 3, and
// OpenSSL (SSL_CTX_set0_tmp_dh_pkey) and nginx accept them.
TEST(Files, DhparamInX942FormIsAccepted) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string dh = dir.write("dhx.pem", kDhX942, 0644);
    EXPECT_TRUE(clean(load(plain_server("ssl_dhparam " + dh + ";"))));
}

// ---------------------------------------------------------------------------
// OpenSSL strings.

TEST(Files, CiphersUnknownToOpenssl) {
    auto r = load(plain_server("ssl_ciphers NOT-A-CIPHER;"));
    ASSERT_THAT(r.diagnostics, SizeIs(1)) << listing(r);
    EXPECT_EQ(r.diagnostics[0].to_string(),
              "/tmp/dir/t.conf:5:13: error: no cipher in \"NOT-A-CIPHER\" is known to OpenSSL "
              "(TLS 1.3 suites go in ssl_conf_command Ciphersuites ...)");
}

TEST(Files, Tls13SuiteInSslCiphersIsRefusedWithAHint) {
    EXPECT_THAT(messages(load(plain_server("ssl_ciphers TLS_AES_128_GCM_SHA256;"))),
                ElementsAre("no cipher in \"TLS_AES_128_GCM_SHA256\" is known to OpenSSL (TLS "
                            "1.3 suites go in ssl_conf_command Ciphersuites ...)"));
}

TEST(Files, CipherListWithOneKnownCipherIsAccepted) {
    // OpenSSL, and so nginx, skip unknown names in a list that has a known one.
    EXPECT_TRUE(clean(load(plain_server("ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:NOT-A-CIPHER;"))));
}

TEST(Files, EcdhCurveUnknownToOpenssl) {
    EXPECT_THAT(messages(load(plain_server("ssl_ecdh_curve X25519:brainpool1024;"))),
                ElementsAre("unknown curve in \"X25519:brainpool1024\": expected auto or a list "
                            "such as X25519:prime256v1:secp384r1"));
}

TEST(Files, EcdhCurveListIsAccepted) {
    EXPECT_TRUE(clean(load(plain_server("ssl_ecdh_curve X25519:prime256v1:secp384r1;"))));
}

TEST(Files, ConfCommandUnknownToOpenssl) {
    auto r = load(plain_server("ssl_conf_command NoSuchCommand on;"));
    ASSERT_THAT(r.diagnostics, SizeIs(1)) << listing(r);
    EXPECT_EQ(r.diagnostics[0].to_string(),
              "/tmp/dir/t.conf:5:1: error: unknown OpenSSL command \"NoSuchCommand\" in "
              "ssl_conf_command (see SSL_CONF_cmd(3): Ciphersuites, Groups, Options, ...)");
}

TEST(Files, ConfCommandWithAValidCiphersuite) {
    auto r = load(plain_server("ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->servers.at(0).settings.ssl_conf_command.size(), 1u);
}

TEST(Files, ConfCommandWithAValueOpensslRefuses) {
    EXPECT_THAT(messages(load(plain_server("ssl_conf_command Ciphersuites NOT_A_SUITE;"))),
                ElementsAre("OpenSSL refuses \"Ciphersuites\" \"NOT_A_SUITE\" in ssl_conf_command: "
                            "expected TLS 1.3 suites such as "
                            "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"));
}

// The message names the directive that was written.
TEST(Files, ProxyConfCommandUnknownNamesProxySslConfCommand) {
    EXPECT_THAT(messages(load(plain_server("proxy_ssl_conf_command NoSuchCommand on;"))),
                ElementsAre("unknown OpenSSL command \"NoSuchCommand\" in proxy_ssl_conf_command "
                            "(see SSL_CONF_cmd(3): Ciphersuites, Groups, Options, ...)"));
}

// ---------------------------------------------------------------------------
// LoadOptions{check_files = false}

TEST(Files, CheckFilesOffSkipsEveryFileCheck) {
    LoadOptions options;
    options.check_files = false;
    auto r = load(tls_server(pair("/nonexistent/a.crt", "/nonexistent/a.key") +
                             pair(cert("rsa.crt"), cert("ecdsa.key")) +
                             pair(cert("server.crt"), cert("encrypted.key")) +
                             "ssl_password_file /nonexistent/pw;\n"
                             "ssl_client_certificate /nonexistent/ca.crt;\n"
                             "ssl_trusted_certificate " + cert("crl.pem") + ";\n"
                             "ssl_crl " + cert("ca.crt") + ";\n"
                             "ssl_stapling_file /nonexistent/ocsp.der;\n"
                             "ssl_dhparam /nonexistent/dh.pem;\n"
                             "ssl_session_ticket_key /nonexistent/ticket.key;\n"
                             "proxy_ssl on;\n"
                             "proxy_ssl_certificate /nonexistent/c.crt;\n"
                             "proxy_ssl_certificate_key /nonexistent/c.key;\n"
                             "proxy_ssl_password_file /nonexistent/pw2;\n"
                             "proxy_ssl_trusted_certificate /nonexistent/ca2.crt;\n"
                             "proxy_ssl_crl /nonexistent/crl2.pem;"),
                  options);
    EXPECT_TRUE(clean(r));
    ASSERT_TRUE(r.ok());
    const ServerSettings& s = r.config->servers.at(0).settings;
    EXPECT_EQ(s.ssl_certificates.size(), 3u);
    EXPECT_EQ(s.ssl_dhparam, "/nonexistent/dh.pem");
    EXPECT_EQ(s.proxy_ssl_crl, "/nonexistent/crl2.pem");
}

TEST(Files, CheckFilesOnReportsEachOfThem) {
    auto r = load(plain_server("ssl_client_certificate /nonexistent/ca.crt;\n"
                               "ssl_crl /nonexistent/crl.pem;\n"
                               "ssl_stapling_file /nonexistent/ocsp.der;\n"
                               "ssl_dhparam /nonexistent/dh.pem;\n"
                               "ssl_password_file /nonexistent/pw;"));
    EXPECT_THAT(messages(r),
                ElementsAre("cannot open \"/nonexistent/ca.crt\": No such file or directory",
                            "cannot open \"/nonexistent/crl.pem\": No such file or directory",
                            "cannot open \"/nonexistent/ocsp.der\": No such file or directory",
                            "cannot open \"/nonexistent/dh.pem\": No such file or directory",
                            "cannot open \"/nonexistent/pw\": No such file or directory"));
}

}  // namespace
}  // namespace terminus::config
