// Setting up the flow steering (start-up only; the hot path is in flow.h).
#include "dataplane/flow.h"

#include <array>
#include <bitset>
#include <cstdio>
#include <cstring>
#include <vector>

namespace terminus::dataplane {

FlowSteering FlowSteering::process_;

bool FlowSteering::set_toeplitz(const uint8_t* key, size_t key_len, const uint16_t* reta, unsigned reta_size,
                                unsigned n_queues, std::string* why) {
    auto refuse = [&](std::string reason) {
        if (why) *why = std::move(reason);
        return false;
    };
    if (key_len < kMinKeyBytes) {
        return refuse("the key has " + std::to_string(key_len) + " bytes, a TCP/IPv4 hash reads " +
                      std::to_string(kMinKeyBytes));
    }
    if (reta_size == 0 || reta_size > kMaxReta || (reta_size & (reta_size - 1)) != 0) {
        return refuse("a redirection table of " + std::to_string(reta_size) +
                      " entries (a power of two up to " + std::to_string(kMaxReta) + " is needed)");
    }
    if (n_queues < 1 || n_queues > 255) return refuse("cannot steer over " + std::to_string(n_queues) + " queues");
    FlowSteering s;
    // rte_convert_rss_key reads whole words: go through an aligned copy.
    std::array<uint32_t, kKeyBytes / 4> orig{};
    std::memcpy(orig.data(), key, key_len < kKeyBytes ? key_len : kKeyBytes);
    rte_convert_rss_key(orig.data(), s.key_, kKeyBytes);
    for (unsigned i = 0; i < 4 * RTE_THASH_V4_L4_LEN; ++i) {
        for (unsigned v = 0; v < 256; ++v) {
            uint32_t in[RTE_THASH_V4_L4_LEN] = {};
            in[i / 4] = v << (24 - 8 * (i % 4));
            s.byte_hash_[i][v] = rte_softrss_be(in, RTE_THASH_V4_L4_LEN, reinterpret_cast<const uint8_t*>(s.key_));
        }
    }
    s.reta_mask_ = reta_size - 1;
    s.n_queues_ = static_cast<uint16_t>(n_queues);
    s.toeplitz_ = true;
    std::bitset<256> used;
    for (unsigned i = 0; i < reta_size; ++i) {
        if (reta[i] >= n_queues) {
            return refuse("redirection table entry " + std::to_string(i) + " is queue " + std::to_string(reta[i]) +
                          ", past the " + std::to_string(n_queues) + " queues");
        }
        s.reta_[i] = static_cast<uint8_t>(reta[i]);
        used.set(reta[i]);
    }
    for (unsigned q = 0; q < n_queues; ++q) {
        if (!used.test(q)) return refuse("no bucket of the redirection table goes to queue " + std::to_string(q));
    }
    // Local ports must reach every core. Toeplitz is linear over GF(2): in
    // an aligned block of 2^kPortBits ports the buckets are b0 ^ v for v in
    // SPAN, the buckets of the low port bits alone (hash of a tuple that is
    // zero but for them), whatever the addresses and high bits make b0.
    // So every core must appear among reta[b0 ^ v] for every b0.
    std::bitset<kMaxReta> in_span;
    for (uint32_t p = 0; p < (1u << kPortBits); ++p) {
        in_span.set(s.hash(tcp::FourTuple{0, 0, static_cast<uint16_t>(p), 0}) & s.reta_mask_);
    }
    std::vector<uint16_t> span;
    for (unsigned v = 0; v < reta_size; ++v) {
        if (in_span.test(v)) span.push_back(static_cast<uint16_t>(v));
    }
    for (unsigned b0 = 0; b0 < reta_size; ++b0) {
        std::bitset<256> reached;
        for (const uint16_t v : span) reached.set(s.reta_[b0 ^ v]);
        if (reached.count() != n_queues) {
            return refuse("with this key some flows would find no local port on some core (bucket " +
                          std::to_string(b0) + " reaches " + std::to_string(reached.count()) + " of " +
                          std::to_string(n_queues) + " queues)");
        }
    }
    *this = s;
    return true;
}

std::string FlowSteering::describe() const {
    if (!toeplitz_) return "software hash";
    // The converted key's words are the key's bytes read big-endian, so
    // in hex they read as the key does.
    char buf[128];
    std::snprintf(buf, sizeof buf, "Toeplitz, key %08x%08x..., %u-entry redirection table over %u queues",
                  key_[0], key_[1], reta_size(), n_queues_);
    return buf;
}

bool FlowSteering::same_as(const FlowSteering& o) const {
    if (toeplitz_ != o.toeplitz_) return false;
    if (!toeplitz_) return true;
    return std::memcmp(key_, o.key_, kMinKeyBytes) == 0 && reta_mask_ == o.reta_mask_ && n_queues_ == o.n_queues_ &&
           std::memcmp(reta_, o.reta_, reta_size()) == 0;
}

}  // namespace terminus::dataplane
