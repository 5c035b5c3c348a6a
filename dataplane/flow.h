// Which core owns a flow: a pure function of its addresses, the same for
// passive connections (chosen by the client's port) and active ones (whose
// local port we pick so that it maps back to the picking core). Private to
// dataplane/.
//
// Two ways to compute it, chosen once per process at port setup
// (Runtime::start) and read-only from then on:
//  * Toeplitz: the port runs RSS with a key and redirection table that we
//    programmed and read back; the owner is reta[toeplitz(key, packet)], the
//    queue the NIC itself delivers the packet to, so no packet takes the
//    ring to another core.
//  * Software: a mixing hash modulo the number of cores, for devices that
//    cannot tell us how they spread packets (TAP, memif, af_packet, one
//    queue). Packets land on whichever core, which hands them to the owner.
// Either way a mis-steered packet still reaches its owner over a ring: the
// choice decides how often that happens, never whether a flow works.
#pragma once

#include <rte_thash.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "dataplane/tcp/tcp_isn.h"

namespace terminus::dataplane {

// The software steering: a mixing hash of the four-tuple, modulo N_CORES.
inline unsigned soft_flow_owner(const tcp::FourTuple& t, unsigned n_cores) {
    if (n_cores <= 1) return 0;
    uint64_t x = (static_cast<uint64_t>(t.remote_ip) << 32 | t.local_ip) ^
                 (static_cast<uint64_t>(t.remote_port) << 16 | t.local_port);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return static_cast<unsigned>(x % n_cores);
}

class alignas(64) FlowSteering {
  public:
    // The key terminusd programs: Microsoft's default RSS key, not a
    // symmetric one. Its published verification vectors check our Toeplitz
    // against the NIC's, many NICs already use it, and it spreads TCP/IPv4
    // well. Symmetry (the 0x6d5a repeated key) would put both directions of
    // a four-tuple on one queue, which a TCP endpoint never needs: we only
    // hash packets that arrive (remote -> us), and the two sides of a proxied
    // session are two four-tuples lined up by the upstream port we pick. It
    // would cost entropy too: a key of period 16 bits folds the 96 input bits
    // to their 16-bit XOR before hashing.
    static constexpr uint8_t kDefaultKey[40] = {
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
        0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
        0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    };
    // The Toeplitz window over a TCP/IPv4 tuple (12 bytes) reads 16 key
    // bytes; we keep 40, the size every NIC we know has at least.
    static constexpr unsigned kKeyBytes = 40;
    static constexpr unsigned kMinKeyBytes = 16;
    // The largest redirection table of a DPDK NIC (ice's); NICs' tables
    // are powers of two.
    static constexpr unsigned kMaxReta = 2048;
    // pick_local_port finds a port for every core within any 2^kPortBits
    // aligned block of ports; set_toeplitz refuses a key and table for
    // which that does not hold.
    static constexpr unsigned kPortBits = 12;

    // Software steering.
    FlowSteering() = default;

    // Switches to Toeplitz steering over KEY (KEY_LEN bytes, as the device
    // reports it; the original key, not rte_convert_rss_key's) and RETA
    // (RETA_SIZE entries, each the queue of its bucket) on a port with
    // N_QUEUES queues, queue i being core i. Returns false and says why in
    // WHY (the steering stays as it was) when they cannot steer: a key
    // shorter than kMinKeyBytes, a table whose size is not a power of two
    // up to kMaxReta, an entry past N_QUEUES, or a core that some flows'
    // local ports could not reach.
    bool set_toeplitz(const uint8_t* key, size_t key_len, const uint16_t* reta, unsigned reta_size,
                      unsigned n_queues, std::string* why);

    bool toeplitz() const { return toeplitz_; }
    unsigned reta_size() const { return reta_mask_ + 1; }
    unsigned n_queues() const { return n_queues_; }
    uint16_t reta(unsigned bucket) const { return reta_[bucket & reta_mask_]; }

    // The Toeplitz hash the NIC computes for a TCP/IPv4 packet of T as it
    // arrives: source address (remote), destination address (local),
    // source port, destination port — rte_ipv4_tuple's layout, host order.
    // Toeplitz is linear over GF(2), so it is the XOR of what each input
    // byte contributes; set_toeplitz tabulates those with rte_softrss_be.
    // Twelve loads from 12 KB of tables instead of rte_softrss_be's loop
    // over the set bits: owner() takes about 8 cycles a flow against 190 to
    // 290 with rte_softrss_be (a loop over 4096 flows on the lab's Xeon).
    uint32_t hash(const tcp::FourTuple& t) const {
        return word_hash(0, t.remote_ip) ^ word_hash(1, t.local_ip) ^
               word_hash(2, static_cast<uint32_t>(t.remote_port) << 16 | t.local_port);
    }
    // The same, by rte_softrss_be over the converted key: the reference
    // the tables are built from.
    uint32_t softrss(const tcp::FourTuple& t) const {
        uint32_t in[RTE_THASH_V4_L4_LEN] = {t.remote_ip, t.local_ip,
                                            static_cast<uint32_t>(t.remote_port) << 16 | t.local_port};
        return rte_softrss_be(in, RTE_THASH_V4_L4_LEN, reinterpret_cast<const uint8_t*>(key_));
    }

    // The core that owns T's flow, of N_CORES. Toeplitz steering applies
    // to the cores it was set up for (N_CORES == n_queues()); any other
    // count falls back to the software hash.
    unsigned owner(const tcp::FourTuple& t, unsigned n_cores) const {
        if (n_cores <= 1) return 0;
        if (toeplitz_ && n_cores == n_queues_) return reta_[hash(t) & reta_mask_];
        return soft_flow_owner(t, n_cores);
    }

    // The next local port from NEXT on, within [LO, HI] and wrapping, whose
    // flow LOCAL_IP:port <- REMOTE_IP:REMOTE_PORT is owned by CORE, so that
    // the replies come back to it (Seastar's tcp::connect does the same);
    // 0 when none is left. NEXT moves past the port returned.
    uint16_t pick_local_port(uint16_t& next, uint16_t lo, uint16_t hi, uint32_t local_ip, uint32_t remote_ip,
                             uint16_t remote_port, unsigned core, unsigned n_cores) const {
        for (unsigned tries = 0; tries <= static_cast<unsigned>(hi - lo); ++tries) {
            if (next < lo || next > hi) next = lo;
            const uint16_t p = next;
            next = p == hi ? lo : static_cast<uint16_t>(p + 1);
            if (owner(tcp::FourTuple{local_ip, remote_ip, p, remote_port}, n_cores) == core) return p;
        }
        return 0;
    }

    // "Toeplitz, key 6d5a56da255b0ec2..., 128-entry redirection table over
    // 2 queues" or "software hash".
    std::string describe() const;

    // Same steering: kind, the key bytes the hash reads, the table.
    bool same_as(const FlowSteering& o) const;

    // The process's steering: set by Runtime::start before any core runs,
    // read by every core from then on and never written again.
    static const FlowSteering& process() { return process_; }
    static void set_process(const FlowSteering& s) { process_ = s; }

  private:
    // What input word I (0..2) holding W contributes.
    uint32_t word_hash(unsigned i, uint32_t w) const {
        return byte_hash_[4 * i][w >> 24] ^ byte_hash_[4 * i + 1][(w >> 16) & 0xff] ^
               byte_hash_[4 * i + 2][(w >> 8) & 0xff] ^ byte_hash_[4 * i + 3][w & 0xff];
    }

    // rte_convert_rss_key's form of the key, for rte_softrss_be.
    uint32_t key_[kKeyBytes / 4] = {};
    uint32_t reta_mask_ = 0;  // reta_size - 1
    uint16_t n_queues_ = 0;
    bool toeplitz_ = false;
    uint8_t reta_[kMaxReta] = {};  // queue = core of each bucket
    // byte_hash_[i][v]: the hash of the 12-byte input that is zero but for
    // byte i, which is v.
    alignas(64) uint32_t byte_hash_[4 * RTE_THASH_V4_L4_LEN][256] = {};

    static FlowSteering process_;
};

// The owner of T's flow and a local port for an upstream connect, by the
// process's steering. N_CORES is the count of cores that share the flows.
inline unsigned flow_owner(const tcp::FourTuple& t, unsigned n_cores) {
    return FlowSteering::process().owner(t, n_cores);
}
inline uint16_t pick_local_port(uint16_t& next, uint16_t lo, uint16_t hi, uint32_t local_ip, uint32_t remote_ip,
                                uint16_t remote_port, unsigned core, unsigned n_cores) {
    return FlowSteering::process().pick_local_port(next, lo, hi, local_ip, remote_ip, remote_port, core, n_cores);
}

}  // namespace terminus::dataplane
