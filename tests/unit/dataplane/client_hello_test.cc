// The ssl_preread ClientHello parser: real hellos from an OpenSSL client,
// split at every byte and fragmented over records, and hand-built ones
// that lie about their lengths.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/proxy/client_hello.h"

namespace terminus::dataplane::proxy {
namespace {

using Bytes = std::vector<uint8_t>;

struct SslCtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};

struct HelloOptions {
    const char* sni = nullptr;
    std::vector<std::string> alpn;
    int min_version = TLS1_2_VERSION;
    int max_version = TLS1_3_VERSION;
};

// The first flight of an OpenSSL client: its ClientHello record(s).
Bytes openssl_hello(const HelloOptions& o) {
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    EXPECT_TRUE(ctx);
    // TLS 1.0 and 1.1 hellos need security level 0 in OpenSSL 3.
    SSL_CTX_set_security_level(ctx.get(), 0);
    SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx.get(), o.min_version);
    SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl.get(), in, out);
    if (o.sni) {
        EXPECT_EQ(SSL_set_tlsext_host_name(ssl.get(), o.sni), 1);
    }
    if (!o.alpn.empty()) {
        Bytes wire;
        for (const auto& p : o.alpn) {
            wire.push_back(static_cast<uint8_t>(p.size()));
            wire.insert(wire.end(), p.begin(), p.end());
        }
        EXPECT_EQ(SSL_set_alpn_protos(ssl.get(), wire.data(), static_cast<unsigned>(wire.size())), 0);
    }
    SSL_set_connect_state(ssl.get());
    const int rc = SSL_do_handshake(ssl.get());
    EXPECT_EQ(SSL_get_error(ssl.get(), rc), SSL_ERROR_WANT_READ);
    char* p = nullptr;
    const long n = BIO_get_mem_data(out, &p);
    return Bytes(p, p + n);
}

// The handshake messages inside a run of records.
Bytes unwrap(const Bytes& records) {
    Bytes msg;
    for (size_t i = 0; i + 5 <= records.size();) {
        const size_t len = static_cast<size_t>(records[i + 3]) << 8 | records[i + 4];
        msg.insert(msg.end(), records.begin() + static_cast<long>(i) + 5,
                   records.begin() + static_cast<long>(i + 5 + len));
        i += 5 + len;
    }
    return msg;
}

// MSG in handshake records of at most FRAG bytes each.
Bytes wrap(const Bytes& msg, size_t frag, uint16_t record_version = 0x0301) {
    Bytes out;
    for (size_t i = 0; i < msg.size(); i += frag) {
        const size_t n = std::min(frag, msg.size() - i);
        out.insert(out.end(), {0x16, static_cast<uint8_t>(record_version >> 8), static_cast<uint8_t>(record_version),
                               static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
        out.insert(out.end(), msg.begin() + static_cast<long>(i), msg.begin() + static_cast<long>(i + n));
    }
    return out;
}

void put16(Bytes& b, size_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

// A ClientHello built field by field, so that tests can make any field lie.
struct Hello {
    uint16_t version = 0x0303;
    Bytes session_id = Bytes(32, 0xab);
    Bytes ciphers = {0x13, 0x01, 0xc0, 0x2f};
    Bytes compression = {0};
    bool extensions_block = true;
    std::vector<std::pair<uint16_t, Bytes>> extensions;

    Hello& ext(uint16_t type, Bytes data) {
        extensions.emplace_back(type, std::move(data));
        return *this;
    }
    Hello& sni(const std::string& name, uint8_t type = 0) {
        Bytes d;
        put16(d, name.size() + 3);
        d.push_back(type);
        put16(d, name.size());
        d.insert(d.end(), name.begin(), name.end());
        return ext(0, d);
    }
    Hello& alpn(const std::vector<std::string>& protos) {
        Bytes list;
        for (const auto& p : protos) {
            list.push_back(static_cast<uint8_t>(p.size()));
            list.insert(list.end(), p.begin(), p.end());
        }
        Bytes d;
        put16(d, list.size());
        d.insert(d.end(), list.begin(), list.end());
        return ext(16, d);
    }
    Hello& supported_versions(const std::vector<uint16_t>& versions) {
        Bytes d{static_cast<uint8_t>(versions.size() * 2)};
        for (uint16_t v : versions) put16(d, v);
        return ext(43, d);
    }

    Bytes body() const {
        Bytes b;
        put16(b, version);
        b.insert(b.end(), 32, 0x5a);  // random
        b.push_back(static_cast<uint8_t>(session_id.size()));
        b.insert(b.end(), session_id.begin(), session_id.end());
        put16(b, ciphers.size());
        b.insert(b.end(), ciphers.begin(), ciphers.end());
        b.push_back(static_cast<uint8_t>(compression.size()));
        b.insert(b.end(), compression.begin(), compression.end());
        if (extensions_block) {
            Bytes e;
            for (const auto& [type, data] : extensions) {
                put16(e, type);
                put16(e, data.size());
                e.insert(e.end(), data.begin(), data.end());
            }
            put16(b, e.size());
            b.insert(b.end(), e.begin(), e.end());
        }
        return b;
    }
    Bytes message() const {
        const Bytes b = body();
        Bytes m{1, static_cast<uint8_t>(b.size() >> 16), static_cast<uint8_t>(b.size() >> 8),
                static_cast<uint8_t>(b.size())};
        m.insert(m.end(), b.begin(), b.end());
        return m;
    }
    Bytes record() const { return wrap(message(), 16384); }
};

PrereadStatus parse(const Bytes& b, ClientHelloInfo& info, size_t n = SIZE_MAX) {
    return parse_client_hello(b.data(), std::min(n, b.size()), info);
}

std::string str(std::string_view v) { return std::string(v); }

TEST(ClientHello, OpensslTls13HelloGivesNameAlpnAndProtocol) {
    const Bytes b = openssl_hello({.sni = "app1.example.com", .alpn = {"h2", "http/1.1"}});
    ClientHelloInfo info;
    ASSERT_EQ(parse(b, info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), "app1.example.com");
    EXPECT_EQ(str(info.alpn_protocols()), "h2,http/1.1");
    EXPECT_EQ(str(info.protocol()), "TLSv1.3");
    EXPECT_EQ(info.version, 0x0304);
    EXPECT_FALSE(info.alpn_truncated);
}

TEST(ClientHello, LegacyVersionNamesTheProtocolWithoutSupportedVersions) {
    // OpenSSL sends supported_versions only when it offers TLS 1.3.
    struct Case {
        int max;
        const char* name;
    } cases[] = {{TLS1_2_VERSION, "TLSv1.2"}, {TLS1_1_VERSION, "TLSv1.1"}, {TLS1_VERSION, "TLSv1"}};
    for (const Case& c : cases) {
        const Bytes b = openssl_hello({.sni = "a.example", .min_version = TLS1_VERSION, .max_version = c.max});
        ClientHelloInfo info;
        ASSERT_EQ(parse(b, info), PrereadStatus::kDone) << c.name;
        EXPECT_EQ(str(info.protocol()), c.name);
        EXPECT_EQ(str(info.server_name()), "a.example");
        EXPECT_EQ(str(info.alpn_protocols()), "");
    }
}

TEST(ClientHello, NoServerNameNoAlpnIsDoneAndEmpty) {
    const Bytes b = openssl_hello({});
    ClientHelloInfo info;
    ASSERT_EQ(parse(b, info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), "");
    EXPECT_EQ(str(info.alpn_protocols()), "");
    EXPECT_EQ(str(info.protocol()), "TLSv1.3");
}

TEST(ClientHello, EveryShorterPrefixNeedsMore) {
    const Bytes b = openssl_hello({.sni = "app2.example.com", .alpn = {"h2"}});
    ClientHelloInfo info;
    for (size_t n = 0; n < b.size(); ++n) {
        ASSERT_EQ(parse(b, info, n), PrereadStatus::kNeedMore) << "prefix " << n << " of " << b.size();
        EXPECT_EQ(info.server_name().size(), 0u);
    }
    ASSERT_EQ(parse(b, info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), "app2.example.com");
}

TEST(ClientHello, FragmentedOverRecordsOfEverySize) {
    const Bytes msg = unwrap(openssl_hello({.sni = "frag.example.com", .alpn = {"h2", "http/1.1"}}));
    ASSERT_GT(msg.size(), 100u);
    for (size_t frag = 1; frag <= msg.size(); ++frag) {
        const Bytes b = wrap(msg, frag);
        ClientHelloInfo info;
        ASSERT_EQ(parse(b, info), PrereadStatus::kDone) << "records of " << frag;
        EXPECT_EQ(str(info.server_name()), "frag.example.com");
        EXPECT_EQ(str(info.alpn_protocols()), "h2,http/1.1");
        EXPECT_EQ(str(info.protocol()), "TLSv1.3");
    }
}

TEST(ClientHello, FragmentedHelloSplitAtEveryByteNeedsMoreUntilTheLastRecord) {
    const Bytes msg = unwrap(openssl_hello({.sni = "split.example.com"}));
    for (size_t frag : {1, 2, 3, 7, 64, 200}) {
        const Bytes b = wrap(msg, frag);
        ClientHelloInfo info;
        for (size_t n = 0; n < b.size(); ++n) {
            ASSERT_EQ(parse(b, info, n), PrereadStatus::kNeedMore) << "records of " << frag << ", prefix " << n;
        }
        ASSERT_EQ(parse(b, info), PrereadStatus::kDone);
        EXPECT_EQ(str(info.server_name()), "split.example.com");
    }
}

TEST(ClientHello, EmptyRecordsBetweenFragmentsAreSkipped) {
    const Bytes msg = Hello{}.sni("x.example").message();
    Bytes b = wrap(Bytes(msg.begin(), msg.begin() + 10), 16384);
    b.insert(b.end(), {0x16, 3, 1, 0, 0});
    const Bytes rest = wrap(Bytes(msg.begin() + 10, msg.end()), 16384);
    b.insert(b.end(), rest.begin(), rest.end());
    ClientHelloInfo info;
    ASSERT_EQ(parse(b, info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), "x.example");
}

TEST(ClientHello, BytesAfterTheHelloChangeNothing) {
    Bytes b = openssl_hello({.sni = "early.example"});
    ClientHelloInfo first;
    ASSERT_EQ(parse(b, first), PrereadStatus::kDone);
    b.insert(b.end(), {0x17, 3, 3, 0, 4, 1, 2, 3, 4, 'G', 'E', 'T'});
    ClientHelloInfo info;
    ASSERT_EQ(parse(b, info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), "early.example");
}

TEST(ClientHello, PlainHttpIsNotTls) {
    const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const Bytes b(get.begin(), get.end());
    ClientHelloInfo info;
    // nginx decides nothing before 5 bytes.
    EXPECT_EQ(parse(b, info, 4), PrereadStatus::kNeedMore);
    EXPECT_EQ(parse(b, info, 5), PrereadStatus::kNotTls);
    EXPECT_EQ(parse(b, info), PrereadStatus::kNotTls);
    EXPECT_EQ(str(info.protocol()), "");
}

TEST(ClientHello, OtherRecordTypesAndVersionsAreNotTls) {
    ClientHelloInfo info;
    EXPECT_EQ(parse(Bytes{0x15, 3, 3, 0, 2, 2, 40}, info), PrereadStatus::kNotTls);  // an alert
    EXPECT_EQ(parse(Bytes{0x16, 2, 0, 0, 0}, info), PrereadStatus::kNotTls);         // SSL major 2
    EXPECT_EQ(parse(Bytes{0x16, 4, 0, 0, 0}, info), PrereadStatus::kNotTls);
}

TEST(ClientHello, Sslv2FormReportsItsVersion) {
    // msg length | 0x8000, CLIENT-HELLO, version, cipher spec, session id
    // and challenge lengths, then the data (RFC 6101 E.2).
    Bytes v2 = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
    v2.resize(0x2e + 2, 0x11);
    ClientHelloInfo info;
    EXPECT_EQ(parse(v2, info, 4), PrereadStatus::kNeedMore);
    ASSERT_EQ(parse(v2, info, 5), PrereadStatus::kDone);
    EXPECT_EQ(str(info.protocol()), "TLSv1");
    EXPECT_EQ(str(info.server_name()), "");
    v2[3] = 0x00;
    v2[4] = 0x02;
    ASSERT_EQ(parse(v2, info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.protocol()), "SSLv2");
    v2[2] = 0x04;  // not CLIENT-HELLO
    EXPECT_EQ(parse(v2, info), PrereadStatus::kNotTls);
}

TEST(ClientHello, AnotherHandshakeMessageIsInvalid) {
    Bytes b = Hello{}.record();
    b[5] = 2;  // server_hello
    ClientHelloInfo info;
    EXPECT_EQ(parse(b, info), PrereadStatus::kInvalid);
}

TEST(ClientHello, SupportedVersionsMeansTls13AsNginxSays) {
    ClientHelloInfo info;
    ASSERT_EQ(parse(Hello{}.supported_versions({0x0304, 0x0303}).record(), info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.protocol()), "TLSv1.3");
    // nginx does not read the list: its presence is enough.
    ASSERT_EQ(parse(Hello{}.supported_versions({0x0303}).record(), info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.protocol()), "TLSv1.3");
    Hello unknown;
    unknown.version = 0x0305;
    ASSERT_EQ(parse(unknown.record(), info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.protocol()), "");
    EXPECT_EQ(info.version, 0x0305);
}

TEST(ClientHello, HelloWithoutExtensionsIsDone) {
    Hello h;
    h.extensions_block = false;
    h.version = 0x0300;
    ClientHelloInfo info;
    ASSERT_EQ(parse(h.record(), info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.protocol()), "SSLv3");
}

TEST(ClientHello, FirstServerNameAndAlpnExtensionsCount) {
    const Bytes b = Hello{}.sni("first.example").alpn({"h2"}).sni("second.example").alpn({"x"}).record();
    ClientHelloInfo info;
    ASSERT_EQ(parse(b, info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), "first.example");
    EXPECT_EQ(str(info.alpn_protocols()), "h2");
}

TEST(ClientHello, ServerNameIsKeptAsSent) {
    ClientHelloInfo info;
    ASSERT_EQ(parse(Hello{}.sni("WWW.Example.COM.").record(), info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), "WWW.Example.COM.");
}

TEST(ClientHello, ServerNameOfAnotherTypeIsInvalid) {
    ClientHelloInfo info;
    EXPECT_EQ(parse(Hello{}.sni("x.example", 1).record(), info), PrereadStatus::kInvalid);
}

TEST(ClientHello, ServerNameUpTo255BytesLongerIsInvalid) {
    ClientHelloInfo info;
    const std::string longest(255, 'a');
    ASSERT_EQ(parse(Hello{}.sni(longest).record(), info), PrereadStatus::kDone);
    EXPECT_EQ(str(info.server_name()), longest);
    EXPECT_EQ(parse(Hello{}.sni(longest + "a").record(), info), PrereadStatus::kInvalid);
    EXPECT_EQ(info.server_name().size(), 0u);
}

TEST(ClientHello, EmptyAlpnProtocolOrListIsInvalid) {
    ClientHelloInfo info;
    EXPECT_EQ(parse(Hello{}.alpn({"h2", ""}).record(), info), PrereadStatus::kInvalid);
    EXPECT_EQ(parse(Hello{}.alpn({}).record(), info), PrereadStatus::kInvalid);
}

TEST(ClientHello, LongAlpnListKeepsWholeProtocolsThatFit) {
    std::vector<std::string> protos;
    std::string expect;
    for (int i = 0; i < 40; ++i) {
        protos.push_back("proto-" + std::to_string(100 + i));  // 9 bytes each
        if (expect.size() + 10 <= ClientHelloInfo::kMaxAlpn + (expect.empty() ? 1 : 0)) {
            expect += (expect.empty() ? "" : ",") + protos.back();
        }
    }
    ClientHelloInfo info;
    ASSERT_EQ(parse(Hello{}.alpn(protos).sni("after.example").record(), info), PrereadStatus::kDone);
    EXPECT_TRUE(info.alpn_truncated);
    EXPECT_EQ(str(info.alpn_protocols()), expect);
    EXPECT_LE(info.alpn_protocols().size(), ClientHelloInfo::kMaxAlpn);
    EXPECT_EQ(str(info.server_name()), "after.example");
}

// Each length field of a hand-built hello, raised past what encloses it.
TEST(ClientHello, LyingLengthsAreInvalid) {
    const Hello h = Hello{}.sni("lie.example").alpn({"h2", "http/1.1"}).supported_versions({0x0304});
    const Bytes good = h.record();
    ClientHelloInfo info;
    ASSERT_EQ(parse(good, info), PrereadStatus::kDone);
    // Offsets in the record: 5 record header, 4 handshake header, 2
    // version, 32 random, then session id (1 + 32), ciphers (2 + 4),
    // compression (1 + 1), extensions length (2), the extensions.
    const size_t sid = 5 + 4 + 2 + 32;
    const size_t cs = sid + 1 + 32;
    const size_t cm = cs + 2 + 4;
    const size_t exts = cm + 1 + 1;
    const size_t sni_ext = exts + 2;  // type, length, list length, type, name length
    const size_t alpn_ext = sni_ext + 4 + 2 + 3 + 11;
    struct Lie {
        const char* what;
        size_t at;
        Bytes value;
    } lies[] = {
        {"session id", sid, {0xff}},
        {"cipher suites", cs, {0xff, 0xff}},
        {"compression", cm, {0xff}},
        {"extensions block longer", exts, {0x01, 0x00}},
        {"extensions block shorter", exts, {0x00, 0x04}},
        {"server_name extension", sni_ext + 2, {0x01, 0x00}},
        {"server_name list", sni_ext + 4, {0x00, 0x30}},
        {"host name", sni_ext + 7, {0x00, 0x40}},
        {"alpn extension", alpn_ext + 2, {0x01, 0x00}},
        {"alpn list", alpn_ext + 4, {0x00, 0x40}},
        {"alpn protocol", alpn_ext + 6, {0x30}},
    };
    for (const Lie& l : lies) {
        Bytes b = good;
        std::copy(l.value.begin(), l.value.end(), b.begin() + static_cast<long>(l.at));
        EXPECT_EQ(parse(b, info), PrereadStatus::kInvalid) << l.what;
        EXPECT_EQ(info.server_name().size(), 0u) << l.what;
    }
    // The message length: too short cuts a field; too long leaves the
    // extensions block short of the message's end.
    Bytes shorter = good;
    shorter[8] = static_cast<uint8_t>(shorter[8] - 3);
    EXPECT_EQ(parse(shorter, info), PrereadStatus::kInvalid);
    Bytes longer = good;
    longer[7] = 1;
    EXPECT_EQ(parse(longer, info), PrereadStatus::kInvalid);
    // Without extensions, a longer message waits for the extensions block.
    Hello bare;
    bare.extensions_block = false;
    Bytes waits = bare.record();
    ASSERT_EQ(parse(waits, info), PrereadStatus::kDone);
    waits[7] = 1;
    EXPECT_EQ(parse(waits, info), PrereadStatus::kNeedMore);
}

TEST(ClientHello, ARecordOfAnotherTypeInsideTheHelloIsInvalid) {
    const Bytes msg = Hello{}.sni("x.example").message();
    Bytes b = wrap(Bytes(msg.begin(), msg.begin() + 20), 16384);
    ClientHelloInfo info;
    EXPECT_EQ(parse(b, info), PrereadStatus::kNeedMore);
    b.insert(b.end(), {0x17, 3, 3, 0, 1, 0});
    EXPECT_EQ(parse(b, info), PrereadStatus::kInvalid);
}

TEST(ClientHello, OversizedRecordWaitsForTheCallersLimit) {
    // A record longer than TLS allows is read like any other: the preread
    // buffer's size is what stops it, as in nginx.
    Bytes b = {0x16, 3, 1, 0xff, 0xff, 1, 0, 0xff, 0xfb};
    b.resize(16 * 1024, 0);
    ClientHelloInfo info;
    EXPECT_EQ(parse(b, info), PrereadStatus::kNeedMore);
}

TEST(ClientHello, EverySingleByteCorruptionKeepsWithinBounds) {
    const Bytes good = openssl_hello({.sni = "mutate.example.com", .alpn = {"h2", "http/1.1"}});
    for (size_t i = 0; i < good.size(); ++i) {
        for (uint8_t v : {uint8_t{0x00}, uint8_t{0xff}, static_cast<uint8_t>(good[i] + 1)}) {
            Bytes b = good;
            b[i] = v;
            ClientHelloInfo info;
            const PrereadStatus s = parse(b, info);
            if (s != PrereadStatus::kDone) {
                EXPECT_EQ(info.server_name().size() + info.alpn_protocols().size(), 0u) << i;
            }
            EXPECT_LE(info.server_name().size(), ClientHelloInfo::kMaxServerName);
            EXPECT_LE(info.alpn_protocols().size(), ClientHelloInfo::kMaxAlpn);
            if (s == PrereadStatus::kNeedMore) continue;
            // A terminal answer does not change when more bytes follow.
            b.insert(b.end(), 64, 0x16);
            ClientHelloInfo more;
            ASSERT_EQ(parse(b, more), s) << i;
            EXPECT_EQ(more.server_name(), info.server_name()) << i;
        }
    }
}

TEST(ClientHello, StatusNames) {
    EXPECT_STREQ(to_string(PrereadStatus::kNeedMore), "need_more");
    EXPECT_STREQ(to_string(PrereadStatus::kDone), "done");
    EXPECT_STREQ(to_string(PrereadStatus::kNotTls), "not_tls");
    EXPECT_STREQ(to_string(PrereadStatus::kInvalid), "invalid");
}

}  // namespace
}  // namespace terminus::dataplane::proxy
