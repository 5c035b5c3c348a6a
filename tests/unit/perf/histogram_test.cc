// The load generator's latency histogram: bucket edges and quantiles.
#include "perf/loadgen/histogram.h"

#include <gtest/gtest.h>

namespace terminus::loadgen {
namespace {

TEST(Histogram, EveryValueLiesInsideItsBucket) {
    for (uint64_t v = 0; v < (uint64_t{1} << 30); v = v < 200 ? v + 1 : v + v / 7) {
        const unsigned i = Histogram::index(v);
        EXPECT_GE(Histogram::upper(i), v) << v;
        if (i > 0) {
            EXPECT_LT(Histogram::upper(i - 1), v) << v;
        }
    }
}

TEST(Histogram, SmallValuesAreExact) {
    Histogram h;
    for (uint64_t v = 1; v <= 50; ++v) h.record(v);
    EXPECT_EQ(h.quantile(0.5), 25u);
    EXPECT_EQ(h.quantile(1.0), 50u);
    EXPECT_EQ(h.count(), 50u);
    EXPECT_DOUBLE_EQ(h.mean(), 25.5);
}

TEST(Histogram, QuantilesWithinTwoPercent) {
    Histogram h;
    for (uint64_t v = 1; v <= 100000; ++v) h.record(v);
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
        const double want = q * 100000;
        EXPECT_NEAR(static_cast<double>(h.quantile(q)), want, want * 0.02) << q;
    }
    EXPECT_EQ(h.max(), 100000u);
}

TEST(Histogram, MergeAddsCounts) {
    Histogram a, b;
    a.record(10);
    b.record(1000);
    b.record(2000);
    a.merge(b);
    EXPECT_EQ(a.count(), 3u);
    EXPECT_EQ(a.max(), 2000u);
    EXPECT_EQ(a.quantile(0.0), 10u);
}

TEST(Histogram, EmptyReportsZero) {
    Histogram h;
    EXPECT_EQ(h.quantile(0.99), 0u);
    EXPECT_EQ(h.mean(), 0.0);
}

}  // namespace
}  // namespace terminus::loadgen
