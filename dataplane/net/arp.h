// The ARP cache of one core (RFC 826): answers, learned entries with
// expiry, and a bounded queue of packets waiting for a resolution. Pure
// bookkeeping: it never touches the packets it holds, so it is tested
// without DPDK.
#pragma once

#include <rte_ether.h>

#include <array>
#include <cstdint>

struct rte_mbuf;

namespace terminus::dataplane::net {

constexpr unsigned kArpEntries = 256;  // power of two
constexpr unsigned kArpPendingPerEntry = 4;
constexpr unsigned kArpMaxRequests = 3;

class ArpTable {
  public:
    struct Timing {
        uint64_t reachable = 0;      // how long a learned entry lives (TSC)
        uint64_t retry = 0;          // between requests for one address
    };

    void set_timing(Timing t) { timing_ = t; }

    // The MAC for IP, or null when unknown or expired.
    const rte_ether_addr* lookup(uint32_t ip, uint64_t now) const;

    // Records IP -> MAC. Packets that waited for IP are written to
    // RELEASED (up to kArpPendingPerEntry) and their count returned; the
    // caller sends them.
    unsigned learn(uint32_t ip, const rte_ether_addr& mac, uint64_t now,
                   rte_mbuf** released);

    enum class Queued {
        kSendRequest,  // queued; ask for IP now
        kWaiting,      // queued; a request is already out
        kFull,         // not queued: too many waiting (or no free entry)
    };
    // Holds PKT until IP resolves.
    Queued enqueue(uint32_t ip, rte_mbuf* pkt, uint64_t now);

    // Housekeeping, a few times a second: addresses whose request is due
    // again go to RETRY (returns how many, up to MAX_RETRY); packets of
    // addresses that never answered go to DROPPED (count in *n_dropped, up
    // to MAX_DROPPED).
    unsigned expire(uint64_t now, uint32_t* retry, unsigned max_retry, rte_mbuf** dropped,
                    unsigned max_dropped, unsigned* n_dropped);

    unsigned size() const { return used_; }

  private:
    enum class State : uint8_t { kFree, kIncomplete, kReachable };
    struct Entry {
        uint32_t ip = 0;
        State state = State::kFree;
        uint8_t requests = 0;
        uint8_t n_pending = 0;
        rte_ether_addr mac{};
        uint64_t deadline = 0;  // reachable: expiry; incomplete: next request
        std::array<rte_mbuf*, kArpPendingPerEntry> pending{};
    };

    Entry* find(uint32_t ip);
    const Entry* find(uint32_t ip) const;
    Entry* insert(uint32_t ip, uint64_t now);
    void erase(Entry* e);

    std::array<Entry, kArpEntries> entries_{};
    unsigned used_ = 0;
    Timing timing_;
};

}  // namespace terminus::dataplane::net
