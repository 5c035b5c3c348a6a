// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed PRF fast enough to run
// per SYN, for initial sequence numbers (RFC 6528) and SYN cookies.
#pragma once

#include <cstddef>
#include <cstdint>

namespace terminus::tcp {

struct SipKey {
    uint64_t k0 = 0;
    uint64_t k1 = 0;
};

uint64_t siphash24(const SipKey& key, const void* data, size_t len);

}  // namespace terminus::tcp
