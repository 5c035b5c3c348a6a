// The per-core ARP cache: learning, expiry, the bounded resolution queue
// and request retries. Packets are opaque to the table, so fake pointers
// stand in for mbufs.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "dataplane/net/arp.h"

namespace terminus::dataplane::net {
namespace {

constexpr uint64_t kReachable = 1000;
constexpr uint64_t kRetry = 10;

rte_mbuf* fake(uintptr_t n) { return reinterpret_cast<rte_mbuf*>(n * 64); }

rte_ether_addr mac(uint8_t last) { return rte_ether_addr{{0x02, 0, 0, 0, 0, last}}; }

ArpTable table() {
    ArpTable t;
    t.set_timing({kReachable, kRetry});
    return t;
}

TEST(ArpTable, UnknownAddressHasNoMac) {
    ArpTable t = table();
    EXPECT_EQ(t.lookup(0xc6120001, 0), nullptr);
}

TEST(ArpTable, LearnedAddressResolvesUntilItExpires) {
    ArpTable t = table();
    rte_mbuf* released[kArpPendingPerEntry];
    EXPECT_EQ(t.learn(0xc6120001, mac(1), 100, released), 0u);
    const rte_ether_addr* m = t.lookup(0xc6120001, 100 + kReachable - 1);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->addr_bytes[5], 1);
    EXPECT_EQ(t.lookup(0xc6120001, 100 + kReachable), nullptr);
}

TEST(ArpTable, FirstQueuedPacketAsksForTheAddressAndLaterOnesWait) {
    ArpTable t = table();
    EXPECT_EQ(t.enqueue(0xc6120009, fake(1), 0), ArpTable::Queued::kSendRequest);
    EXPECT_EQ(t.enqueue(0xc6120009, fake(2), 0), ArpTable::Queued::kWaiting);
}

TEST(ArpTable, QueuePerAddressIsBounded) {
    ArpTable t = table();
    for (unsigned i = 0; i < kArpPendingPerEntry; ++i) {
        EXPECT_NE(t.enqueue(0xc6120009, fake(i + 1), 0), ArpTable::Queued::kFull);
    }
    EXPECT_EQ(t.enqueue(0xc6120009, fake(99), 0), ArpTable::Queued::kFull);
}

TEST(ArpTable, ReplyReleasesWaitingPacketsInOrder) {
    ArpTable t = table();
    t.enqueue(0xc6120009, fake(1), 0);
    t.enqueue(0xc6120009, fake(2), 0);
    rte_mbuf* released[kArpPendingPerEntry];
    ASSERT_EQ(t.learn(0xc6120009, mac(9), 5, released), 2u);
    EXPECT_EQ(released[0], fake(1));
    EXPECT_EQ(released[1], fake(2));
    EXPECT_NE(t.lookup(0xc6120009, 6), nullptr);
    // Nothing is released twice.
    EXPECT_EQ(t.learn(0xc6120009, mac(9), 7, released), 0u);
}

TEST(ArpTable, RequestIsRetriedThenWaitingPacketsAreDropped) {
    ArpTable t = table();
    t.enqueue(0xc6120009, fake(1), 0);  // request 1 sent by the caller
    uint32_t retry[4];
    rte_mbuf* dropped[8];
    unsigned n_dropped = 0;
    EXPECT_EQ(t.expire(kRetry - 1, retry, 4, dropped, 8, &n_dropped), 0u);
    ASSERT_EQ(t.expire(kRetry, retry, 4, dropped, 8, &n_dropped), 1u);  // request 2
    EXPECT_EQ(retry[0], 0xc6120009u);
    ASSERT_EQ(t.expire(2 * kRetry, retry, 4, dropped, 8, &n_dropped), 1u);  // request 3
    EXPECT_EQ(n_dropped, 0u);
    EXPECT_EQ(t.expire(3 * kRetry, retry, 4, dropped, 8, &n_dropped), 0u);
    ASSERT_EQ(n_dropped, 1u);
    EXPECT_EQ(dropped[0], fake(1));
    EXPECT_EQ(t.size(), 0u);
}

TEST(ArpTable, ExpiredEntriesAreRemoved) {
    ArpTable t = table();
    rte_mbuf* released[kArpPendingPerEntry];
    t.learn(1, mac(1), 0, released);
    uint32_t retry[4];
    rte_mbuf* dropped[8];
    unsigned n_dropped = 0;
    t.expire(kReachable, retry, 4, dropped, 8, &n_dropped);
    EXPECT_EQ(t.size(), 0u);
}

TEST(ArpTable, FullTableEvictsTheEntryThatExpiresFirst) {
    ArpTable t = table();
    rte_mbuf* released[kArpPendingPerEntry];
    for (uint32_t ip = 1; ip <= kArpEntries; ++ip) t.learn(ip, mac(1), ip, released);
    EXPECT_LE(t.size(), kArpEntries);
    // The newest survive, the oldest went.
    EXPECT_NE(t.lookup(kArpEntries, kArpEntries), nullptr);
    EXPECT_EQ(t.lookup(1, kArpEntries), nullptr);
}

TEST(ArpTable, DeletionKeepsOtherEntriesReachable) {
    // Many addresses, some expiring early, in a table with collisions.
    ArpTable t = table();
    rte_mbuf* released[kArpPendingPerEntry];
    std::vector<uint32_t> ips;
    for (uint32_t i = 0; i < 150; ++i) ips.push_back(0xc6120000u + i * 256);
    for (size_t i = 0; i < ips.size(); ++i) {
        ArpTable::Timing timing{i % 2 ? kReachable * 10 : kReachable, kRetry};
        t.set_timing(timing);
        t.learn(ips[i], mac(static_cast<uint8_t>(i)), 0, released);
    }
    uint32_t retry[4];
    rte_mbuf* dropped[8];
    unsigned n_dropped = 0;
    t.expire(kReachable, retry, 4, dropped, 8, &n_dropped);
    for (size_t i = 0; i < ips.size(); ++i) {
        const rte_ether_addr* m = t.lookup(ips[i], kReachable);
        if (i % 2) {
            ASSERT_NE(m, nullptr) << i;
            EXPECT_EQ(m->addr_bytes[5], static_cast<uint8_t>(i));
        } else {
            EXPECT_EQ(m, nullptr) << i;
        }
    }
}

}  // namespace
}  // namespace terminus::dataplane::net
