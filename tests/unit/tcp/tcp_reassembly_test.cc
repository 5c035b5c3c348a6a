// The out-of-order queue over real mbufs: gaps, overlaps, coalescing,
// the memory and range bounds, SACK blocks, and that every buffer it is
// given is either handed back or freed.
#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/tcp/tcp_reassembly.h"
#include "tests/unit/dataplane/eal_env.h"

namespace terminus::tcp {
namespace {

using terminus::testing::EalEnvironment;
using Insert = ReassemblyQueue::Insert;

constexpr uint32_t kHeader = 54;  // what precedes the payload in a frame
constexpr uint32_t kMem = 1 << 20;

// The byte at sequence number SEQ of the test's stream.
uint8_t byte_at(uint32_t seq) { return static_cast<uint8_t>(seq * 7 + (seq >> 8)); }

// A frame carrying [SEQ, SEQ+LEN) after kHeader bytes of headers.
rte_mbuf* frame(uint32_t seq, uint32_t len) {
    rte_mbuf* m = rte_pktmbuf_alloc(EalEnvironment::pool());
    EXPECT_NE(m, nullptr);
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(kHeader + len)));
    for (uint32_t i = 0; i < kHeader; ++i) p[i] = 0xee;
    for (uint32_t i = 0; i < len; ++i) p[kHeader + i] = byte_at(seq + i);
    return m;
}

OooPool g_pool(4);

// A queue that gives back what it holds when the test ends.
struct Q : ReassemblyQueue {
    ~Q() { clear(g_pool); }
};

Insert put(ReassemblyQueue& q, uint32_t seq, uint32_t len, uint32_t rcv_nxt, uint32_t mem = kMem) {
    return q.insert(g_pool, seq, len, frame(seq, len), kHeader, rcv_nxt, mem);
}

unsigned in_use() { return rte_mempool_in_use_count(EalEnvironment::pool()); }

// Pops at RCV_NXT and checks the chain holds exactly the stream's bytes
// there; frees it. Returns the length, 0 when nothing was popped.
uint32_t pop_checked(ReassemblyQueue& q, uint32_t rcv_nxt) {
    rte_mbuf* chain = nullptr;
    uint32_t len = 0;
    if (!q.pop(g_pool, rcv_nxt, chain, len)) return 0;
    uint32_t seen = 0;
    for (rte_mbuf* s = chain; s; s = s->next) {
        const auto* d = rte_pktmbuf_mtod(s, const uint8_t*);
        for (uint32_t i = 0; i < s->data_len; ++i) {
            EXPECT_EQ(d[i], byte_at(rcv_nxt + seen + i)) << "at " << rcv_nxt + seen + i;
        }
        seen += s->data_len;
    }
    EXPECT_EQ(seen, len);
    while (chain) {
        rte_mbuf* next = chain->next;
        chain->next = nullptr;
        chain->nb_segs = 1;
        rte_pktmbuf_free_seg(chain);
        chain = next;
    }
    return len;
}

TEST(Reassembly, HoldsDataAfterAGapAndReleasesItInOrder) {
    const unsigned before = in_use();
    Q q;
    EXPECT_EQ(put(q, 200, 100, 100), Insert::kHeld);
    EXPECT_EQ(put(q, 300, 100, 100), Insert::kHeld);
    EXPECT_EQ(q.ranges(), 1u);  // contiguous arrivals coalesce
    EXPECT_EQ(q.bytes(), 200u);
    EXPECT_EQ(pop_checked(q, 100), 0u);  // the gap [100, 200) is still open
    EXPECT_EQ(pop_checked(q, 200), 200u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.bytes(), 0u);
    EXPECT_EQ(q.memory(), 0u);
    EXPECT_EQ(in_use(), before);
}

TEST(Reassembly, DuplicatesAreReportedAndFreed) {
    const unsigned before = in_use();
    Q q;
    put(q, 200, 100, 100);
    EXPECT_EQ(put(q, 200, 100, 100), Insert::kDuplicate);
    EXPECT_EQ(put(q, 220, 50, 100), Insert::kDuplicate);
    EXPECT_EQ(put(q, 10, 50, 100), Insert::kDuplicate);  // below RCV_NXT
    EXPECT_EQ(q.ranges(), 1u);
    q.clear(g_pool);
    EXPECT_EQ(in_use(), before);
}

TEST(Reassembly, DataBeforeRcvNxtIsTrimmed) {
    Q q;
    EXPECT_EQ(put(q, 50, 100, 100), Insert::kHeld);
    EXPECT_EQ(q.bytes(), 50u);
    EXPECT_EQ(pop_checked(q, 100), 50u);
}

TEST(Reassembly, OverlapsKeepOnlyNewBytes) {
    Q q;
    put(q, 200, 100, 100);
    EXPECT_EQ(put(q, 250, 100, 100), Insert::kHeld);  // [300, 350) is new
    put(q, 500, 100, 100);
    EXPECT_EQ(put(q, 450, 100, 100), Insert::kHeld);  // [450, 500) is new
    EXPECT_EQ(q.ranges(), 2u);
    EXPECT_EQ(q.bytes(), 150u + 150u);
    EXPECT_EQ(pop_checked(q, 200), 150u);
    EXPECT_EQ(pop_checked(q, 450), 150u);
}

TEST(Reassembly, ASegmentSpanningHeldOnesReplacesThem) {
    const unsigned before = in_use();
    Q q;
    put(q, 300, 100, 100);
    put(q, 450, 20, 100);
    // [200, 500) covers both: one range, the old buffers freed.
    EXPECT_EQ(put(q, 200, 300, 100), Insert::kHeld);
    EXPECT_EQ(q.ranges(), 1u);
    EXPECT_EQ(q.bytes(), 300u);
    EXPECT_EQ(in_use(), before + 1);
    EXPECT_EQ(pop_checked(q, 200), 300u);
    EXPECT_EQ(in_use(), before);
}

TEST(Reassembly, FillingAHoleJoinsBothNeighbours) {
    Q q;
    put(q, 200, 100, 100);
    put(q, 400, 100, 100);
    EXPECT_EQ(q.ranges(), 2u);
    EXPECT_EQ(put(q, 300, 100, 100), Insert::kHeld);
    EXPECT_EQ(q.ranges(), 1u);
    EXPECT_EQ(pop_checked(q, 200), 300u);
}

TEST(Reassembly, ManySegmentsAfterOneHoleCostOneRange) {
    // What a 32-slot queue dropped: a window of segments behind one loss.
    Q q;
    for (uint32_t i = 0; i < 150; ++i) EXPECT_EQ(put(q, 1000 + 1000 * i, 1000, 0), Insert::kHeld);
    EXPECT_EQ(q.ranges(), 1u);
    EXPECT_EQ(q.bytes(), 150'000u);
    put(q, 0, 1000, 0);  // (the in-order path would deliver this itself)
    EXPECT_EQ(pop_checked(q, 0), 151'000u);
}

TEST(Reassembly, BoundedByMemoryAndRanges) {
    const unsigned before = in_use();
    Q q;
    EXPECT_EQ(put(q, 200, 100, 100, 3000), Insert::kHeld);
    EXPECT_GT(q.memory(), 2000u);  // a whole buffer counts, not its 100 bytes
    EXPECT_EQ(put(q, 400, 100, 100, 3000), Insert::kFull);
    q.clear(g_pool);
    for (uint32_t i = 0; i < ReassemblyQueue::kMaxRanges; ++i) {
        EXPECT_EQ(put(q, 1000 + 20 * i, 10, 100), Insert::kHeld);
    }
    EXPECT_EQ(q.ranges(), ReassemblyQueue::kMaxRanges);
    EXPECT_EQ(put(q, 5000, 10, 100), Insert::kFull);
    // Bytes that join an existing range still fit.
    EXPECT_EQ(put(q, 1010, 10, 100), Insert::kHeld);
    EXPECT_EQ(q.ranges(), ReassemblyQueue::kMaxRanges - 1);
    q.clear(g_pool);
    EXPECT_EQ(in_use(), before);
}

TEST(Reassembly, SackBlocksPutTheLatestFirst) {
    Q q;
    put(q, 200, 100, 100);
    put(q, 300, 100, 100);  // joins [200, 300)
    put(q, 600, 100, 100);
    put(q, 900, 100, 100);
    put(q, 650, 100, 100);  // latest: extends [600, 700)
    SackBlock b[4];
    ASSERT_EQ(q.sack_blocks(b, 4), 3u);
    EXPECT_EQ(b[0].left, 600u);
    EXPECT_EQ(b[0].right, 750u);
    EXPECT_EQ(b[1].left, 900u);
    EXPECT_EQ(b[2].left, 200u);
    EXPECT_EQ(b[2].right, 400u);
    EXPECT_EQ(q.sack_blocks(b, 1), 1u);
}

TEST(Reassembly, PopFreesWhatRcvNxtOvertook) {
    const unsigned before = in_use();
    Q q;
    put(q, 200, 100, 100);
    put(q, 400, 100, 100);
    // A retransmission filled everything up to 450.
    EXPECT_EQ(pop_checked(q, 450), 50u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(in_use(), before);
}

TEST(Reassembly, TakesABlockOnlyWhileItHoldsData) {
    Q q, r, t;
    const unsigned avail = g_pool.available();
    EXPECT_EQ(put(q, 200, 100, 100), Insert::kHeld);
    EXPECT_EQ(g_pool.available(), avail - 1);
    EXPECT_EQ(pop_checked(q, 200), 100u);
    EXPECT_EQ(g_pool.available(), avail);  // given back when the gap closed
    // With no block left, out-of-order data is refused (and freed).
    const unsigned before = in_use();
    std::vector<ReassemblyQueue> many(avail);
    for (auto& each : many) EXPECT_EQ(put(each, 200, 10, 100), Insert::kHeld);
    EXPECT_EQ(put(t, 200, 10, 100), Insert::kFull);
    for (auto& each : many) each.clear(g_pool);
    EXPECT_EQ(g_pool.available(), avail);
    EXPECT_EQ(in_use(), before);
}

TEST(Reassembly, WorksAcrossSequenceWrap) {
    Q q;
    EXPECT_EQ(put(q, 0x10u, 0x40, 0xffffffb0u), Insert::kHeld);
    EXPECT_EQ(put(q, 0xfffffff0u, 0x20, 0xffffffb0u), Insert::kHeld);
    EXPECT_EQ(q.ranges(), 1u);
    EXPECT_EQ(pop_checked(q, 0xfffffff0u), 0x60u);
}

}  // namespace
}  // namespace terminus::tcp
