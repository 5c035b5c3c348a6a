// RFC 6298's retransmission timeout, with its arithmetic checked by hand.
#include <gtest/gtest.h>

#include "dataplane/tcp/tcp_rtt.h"

namespace terminus::tcp {
namespace {

TEST(RttEstimator, StartsAtOneSecond) {
    RttEstimator e;
    EXPECT_EQ(e.rto_us(), 1'000'000u);
    EXPECT_FALSE(e.has_sample());
}

TEST(RttEstimator, FirstSampleSetsSrttAndHalfVariance) {
    RttEstimator e;
    e.sample(100'000);
    EXPECT_EQ(e.srtt_us(), 100'000u);
    EXPECT_EQ(e.rttvar_us(), 50'000u);
    EXPECT_EQ(e.rto_us(), 300'000u);  // SRTT + 4*RTTVAR
}

TEST(RttEstimator, LaterSamplesAreSmoothedVarianceFirst) {
    RttEstimator e;
    e.sample(100'000);
    e.sample(200'000);
    // RTTVAR = 3/4*50000 + 1/4*|100000-200000| = 62500; SRTT = 7/8*100000 + 1/8*200000.
    EXPECT_EQ(e.rttvar_us(), 62'500u);
    EXPECT_EQ(e.srtt_us(), 112'500u);
    EXPECT_EQ(e.rto_us(), 112'500u + 4 * 62'500u);
}

TEST(RttEstimator, RtoHasAFloor) {
    RttEstimator e;
    e.sample(1'000);
    EXPECT_EQ(e.rto_us(), 200'000u);
}

TEST(RttEstimator, BackOffDoublesUpToTheCeiling) {
    RttEstimator e;
    e.sample(100'000);
    e.back_off();
    EXPECT_EQ(e.rto_us(), 600'000u);
    EXPECT_EQ(e.backoffs(), 1u);
    for (int i = 0; i < 20; ++i) e.back_off();
    EXPECT_EQ(e.rto_us(), 60'000'000u);
}

TEST(RttEstimator, FreshSampleEndsTheBackOff) {
    RttEstimator e;
    e.sample(100'000);
    e.back_off();
    e.back_off();
    e.sample(100'000);
    EXPECT_EQ(e.backoffs(), 0u);
    EXPECT_LT(e.rto_us(), 600'000u);
}

}  // namespace
}  // namespace terminus::tcp
