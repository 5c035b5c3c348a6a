// NewReno (RFC 5681, RFC 6582) and CUBIC (RFC 9438) window arithmetic.
#include <gtest/gtest.h>

#include <cmath>

#include "dataplane/tcp/congestion.h"

namespace terminus::tcp {
namespace {

constexpr uint32_t kMss = 1000;

TEST(NewReno, StartsWithTenSegments) {
    NewReno r(kMss);
    EXPECT_EQ(r.cwnd(), 10 * kMss);
}

TEST(NewReno, SlowStartGrowsByAckedBytesUpToTwoSegmentsPerAck) {
    NewReno r(kMss);
    r.on_ack(kMss, 0, 0);
    EXPECT_EQ(r.cwnd(), 11 * kMss);
    r.on_ack(5 * kMss, 0, 0);  // a stretch ACK counts for at most 2 SMSS
    EXPECT_EQ(r.cwnd(), 13 * kMss);
}

TEST(NewReno, LossHalvesFlightAndInflatesByThree) {
    NewReno r(kMss);
    r.on_loss(20 * kMss, 0);
    EXPECT_EQ(r.ssthresh(), 10 * kMss);
    EXPECT_EQ(r.cwnd(), 13 * kMss);
    r.on_ack(kMss, 0, 0);  // partial ACKs in recovery do not grow cwnd
    EXPECT_EQ(r.cwnd(), 13 * kMss);
    r.on_recovery_end();
    EXPECT_EQ(r.cwnd(), 10 * kMss);
}

TEST(NewReno, SsthreshNeverBelowTwoSegments) {
    NewReno r(kMss);
    r.on_loss(kMss, 0);
    EXPECT_EQ(r.ssthresh(), 2 * kMss);
}

TEST(NewReno, CongestionAvoidanceAddsOneSegmentPerWindow) {
    NewReno r(kMss);
    r.on_loss(20 * kMss, 0);
    r.on_recovery_end();  // cwnd = ssthresh = 10 segments
    for (int i = 0; i < 9; ++i) r.on_ack(kMss, 0, 0);
    EXPECT_EQ(r.cwnd(), 10 * kMss);
    r.on_ack(kMss, 0, 0);
    EXPECT_EQ(r.cwnd(), 11 * kMss);
}

TEST(NewReno, TimeoutFallsBackToOneSegment) {
    NewReno r(kMss);
    r.on_timeout(40 * kMss, 0);
    EXPECT_EQ(r.cwnd(), kMss);
    EXPECT_EQ(r.ssthresh(), 20 * kMss);
}

// Runs CUBIC in congestion avoidance for SECONDS, one window of ACKs per
// RTT, starting at time START_US.
void run_rtts(Cubic& c, uint64_t& now_us, double seconds, uint64_t rtt_us) {
    const uint64_t end = now_us + static_cast<uint64_t>(seconds * 1e6);
    while (now_us < end) {
        const uint32_t segs = c.cwnd() / kMss;
        for (uint32_t i = 0; i < segs; ++i) c.on_ack(kMss, now_us, rtt_us);
        now_us += rtt_us;
    }
}

TEST(Cubic, LossReducesByBetaAndSetsK) {
    Cubic c(kMss);
    // Grow to 100 segments in slow start.
    while (c.cwnd() < 100 * kMss) c.on_ack(kMss, 0, 100'000);
    const uint32_t before = c.cwnd();
    c.on_loss(before, 0);
    EXPECT_EQ(c.ssthresh(), static_cast<uint32_t>(before * 0.7));
    c.on_recovery_end();
    uint64_t now = 1'000'000;
    c.on_ack(kMss, now, 100'000);  // starts the epoch
    // K = cbrt((W_max - cwnd_epoch) / C).
    const double w_max = static_cast<double>(before) / kMss;
    EXPECT_NEAR(c.k(), std::cbrt((w_max - 0.7 * w_max) / 0.4), 0.05);
    EXPECT_NEAR(c.w_cubic(c.k()), w_max, 1e-9);
}

TEST(Cubic, WindowReturnsToWmaxAroundKThenProbesBeyond) {
    Cubic c(kMss);
    while (c.cwnd() < 100 * kMss) c.on_ack(kMss, 0, 100'000);
    const double w_max = static_cast<double>(c.cwnd()) / kMss;
    c.on_loss(c.cwnd(), 0);
    c.on_recovery_end();
    uint64_t now = 1'000'000;
    c.on_ack(kMss, now, 100'000);
    const double k = c.k();
    run_rtts(c, now, k, 100'000);
    const double at_k = static_cast<double>(c.cwnd()) / kMss;
    EXPECT_GT(at_k, 0.9 * w_max);
    EXPECT_LT(at_k, 1.1 * w_max);
    run_rtts(c, now, k, 100'000);
    EXPECT_GT(static_cast<double>(c.cwnd()) / kMss, 1.05 * w_max);
}

TEST(Cubic, FastConvergenceLowersWmaxWhenLossesComeSooner) {
    Cubic c(kMss);
    while (c.cwnd() < 100 * kMss) c.on_ack(kMss, 0, 100'000);
    c.on_loss(c.cwnd(), 0);  // W_max = 100
    c.on_recovery_end();
    const double cwnd_segs = static_cast<double>(c.cwnd()) / kMss;  // 70
    c.on_loss(c.cwnd(), 0);  // below the old W_max: W_max = 70 * (1 + 0.7) / 2
    c.on_recovery_end();
    uint64_t now = 1'000'000;
    c.on_ack(kMss, now, 100'000);
    EXPECT_NEAR(c.w_cubic(c.k()), cwnd_segs * 0.85, 0.5);
}

TEST(Cubic, TimeoutFallsBackToOneSegment) {
    Cubic c(kMss);
    c.on_timeout(40 * kMss, 0);
    EXPECT_EQ(c.cwnd(), kMss);
}

}  // namespace
}  // namespace terminus::tcp
