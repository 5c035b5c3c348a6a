// The PROXY protocol codec: byte vectors written out by hand from
// HAProxy's doc/proxy-protocol.txt (and its sender's TLV layout in
// make_proxy_line_v2), round trips through our writer, and every way a
// header can be malformed.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/proxy/proxy_protocol.h"

namespace terminus::dataplane::proxy::pp {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
Bytes ascii(std::string_view s) { return Bytes(s.begin(), s.end()); }

// 2.2: "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A".
const Bytes kSig = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

Status parse_bytes(const Bytes& b, Header& h, size_t max_len = kMaxHeaderLen) {
    return parse(b.data(), b.size(), h, max_len);
}

Error parse_error(const Bytes& b) {
    Header h;
    EXPECT_EQ(parse_bytes(b, h), Status::kInvalid) << std::string(b.begin(), b.end());
    return h.error;
}

// Every proper prefix of a valid header needs more, the whole is done, and
// bytes after it (the payload) change nothing.
void expect_split_everywhere(const Bytes& b) {
    for (size_t k = 0; k < b.size(); ++k) {
        Header h;
        ASSERT_EQ(parse(b.data(), k, h), Status::kNeedMore) << "prefix of " << k << " bytes";
    }
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.length, b.size());
    Bytes more = b + ascii("GET / HTTP/1.1\r\n\r\n");
    ASSERT_EQ(parse_bytes(more, h), Status::kDone);
    EXPECT_EQ(h.length, b.size());
}

std::string_view sv(const std::optional<std::string_view>& v) { return v ? *v : "<absent>"; }

// ---- version 1 ----

TEST(ProxyProtocolV1, SpecExampleParses) {
    // 2.1's example, before an HTTP request.
    const Bytes b = ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n");
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.length, 47u);
    EXPECT_EQ(h.version, 1);
    EXPECT_EQ(h.command, Command::kProxy);
    EXPECT_EQ(h.family, Family::kInet);
    EXPECT_EQ(h.transport, Transport::kStream);
    EXPECT_EQ(h.src.ip4, 0xC0A80001u);
    EXPECT_EQ(h.dst.ip4, 0xC0A8000Bu);
    EXPECT_EQ(h.src.port, 56324);
    EXPECT_EQ(h.dst.port, 443);
    EXPECT_FALSE(h.alpn);
    EXPECT_FALSE(h.ssl);
}

TEST(ProxyProtocolV1, LongestTcp4LineParses) {
    const Bytes b = ascii("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
    ASSERT_EQ(b.size(), kV1Tcp4MaxLen);
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.src.ip4, 0xFFFFFFFFu);
    EXPECT_EQ(h.dst.port, 65535);
    const Bytes zeros = ascii("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n");
    ASSERT_EQ(parse_bytes(zeros, h), Status::kDone);
    EXPECT_EQ(h.src.ip4, 0u);
    EXPECT_EQ(h.src.port, 0);
}

TEST(ProxyProtocolV1, Tcp6IsReportedAsInet6) {
    const Bytes b = ascii("PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 65535 0\r\n");
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.family, Family::kInet6);
    const std::array<uint8_t, 16> src = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const std::array<uint8_t, 16> dst = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
    EXPECT_EQ(h.src.ip6, src);
    EXPECT_EQ(h.dst.ip6, dst);
    EXPECT_EQ(h.src.port, 65535);
    EXPECT_EQ(h.dst.port, 0);
}

TEST(ProxyProtocolV1, Ipv6Forms) {
    struct Case {
        const char* text;
        std::array<uint8_t, 16> want;
    } cases[] = {
        {"::", {}},
        {"::1", {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
        {"1::", {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
        {"FFFF:ffff:0:0:0:0:0:00aB",
         {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xab}},
        {"1:2:3:4:5:6:7::", {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0}},
        {"1:2::7:8", {0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 8}},
        {"1:2:3:4:5:6:1.2.3.4", {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4}},
    };
    for (const Case& c : cases) {
        const Bytes b = ascii(std::string("PROXY TCP6 ") + c.text + " ::1 1 2\r\n");
        Header h;
        ASSERT_EQ(parse_bytes(b, h), Status::kDone) << c.text;
        EXPECT_EQ(h.src.ip6, c.want) << c.text;
    }
}

TEST(ProxyProtocolV1, UnknownShortAndWorstCase) {
    Header h;
    const Bytes shortest = ascii("PROXY UNKNOWN\r\n");
    ASSERT_EQ(parse_bytes(shortest, h), Status::kDone);
    EXPECT_EQ(h.length, 15u);
    EXPECT_EQ(h.family, Family::kUnspec);
    EXPECT_EQ(h.transport, Transport::kUnspec);
    EXPECT_EQ(h.command, Command::kProxy);
    // 2.1's worst case is exactly 107 bytes; whatever follows UNKNOWN is
    // ignored.
    const std::string f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const Bytes worst = ascii("PROXY UNKNOWN " + f + " " + f + " 65535 65535\r\n");
    ASSERT_EQ(worst.size(), kV1MaxLen);
    ASSERT_EQ(parse_bytes(worst, h), Status::kDone);
    EXPECT_EQ(h.length, 107u);
    const Bytes junk = ascii("PROXY UNKNOWN whatever \x01 was here\r\n");
    EXPECT_EQ(parse_bytes(junk, h), Status::kDone);
}

TEST(ProxyProtocolV1, LineOver107BytesIsTooLong) {
    const std::string f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const Bytes b = ascii("PROXY UNKNOWN " + f + " " + f + " 65535 655350\r\n");
    ASSERT_EQ(b.size(), 108u);
    EXPECT_EQ(parse_error(b), Error::kTooLong);
    // Already once 107 bytes without a CRLF have arrived.
    Header h;
    EXPECT_EQ(parse(b.data(), 107, h), Status::kInvalid);
    EXPECT_EQ(h.error, Error::kTooLong);
    EXPECT_EQ(parse(b.data(), 106, h), Status::kNeedMore);
}

TEST(ProxyProtocolV1, LineOverTheCallersCapIsTooLong) {
    const Bytes b = ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    Header h;
    EXPECT_EQ(parse_bytes(b, h, b.size()), Status::kDone);
    EXPECT_EQ(parse_bytes(b, h, b.size() - 1), Status::kInvalid);
    EXPECT_EQ(h.error, Error::kTooLong);
    EXPECT_EQ(parse(b.data(), 20, h, 21), Status::kNeedMore);
    EXPECT_EQ(parse(b.data(), 21, h, 21), Status::kInvalid);
}

TEST(ProxyProtocolV1, SplitAtEveryOffset) {
    expect_split_everywhere(ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"));
    expect_split_everywhere(ascii("PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 65535 0\r\n"));
    expect_split_everywhere(ascii("PROXY UNKNOWN\r\n"));
}

TEST(ProxyProtocolV1, BadSyntaxIsRefused) {
    const char* syntax[] = {
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",     // two spaces
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",     // trailing space
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",    // a fifth field
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",        // a field missing
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",        // LF alone
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n",     // CR alone
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r",
        "PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n",
    };
    for (const char* s : syntax) EXPECT_EQ(parse_error(ascii(s)), Error::kV1Syntax) << s;
    const char* protocol[] = {
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4\r\n",
        "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
    };
    for (const char* s : protocol) EXPECT_EQ(parse_error(ascii(s)), Error::kV1Protocol) << s;
    EXPECT_EQ(parse_error(ascii("PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n")), Error::kNotProxy);
    EXPECT_EQ(parse_error(ascii("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n")), Error::kNotProxy);
}

TEST(ProxyProtocolV1, BadAddressesAreRefused) {
    const char* v4[] = {"256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.00", "1..2.3",
                        ".1.2.3", "1.2.3.", "1.2.3.-4", "1.2.3.4a", "0x1.2.3.4", "1.2.3.1000",
                        "::1", "a.b.c.d"};
    for (const char* a : v4) {
        EXPECT_EQ(parse_error(ascii(std::string("PROXY TCP4 ") + a + " 5.6.7.8 1 2\r\n")),
                  Error::kV1Address)
            << a;
        EXPECT_EQ(parse_error(ascii(std::string("PROXY TCP4 5.6.7.8 ") + a + " 1 2\r\n")),
                  Error::kV1Address)
            << a;
    }
    const char* v6[] = {"1.2.3.4",         "1:2:3:4:5:6:7",   "1:2:3:4:5:6:7:8:9", "1::2::3",
                        ":1:2:3:4:5:6:7",  "1:2:3:4:5:6:7:",  "12345::",           "::g",
                        "fe80::1%eth0",    "1:2:3:4:5:6:7:8::", "::1.2.3.04",      "1:2:3:4:5:6:7:1.2.3.4",
                        ":::",             ":"};
    for (const char* a : v6) {
        EXPECT_EQ(parse_error(ascii(std::string("PROXY TCP6 ") + a + " ::1 1 2\r\n")),
                  Error::kV1Address)
            << a;
    }
}

TEST(ProxyProtocolV1, BadPortsAreRefused) {
    const char* ports[] = {"65536", "99999", "080", "00", "-1", "+1", "1a", "123456", "0x10"};
    for (const char* p : ports) {
        EXPECT_EQ(parse_error(ascii(std::string("PROXY TCP4 1.2.3.4 5.6.7.8 ") + p + " 2\r\n")),
                  Error::kV1Port)
            << p;
        EXPECT_EQ(parse_error(ascii(std::string("PROXY TCP4 1.2.3.4 5.6.7.8 2 ") + p + "\r\n")),
                  Error::kV1Port)
            << p;
    }
}

TEST(ProxyProtocolV1, GarbageFailsBeforeTheLineEnds) {
    Header h;
    const Bytes get = ascii("GET / HTTP/1.1\r\n");
    EXPECT_EQ(parse(get.data(), 1, h), Status::kInvalid);
    EXPECT_EQ(h.error, Error::kNotProxy);
    const Bytes wrong = ascii("PROXY GET / HTTP/1.1");
    EXPECT_EQ(parse(wrong.data(), 7, h), Status::kInvalid);
    EXPECT_EQ(h.error, Error::kV1Protocol);
    const Bytes ok = ascii("PROXY TCP");
    EXPECT_EQ(parse_bytes(ok, h), Status::kNeedMore);
}

// ---- version 2 ----

// 2.2's header for TCP over IPv4 (\x21 PROXY, \x11 TCP4, 12 address
// bytes): 192.168.0.1:56324 -> 192.168.0.11:443.
const Bytes kV2Tcp4 = kSig + Bytes{0x21, 0x11, 0x00, 0x0C, 192, 168, 0, 1, 192, 168, 0, 11,
                                   0xDC, 0x04, 0x01, 0xBB};

TEST(ProxyProtocolV2, Tcp4Parses) {
    Header h;
    ASSERT_EQ(parse_bytes(kV2Tcp4, h), Status::kDone);
    EXPECT_EQ(h.length, 28u);
    EXPECT_EQ(h.version, 2);
    EXPECT_EQ(h.command, Command::kProxy);
    EXPECT_EQ(h.family, Family::kInet);
    EXPECT_EQ(h.transport, Transport::kStream);
    EXPECT_EQ(h.src.ip4, 0xC0A80001u);
    EXPECT_EQ(h.dst.ip4, 0xC0A8000Bu);
    EXPECT_EQ(h.src.port, 56324);
    EXPECT_EQ(h.dst.port, 443);
    EXPECT_TRUE(h.tlvs.empty());
    EXPECT_FALSE(h.crc32c);
}

TEST(ProxyProtocolV2, Udp4IsReportedAsDgram) {
    Bytes b = kV2Tcp4;
    b[13] = 0x12;
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.family, Family::kInet);
    EXPECT_EQ(h.transport, Transport::kDgram);
}

TEST(ProxyProtocolV2, LocalSkipsTheBlock) {
    // What HAProxy sends for a health check: LOCAL, AF_UNSPEC, no address.
    const Bytes local = kSig + Bytes{0x20, 0x00, 0x00, 0x00};
    Header h;
    ASSERT_EQ(parse_bytes(local, h), Status::kDone);
    EXPECT_EQ(h.length, 16u);
    EXPECT_EQ(h.command, Command::kLocal);
    EXPECT_EQ(h.family, Family::kUnspec);
    // "Receivers MUST always consider this field to skip the appropriate
    // number of bytes"; the family of a LOCAL header is ignored.
    const Bytes with_addr = kSig + Bytes{0x20, 0xFF, 0x00, 0x03, 1, 2, 3};
    ASSERT_EQ(parse_bytes(with_addr, h), Status::kDone);
    EXPECT_EQ(h.length, 19u);
    EXPECT_EQ(h.command, Command::kLocal);
    EXPECT_EQ(h.family, Family::kUnspec);
}

TEST(ProxyProtocolV2, UnspecFamilyUnderProxyIsSkipped) {
    const Bytes b = kSig + Bytes{0x21, 0x00, 0x00, 0x04, 0xAA, 0xBB, 0xCC, 0xDD};
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.length, 20u);
    EXPECT_EQ(h.command, Command::kProxy);
    EXPECT_EQ(h.family, Family::kUnspec);
    EXPECT_TRUE(h.tlvs.empty());
    // AF_INET with an unspecified transport falls back the same way.
    const Bytes b2 = kSig + Bytes{0x21, 0x10, 0x00, 0x00};
    ASSERT_EQ(parse_bytes(b2, h), Status::kDone);
    EXPECT_EQ(h.family, Family::kUnspec);
}

TEST(ProxyProtocolV2, Tcp6Parses) {
    Bytes addr = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,   // src
                  0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,   // dst
                  0x30, 0x39, 0x00, 0x50};                                          // 12345 -> 80
    const Bytes b = kSig + Bytes{0x21, 0x21, 0x00, 0x24} + addr;
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.length, 52u);
    EXPECT_EQ(h.family, Family::kInet6);
    EXPECT_EQ(h.transport, Transport::kStream);
    EXPECT_EQ(h.src.ip6[0], 0x20);
    EXPECT_EQ(h.src.ip6[15], 0x01);
    EXPECT_EQ(h.dst.ip6[15], 0x02);
    EXPECT_EQ(h.src.port, 12345);
    EXPECT_EQ(h.dst.port, 80);
    expect_split_everywhere(b);
}

TEST(ProxyProtocolV2, UnixParses) {
    Bytes addr(216, 0);
    std::memcpy(addr.data(), "/run/src.sock", 13);
    std::memcpy(addr.data() + 108, "/run/dst.sock", 13);
    const Bytes b = kSig + Bytes{0x21, 0x31, 0x00, 0xD8} + addr;
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone);
    EXPECT_EQ(h.length, 232u);
    EXPECT_EQ(h.family, Family::kUnix);
    ASSERT_EQ(h.src.unix_path.size(), 108u);
    EXPECT_EQ(h.src.unix_path.substr(0, 14), std::string_view("/run/src.sock\0", 14));
    EXPECT_EQ(h.dst.unix_path.substr(0, 13), "/run/dst.sock");
}

// HAProxy's make_proxy_line_v2 for a TLS client with send-proxy-v2-ssl-cn,
// crc32c and the KEY_ALG/SIG_ALG/CIPHER options, written out by hand:
// 192.168.0.1:56324 -> 192.168.0.11:443, then CRC32C, ALPN "h2",
// AUTHORITY "example.com", SSL (client SSL|CERT_CONN|CERT_SESS, verify 0,
// VERSION, CN, KEY_ALG, SIG_ALG, CIPHER). The checksum, 0xC80CF64E, was
// computed bit by bit (no table) over these bytes with the field zeroed.
const Bytes kV2Tls =
    kSig + Bytes{0x21, 0x11, 0x00, 0x70,                              // len 112
                 192, 168, 0, 1, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB} +
    Bytes{0x03, 0x00, 0x04, 0xC8, 0x0C, 0xF6, 0x4E} +                 // CRC32C
    Bytes{0x01, 0x00, 0x02} + ascii("h2") +                           // ALPN
    Bytes{0x02, 0x00, 0x0B} + ascii("example.com") +                  // AUTHORITY
    Bytes{0x20, 0x00, 0x47,                                           // SSL, 71
          0x07, 0x00, 0x00, 0x00, 0x00} +                             // client, verify
    Bytes{0x21, 0x00, 0x07} + ascii("TLSv1.3") +                      // VERSION
    Bytes{0x22, 0x00, 0x05} + ascii("alice") +                        // CN
    Bytes{0x25, 0x00, 0x07} + ascii("RSA2048") +                      // KEY_ALG
    Bytes{0x24, 0x00, 0x0A} + ascii("RSA-SHA256") +                   // SIG_ALG
    Bytes{0x23, 0x00, 0x16} + ascii("TLS_AES_128_GCM_SHA256");        // CIPHER

TEST(ProxyProtocolV2, HaproxyTlsHeaderParses) {
    ASSERT_EQ(kV2Tls.size(), 128u);
    Header h;
    ASSERT_EQ(parse_bytes(kV2Tls, h), Status::kDone) << error_name(h.error);
    EXPECT_EQ(h.length, 128u);
    ASSERT_TRUE(h.crc32c);
    EXPECT_EQ(*h.crc32c, 0xC80CF64Eu);
    EXPECT_EQ(sv(h.alpn), "h2");
    EXPECT_EQ(sv(h.authority), "example.com");
    EXPECT_FALSE(h.unique_id);
    EXPECT_FALSE(h.netns);
    ASSERT_TRUE(h.ssl);
    EXPECT_EQ(h.ssl_client, kClientSsl | kClientCertConn | kClientCertSess);
    EXPECT_EQ(h.ssl_verify, 0u);
    EXPECT_EQ(sv(h.ssl_version), "TLSv1.3");
    EXPECT_EQ(sv(h.ssl_cn), "alice");
    EXPECT_EQ(sv(h.ssl_key_alg), "RSA2048");
    EXPECT_EQ(sv(h.ssl_sig_alg), "RSA-SHA256");
    EXPECT_EQ(sv(h.ssl_cipher), "TLS_AES_128_GCM_SHA256");
    // The views point into the buffer, not into a copy.
    EXPECT_EQ(reinterpret_cast<const uint8_t*>(h.alpn->data()), kV2Tls.data() + 38);
    expect_split_everywhere(kV2Tls);
}

TEST(ProxyProtocolV2, WriterMatchesTheHandWrittenHaproxyHeader) {
    TlsInfo tls;
    tls.version = "TLSv1.3";
    tls.cipher = "TLS_AES_128_GCM_SHA256";
    tls.cn = "alice";
    tls.sig_alg = "RSA-SHA256";
    tls.key_alg = "RSA2048";
    tls.cert_conn = true;
    tls.cert_sess = true;
    V2Tlvs t;
    t.alpn = "h2";
    t.authority = "example.com";
    t.tls = &tls;
    t.crc32c = true;
    const Endpoints e{0xC0A80001, 56324, 0xC0A8000B, 443};
    uint8_t buf[256];
    const size_t n = write_v2(buf, sizeof(buf), e, t);
    ASSERT_EQ(n, kV2Tls.size());
    EXPECT_EQ(Bytes(buf, buf + n), kV2Tls);
    // One byte short of room writes nothing.
    EXPECT_EQ(write_v2(buf, kV2Tls.size() - 1, e, t), 0u);
}

TEST(ProxyProtocolV2, PlainTcpWritesNoTlvs) {
    uint8_t buf[64];
    const size_t n = write_v2(buf, sizeof(buf), Endpoints{0xC0A80001, 56324, 0xC0A8000B, 443}, {});
    ASSERT_EQ(n, 28u);
    EXPECT_EQ(Bytes(buf, buf + n), kV2Tcp4);
    EXPECT_EQ(write_v2(buf, 27, Endpoints{}, {}), 0u);
}

TEST(ProxyProtocolV2, OtherTlvsAreReadAndCustomOnesWalked) {
    const Bytes b = kSig + Bytes{0x21, 0x11, 0x00, 0x29,  // len 41
                                 10, 0, 0, 1, 10, 0, 0, 2, 0x00, 0x01, 0x00, 0x02} +
                    Bytes{0x04, 0x00, 0x02, 0xFF, 0xFF} +             // NOOP
                    Bytes{0x05, 0x00, 0x03, 0x01, 0x02, 0x03} +       // UNIQUE_ID
                    Bytes{0x30, 0x00, 0x04} + ascii("blue") +         // NETNS
                    Bytes{0xE0, 0x00, 0x02, 0xAB, 0xCD} +             // custom
                    Bytes{0x01, 0x00, 0x00} +                         // empty ALPN
                    Bytes{0x04, 0x00, 0x00};                          // empty NOOP
    Header h;
    ASSERT_EQ(parse_bytes(b, h), Status::kDone) << error_name(h.error);
    EXPECT_EQ(h.noops, 2u);
    EXPECT_EQ(sv(h.unique_id), std::string_view("\x01\x02\x03", 3));
    EXPECT_EQ(sv(h.netns), "blue");
    ASSERT_TRUE(h.alpn);  // sent, and empty
    EXPECT_TRUE(h.alpn->empty());
    EXPECT_FALSE(h.ssl);
    std::string_view rest = h.tlvs;
    Tlv tlv;
    std::vector<uint8_t> types;
    std::string_view custom;
    while (next_tlv(rest, tlv)) {
        types.push_back(tlv.type);
        if (tlv.type == 0xE0) custom = tlv.value;
    }
    EXPECT_EQ(types, (std::vector<uint8_t>{0x04, 0x05, 0x30, 0xE0, 0x01, 0x04}));
    EXPECT_EQ(custom, "\xAB\xCD");
    EXPECT_TRUE(rest.empty());
    expect_split_everywhere(b);
}

TEST(ProxyProtocolV2, SslSubTlvsOfAnEmptySslTlv) {
    // HAProxy with send-proxy-v2-ssl for a plain client: client 0, no subs.
    const Bytes b = kV2Tcp4 + Bytes{0x20, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00};
    Bytes fixed = b;
    fixed[15] = 12 + 8;
    Header h;
    ASSERT_EQ(parse_bytes(fixed, h), Status::kDone);
    EXPECT_TRUE(h.ssl);
    EXPECT_EQ(h.ssl_client, 0);
    EXPECT_FALSE(h.ssl_version);
    // A verify failure is carried as sent; unknown sub-TLVs are skipped.
    Bytes v = kV2Tcp4 + Bytes{0x20, 0x00, 0x0A, 0x05, 0x00, 0x00, 0x00, 0x15,
                              0x2F, 0x00, 0x02, 0x01, 0x02};
    v[15] = 12 + 13;
    ASSERT_EQ(parse_bytes(v, h), Status::kDone) << error_name(h.error);
    EXPECT_EQ(h.ssl_client, kClientSsl | kClientCertSess);
    EXPECT_EQ(h.ssl_verify, 21u);
}

TEST(ProxyProtocolV2, SplitAtEveryOffset) {
    expect_split_everywhere(kV2Tcp4);
    expect_split_everywhere(kSig + Bytes{0x20, 0x00, 0x00, 0x00});
}

// Header with TLV bytes T after the TCP4 addresses, the length set.
Bytes with_tlvs(const Bytes& t) {
    Bytes b = kV2Tcp4 + t;
    const size_t len = b.size() - kV2FixedLen;
    b[14] = static_cast<uint8_t>(len >> 8);
    b[15] = static_cast<uint8_t>(len);
    return b;
}

TEST(ProxyProtocolV2, BadFixedPartIsRefused) {
    for (size_t i = 0; i < 12; ++i) {
        Bytes b = kV2Tcp4;
        b[i] ^= 0x40;
        EXPECT_EQ(parse_error(b), Error::kNotProxy) << i;
    }
    for (uint8_t ver : {0x01, 0x11, 0x31, 0xF1}) {
        Bytes b = kV2Tcp4;
        b[12] = ver;
        EXPECT_EQ(parse_error(b), Error::kV2Version) << int(ver);
    }
    for (uint8_t cmd : {0x22, 0x2F}) {
        Bytes b = kV2Tcp4;
        b[12] = cmd;
        EXPECT_EQ(parse_error(b), Error::kV2Command) << int(cmd);
    }
    for (uint8_t fam : {0x41, 0xF1, 0x13, 0x1F}) {
        Bytes b = kV2Tcp4;
        b[13] = fam;
        EXPECT_EQ(parse_error(b), Error::kV2Family) << int(fam);
    }
    // They are refused as soon as the byte arrives.
    Bytes b = kV2Tcp4;
    b[12] = 0x31;
    Header h;
    EXPECT_EQ(parse(b.data(), 13, h), Status::kInvalid);
    EXPECT_EQ(parse(b.data(), 12, h), Status::kNeedMore);
}

TEST(ProxyProtocolV2, LengthShorterThanTheAddressesIsRefused) {
    Bytes b = kV2Tcp4;
    b[15] = 11;
    EXPECT_EQ(parse_error(Bytes(b.begin(), b.end() - 1)), Error::kV2ShortAddress);
    Bytes six = kSig + Bytes{0x21, 0x21, 0x00, 0x0C} + Bytes(12, 0);
    EXPECT_EQ(parse_error(six), Error::kV2ShortAddress);
    Bytes unx = kSig + Bytes{0x21, 0x31, 0x00, 0x24} + Bytes(36, 0);
    EXPECT_EQ(parse_error(unx), Error::kV2ShortAddress);
}

TEST(ProxyProtocolV2, ShortInputNeedsMore) {
    Header h;
    EXPECT_EQ(parse(kV2Tcp4.data(), 15, h), Status::kNeedMore);
    EXPECT_EQ(parse(kV2Tcp4.data(), 20, h), Status::kNeedMore);
    // A length promising more than was sent keeps waiting...
    Bytes b = kV2Tcp4;
    b[15] = 40;
    EXPECT_EQ(parse_bytes(b, h), Status::kNeedMore);
    // ...until the caller's buffer is full.
    EXPECT_EQ(parse_bytes(b, h, b.size()), Status::kInvalid);
    EXPECT_EQ(h.error, Error::kTooLong);
}

TEST(ProxyProtocolV2, HeaderOverTheCapIsTooLong) {
    Bytes b = kSig + Bytes{0x21, 0x11, 0xFF, 0xFF};
    EXPECT_EQ(parse_error(b), Error::kTooLong);
    Header h;
    EXPECT_EQ(parse_bytes(b, h, 16 + 65535), Status::kNeedMore);
    b[14] = 0x0F;
    b[15] = 0xF0;  // 16 + 4080 = 4096 fits the default cap
    EXPECT_EQ(parse_bytes(b, h), Status::kNeedMore);
    b[15] = 0xF1;
    EXPECT_EQ(parse_error(b), Error::kTooLong);
}

TEST(ProxyProtocolV2, LyingTlvLengthsAreRefused) {
    // A TLV longer than what is left of the header.
    EXPECT_EQ(parse_error(with_tlvs({0x01, 0x00, 0x03, 'h', '2'})), Error::kV2Tlv);
    EXPECT_EQ(parse_error(with_tlvs({0xE0, 0xFF, 0xFF, 0x00})), Error::kV2Tlv);
    // Less than a TLV header at the end.
    EXPECT_EQ(parse_error(with_tlvs({0x01, 0x00})), Error::kV2Tlv);
    EXPECT_EQ(parse_error(with_tlvs({0x04})), Error::kV2Tlv);
    EXPECT_EQ(parse_error(with_tlvs({0x04, 0x00, 0x00, 0x30})), Error::kV2Tlv);
    // The header length cuts a valid TLV short.
    Bytes b = with_tlvs({0x01, 0x00, 0x02, 'h', '2'});
    b[15] -= 1;
    EXPECT_EQ(parse_error(Bytes(b.begin(), b.end() - 1)), Error::kV2Tlv);
}

TEST(ProxyProtocolV2, TlvValueLengthsAreChecked) {
    EXPECT_EQ(parse_error(with_tlvs({0x03, 0x00, 0x03, 0, 0, 0})), Error::kV2TlvLength);
    EXPECT_EQ(parse_error(with_tlvs({0x03, 0x00, 0x05, 0, 0, 0, 0, 0})), Error::kV2TlvLength);
    EXPECT_EQ(parse_error(with_tlvs(Bytes{0x05, 0x00, 129} + Bytes(129, 'u'))),
              Error::kV2TlvLength);
    Header h;
    EXPECT_EQ(parse_bytes(with_tlvs(Bytes{0x05, 0x00, 128} + Bytes(128, 'u')), h), Status::kDone);
    EXPECT_EQ(parse_error(with_tlvs(Bytes{0x02, 0x01, 0x00} + Bytes(256, 'a'))),
              Error::kV2TlvLength);
    EXPECT_EQ(parse_bytes(with_tlvs(Bytes{0x02, 0x00, 0xFF} + Bytes(255, 'a')), h), Status::kDone);
}

TEST(ProxyProtocolV2, DuplicateTlvsAreRefused) {
    EXPECT_EQ(parse_error(with_tlvs({0x01, 0x00, 0x01, 'a', 0x01, 0x00, 0x01, 'b'})),
              Error::kV2DuplicateTlv);
    EXPECT_EQ(parse_error(with_tlvs({0x02, 0x00, 0x00, 0x02, 0x00, 0x00})), Error::kV2DuplicateTlv);
    EXPECT_EQ(parse_error(with_tlvs({0x30, 0x00, 0x00, 0x30, 0x00, 0x00})), Error::kV2DuplicateTlv);
    EXPECT_EQ(parse_error(with_tlvs({0x20, 0x00, 0x05, 1, 0, 0, 0, 0, 0x20, 0x00, 0x05, 1, 0, 0, 0,
                                     0})),
              Error::kV2DuplicateTlv);
    EXPECT_EQ(parse_error(with_tlvs({0x20, 0x00, 0x0B, 1, 0, 0, 0, 0, 0x21, 0x00, 0x00, 0x21, 0x00,
                                     0x00})),
              Error::kV2DuplicateTlv);
    // Unregistered ones may repeat.
    Header h;
    EXPECT_EQ(parse_bytes(with_tlvs({0xE1, 0x00, 0x00, 0xE1, 0x00, 0x00}), h), Status::kDone);
}

TEST(ProxyProtocolV2, MalformedSslTlvIsRefused) {
    EXPECT_EQ(parse_error(with_tlvs({0x20, 0x00, 0x04, 1, 0, 0, 0})), Error::kV2Ssl);
    EXPECT_EQ(parse_error(with_tlvs({0x20, 0x00, 0x00})), Error::kV2Ssl);
    // A sub-TLV running past the SSL TLV (though not past the header).
    EXPECT_EQ(parse_error(with_tlvs({0x20, 0x00, 0x09, 1, 0, 0, 0, 0, 0x21, 0x00, 0x02, 'T',
                                     0x04, 0x00, 0x00})),
              Error::kV2Ssl);
    EXPECT_EQ(parse_error(with_tlvs({0x20, 0x00, 0x07, 1, 0, 0, 0, 0, 0x21, 0x00})), Error::kV2Ssl);
}

TEST(ProxyProtocolV2, ChecksumIsVerified) {
    // Any changed bit after the fixed part breaks either the layout or the
    // checksum; a changed value byte is a checksum failure.
    for (size_t i = 16; i < kV2Tls.size(); ++i) {
        Bytes b = kV2Tls;
        b[i] ^= 0x01;
        Header h;
        EXPECT_EQ(parse_bytes(b, h), Status::kInvalid) << i;
    }
    Bytes b = kV2Tls;
    b[38] ^= 0x20;  // "h2" -> "H2"
    EXPECT_EQ(parse_error(b), Error::kV2Checksum);
    b = kV2Tls;
    b[16] = 10;  // the source address
    EXPECT_EQ(parse_error(b), Error::kV2Checksum);
}

// ---- round trips ----

TEST(ProxyProtocolRoundTrip, V1) {
    const Endpoints cases[] = {
        {0xC0A80001, 56324, 0xC0A8000B, 443},
        {0, 0, 0, 0},
        {0xFFFFFFFF, 65535, 0xFFFFFFFF, 65535},
        {0x0A000001, 1, 0x7F000001, 10},
    };
    for (const Endpoints& e : cases) {
        uint8_t buf[kV1Tcp4MaxLen];
        const size_t n = write_v1(buf, sizeof(buf), e);
        ASSERT_GT(n, 0u);
        Header h;
        ASSERT_EQ(parse(buf, n, h), Status::kDone);
        EXPECT_EQ(h.length, n);
        EXPECT_EQ(h.src.ip4, e.src_ip);
        EXPECT_EQ(h.src.port, e.src_port);
        EXPECT_EQ(h.dst.ip4, e.dst_ip);
        EXPECT_EQ(h.dst.port, e.dst_port);
    }
    uint8_t buf[64];
    const size_t n = write_v1(buf, sizeof(buf), {0xC0A80001, 56324, 0xC0A8000B, 443});
    EXPECT_EQ(std::string_view(reinterpret_cast<char*>(buf), n),
              "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    EXPECT_EQ(write_v1(buf, kV1Tcp4MaxLen - 1, {0xFFFFFFFF, 65535, 0xFFFFFFFF, 65535}), 0u);
    EXPECT_EQ(write_v1(buf, kV1Tcp4MaxLen, {0xFFFFFFFF, 65535, 0xFFFFFFFF, 65535}), kV1Tcp4MaxLen);
}

TEST(ProxyProtocolRoundTrip, V2WithEveryTlv) {
    TlsInfo tls;
    tls.version = "TLSv1.2";
    tls.cipher = "ECDHE-RSA-AES128-GCM-SHA256";
    tls.cn = "example.com";
    tls.sig_alg = "RSA-SHA256";
    tls.key_alg = "RSA2048";
    tls.cert_sess = true;  // resumed: a certificate earlier in the session
    tls.verify = 20;
    const std::string unique(128, 'q');
    V2Tlvs t;
    t.alpn = "http/1.1";
    t.authority = "www.example.com";
    t.unique_id = unique;
    t.netns = "ns1";
    t.tls = &tls;
    t.crc32c = true;
    const Endpoints e{0x0A000001, 40000, 0x0A000002, 8443};
    uint8_t buf[512];
    const size_t n = write_v2(buf, sizeof(buf), e, t);
    ASSERT_GT(n, 0u);
    Header h;
    ASSERT_EQ(parse(buf, n, h), Status::kDone) << error_name(h.error);
    EXPECT_EQ(h.length, n);
    EXPECT_EQ(h.version, 2);
    EXPECT_EQ(h.command, Command::kProxy);
    EXPECT_EQ(h.src.ip4, e.src_ip);
    EXPECT_EQ(h.src.port, e.src_port);
    EXPECT_EQ(h.dst.ip4, e.dst_ip);
    EXPECT_EQ(h.dst.port, e.dst_port);
    EXPECT_TRUE(h.crc32c);
    EXPECT_EQ(sv(h.alpn), "http/1.1");
    EXPECT_EQ(sv(h.authority), "www.example.com");
    EXPECT_EQ(sv(h.unique_id), unique);
    EXPECT_EQ(sv(h.netns), "ns1");
    ASSERT_TRUE(h.ssl);
    EXPECT_EQ(h.ssl_client, kClientSsl | kClientCertSess);
    EXPECT_EQ(h.ssl_verify, 20u);
    EXPECT_EQ(sv(h.ssl_version), "TLSv1.2");
    EXPECT_EQ(sv(h.ssl_cipher), "ECDHE-RSA-AES128-GCM-SHA256");
    EXPECT_EQ(sv(h.ssl_cn), "example.com");
    EXPECT_EQ(sv(h.ssl_sig_alg), "RSA-SHA256");
    EXPECT_EQ(sv(h.ssl_key_alg), "RSA2048");
    // HAProxy's order: CRC32C, ALPN, AUTHORITY, UNIQUE_ID, SSL, NETNS.
    std::string_view rest = h.tlvs;
    Tlv tlv;
    std::vector<uint8_t> types;
    while (next_tlv(rest, tlv)) types.push_back(tlv.type);
    EXPECT_EQ(types, (std::vector<uint8_t>{0x03, 0x01, 0x02, 0x05, 0x20, 0x30}));
}

TEST(ProxyProtocolRoundTrip, TlsWithoutClientCertificate) {
    TlsInfo tls;
    tls.version = "TLSv1.3";
    tls.cipher = "TLS_AES_128_GCM_SHA256";
    tls.verify = 19;  // ignored: no certificate was presented
    V2Tlvs t;
    t.authority = "example.com";
    t.tls = &tls;
    uint8_t buf[256];
    const size_t n = write_v2(buf, sizeof(buf), Endpoints{1, 2, 3, 4}, t);
    Header h;
    ASSERT_EQ(parse(buf, n, h), Status::kDone);
    EXPECT_EQ(h.ssl_client, kClientSsl);
    EXPECT_EQ(h.ssl_verify, 0u);
    EXPECT_FALSE(h.ssl_cn);
    EXPECT_FALSE(h.alpn);
    EXPECT_FALSE(h.crc32c);
    EXPECT_EQ(sv(h.ssl_version), "TLSv1.3");
    // SSL TLV: 5 + VERSION (3 + 7) + CIPHER (3 + 22).
    EXPECT_EQ(n, 28u + 14u + 3u + 40u);
}

TEST(ProxyProtocolRoundTrip, WriterRefusesWhatAReaderWould) {
    uint8_t buf[1024];
    V2Tlvs t;
    const std::string long_id(129, 'x');
    t.unique_id = long_id;
    EXPECT_EQ(write_v2(buf, sizeof(buf), Endpoints{}, t), 0u);
    t = {};
    const std::string long_host(256, 'h');
    t.authority = long_host;
    EXPECT_EQ(write_v2(buf, sizeof(buf), Endpoints{}, t), 0u);
    // The 16-bit length field cannot describe more than 65535 bytes.
    const std::string big(40000, 'a');
    std::vector<uint8_t> huge(100000);
    t = {};
    t.alpn = big;
    t.netns = big;
    EXPECT_EQ(write_v2(huge.data(), huge.size(), Endpoints{}, t), 0u);
    t.netns = {};
    EXPECT_EQ(write_v2(huge.data(), huge.size(), Endpoints{}, t), 28u + 3u + 40000u);
}

// ---- CRC32C ----

TEST(Crc32c, KnownVectors) {
    const std::string_view check = "123456789";
    EXPECT_EQ(crc32c(reinterpret_cast<const uint8_t*>(check.data()), check.size()), 0xE3069283u);
    // RFC 3720 B.4.
    uint8_t b[32];
    std::memset(b, 0, sizeof(b));
    EXPECT_EQ(crc32c(b, sizeof(b)), 0x8A9136AAu);
    std::memset(b, 0xFF, sizeof(b));
    EXPECT_EQ(crc32c(b, sizeof(b)), 0x62A8AB43u);
    for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(i);
    EXPECT_EQ(crc32c(b, sizeof(b)), 0x46DD794Eu);
    for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(31 - i);
    EXPECT_EQ(crc32c(b, sizeof(b)), 0x113FDB5Cu);
    EXPECT_EQ(crc32c(b, 0), 0u);
}

TEST(Crc32c, ContinuesAcrossCalls) {
    const std::string_view s = "123456789";
    const auto* p = reinterpret_cast<const uint8_t*>(s.data());
    for (size_t k = 0; k <= s.size(); ++k) {
        EXPECT_EQ(crc32c(p + k, s.size() - k, crc32c(p, k)), 0xE3069283u) << k;
    }
}

TEST(ProxyProtocol, ErrorNamesAreDistinct) {
    std::vector<std::string> names;
    for (unsigned i = 0; i < kNumErrors; ++i) names.push_back(error_name(static_cast<Error>(i)));
    for (size_t i = 0; i < names.size(); ++i) {
        for (size_t j = i + 1; j < names.size(); ++j) EXPECT_NE(names[i], names[j]);
    }
    EXPECT_STREQ(error_name(Error::kV2Checksum), "v2_checksum");
}

}  // namespace
}  // namespace terminus::dataplane::proxy::pp
