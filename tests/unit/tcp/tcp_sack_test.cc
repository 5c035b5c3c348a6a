// The SACK scoreboard (RFC 6675): merging blocks, hostile blocks, IsLost,
// SetPipe and NextSeg, worked through with 100-byte segments.
#include <gtest/gtest.h>

#include <cstdint>

#include "dataplane/tcp/tcp_sack.h"

namespace terminus::tcp {
namespace {

constexpr uint32_t kMss = 100;

SackBlock blk(uint32_t l, uint32_t r) { return SackBlock{l, r}; }

TEST(SackScoreboard, MergesOverlappingAndAdjacentBlocks) {
    SackScoreboard sb;
    const SackBlock a[] = {blk(1300, 1400), blk(1100, 1200)};
    EXPECT_EQ(sb.update(a, 2, 1000, 2000), 200u);
    EXPECT_EQ(sb.ranges(), 2u);
    const SackBlock b[] = {blk(1200, 1300)};  // fills the gap between them
    EXPECT_EQ(sb.update(b, 1, 1000, 2000), 100u);
    EXPECT_EQ(sb.ranges(), 1u);
    EXPECT_TRUE(sb.is_sacked(1100));
    EXPECT_TRUE(sb.is_sacked(1399));
    EXPECT_FALSE(sb.is_sacked(1400));
    EXPECT_FALSE(sb.is_sacked(1099));
    EXPECT_EQ(sb.high_sacked(), 1400u);
    // Reported again: nothing new.
    EXPECT_EQ(sb.update(b, 1, 1000, 2000), 0u);
}

TEST(SackScoreboard, IgnoresBlocksBelowUnaBeyondMaxOrInverted) {
    SackScoreboard sb;
    const SackBlock bad[] = {blk(900, 1000),    // D-SACK of acknowledged data
                             blk(1500, 2100),   // beyond what we sent
                             blk(1300, 1200),   // inverted
                             blk(1200, 1200)};  // empty
    EXPECT_EQ(sb.update(bad, 4, 1000, 2000), 0u);
    EXPECT_TRUE(sb.empty());
    // Straddling UNA: only the part above counts.
    const SackBlock straddle[] = {blk(900, 1100)};
    EXPECT_EQ(sb.update(straddle, 1, 1000, 2000), 100u);
}

TEST(SackScoreboard, AdvanceForgetsWhatTheCumulativeAckCovers) {
    SackScoreboard sb;
    const SackBlock a[] = {blk(1100, 1200), blk(1300, 1500)};
    sb.update(a, 2, 1000, 2000);
    sb.advance(1350);
    EXPECT_EQ(sb.ranges(), 1u);
    EXPECT_FALSE(sb.is_sacked(1349));
    EXPECT_TRUE(sb.is_sacked(1350));
    sb.advance(1500);
    EXPECT_TRUE(sb.empty());
}

TEST(SackScoreboard, KeepsTheLowestRangesWhenFull) {
    SackScoreboard sb;
    for (uint32_t i = 0; i < SackScoreboard::kMaxRanges + 2; ++i) {
        const SackBlock b[] = {blk(1100 + 200 * i, 1200 + 200 * i)};
        sb.update(b, 1, 1000, 10000);
    }
    EXPECT_EQ(sb.ranges(), SackScoreboard::kMaxRanges);
    EXPECT_TRUE(sb.is_sacked(1100));
    EXPECT_FALSE(sb.is_sacked(1100 + 200 * (SackScoreboard::kMaxRanges + 1)));
    // A new low range pushes out the highest.
    const SackBlock low[] = {blk(1000, 1050)};
    sb.update(low, 1, 1000, 10000);
    EXPECT_TRUE(sb.is_sacked(1000));
    EXPECT_EQ(sb.ranges(), SackScoreboard::kMaxRanges);
    EXPECT_FALSE(sb.is_sacked(1100 + 200 * (SackScoreboard::kMaxRanges - 1)));
}

TEST(SackScoreboard, IsLostNeedsThreeSegmentsOrMoreThanTwoMssAbove) {
    SackScoreboard sb;
    const SackBlock two[] = {blk(1100, 1300)};  // two segments above 1000
    sb.update(two, 1, 1000, 2000);
    EXPECT_FALSE(sb.is_lost(1000, kMss));
    const SackBlock three[] = {blk(1300, 1400)};  // now three
    sb.update(three, 1, 1000, 2000);
    EXPECT_TRUE(sb.is_lost(1000, kMss));
    // A hole higher up with a single segment SACKed above it is not.
    const SackBlock later[] = {blk(1500, 1600)};
    sb.update(later, 1, 1000, 2000);
    EXPECT_FALSE(sb.is_lost(1400, kMss));
    // Three small discontiguous segments are enough too.
    SackScoreboard small;
    const SackBlock bits[] = {blk(1100, 1110), blk(1200, 1210), blk(1300, 1310)};
    small.update(bits, 3, 1000, 2000);
    EXPECT_TRUE(small.is_lost(1000, kMss));
}

TEST(SackScoreboard, PipeCountsWhatIsStillInTheNetwork) {
    // Ten segments [1000, 2000) sent; 1000 and 1200 lost, the rest from
    // 1300 to 1700 SACKed; 1700..2000 not reported yet.
    SackScoreboard sb;
    const SackBlock a[] = {blk(1100, 1200), blk(1300, 1700)};
    sb.update(a, 2, 1000, 2000);
    // Holes: [1000,1100) lost (500 SACKed above), [1200,1300) lost (400
    // above), [1700,2000) above every SACK: in flight.
    EXPECT_EQ(sb.pipe(1000, 2000, 1000, kMss), 300u);
    // After retransmitting 1000..1100 it is in the pipe again (rule b).
    EXPECT_EQ(sb.pipe(1000, 2000, 1100, kMss), 400u);
    // And 1200..1300 as well.
    EXPECT_EQ(sb.pipe(1000, 2000, 1300, kMss), 500u);
}

TEST(SackScoreboard, NextHoleWalksLostHolesAboveHighRxt) {
    SackScoreboard sb;
    const SackBlock a[] = {blk(1100, 1200), blk(1300, 1700)};
    sb.update(a, 2, 1000, 2000);
    uint32_t seq = 0, len = 0;
    ASSERT_TRUE(sb.next_hole(1000, 1000, kMss, true, seq, len));
    EXPECT_EQ(seq, 1000u);
    EXPECT_EQ(len, 100u);
    ASSERT_TRUE(sb.next_hole(1000, 1100, kMss, true, seq, len));
    EXPECT_EQ(seq, 1200u);
    EXPECT_EQ(len, 100u);
    EXPECT_FALSE(sb.next_hole(1000, 1300, kMss, true, seq, len));
    // A hole not yet presumed lost is rule (3)'s, not rule (1)'s.
    SackScoreboard one;
    const SackBlock b[] = {blk(1100, 1200)};
    one.update(b, 1, 1000, 2000);
    EXPECT_FALSE(one.next_hole(1000, 1000, kMss, true, seq, len));
    ASSERT_TRUE(one.next_hole(1000, 1000, kMss, false, seq, len));
    EXPECT_EQ(seq, 1000u);
}

TEST(SackScoreboard, LargeHolesAreResentOneSegmentAtATime) {
    SackScoreboard sb;
    const SackBlock a[] = {blk(1500, 1900)};
    sb.update(a, 1, 1000, 2000);
    uint32_t seq = 0, len = 0;
    ASSERT_TRUE(sb.next_hole(1000, 1000, kMss, true, seq, len));
    EXPECT_EQ(seq, 1000u);
    EXPECT_EQ(len, kMss);
    ASSERT_TRUE(sb.next_hole(1000, 1450, kMss, true, seq, len));
    EXPECT_EQ(seq, 1450u);
    EXPECT_EQ(len, 50u);
}

TEST(SackScoreboard, WorksAcrossSequenceWrap) {
    SackScoreboard sb;
    const uint32_t una = 0xffffff00u;
    const SackBlock a[] = {blk(una + 0x100, una + 0x400)};  // wraps past 0
    EXPECT_EQ(sb.update(a, 1, una, una + 0x1000), 0x300u);
    EXPECT_TRUE(sb.is_sacked(0x10));
    EXPECT_TRUE(sb.is_lost(una, kMss));
    uint32_t seq = 0, len = 0;
    ASSERT_TRUE(sb.next_hole(una, una, kMss, true, seq, len));
    EXPECT_EQ(seq, una);
}

}  // namespace
}  // namespace terminus::tcp
