// The out-of-order queue: gaps, overlaps, bounds and SACK blocks. Buffers
// are opaque to it, so fake pointers stand in for mbufs.
#include <gtest/gtest.h>

#include <cstdint>

#include "dataplane/tcp/tcp_reassembly.h"

namespace terminus::tcp {
namespace {

rte_mbuf* buf(uintptr_t n) { return reinterpret_cast<rte_mbuf*>(n * 64); }
using Insert = ReassemblyQueue::Insert;

TEST(Reassembly, HoldsSegmentsAfterAGapAndReleasesThemInOrder) {
    ReassemblyQueue q;
    EXPECT_EQ(q.insert(200, 100, buf(2), 0, 100, 1 << 20), Insert::kHeld);
    EXPECT_EQ(q.insert(300, 100, buf(3), 0, 100, 1 << 20), Insert::kHeld);
    HeldSegment s;
    EXPECT_FALSE(q.pop(100, s));  // the gap [100, 200) is still open
    EXPECT_TRUE(q.pop(200, s));
    EXPECT_EQ(s.buf, buf(2));
    EXPECT_TRUE(q.pop(300, s));
    EXPECT_EQ(s.buf, buf(3));
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.bytes(), 0u);
}

TEST(Reassembly, ExactDuplicateIsReported) {
    ReassemblyQueue q;
    q.insert(200, 100, buf(2), 0, 100, 1 << 20);
    EXPECT_EQ(q.insert(200, 100, buf(9), 0, 100, 1 << 20), Insert::kDuplicate);
    EXPECT_EQ(q.insert(220, 50, buf(9), 0, 100, 1 << 20), Insert::kDuplicate);
    EXPECT_EQ(q.segments(), 1u);
}

TEST(Reassembly, DataBeforeRcvNxtIsTrimmed) {
    ReassemblyQueue q;
    EXPECT_EQ(q.insert(50, 100, buf(1), 0, 100, 1 << 20), Insert::kHeld);
    HeldSegment s;
    ASSERT_TRUE(q.pop(100, s));
    EXPECT_EQ(s.seq, 100u);
    EXPECT_EQ(s.len, 50u);
    EXPECT_EQ(s.offset, 50u);
    EXPECT_EQ(q.insert(10, 50, buf(1), 0, 100, 1 << 20), Insert::kDuplicate);
}

TEST(Reassembly, OverlapWithAHeldSegmentKeepsOnlyNewBytes) {
    ReassemblyQueue q;
    q.insert(200, 100, buf(2), 0, 100, 1 << 20);
    // [250, 350): the first 50 bytes are held already.
    EXPECT_EQ(q.insert(250, 100, buf(3), 0, 100, 1 << 20), Insert::kHeld);
    HeldSegment s;
    ASSERT_TRUE(q.pop(200, s));
    ASSERT_TRUE(q.pop(300, s));
    EXPECT_EQ(s.buf, buf(3));
    EXPECT_EQ(s.len, 50u);
    EXPECT_EQ(s.offset, 50u);
}

TEST(Reassembly, SegmentSpanningAHeldOneKeepsTheFirstGap) {
    ReassemblyQueue q;
    q.insert(300, 100, buf(3), 0, 100, 1 << 20);
    // [200, 500) covers [300, 400): keep [200, 300), the rest comes again.
    EXPECT_EQ(q.insert(200, 300, buf(2), 0, 100, 1 << 20), Insert::kHeld);
    HeldSegment s;
    ASSERT_TRUE(q.pop(200, s));
    EXPECT_EQ(s.len, 100u);
    ASSERT_TRUE(q.pop(300, s));
    EXPECT_EQ(s.buf, buf(3));
}

TEST(Reassembly, BoundedInBytesAndSegments) {
    ReassemblyQueue q;
    EXPECT_EQ(q.insert(200, 100, buf(1), 0, 100, 150), Insert::kHeld);
    EXPECT_EQ(q.insert(400, 100, buf(2), 0, 100, 150), Insert::kFull);
    ReassemblyQueue r;
    for (unsigned i = 0; i < ReassemblyQueue::kMaxSegments; ++i) {
        EXPECT_EQ(r.insert(1000 + 20 * i, 10, buf(i + 1), 0, 100, 1 << 20), Insert::kHeld);
    }
    EXPECT_EQ(r.insert(5000, 10, buf(99), 0, 100, 1 << 20), Insert::kFull);
}

TEST(Reassembly, SackBlocksMergeNeighboursAndPutTheLatestFirst) {
    ReassemblyQueue q;
    q.insert(200, 100, buf(1), 0, 100, 1 << 20);
    q.insert(300, 100, buf(2), 0, 100, 1 << 20);  // merges with [200, 300)
    q.insert(600, 100, buf(3), 0, 100, 1 << 20);
    q.insert(900, 100, buf(4), 0, 100, 1 << 20);
    q.insert(650, 100, buf(5), 0, 100, 1 << 20);  // latest: extends [600, 700)
    SackBlock b[4];
    ASSERT_EQ(q.sack_blocks(b, 4), 3u);
    EXPECT_EQ(b[0].left, 600u);
    EXPECT_EQ(b[0].right, 750u);
    EXPECT_EQ(b[1].left, 900u);
    EXPECT_EQ(b[2].left, 200u);
    EXPECT_EQ(b[2].right, 400u);
    EXPECT_EQ(q.sack_blocks(b, 1), 1u);
}

TEST(Reassembly, DropBeforeFreesOvertakenBuffers) {
    ReassemblyQueue q;
    q.insert(200, 100, buf(1), 0, 100, 1 << 20);
    q.insert(400, 100, buf(2), 0, 100, 1 << 20);
    rte_mbuf* out[4];
    // A retransmission filled everything up to 450.
    ASSERT_EQ(q.drop_before(450, out, 4), 1u);
    EXPECT_EQ(out[0], buf(1));
    HeldSegment s;
    ASSERT_TRUE(q.pop(450, s));
    EXPECT_EQ(s.len, 50u);
    EXPECT_EQ(s.offset, 50u);
}

TEST(Reassembly, WorksAcrossSequenceWrap) {
    ReassemblyQueue q;
    EXPECT_EQ(q.insert(0xffffffb0u + 0x60, 0x40, buf(2), 0, 0xffffffb0u, 1 << 20), Insert::kHeld);
    EXPECT_EQ(q.insert(0xfffffff0u, 0x20, buf(1), 0, 0xffffffb0u, 1 << 20), Insert::kHeld);
    HeldSegment s;
    ASSERT_TRUE(q.pop(0xfffffff0u, s));
    EXPECT_EQ(s.buf, buf(1));
    ASSERT_TRUE(q.pop(0x10u, s));
    EXPECT_EQ(s.buf, buf(2));
}

TEST(Reassembly, ReleaseAllReturnsEveryBuffer) {
    ReassemblyQueue q;
    q.insert(200, 10, buf(1), 0, 100, 1 << 20);
    q.insert(300, 10, buf(2), 0, 100, 1 << 20);
    rte_mbuf* out[4];
    EXPECT_EQ(q.release_all(out, 4), 2u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.bytes(), 0u);
}

}  // namespace
}  // namespace terminus::tcp
