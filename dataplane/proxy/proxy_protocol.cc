#include "dataplane/proxy/proxy_protocol.h"

#include <cstring>

namespace terminus::dataplane::proxy::pp {

namespace {

// 2.2: "\r\n\r\n\0\r\nQUIT\n".
constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";
constexpr size_t kTlvHeaderLen = 3;  // type, length_hi, length_lo
constexpr size_t kSslFixedLen = 5;   // pp2_tlv_ssl: client, verify
constexpr size_t kMaxTlvValue = 0xffff;

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
           static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

std::string_view view(const uint8_t* p, size_t n) {
    return std::string_view(reinterpret_cast<const char*>(p), n);
}

Status fail(Header& out, Error e) {
    out.error = e;
    return Status::kInvalid;
}

// Reflected CRC32C, polynomial 0x1EDC6F41 (0x82F63B78 reversed).
constexpr std::array<uint32_t, 256> make_crc_table() {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

// ---- version 1 (2.1) ----

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A decimal number of at most MAX_DIGITS digits, no leading zero ("0"
// itself is fine: 2.1 forbids "heading zeroes ... to avoid any possible
// confusion with octal numbers"), at most MAX.
bool parse_decimal(std::string_view s, size_t max_digits, uint32_t max, uint32_t& out) {
    if (s.empty() || s.size() > max_digits) return false;
    if (s.size() > 1 && s[0] == '0') return false;
    uint32_t v = 0;
    for (char c : s) {
        if (!is_digit(c)) return false;
        v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v > max) return false;
    out = v;
    return true;
}

// "exactly 4 integers in the range [0..255] ... separated by exactly one
// dot". Host byte order.
bool parse_ip4(std::string_view s, uint32_t& out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        const size_t dot = i < 3 ? s.find('.') : s.size();
        if (dot == std::string_view::npos) return false;
        uint32_t octet;
        if (!parse_decimal(s.substr(0, dot), 3, 255, octet)) return false;
        v = v << 8 | octet;
        s.remove_prefix(i < 3 ? dot + 1 : dot);
    }
    out = v;
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Groups of 1 to 4 hex digits (2.1 says 4; inet_ntop, which HAProxy's
// sender uses, drops their leading zeros), one "::" at most, and the last
// 32 bits may be a dotted quad ("::ffff:192.0.2.1", what inet_ntop writes
// for a mapped address). 128 bits exactly.
bool parse_ip6(std::string_view s, std::array<uint8_t, 16>& out) {
    uint16_t groups[8] = {};
    int n = 0;
    int gap = -1;  // index of the group "::" stands in front of
    size_t i = 0;
    if (s.size() >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    }
    while (i < s.size()) {
        size_t j = i;
        uint32_t v = 0;
        while (j < s.size() && j - i < 5 && hex_value(s[j]) >= 0) {
            v = v << 4 | static_cast<uint32_t>(hex_value(s[j]));
            ++j;
        }
        if (j < s.size() && s[j] == '.') {
            // The dotted quad ends the address and fills two groups.
            uint32_t ip4;
            if (n > 6 || !parse_ip4(s.substr(i), ip4)) return false;
            groups[n++] = static_cast<uint16_t>(ip4 >> 16);
            groups[n++] = static_cast<uint16_t>(ip4);
            i = s.size();
            break;
        }
        if (j == i || j - i > 4 || n == 8) return false;
        groups[n++] = static_cast<uint16_t>(v);
        i = j;
        if (i == s.size()) break;
        if (s[i] != ':') return false;
        ++i;
        if (i < s.size() && s[i] == ':') {
            if (gap >= 0) return false;
            gap = n;
            ++i;
        } else if (i == s.size()) {
            return false;  // a single trailing colon
        }
    }
    if (gap < 0 ? n != 8 : n > 7) return false;
    out = {};
    const int tail = gap < 0 ? 0 : n - gap;  // groups after the "::"
    for (int g = 0; g < n; ++g) {
        const int at = (gap >= 0 && g >= gap) ? 8 - tail + (g - gap) : g;
        out[static_cast<size_t>(2 * at)] = static_cast<uint8_t>(groups[g] >> 8);
        out[static_cast<size_t>(2 * at + 1)] = static_cast<uint8_t>(groups[g]);
    }
    return true;
}

// Whether the protocol field can still become TCP4, TCP6 or UNKNOWN: lets
// "PROXY GET ..." fail without waiting for a CRLF.
bool protocol_possible(std::string_view rest) {
    for (std::string_view tok : {std::string_view("TCP4 "), std::string_view("TCP6 "),
                                 std::string_view("UNKNOWN")}) {
        const size_t m = rest.size() < tok.size() ? rest.size() : tok.size();
        if (rest.substr(0, m) == tok.substr(0, m)) return true;
    }
    return false;
}

Status parse_v1(const uint8_t* p, size_t n, Header& out, size_t max_len) {
    const size_t limit = max_len < kV1MaxLen ? max_len : kV1MaxLen;
    const std::string_view in = view(p, n < limit ? n : limit);
    const size_t m = in.size() < kV1Prefix.size() ? in.size() : kV1Prefix.size();
    if (in.substr(0, m) != kV1Prefix.substr(0, m)) return fail(out, Error::kNotProxy);
    if (in.size() <= kV1Prefix.size()) return Status::kNeedMore;
    if (!protocol_possible(in.substr(kV1Prefix.size()))) return fail(out, Error::kV1Protocol);

    // 2.1: wait for the CRLF before decoding; "must not tolerate a single
    // CR or LF character to end the line".
    size_t eol = std::string_view::npos;
    for (size_t i = kV1Prefix.size(); i < in.size(); ++i) {
        if (in[i] == '\n') return fail(out, Error::kV1Syntax);
        if (in[i] == '\r') {
            if (i + 1 >= limit) return fail(out, Error::kTooLong);
            if (i + 1 >= n) return Status::kNeedMore;
            if (p[i + 1] != '\n') return fail(out, Error::kV1Syntax);
            eol = i;
            break;
        }
    }
    if (eol == std::string_view::npos) {
        return n >= limit ? fail(out, Error::kTooLong) : Status::kNeedMore;
    }

    std::string_view line = in.substr(kV1Prefix.size(), eol - kV1Prefix.size());
    out.version = 1;
    out.command = Command::kProxy;
    out.length = static_cast<uint32_t>(eol + 2);
    if (line.substr(0, 7) == "UNKNOWN") {
        // "the receiver must ignore anything presented before the CRLF".
        if (line.size() > 7 && line[7] != ' ') return fail(out, Error::kV1Protocol);
        return Status::kDone;
    }
    const bool v4 = line.substr(0, 5) == "TCP4 ";
    if (!v4 && line.substr(0, 5) != "TCP6 ") return fail(out, Error::kV1Protocol);
    line.remove_prefix(5);

    // Exactly four fields, exactly one space between them.
    std::string_view f[4];
    for (int i = 0; i < 4; ++i) {
        const size_t sp = i < 3 ? line.find(' ') : line.size();
        if (sp == std::string_view::npos || sp == 0) return fail(out, Error::kV1Syntax);
        f[i] = line.substr(0, sp);
        line.remove_prefix(i < 3 ? sp + 1 : sp);
    }
    if (f[3].find(' ') != std::string_view::npos) return fail(out, Error::kV1Syntax);

    out.transport = Transport::kStream;
    if (v4) {
        out.family = Family::kInet;
        if (!parse_ip4(f[0], out.src.ip4) || !parse_ip4(f[1], out.dst.ip4)) {
            return fail(out, Error::kV1Address);
        }
    } else {
        out.family = Family::kInet6;
        if (!parse_ip6(f[0], out.src.ip6) || !parse_ip6(f[1], out.dst.ip6)) {
            return fail(out, Error::kV1Address);
        }
    }
    uint32_t sport, dport;
    if (!parse_decimal(f[2], 5, 65535, sport) || !parse_decimal(f[3], 5, 65535, dport)) {
        return fail(out, Error::kV1Port);
    }
    out.src.port = static_cast<uint16_t>(sport);
    out.dst.port = static_cast<uint16_t>(dport);
    return Status::kDone;
}

// ---- version 2 (2.2) ----

// Sets SLOT to the value of a TLV that may appear once.
bool set_once(std::optional<std::string_view>& slot, const uint8_t* v, size_t len) {
    if (slot) return false;
    slot = view(v, len);
    return true;
}

// 2.2.6: pp2_tlv_ssl, then its sub-TLVs.
Status parse_ssl(const uint8_t* v, size_t len, Header& out) {
    if (out.ssl) return fail(out, Error::kV2DuplicateTlv);
    if (len < kSslFixedLen) return fail(out, Error::kV2Ssl);
    out.ssl = true;
    out.ssl_client = v[0];
    out.ssl_verify = get32(v + 1);
    size_t off = kSslFixedLen;
    while (off < len) {
        if (len - off < kTlvHeaderLen) return fail(out, Error::kV2Ssl);
        const uint8_t type = v[off];
        const size_t sub_len = get16(v + off + 1);
        if (sub_len > len - off - kTlvHeaderLen) return fail(out, Error::kV2Ssl);
        const uint8_t* sv = v + off + kTlvHeaderLen;
        bool fresh = true;
        switch (type) {
            case kSubtypeSslVersion: fresh = set_once(out.ssl_version, sv, sub_len); break;
            case kSubtypeSslCn: fresh = set_once(out.ssl_cn, sv, sub_len); break;
            case kSubtypeSslCipher: fresh = set_once(out.ssl_cipher, sv, sub_len); break;
            case kSubtypeSslSigAlg: fresh = set_once(out.ssl_sig_alg, sv, sub_len); break;
            case kSubtypeSslKeyAlg: fresh = set_once(out.ssl_key_alg, sv, sub_len); break;
            default: break;  // unregistered: skipped by its length
        }
        if (!fresh) return fail(out, Error::kV2DuplicateTlv);
        off += kTlvHeaderLen + sub_len;
    }
    return Status::kDone;
}

Status parse_tlvs(const uint8_t* p, size_t off, size_t total, Header& out) {
    out.tlvs = view(p + off, total - off);
    size_t crc_at = 0;  // offset of the CRC32C value, 0: none
    while (off < total) {
        if (total - off < kTlvHeaderLen) return fail(out, Error::kV2Tlv);
        const uint8_t type = p[off];
        const size_t len = get16(p + off + 1);
        if (len > total - off - kTlvHeaderLen) return fail(out, Error::kV2Tlv);
        const uint8_t* v = p + off + kTlvHeaderLen;
        bool fresh = true;
        switch (type) {
            case kTypeAlpn: fresh = set_once(out.alpn, v, len); break;
            case kTypeAuthority:
                if (len > kMaxAuthorityLen) return fail(out, Error::kV2TlvLength);
                fresh = set_once(out.authority, v, len);
                break;
            case kTypeCrc32c:
                if (len != 4) return fail(out, Error::kV2TlvLength);
                // Two checksums would each cover the other: which one holds?
                fresh = !out.crc32c;
                out.crc32c = get32(v);
                crc_at = off + kTlvHeaderLen;
                break;
            case kTypeNoop: ++out.noops; break;
            case kTypeUniqueId:
                if (len > kMaxUniqueIdLen) return fail(out, Error::kV2TlvLength);
                fresh = set_once(out.unique_id, v, len);
                break;
            case kTypeSsl:
                if (parse_ssl(v, len, out) != Status::kDone) return Status::kInvalid;
                break;
            case kTypeNetns: fresh = set_once(out.netns, v, len); break;
            default: break;  // custom, experimental or unregistered: skipped
        }
        if (!fresh) return fail(out, Error::kV2DuplicateTlv);
        off += kTlvHeaderLen + len;
    }
    if (out.crc32c) {
        // 2.2.3: the checksum of the whole header with its own field zeroed.
        static constexpr uint8_t kZero[4] = {};
        uint32_t c = crc32c(p, crc_at);
        c = crc32c(kZero, sizeof(kZero), c);
        c = crc32c(p + crc_at + 4, total - crc_at - 4, c);
        if (c != *out.crc32c) return fail(out, Error::kV2Checksum);
    }
    return Status::kDone;
}

Status parse_v2(const uint8_t* p, size_t n, Header& out, size_t max_len) {
    const size_t m = n < sizeof(kV2Signature) ? n : sizeof(kV2Signature);
    if (std::memcmp(p, kV2Signature, m) != 0) return fail(out, Error::kNotProxy);
    // Each byte is judged as soon as it arrives.
    if (n > 12 && p[12] >> 4 != 2) return fail(out, Error::kV2Version);
    if (n > 12 && (p[12] & 0xF) > 1) return fail(out, Error::kV2Command);
    const bool proxy = n > 12 && (p[12] & 0xF) == 1;
    // A LOCAL header's family "is ignored" (2.2); PROXY's must be assigned.
    if (n > 13 && proxy && (p[13] >> 4 > 3 || (p[13] & 0xF) > 2)) {
        return fail(out, Error::kV2Family);
    }
    if (n < kV2FixedLen) return Status::kNeedMore;

    const size_t len = get16(p + 14);
    const size_t total = kV2FixedLen + len;
    if (total > max_len) return fail(out, Error::kTooLong);
    const auto family = static_cast<Family>(p[13] >> 4);
    const auto transport = static_cast<Transport>(p[13] & 0xF);
    // An unspecified family or transport leaves the block's layout unknown:
    // "the receiver should ignore address information".
    const bool known = proxy && family != Family::kUnspec && transport != Transport::kUnspec;
    size_t addr_len = 0;
    if (known) {
        addr_len = family == Family::kInet    ? kV2Inet4AddrLen
                   : family == Family::kInet6 ? kV2Inet6AddrLen
                                              : kV2UnixAddrLen;
        if (len < addr_len) return fail(out, Error::kV2ShortAddress);
    }
    if (n < total) return Status::kNeedMore;

    out.version = 2;
    out.command = proxy ? Command::kProxy : Command::kLocal;
    out.length = static_cast<uint32_t>(total);
    if (!known) return Status::kDone;
    out.family = family;
    out.transport = transport;
    const uint8_t* a = p + kV2FixedLen;
    switch (family) {
        case Family::kInet:
            out.src.ip4 = get32(a);
            out.dst.ip4 = get32(a + 4);
            out.src.port = get16(a + 8);
            out.dst.port = get16(a + 10);
            break;
        case Family::kInet6:
            std::memcpy(out.src.ip6.data(), a, 16);
            std::memcpy(out.dst.ip6.data(), a + 16, 16);
            out.src.port = get16(a + 32);
            out.dst.port = get16(a + 34);
            break;
        default:
            out.src.unix_path = view(a, kV2UnixAddrLen / 2);
            out.dst.unix_path = view(a + kV2UnixAddrLen / 2, kV2UnixAddrLen / 2);
            break;
    }
    return parse_tlvs(p, kV2FixedLen + addr_len, total, out);
}

// ---- writing ----

// Decimal without leading zeros; returns the digits written.
size_t put_decimal(char* p, uint32_t v) {
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; ++i) p[i] = tmp[n - 1 - i];
    return n;
}

size_t put_ip4(char* p, uint32_t ip) {
    size_t n = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        n += put_decimal(p + n, (ip >> shift) & 0xff);
        if (shift != 0) p[n++] = '.';
    }
    return n;
}

size_t tlv_size(std::string_view v) { return v.empty() ? 0 : kTlvHeaderLen + v.size(); }

uint8_t* put_tlv(uint8_t* p, uint8_t type, std::string_view v) {
    if (v.empty()) return p;
    p[0] = type;
    put16(p + 1, static_cast<uint16_t>(v.size()));
    std::memcpy(p + kTlvHeaderLen, v.data(), v.size());
    return p + kTlvHeaderLen + v.size();
}

}  // namespace

const char* error_name(Error e) {
    switch (e) {
#define TERMINUS_X(name, str) \
    case Error::name: return str;
        TERMINUS_PP_ERRORS(TERMINUS_X)
#undef TERMINUS_X
    }
    return "?";
}

uint32_t crc32c(const uint8_t* p, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) crc = kCrcTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

Status parse(const uint8_t* p, size_t n, Header& out, size_t max_len) {
    out = Header{};
    if (n == 0) return Status::kNeedMore;
    Status s;
    if (p[0] == 'P') {
        s = parse_v1(p, n, out, max_len);
    } else if (p[0] == kV2Signature[0]) {
        s = parse_v2(p, n, out, max_len);
    } else {
        return fail(out, Error::kNotProxy);
    }
    // The caller cannot give us more than its buffer holds.
    if (s == Status::kNeedMore && n >= max_len) return fail(out, Error::kTooLong);
    return s;
}

bool next_tlv(std::string_view& rest, Tlv& out) {
    if (rest.size() < kTlvHeaderLen) return false;
    const auto* p = reinterpret_cast<const uint8_t*>(rest.data());
    const size_t len = get16(p + 1);
    if (len > rest.size() - kTlvHeaderLen) return false;
    out.type = p[0];
    out.value = rest.substr(kTlvHeaderLen, len);
    rest.remove_prefix(kTlvHeaderLen + len);
    return true;
}

size_t write_v1(uint8_t* buf, size_t cap, const Endpoints& e) {
    char line[kV1Tcp4MaxLen];
    size_t n = 0;
    std::memcpy(line, "PROXY TCP4 ", 11);
    n += 11;
    n += put_ip4(line + n, e.src_ip);
    line[n++] = ' ';
    n += put_ip4(line + n, e.dst_ip);
    line[n++] = ' ';
    n += put_decimal(line + n, e.src_port);
    line[n++] = ' ';
    n += put_decimal(line + n, e.dst_port);
    line[n++] = '\r';
    line[n++] = '\n';
    if (n > cap) return 0;
    std::memcpy(buf, line, n);
    return n;
}

size_t write_v2(uint8_t* buf, size_t cap, const Endpoints& e, const V2Tlvs& t) {
    // Sizes first: nothing is written unless all of it fits.
    const std::string_view values[] = {t.alpn, t.authority, t.unique_id, t.netns};
    for (std::string_view v : values) {
        if (v.size() > kMaxTlvValue) return 0;
    }
    if (t.unique_id.size() > kMaxUniqueIdLen || t.authority.size() > kMaxAuthorityLen) return 0;
    size_t ssl_len = 0;
    if (t.tls) {
        const TlsInfo& s = *t.tls;
        for (std::string_view v : {s.version, s.cn, s.key_alg, s.sig_alg, s.cipher}) {
            if (v.size() > kMaxTlvValue) return 0;
            ssl_len += tlv_size(v);
        }
        ssl_len += kSslFixedLen;
        if (ssl_len > kMaxTlvValue) return 0;
    }
    size_t total = kV2FixedLen + kV2Inet4AddrLen;
    if (t.crc32c) total += kTlvHeaderLen + 4;
    for (std::string_view v : values) total += tlv_size(v);
    if (t.tls) total += kTlvHeaderLen + ssl_len;
    if (total - kV2FixedLen > kMaxTlvValue || total > cap) return 0;

    std::memcpy(buf, kV2Signature, sizeof(kV2Signature));
    buf[12] = 0x21;  // version 2, PROXY
    buf[13] = 0x11;  // AF_INET, STREAM
    put16(buf + 14, static_cast<uint16_t>(total - kV2FixedLen));
    put32(buf + 16, e.src_ip);
    put32(buf + 20, e.dst_ip);
    put16(buf + 24, e.src_port);
    put16(buf + 26, e.dst_port);
    uint8_t* p = buf + kV2FixedLen + kV2Inet4AddrLen;
    uint8_t* crc_field = nullptr;
    if (t.crc32c) {
        p[0] = kTypeCrc32c;
        put16(p + 1, 4);
        crc_field = p + kTlvHeaderLen;
        put32(crc_field, 0);  // 2.2.3: zero while the checksum is computed
        p += kTlvHeaderLen + 4;
    }
    p = put_tlv(p, kTypeAlpn, t.alpn);
    p = put_tlv(p, kTypeAuthority, t.authority);
    p = put_tlv(p, kTypeUniqueId, t.unique_id);
    if (t.tls) {
        const TlsInfo& s = *t.tls;
        uint8_t client = kClientSsl;
        uint32_t verify = 0;
        // HAProxy: CERT_SESS whenever the session saw a certificate, CERT_CONN
        // on top when it came on this connection; verify only then.
        if (s.cert_conn || s.cert_sess) {
            client |= kClientCertSess;
            verify = s.verify;
        }
        if (s.cert_conn) client |= kClientCertConn;
        p[0] = kTypeSsl;
        put16(p + 1, static_cast<uint16_t>(ssl_len));
        p[3] = client;
        put32(p + 4, verify);
        p += kTlvHeaderLen + kSslFixedLen;
        p = put_tlv(p, kSubtypeSslVersion, s.version);
        p = put_tlv(p, kSubtypeSslCn, s.cn);
        p = put_tlv(p, kSubtypeSslKeyAlg, s.key_alg);
        p = put_tlv(p, kSubtypeSslSigAlg, s.sig_alg);
        p = put_tlv(p, kSubtypeSslCipher, s.cipher);
    }
    p = put_tlv(p, kTypeNetns, t.netns);
    if (crc_field) put32(crc_field, crc32c(buf, total));
    return total;
}

}  // namespace terminus::dataplane::proxy::pp
