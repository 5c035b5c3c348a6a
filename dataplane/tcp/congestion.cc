#include "dataplane/tcp/congestion.h"

#include <algorithm>
#include <cmath>

namespace terminus::tcp {

// ---------------------------------------------------------------------------
// NewReno

NewReno::NewReno(uint32_t mss) : mss_(mss), cwnd_(kInitialWindowSegments * mss) {}

void NewReno::on_ack(uint32_t newly_acked, uint64_t, uint64_t) {
    if (in_recovery_) return;  // RFC 6582: partial ACKs do not grow cwnd
    if (cwnd_ < ssthresh_) {
        // RFC 5681 3.1 slow start, with RFC 3465's limit L = 2*SMSS.
        cwnd_ += std::min(newly_acked, 2 * mss_);
        return;
    }
    // Congestion avoidance: one SMSS per cwnd of acknowledged bytes
    // (RFC 5681 eq. 3 with byte counting).
    bytes_acked_ += newly_acked;
    if (bytes_acked_ >= cwnd_) {
        bytes_acked_ -= cwnd_;
        cwnd_ += mss_;
    }
}

void NewReno::on_loss(uint32_t flight, uint64_t) {
    if (in_recovery_) return;
    // RFC 5681 eq. 4 and 3.2 step 3 (RFC 6582 3.2 step 4).
    ssthresh_ = std::max(flight / 2, 2 * mss_);
    cwnd_ = ssthresh_ + 3 * mss_;
    in_recovery_ = true;
    bytes_acked_ = 0;
}

void NewReno::on_timeout(uint32_t flight, uint64_t) {
    ssthresh_ = std::max(flight / 2, 2 * mss_);
    cwnd_ = mss_;  // RFC 5681 3.1: LW = 1 SMSS
    in_recovery_ = false;
    bytes_acked_ = 0;
}

void NewReno::on_recovery_end() {
    // RFC 6582 3.2 step 3, option (1): deflate to ssthresh.
    if (!in_recovery_) return;
    cwnd_ = ssthresh_;
    in_recovery_ = false;
}

// ---------------------------------------------------------------------------
// CUBIC (RFC 9438)

namespace {
constexpr double kC = 0.4;          // 5: C
constexpr double kBetaCubic = 0.7;  // 4.6: beta_cubic
// 4.3: alpha_cubic for the Reno-friendly region.
constexpr double kAlphaCubic = 3.0 * (1.0 - kBetaCubic) / (1.0 + kBetaCubic);
}  // namespace

Cubic::Cubic(uint32_t mss) : mss_(mss), cwnd_(kInitialWindowSegments * mss) {}

double Cubic::w_cubic(double t) const {
    // 4.2 eq. 1: W_cubic(t) = C*(t-K)^3 + W_max.
    const double d = t - k_;
    return kC * d * d * d + w_max_;
}

void Cubic::start_epoch(uint64_t now_us) {
    epoch_start_us_ = now_us;
    epoch_valid_ = true;
    cwnd_epoch_ = static_cast<double>(cwnd_) / mss_;
    w_est_ = cwnd_epoch_;
    // 4.2 eq. 2: K = cubic_root((W_max - cwnd_epoch)/C), 0 if cwnd is
    // already above W_max.
    k_ = w_max_ > cwnd_epoch_ ? std::cbrt((w_max_ - cwnd_epoch_) / kC) : 0.0;
    acked_in_ca_ = 0;
}

void Cubic::on_ack(uint32_t newly_acked, uint64_t now_us, uint64_t srtt_us) {
    if (in_recovery_) return;
    if (cwnd_ < ssthresh_) {
        cwnd_ += std::min(newly_acked, 2 * mss_);  // slow start as RFC 5681
        return;
    }
    if (!epoch_valid_) start_epoch(now_us);
    const double segs = static_cast<double>(cwnd_) / mss_;
    const double t = static_cast<double>(now_us - epoch_start_us_) / 1e6;
    const double rtt = static_cast<double>(srtt_us) / 1e6;
    // 4.3: the Reno-friendly estimate grows by alpha per RTT.
    w_est_ += kAlphaCubic * (static_cast<double>(newly_acked) / mss_) / segs;
    // 4.4/4.5: aim at W_cubic(t + RTT), bounded to 1.5 cwnd.
    double target = w_cubic(t + rtt);
    target = std::clamp(target, segs, 1.5 * segs);
    double next;
    if (w_cubic(t) < w_est_) {
        next = w_est_;  // Reno-friendly region
    } else {
        // Concave or convex region: cwnd += (target - cwnd)/cwnd per ACKed
        // segment.
        next = segs + (target - segs) * (static_cast<double>(newly_acked) / mss_) / segs;
    }
    if (next > segs) {
        const double bytes = next * mss_;
        cwnd_ = bytes > static_cast<double>(UINT32_MAX / 2) ? UINT32_MAX / 2
                                                            : static_cast<uint32_t>(bytes);
    }
}

void Cubic::on_loss(uint32_t flight, uint64_t) {
    if (in_recovery_) return;
    const double segs = static_cast<double>(cwnd_) / mss_;
    // 4.7 fast convergence: release bandwidth when W_max shrinks.
    w_max_ = segs < w_max_ ? segs * (1.0 + kBetaCubic) / 2.0 : segs;
    // 4.6: ssthresh = cwnd * beta_cubic (flight-size based, floor 2 MSS).
    const uint32_t base = std::max(cwnd_, flight);
    ssthresh_ = std::max(static_cast<uint32_t>(base * kBetaCubic), 2 * mss_);
    cwnd_ = ssthresh_;
    in_recovery_ = true;
    epoch_valid_ = false;
}

void Cubic::on_timeout(uint32_t flight, uint64_t now_us) {
    on_loss(flight, now_us);
    in_recovery_ = false;
    cwnd_ = mss_;  // 4.8: after an RTO, slow start from 1 segment
    epoch_valid_ = false;
}

void Cubic::on_recovery_end() {
    in_recovery_ = false;
    epoch_valid_ = false;
}

}  // namespace terminus::tcp
