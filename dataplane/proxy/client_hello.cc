#include "dataplane/proxy/client_hello.h"

#include <algorithm>
#include <cstring>

namespace terminus::dataplane::proxy {

namespace {

constexpr size_t kRecordHeader = 5;
constexpr uint8_t kContentHandshake = 0x16;  // RFC 8446 5.1
constexpr uint8_t kClientHello = 1;          // RFC 8446 4
constexpr uint16_t kExtServerName = 0;       // RFC 6066 3
constexpr uint16_t kExtAlpn = 16;            // RFC 7301 3.1
constexpr uint16_t kExtSupportedVersions = 43;  // RFC 8446 4.2.1
constexpr uint8_t kHostName = 0;             // RFC 6066 3: NameType host_name

enum class Step : uint8_t { kOk, kMore, kBad };

// The handshake bytes carried by consecutive records, read as one stream.
// Each record header is checked when the stream reaches it, and a record's
// payload is used only once the whole record is in the buffer (nginx reads
// the whole record before parsing it).
class RecordStream {
  public:
    RecordStream(const uint8_t* data, size_t size) : data_(data), size_(size) {}

    // Copies the next N bytes to DST, or skips them when DST is null.
    Step take(uint8_t* dst, size_t n) {
        while (n > 0) {
            if (in_record_ == 0) {
                const Step s = next_record();
                if (s != Step::kOk) return s;
                continue;  // records may be empty
            }
            const size_t k = std::min(n, in_record_);
            if (dst) {
                std::memcpy(dst, data_ + pos_, k);
                dst += k;
            }
            pos_ += k;
            in_record_ -= k;
            n -= k;
        }
        return Step::kOk;
    }

  private:
    Step next_record() {
        if (size_ - pos_ < kRecordHeader) return Step::kMore;
        const uint8_t* h = data_ + pos_;
        // A later record of another type (an alert, change_cipher_spec)
        // cannot continue a ClientHello.
        if (h[0] != kContentHandshake || h[1] != 3) return Step::kBad;
        const size_t len = static_cast<size_t>(h[3]) << 8 | h[4];
        if (size_ - pos_ - kRecordHeader < len) return Step::kMore;
        pos_ += kRecordHeader;
        in_record_ = len;
        return Step::kOk;
    }

    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;        // the next unread byte of data_
    size_t in_record_ = 0;  // payload bytes of the current record after pos_
};

// Fields of one length-bounded part of the hello: the message itself, then
// an extension inside it, then a list inside that. A length that runs past
// its enclosing part is malformed before any more bytes are waited for,
// as nginx checks each length against what is left of the message.
class Fields {
  public:
    Fields(RecordStream& s, size_t left) : s_(s), left_(left) {}
    // An empty part of OUTER's stream, to be given its length by sub().
    explicit Fields(Fields& outer) : s_(outer.s_), left_(0) {}
    Fields(const Fields&) = delete;
    Fields& operator=(const Fields&) = delete;

    size_t left() const { return left_; }

    Step bytes(uint8_t* dst, size_t n) {
        if (n > left_) return Step::kBad;
        left_ -= n;
        return s_.take(dst, n);
    }
    Step skip(size_t n) { return bytes(nullptr, n); }
    Step u8(size_t& v) {
        uint8_t b[1];
        const Step s = bytes(b, 1);
        v = b[0];
        return s;
    }
    Step u16(size_t& v) {
        uint8_t b[2];
        const Step s = bytes(b, 2);
        v = static_cast<size_t>(b[0]) << 8 | b[1];
        return s;
    }
    // Opens a part of N bytes inside this one; its bytes are taken from
    // this part's allowance at once.
    Step sub(size_t n, Fields& inner) {
        if (n > left_) return Step::kBad;
        left_ -= n;
        inner.left_ = n;
        return Step::kOk;
    }

  private:
    RecordStream& s_;
    size_t left_;
};

#define TERMINUS_TRY(expr)                     \
    do {                                       \
        const Step step_ = (expr);             \
        if (step_ != Step::kOk) return step_;  \
    } while (0)

// server_name (RFC 6066 3): a list of which nginx reads the first entry.
Step read_server_name(Fields& ext, ClientHelloInfo& out) {
    size_t list_len = 0;
    TERMINUS_TRY(ext.u16(list_len));
    Fields list(ext);
    TERMINUS_TRY(ext.sub(list_len, list));
    size_t type = 0, name_len = 0;
    TERMINUS_TRY(list.u8(type));
    if (type != kHostName) return Step::kBad;  // nginx: "SNI hostname type is not DNS"
    TERMINUS_TRY(list.u16(name_len));
    if (name_len > list.left() || name_len > ClientHelloInfo::kMaxServerName) return Step::kBad;
    TERMINUS_TRY(list.bytes(reinterpret_cast<uint8_t*>(out.server_name_buf), name_len));
    out.server_name_len = static_cast<uint8_t>(name_len);
    return list.skip(list.left());
}

// application_layer_protocol_negotiation (RFC 7301 3.1), joined by ",".
Step read_alpn(Fields& ext, ClientHelloInfo& out) {
    size_t list_len = 0;
    TERMINUS_TRY(ext.u16(list_len));
    Fields list(ext);
    TERMINUS_TRY(ext.sub(list_len, list));
    if (list_len == 0) return Step::kBad;
    while (list.left() > 0) {
        size_t n = 0;
        TERMINUS_TRY(list.u8(n));
        if (n == 0) return Step::kBad;  // nginx: "ALPN empty protocol"
        const size_t comma = out.alpn_len ? 1 : 0;
        if (!out.alpn_truncated && out.alpn_len + comma + n <= ClientHelloInfo::kMaxAlpn) {
            if (comma) out.alpn_buf[out.alpn_len] = ',';
            TERMINUS_TRY(list.bytes(reinterpret_cast<uint8_t*>(out.alpn_buf) + out.alpn_len + comma, n));
            out.alpn_len = static_cast<uint8_t>(out.alpn_len + comma + n);
        } else {
            out.alpn_truncated = true;
            TERMINUS_TRY(list.skip(n));
        }
    }
    return Step::kOk;
}

// The ClientHello body after its handshake header (RFC 8446 4.1.2).
Step read_hello(Fields& msg, ClientHelloInfo& out) {
    uint8_t version[2];
    TERMINUS_TRY(msg.bytes(version, 2));
    out.version = static_cast<uint16_t>(version[0] << 8 | version[1]);
    TERMINUS_TRY(msg.skip(32));  // random
    size_t n = 0;
    TERMINUS_TRY(msg.u8(n));  // legacy_session_id
    TERMINUS_TRY(msg.skip(n));
    TERMINUS_TRY(msg.u16(n));  // cipher_suites
    TERMINUS_TRY(msg.skip(n));
    TERMINUS_TRY(msg.u8(n));  // legacy_compression_methods
    TERMINUS_TRY(msg.skip(n));
    if (msg.left() == 0) return Step::kOk;  // a hello without extensions

    size_t ext_total = 0;
    TERMINUS_TRY(msg.u16(ext_total));
    if (ext_total != msg.left()) return Step::kBad;
    bool have_sni = false, have_alpn = false;
    while (msg.left() > 0) {
        size_t type = 0, len = 0;
        TERMINUS_TRY(msg.u16(type));
        TERMINUS_TRY(msg.u16(len));
        Fields ext(msg);
        TERMINUS_TRY(msg.sub(len, ext));
        if (type == kExtServerName && !have_sni) {
            have_sni = true;
            TERMINUS_TRY(read_server_name(ext, out));
        } else if (type == kExtAlpn && !have_alpn) {
            have_alpn = true;
            TERMINUS_TRY(read_alpn(ext, out));
        } else if (type == kExtSupportedVersions) {
            size_t list_len = 0;
            TERMINUS_TRY(ext.u8(list_len));
            if (list_len > ext.left()) return Step::kBad;
            out.version = 0x0304;  // nginx takes the extension to mean TLS 1.3
        }
        TERMINUS_TRY(ext.skip(ext.left()));
    }
    return Step::kOk;
}

#undef TERMINUS_TRY

// SSL_get_version()'s names, as nginx gives them.
const char* protocol_name(uint16_t v) {
    switch (v) {
        case 0x0002: return "SSLv2";
        case 0x0300: return "SSLv3";
        case 0x0301: return "TLSv1";
        case 0x0302: return "TLSv1.1";
        case 0x0303: return "TLSv1.2";
        case 0x0304: return "TLSv1.3";
        default: return "";
    }
}

}  // namespace

const char* to_string(PrereadStatus s) {
    switch (s) {
#define TERMINUS_X(e, name, help) \
    case PrereadStatus::e: return name;
        TERMINUS_PREREAD_STATUSES(TERMINUS_X)
#undef TERMINUS_X
    }
    return "?";
}

PrereadStatus parse_client_hello(const uint8_t* data, size_t size, ClientHelloInfo& out) {
    out.clear();
    if (size < kRecordHeader) return PrereadStatus::kNeedMore;
    // SSLv2-compatible hello: 2-byte length with the high bit set,
    // msg_type 1, then the version (draft-hickman-netscape-ssl-00, RFC
    // 6101 E.2). nginx reports its version and stops there.
    if ((data[0] & 0x80) && data[2] == kClientHello && (data[3] == 0 || data[3] == 3)) {
        out.version = static_cast<uint16_t>(data[3] << 8 | data[4]);
        out.protocol_name = protocol_name(out.version);
        return PrereadStatus::kDone;
    }
    if (data[0] != kContentHandshake || data[1] != 3) return PrereadStatus::kNotTls;

    RecordStream stream(data, size);
    uint8_t header[4];
    Step s = stream.take(header, sizeof header);
    if (s == Step::kOk && header[0] != kClientHello) s = Step::kBad;
    if (s == Step::kOk) {
        Fields msg(stream, static_cast<size_t>(header[1]) << 16 | static_cast<size_t>(header[2]) << 8 | header[3]);
        s = read_hello(msg, out);
    }
    if (s != Step::kOk) {
        out.clear();
        return s == Step::kMore ? PrereadStatus::kNeedMore : PrereadStatus::kInvalid;
    }
    out.protocol_name = protocol_name(out.version);
    return PrereadStatus::kDone;
}

}  // namespace terminus::dataplane::proxy
