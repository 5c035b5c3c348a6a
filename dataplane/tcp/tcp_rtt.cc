#include "dataplane/tcp/tcp_rtt.h"

namespace terminus::tcp {

namespace {
// RFC 6298 2: K = 4, alpha = 1/8, beta = 1/4, G = the clock granularity
// (one microsecond here, negligible).
constexpr uint64_t kK = 4;
}  // namespace

void RttEstimator::sample(uint64_t r) {
    if (!has_sample_) {
        // 2.2: SRTT <- R, RTTVAR <- R/2.
        srtt_ = r;
        rttvar_ = r / 2;
        has_sample_ = true;
    } else {
        // 2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, then
        //      SRTT <- 7/8 SRTT + 1/8 R' (RTTVAR first, with the old SRTT).
        const uint64_t delta = srtt_ > r ? srtt_ - r : r - srtt_;
        rttvar_ = (3 * rttvar_ + delta) / 4;
        srtt_ = (7 * srtt_ + r) / 8;
    }
    rto_ = srtt_ + (kK * rttvar_ > 1 ? kK * rttvar_ : 1);
    backoffs_ = 0;
    clamp();
}

void RttEstimator::back_off() {
    rto_ *= 2;
    ++backoffs_;
    clamp();
}

void RttEstimator::clamp() {
    if (rto_ < limits_.min_us) rto_ = limits_.min_us;
    if (rto_ > limits_.max_us) rto_ = limits_.max_us;
}

}  // namespace terminus::tcp
