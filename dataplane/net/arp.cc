#include "dataplane/net/arp.h"

namespace terminus::dataplane::net {

namespace {

unsigned slot_of(uint32_t ip) {
    // Fibonacci hashing spreads consecutive addresses.
    return static_cast<unsigned>((ip * 2654435769u) >> 24) & (kArpEntries - 1);
}

}  // namespace

ArpTable::Entry* ArpTable::find(uint32_t ip) {
    return const_cast<Entry*>(static_cast<const ArpTable*>(this)->find(ip));
}

const ArpTable::Entry* ArpTable::find(uint32_t ip) const {
    unsigned s = slot_of(ip);
    for (unsigned i = 0; i < kArpEntries; ++i, s = (s + 1) & (kArpEntries - 1)) {
        const Entry& e = entries_[s];
        if (e.state == State::kFree) return nullptr;
        if (e.ip == ip) return &e;
    }
    return nullptr;
}

ArpTable::Entry* ArpTable::insert(uint32_t ip, uint64_t now) {
    if (used_ >= kArpEntries - kArpEntries / 4) {
        // Keep probes short: evict the reachable entry that expires first.
        Entry* victim = nullptr;
        for (Entry& e : entries_) {
            if (e.state == State::kReachable && (!victim || e.deadline < victim->deadline)) {
                victim = &e;
            }
        }
        if (!victim) return nullptr;
        erase(victim);
    }
    unsigned s = slot_of(ip);
    while (entries_[s].state != State::kFree) s = (s + 1) & (kArpEntries - 1);
    Entry& e = entries_[s];
    e = Entry{};
    e.ip = ip;
    e.state = State::kIncomplete;
    e.deadline = now;
    ++used_;
    return &e;
}

void ArpTable::erase(Entry* e) {
    // Backward-shift deletion keeps linear probing correct without
    // tombstones.
    unsigned hole = static_cast<unsigned>(e - entries_.data());
    entries_[hole] = Entry{};
    --used_;
    unsigned s = (hole + 1) & (kArpEntries - 1);
    while (entries_[s].state != State::kFree) {
        unsigned home = slot_of(entries_[s].ip);
        // Move s into the hole if its home is not in (hole, s].
        bool between = hole <= s ? (home > hole && home <= s) : (home > hole || home <= s);
        if (!between) {
            entries_[hole] = entries_[s];
            entries_[s] = Entry{};
            hole = s;
        }
        s = (s + 1) & (kArpEntries - 1);
    }
}

const rte_ether_addr* ArpTable::lookup(uint32_t ip, uint64_t now) const {
    const Entry* e = find(ip);
    if (!e || e->state != State::kReachable || e->deadline <= now) return nullptr;
    return &e->mac;
}

unsigned ArpTable::learn(uint32_t ip, const rte_ether_addr& mac, uint64_t now,
                         rte_mbuf** released) {
    Entry* e = find(ip);
    if (!e) e = insert(ip, now);
    if (!e) return 0;
    unsigned n = e->n_pending;
    for (unsigned i = 0; i < n; ++i) released[i] = e->pending[i];
    e->n_pending = 0;
    e->pending = {};
    e->state = State::kReachable;
    e->requests = 0;
    e->mac = mac;
    e->deadline = now + timing_.reachable;
    return n;
}

ArpTable::Queued ArpTable::enqueue(uint32_t ip, rte_mbuf* pkt, uint64_t now) {
    Entry* e = find(ip);
    if (e && e->state == State::kReachable) {
        // Expired but still present: resolve it again.
        e->state = State::kIncomplete;
        e->requests = 0;
        e->deadline = now;
    }
    if (!e) e = insert(ip, now);
    if (!e || e->n_pending >= kArpPendingPerEntry) return Queued::kFull;
    e->pending[e->n_pending++] = pkt;
    if (e->requests == 0) {
        e->requests = 1;
        e->deadline = now + timing_.retry;
        return Queued::kSendRequest;
    }
    return Queued::kWaiting;
}

unsigned ArpTable::expire(uint64_t now, uint32_t* retry, unsigned max_retry, rte_mbuf** dropped,
                          unsigned max_dropped, unsigned* n_dropped) {
    unsigned n_retry = 0;
    *n_dropped = 0;
    for (unsigned s = 0; s < kArpEntries; ++s) {
        Entry& e = entries_[s];
        if (e.state == State::kFree || e.deadline > now) continue;
        if (e.state == State::kReachable) {
            if (e.n_pending == 0) {
                erase(&e);
                --s;  // the shift may have moved another entry here
            }
            continue;
        }
        if (e.requests < kArpMaxRequests) {
            if (n_retry == max_retry) continue;
            retry[n_retry++] = e.ip;
            ++e.requests;
            e.deadline = now + timing_.retry;
            continue;
        }
        if (*n_dropped + e.n_pending > max_dropped) continue;
        for (unsigned i = 0; i < e.n_pending; ++i) dropped[(*n_dropped)++] = e.pending[i];
        erase(&e);
        --s;
    }
    return n_retry;
}

}  // namespace terminus::dataplane::net
