// libFuzzer target for the PROXY protocol reader, which sees the first
// bytes of every connection on a "listen ... proxy_protocol" port: no
// input may crash it or read past its buffer, a header it accepts must lie
// inside the input with every view inside the header, answers for a prefix
// must agree with the answer for the whole, and what it reads must survive
// being written again.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "dataplane/proxy/proxy_protocol.h"

namespace pp = terminus::dataplane::proxy::pp;

namespace {

bool inside(std::string_view v, const uint8_t* p, size_t n) {
    const auto* b = reinterpret_cast<const uint8_t*>(v.data());
    return v.empty() || (b >= p && b + v.size() <= p + n);
}
bool inside(const std::optional<std::string_view>& v, const uint8_t* p, size_t n) {
    return !v || inside(*v, p, n);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // A small cap too, so kTooLong and the buffer-full path are reached.
    const size_t cap = size % 8 == 7 ? 64 : pp::kMaxHeaderLen;
    pp::Header h;
    const pp::Status s = pp::parse(data, size, h, cap);

    // A prefix is refused only when every continuation is.
    pp::Header hp;
    const pp::Status sp = pp::parse(data, size / 2, hp, cap);
    if (s != pp::Status::kInvalid && sp == pp::Status::kInvalid) __builtin_trap();
    if (s == pp::Status::kInvalid) {
        if (h.error == pp::Error::kNone) __builtin_trap();
        return 0;
    }
    if (s == pp::Status::kNeedMore) return 0;

    const size_t n = h.length;
    if (n == 0 || n > size) __builtin_trap();
    if (n > cap || (h.version == 1 && n > pp::kV1MaxLen)) __builtin_trap();
    if (!inside(h.tlvs, data, n) || !inside(h.alpn, data, n) || !inside(h.authority, data, n) ||
        !inside(h.unique_id, data, n) || !inside(h.netns, data, n) ||
        !inside(h.ssl_version, data, n) || !inside(h.ssl_cn, data, n) ||
        !inside(h.ssl_cipher, data, n) || !inside(h.ssl_sig_alg, data, n) ||
        !inside(h.ssl_key_alg, data, n) || !inside(h.src.unix_path, data, n) ||
        !inside(h.dst.unix_path, data, n)) {
        __builtin_trap();
    }
    if (h.unique_id && h.unique_id->size() > pp::kMaxUniqueIdLen) __builtin_trap();
    if (h.authority && h.authority->size() > pp::kMaxAuthorityLen) __builtin_trap();

    // Exactly the header: the same answer, and one byte less needs more.
    pp::Header exact;
    if (pp::parse(data, n, exact, cap) != pp::Status::kDone || exact.length != n) __builtin_trap();
    if (pp::parse(data, n - 1, exact, cap) != pp::Status::kNeedMore) __builtin_trap();

    // TLVs walk to the end of the header.
    std::string_view rest = h.tlvs;
    pp::Tlv tlv;
    while (pp::next_tlv(rest, tlv)) {
    }
    if (!rest.empty()) __builtin_trap();

    // IPv4 back out, then in again: the same addresses and TLVs.
    if (h.command != pp::Command::kProxy || h.family != pp::Family::kInet) return 0;
    const pp::Endpoints e{h.src.ip4, h.src.port, h.dst.ip4, h.dst.port};
    uint8_t buf[8192];
    const size_t n1 = pp::write_v1(buf, sizeof(buf), e);
    pp::Header back;
    if (n1 == 0 || pp::parse(buf, n1, back) != pp::Status::kDone) __builtin_trap();
    if (back.src.ip4 != e.src_ip || back.dst.port != e.dst_port) __builtin_trap();

    pp::TlsInfo tls;
    pp::V2Tlvs t;
    t.alpn = h.alpn.value_or("");
    t.authority = h.authority.value_or("");
    t.unique_id = h.unique_id.value_or("");
    t.netns = h.netns.value_or("");
    t.crc32c = h.crc32c.has_value();
    if (h.ssl) {
        tls.version = h.ssl_version.value_or("");
        tls.cn = h.ssl_cn.value_or("");
        tls.cipher = h.ssl_cipher.value_or("");
        tls.sig_alg = h.ssl_sig_alg.value_or("");
        tls.key_alg = h.ssl_key_alg.value_or("");
        t.tls = &tls;
    }
    const size_t n2 = pp::write_v2(buf, sizeof(buf), e, t);
    if (n2 == 0) return 0;  // wider than our cap once rewritten: allowed
    if (pp::parse(buf, n2, back, sizeof(buf)) != pp::Status::kDone) __builtin_trap();
    if (back.src.ip4 != e.src_ip || back.dst.ip4 != e.dst_ip || back.src.port != e.src_port ||
        back.dst.port != e.dst_port) {
        __builtin_trap();
    }
    if (back.alpn.value_or("") != t.alpn || back.authority.value_or("") != t.authority ||
        back.unique_id.value_or("") != t.unique_id || back.netns.value_or("") != t.netns ||
        back.ssl != h.ssl || back.crc32c.has_value() != t.crc32c) {
        __builtin_trap();
    }
    if (h.ssl && (back.ssl_version.value_or("") != tls.version ||
                  back.ssl_cn.value_or("") != tls.cn || back.ssl_cipher.value_or("") != tls.cipher ||
                  back.ssl_sig_alg.value_or("") != tls.sig_alg ||
                  back.ssl_key_alg.value_or("") != tls.key_alg)) {
        __builtin_trap();
    }
    return 0;
}
