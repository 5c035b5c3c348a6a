// The sender's SACK scoreboard (RFC 6675): which bytes above SND.UNA the
// peer has reported holding, and from that which holes are lost, how much
// data is still in the network (pipe) and what to retransmit next
// (NextSeg). Pure sequence arithmetic, tested without DPDK. Private to
// dataplane/.
#pragma once

#include <cstdint>

#include "dataplane/tcp/tcp_options.h"

namespace terminus::tcp {

class SackScoreboard {
  public:
    // RFC 2018 lets a receiver report 3-4 blocks per ACK; the ranges they
    // merge into are bounded here. When a new range finds no room the
    // highest one is forgotten, which only makes us resend data the peer
    // holds, never skip data it lacks.
    static constexpr unsigned kMaxRanges = 8;
    // RFC 6675 2: DupThresh.
    static constexpr unsigned kDupThresh = 3;

    void clear() { n_ = 0; }
    bool empty() const { return n_ == 0; }
    unsigned ranges() const { return n_; }

    // Records the blocks of one ACK. Blocks that are malformed, at or below
    // UNA (D-SACK, RFC 2883) or beyond MAX (SND.MAX) are ignored, so a
    // hostile peer cannot make us skip data we never sent. Returns the
    // number of bytes newly reported.
    uint32_t update(const SackBlock* blocks, unsigned n, uint32_t una, uint32_t max);
    // The cumulative ACK moved to UNA: forgets what lies below it.
    void advance(uint32_t una);

    // One past the highest byte reported (RFC 6675's HighACK side of the
    // scoreboard); only meaningful when not empty.
    uint32_t high_sacked() const { return n_ ? r_[n_ - 1].end : 0; }
    bool is_sacked(uint32_t seq) const;
    // One past the reported range that holds SEQ, or SEQ when none does:
    // where a resend from SEQ has something the peer lacks.
    uint32_t skip_sacked(uint32_t seq) const;
    // Bytes reported above SEQ.
    uint32_t sacked_above(uint32_t seq) const;
    // RFC 6675 IsLost(SeqNum): DupThresh discontiguous SACKed segments or
    // more than (DupThresh - 1) * SMSS SACKed bytes above SEQ.
    bool is_lost(uint32_t seq, uint32_t smss) const;
    // RFC 6675 SetPipe(): the bytes between UNA and MAX (SND.MAX) that are
    // neither SACKed nor presumed lost, plus those retransmitted below
    // HIGH_RXT (one past the highest retransmitted byte).
    uint32_t pipe(uint32_t una, uint32_t max, uint32_t high_rxt, uint32_t smss) const;
    // RFC 6675 NextSeg() rules (1) (LOST_ONLY) and (3): the first unSACKed
    // range at or above HIGH_RXT and UNA, below the highest SACKed byte,
    // that is presumed lost (rule 1) or not (rule 3); at most SMSS bytes.
    bool next_hole(uint32_t una, uint32_t high_rxt, uint32_t smss, bool lost_only, uint32_t& seq,
                   uint32_t& len) const;

  private:
    struct Range {
        uint32_t start;
        uint32_t end;  // one past
    };
    void insert(uint32_t start, uint32_t end);

    Range r_[kMaxRanges];  // sorted, disjoint, not adjacent
    uint8_t n_ = 0;
};

}  // namespace terminus::tcp
