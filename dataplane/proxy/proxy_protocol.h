// The PROXY protocol, versions 1 and 2 (HAProxy's doc/proxy-protocol.txt,
// 2020/03/05): reading the header a trusted proxy in front of us sends
// ("listen ... proxy_protocol") and writing ours towards an upstream
// ("proxy_protocol on"). Pure byte work: no DPDK, no allocation, no
// exceptions; what is parsed points into the caller's buffer. Private to
// dataplane/.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace terminus::dataplane::proxy::pp {

// 2.1: the longest v1 line, CRLF included ("PROXY UNKNOWN" with two full
// IPv6 addresses and ports).
constexpr size_t kV1MaxLen = 107;
// 2.1: the longest TCP4 line we write, "PROXY TCP4 255.255.255.255
// 255.255.255.255 65535 65535\r\n".
constexpr size_t kV1Tcp4MaxLen = 56;
// 2.2: signature, ver/cmd, fam and the 16-bit length that follows.
constexpr size_t kV2FixedLen = 16;
constexpr size_t kV2Inet4AddrLen = 12;
constexpr size_t kV2Inet6AddrLen = 36;
constexpr size_t kV2UnixAddrLen = 216;
// The default cap on a whole header: what the caller's preread buffer
// holds. v2's length field allows 16 + 65535 bytes; nginx refuses more
// than 4096 (NGX_PROXY_PROTOCOL_MAX_HEADER) and so do we unless the caller
// passes another cap, so a peer cannot make a connection wait for 64 KiB
// that will never fit.
constexpr size_t kMaxHeaderLen = 4096;
// 2.2.5: "an opaque byte sequence of up to 128 bytes".
constexpr size_t kMaxUniqueIdLen = 128;
// HAProxy refuses longer AUTHORITY values (HA_PP2_AUTHORITY_MAX); a host
// name never is.
constexpr size_t kMaxAuthorityLen = 255;

// 2.2: the registered TLV types, and the SSL TLV's sub-types.
enum TlvType : uint8_t {
    kTypeAlpn = 0x01,
    kTypeAuthority = 0x02,
    kTypeCrc32c = 0x03,
    kTypeNoop = 0x04,
    kTypeUniqueId = 0x05,
    kTypeSsl = 0x20,
    kSubtypeSslVersion = 0x21,
    kSubtypeSslCn = 0x22,
    kSubtypeSslCipher = 0x23,
    kSubtypeSslSigAlg = 0x24,
    kSubtypeSslKeyAlg = 0x25,
    kTypeNetns = 0x30,
};

// 2.2.6: the bits of pp2_tlv_ssl's <client> field.
constexpr uint8_t kClientSsl = 0x01;
constexpr uint8_t kClientCertConn = 0x02;
constexpr uint8_t kClientCertSess = 0x04;

enum class Status : uint8_t {
    kNeedMore,  // a valid header may still follow: read more and call again
    kDone,      // Header::length bytes are the header; the payload follows
    kInvalid,   // Header::error says why; close the connection (2.1, 2.2)
};

// Why a header was refused: one list with the names counters and logs use.
#define TERMINUS_PP_ERRORS(X)                                                      \
    X(kNone, "none")                                                               \
    X(kNotProxy, "not_proxy")            /* neither "PROXY " nor the v2 signature */ \
    X(kTooLong, "too_long")              /* no CRLF in 107 bytes, or over the cap */ \
    X(kV1Protocol, "v1_protocol")        /* not TCP4, TCP6 or UNKNOWN */           \
    X(kV1Syntax, "v1_syntax")            /* spaces, CR or LF where they may not be */ \
    X(kV1Address, "v1_address")          /* not a canonical address of the family */ \
    X(kV1Port, "v1_port")                /* leading zero, not a number, > 65535 */  \
    X(kV2Version, "v2_version")          /* version nibble other than 2 */         \
    X(kV2Command, "v2_command")          /* neither LOCAL nor PROXY */             \
    X(kV2Family, "v2_family")            /* unassigned family or transport */      \
    X(kV2ShortAddress, "v2_short_address") /* length below the family's addresses */ \
    X(kV2Tlv, "v2_tlv")                  /* a TLV that runs past the header */     \
    X(kV2TlvLength, "v2_tlv_length")     /* CRC32C not 4, UNIQUE_ID/AUTHORITY too long */ \
    X(kV2DuplicateTlv, "v2_duplicate_tlv") /* the same known TLV twice: ambiguous */ \
    X(kV2Ssl, "v2_ssl")                  /* SSL TLV under 5 bytes or sub-TLV overrun */ \
    X(kV2Checksum, "v2_checksum")        /* CRC32C does not match (2.2.3) */

enum class Error : uint8_t {
#define TERMINUS_X(name, str) name,
    TERMINUS_PP_ERRORS(TERMINUS_X)
#undef TERMINUS_X
};
constexpr unsigned kNumErrors = 0
#define TERMINUS_X(name, str) +1
    TERMINUS_PP_ERRORS(TERMINUS_X)
#undef TERMINUS_X
    ;
const char* error_name(Error e);

enum class Command : uint8_t {
    kLocal = 0,  // v2 LOCAL: the sender's own connection (health checks)
    kProxy = 1,  // relayed: the addresses below are the client's
};
// 2.2, the 14th byte's high nibble; v1 TCP4 is kInet, TCP6 kInet6 and
// UNKNOWN kUnspec.
enum class Family : uint8_t { kUnspec = 0, kInet = 1, kInet6 = 2, kUnix = 3 };
// Its low nibble; v1 is always kStream (kUnspec for UNKNOWN).
enum class Transport : uint8_t { kUnspec = 0, kStream = 1, kDgram = 2 };

// One side of the relayed connection. Only the member of the header's
// family is set.
struct Endpoint {
    uint32_t ip4 = 0;                // kInet, host byte order
    std::array<uint8_t, 16> ip6{};   // kInet6, network byte order
    std::string_view unix_path;      // kUnix: the 108 bytes as sent, NULs included
    uint16_t port = 0;               // kInet and kInet6, host byte order
};

// A parsed header. For LOCAL and for family/transport kUnspec (v2 PROXY
// with an unspecified family, v1 UNKNOWN) the receiver uses the real
// connection's addresses (2.1, 2.2): src/dst are left empty, and a v2
// address block and whatever follows it are skipped without being read,
// since their layout is unknown. TLVs are read only for PROXY with an
// assigned family and transport.
struct Header {
    uint32_t length = 0;  // bytes to consume: the whole line or 16 + len
    uint8_t version = 0;  // 1 or 2
    Command command = Command::kLocal;
    Family family = Family::kUnspec;
    Transport transport = Transport::kUnspec;
    Endpoint src;
    Endpoint dst;

    // v2 TLVs (2.2.1-2.2.7). Present ones point into the parsed buffer;
    // an empty value that was sent is an engaged, empty view.
    std::string_view tlvs;  // every TLV, for next_tlv() (custom types 0xE0..)
    std::optional<std::string_view> alpn;
    std::optional<std::string_view> authority;
    std::optional<uint32_t> crc32c;  // as sent; parse() already verified it
    std::optional<std::string_view> unique_id;
    std::optional<std::string_view> netns;
    unsigned noops = 0;  // PP2_TYPE_NOOP TLVs skipped

    bool ssl = false;         // PP2_TYPE_SSL was present
    uint8_t ssl_client = 0;   // kClientSsl | kClientCertConn | kClientCertSess
    uint32_t ssl_verify = 0;  // 0: a client certificate verified (2.2.6)
    std::optional<std::string_view> ssl_version;
    std::optional<std::string_view> ssl_cn;
    std::optional<std::string_view> ssl_cipher;
    std::optional<std::string_view> ssl_sig_alg;
    std::optional<std::string_view> ssl_key_alg;

    Error error = Error::kNone;  // why, when parse() said kInvalid
};

// Parses the header at the start of the N bytes received so far at P.
// Call again with the same start and more bytes after kNeedMore; the
// answer for a prefix never contradicts the answer for the whole (a
// prefix is kInvalid only if every continuation is).
//   kNeedMore: no header yet, and nothing seen so far is wrong.
//   kDone:     OUT describes the header; OUT.length bytes are to be
//              consumed, and any CRC32C TLV matched.
//   kInvalid:  OUT.error says why.
// MAX_LEN is the caller's buffer: a v2 header longer than that, or a v1
// line with no CRLF within min(MAX_LEN, kV1MaxLen) bytes, is kTooLong.
Status parse(const uint8_t* p, size_t n, Header& out, size_t max_len = kMaxHeaderLen);

struct Tlv {
    uint8_t type = 0;
    std::string_view value;
};
// Takes the first TLV off REST (Header::tlvs, or an SSL TLV's sub-TLVs).
// Returns false when REST is empty, or holds less than a whole TLV (which
// parse() has already refused).
bool next_tlv(std::string_view& rest, Tlv& out);

// What we write towards an upstream: the client's connection, IPv4 only
// (the dataplane's scope). Host byte order.
struct Endpoints {
    uint32_t src_ip = 0;
    uint16_t src_port = 0;
    uint32_t dst_ip = 0;
    uint16_t dst_port = 0;
};

// The client side's TLS session, for PP2_TYPE_SSL. Empty views are not
// sent.
struct TlsInfo {
    std::string_view version;  // SSL_get_version(): "TLSv1.3"
    std::string_view cipher;   // SSL_get_cipher_name(): "TLS_AES_128_GCM_SHA256"
    std::string_view cn;       // the client certificate's subject CN
    std::string_view sig_alg;  // our certificate's signature algorithm, "RSA-SHA256"
    std::string_view key_alg;  // our certificate's key, "RSA2048", "EC256"
    bool cert_conn = false;    // the client sent a certificate on this connection
    bool cert_sess = false;    // ... at some point of its (resumed) TLS session
    uint32_t verify = 0;       // SSL_get_verify_result(); 0 is X509_V_OK
};

// The v2 TLVs to send. Empty views are not sent.
struct V2Tlvs {
    std::string_view alpn;       // the ALPN protocol chosen with the client
    std::string_view authority;  // the client's SNI
    std::string_view unique_id;  // at most kMaxUniqueIdLen bytes
    std::string_view netns;
    const TlsInfo* tls = nullptr;  // null: the client spoke plain TCP, no SSL TLV
    bool crc32c = false;           // add a PP2_TYPE_CRC32C over the header
};

// Writes "PROXY TCP4 SRC DST SPORT DPORT\r\n" into BUF (CAP bytes; it
// needs at most kV1Tcp4MaxLen). Returns the length, or 0 if it does not
// fit.
size_t write_v1(uint8_t* buf, size_t cap, const Endpoints& e);

// Writes a v2 PROXY header for TCP over IPv4 (fam 0x11) with the TLVs in
// HAProxy's order and shape (make_proxy_line_v2): CRC32C, ALPN, AUTHORITY,
// UNIQUE_ID, SSL (sub-TLVs VERSION, CN, KEY_ALG, SIG_ALG, CIPHER), NETNS.
// The SSL TLV's <client> has kClientSsl, and kClientCertSess (plus
// kClientCertConn when it came on this connection) when the client
// presented a certificate; <verify> carries TlsInfo::verify then and is 0
// otherwise, as HAProxy sends it. Returns the length, or 0 if it does not
// fit in CAP or a value is longer than a TLV may be.
size_t write_v2(uint8_t* buf, size_t cap, const Endpoints& e, const V2Tlvs& t);

// CRC32C (Castagnoli, RFC 4960 appendix B) of N bytes at P, continuing
// from CRC (the result of an earlier call, 0 to start), as zlib's crc32().
uint32_t crc32c(const uint8_t* p, size_t n, uint32_t crc = 0);

}  // namespace terminus::dataplane::proxy::pp
