// A latency histogram with a fixed footprint (no allocation while
// recording): values below 64 exactly, above in 64 sub-buckets per power
// of two (under 1.6% error), as HdrHistogram lays them out.
#pragma once

#include <array>
#include <cstdint>

namespace terminus::loadgen {

class Histogram {
  public:
    static constexpr unsigned kSub = 64;
    static constexpr unsigned kBuckets = kSub + kSub * 40;  // up to 2^46 µs

    void record(uint64_t v) {
        ++count_[index(v)];
        ++n_;
        sum_ += v;
        if (v > max_) max_ = v;
    }
    void merge(const Histogram& o) {
        for (unsigned i = 0; i < kBuckets; ++i) count_[i] += o.count_[i];
        n_ += o.n_;
        sum_ += o.sum_;
        if (o.max_ > max_) max_ = o.max_;
    }
    uint64_t count() const { return n_; }
    uint64_t max() const { return max_; }
    double mean() const { return n_ ? static_cast<double>(sum_) / static_cast<double>(n_) : 0; }
    // The smallest value V such that a fraction Q of the samples are <= V
    // (the upper edge of its bucket).
    uint64_t quantile(double q) const {
        if (n_ == 0) return 0;
        const auto rank = static_cast<uint64_t>(q * static_cast<double>(n_ - 1)) + 1;
        uint64_t seen = 0;
        for (unsigned i = 0; i < kBuckets; ++i) {
            seen += count_[i];
            if (seen >= rank) {
                const uint64_t edge = upper(i);
                return edge < max_ ? edge : max_;
            }
        }
        return max_;
    }

    static unsigned index(uint64_t v) {
        if (v < kSub) return static_cast<unsigned>(v);
        const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));  // >= 6
        const unsigned shift = msb - 6;  // v >> shift is in [64, 128)
        const uint64_t i = kSub + uint64_t{shift} * kSub + ((v >> shift) - kSub);
        return i < kBuckets ? static_cast<unsigned>(i) : kBuckets - 1;
    }
    // The largest value bucket I holds.
    static uint64_t upper(unsigned i) {
        if (i < kSub) return i;
        const unsigned shift = (i - kSub) / kSub;
        const uint64_t m = (i - kSub) % kSub + kSub;
        return ((m + 1) << shift) - 1;
    }

  private:
    std::array<uint32_t, kBuckets> count_{};
    uint64_t n_ = 0;
    uint64_t sum_ = 0;
    uint64_t max_ = 0;
};

}  // namespace terminus::loadgen
