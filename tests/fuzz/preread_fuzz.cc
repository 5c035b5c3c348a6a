// libFuzzer target for the ssl_preread ClientHello parser, which reads the
// first bytes of every passthrough connection: no input may crash it, read
// past its buffer, fill a field past its storage, or change a terminal
// answer when more bytes follow.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "dataplane/proxy/client_hello.h"

namespace {

using terminus::dataplane::proxy::ClientHelloInfo;
using terminus::dataplane::proxy::parse_client_hello;
using terminus::dataplane::proxy::PrereadStatus;

bool known_protocol(std::string_view p) {
    for (std::string_view n : {"", "SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}) {
        if (p == n) return true;
    }
    return false;
}

void check(const ClientHelloInfo& info, PrereadStatus s) {
    if (info.server_name().size() > ClientHelloInfo::kMaxServerName) __builtin_trap();
    if (info.alpn_protocols().size() > ClientHelloInfo::kMaxAlpn) __builtin_trap();
    if (!known_protocol(info.protocol())) __builtin_trap();
    if (s != PrereadStatus::kDone && (!info.server_name().empty() || !info.alpn_protocols().empty())) {
        __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    ClientHelloInfo whole;
    const PrereadStatus s = parse_client_hello(data, size, whole);
    check(whole, s);

    // The answer for a prefix, once terminal, is the answer for the whole.
    for (size_t cut : {size / 2, size > 0 ? size - 1 : 0}) {
        ClientHelloInfo part;
        const PrereadStatus p = parse_client_hello(data, cut, part);
        check(part, p);
        if (p == PrereadStatus::kNeedMore) continue;
        if (p != s || part.server_name() != whole.server_name() ||
            part.alpn_protocols() != whole.alpn_protocols() || part.protocol() != whole.protocol() ||
            part.version != whole.version || part.alpn_truncated != whole.alpn_truncated) {
            __builtin_trap();
        }
    }
    return 0;
}
