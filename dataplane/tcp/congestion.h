// Congestion control, behind one interface because two real algorithms
// implement it and "tcp_congestion" picks one: NewReno (RFC 5681 and RFC
// 6582's fast recovery) and CUBIC (RFC 9438). Windows are in bytes.
#pragma once

#include <cstdint>

namespace terminus::tcp {

class CongestionControl {
  public:
    virtual ~CongestionControl() = default;

    // NEWLY_ACKED bytes were acknowledged (outside recovery). NOW_US and
    // the smoothed RTT feed CUBIC's clock.
    virtual void on_ack(uint32_t newly_acked, uint64_t now_us, uint64_t srtt_us) = 0;
    // Three duplicate ACKs or SACK-detected loss: enter fast recovery.
    // FLIGHT is the data outstanding (RFC 5681 eq. 4 uses FlightSize).
    virtual void on_loss(uint32_t flight, uint64_t now_us) = 0;
    // The retransmission timer expired (RFC 5681 3.1 eq. 4, cwnd = 1 MSS).
    virtual void on_timeout(uint32_t flight, uint64_t now_us) = 0;
    // Fast recovery ended with a full ACK (RFC 6582 3.2 step 3).
    virtual void on_recovery_end() = 0;

    virtual uint32_t cwnd() const = 0;
    virtual uint32_t ssthresh() const = 0;
    virtual const char* name() const = 0;
};

// RFC 5681 3.1: IW = min(10*MSS... RFC 6928) — Terminus uses RFC 6928's
// initial window of 10 segments, as Linux does.
constexpr uint32_t kInitialWindowSegments = 10;

class NewReno final : public CongestionControl {
  public:
    explicit NewReno(uint32_t mss);
    void on_ack(uint32_t newly_acked, uint64_t now_us, uint64_t srtt_us) override;
    void on_loss(uint32_t flight, uint64_t now_us) override;
    void on_timeout(uint32_t flight, uint64_t now_us) override;
    void on_recovery_end() override;
    uint32_t cwnd() const override { return cwnd_; }
    uint32_t ssthresh() const override { return ssthresh_; }
    const char* name() const override { return "newreno"; }

  private:
    uint32_t mss_;
    uint32_t cwnd_;
    uint32_t ssthresh_ = UINT32_MAX;
    uint32_t bytes_acked_ = 0;  // appropriate byte counting in avoidance
    bool in_recovery_ = false;
};

class Cubic final : public CongestionControl {
  public:
    explicit Cubic(uint32_t mss);
    void on_ack(uint32_t newly_acked, uint64_t now_us, uint64_t srtt_us) override;
    void on_loss(uint32_t flight, uint64_t now_us) override;
    void on_timeout(uint32_t flight, uint64_t now_us) override;
    void on_recovery_end() override;
    uint32_t cwnd() const override { return cwnd_; }
    uint32_t ssthresh() const override { return ssthresh_; }
    const char* name() const override { return "cubic"; }

    // RFC 9438 4.2: W_cubic(t) in segments, exposed for tests.
    double w_cubic(double t_seconds) const;
    double k() const { return k_; }

  private:
    void start_epoch(uint64_t now_us);

    uint32_t mss_;
    uint32_t cwnd_;
    uint32_t ssthresh_ = UINT32_MAX;
    bool in_recovery_ = false;
    // RFC 9438 state, windows in segments.
    double w_max_ = 0;
    double k_ = 0;
    double w_est_ = 0;
    double cwnd_epoch_ = 0;  // cwnd at the start of the epoch
    uint64_t epoch_start_us_ = 0;
    bool epoch_valid_ = false;
    uint32_t acked_in_ca_ = 0;
};

}  // namespace terminus::tcp
