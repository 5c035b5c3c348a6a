// Retransmission timeout (RFC 6298): smoothed RTT and variance from
// samples, exponential back-off, and Karn's rule (RFC 6298 3: no samples
// from retransmitted segments unless timestamps tell them apart, RFC 7323
// 4.2). Times are in microseconds.
#pragma once

#include <cstdint>

namespace terminus::tcp {

struct RtoLimits {
    uint64_t initial_us = 1'000'000;  // RFC 6298 2.1
    uint64_t min_us = 200'000;        // Linux's floor; RFC 6298 2.4 says 1 s
    uint64_t max_us = 60'000'000;     // RFC 6298 2.5: at least 60 s
};

class RttEstimator {
  public:
    explicit RttEstimator(const RtoLimits& limits = {}) : limits_(limits), rto_(limits.initial_us) {}

    // A round-trip measurement (RFC 6298 2.2 and 2.3).
    void sample(uint64_t rtt_us);
    // The retransmission timer expired: double the RTO (5.5), up to max.
    void back_off();
    // New data was acknowledged after a back-off: the backed-off value
    // stays until a fresh sample arrives (5.7), nothing to do but say so.

    uint64_t rto_us() const { return rto_; }
    uint64_t srtt_us() const { return srtt_; }
    uint64_t rttvar_us() const { return rttvar_; }
    bool has_sample() const { return has_sample_; }
    unsigned backoffs() const { return backoffs_; }

  private:
    void clamp();

    RtoLimits limits_;
    uint64_t srtt_ = 0;
    uint64_t rttvar_ = 0;
    uint64_t rto_;
    bool has_sample_ = false;
    unsigned backoffs_ = 0;
};

}  // namespace terminus::tcp
