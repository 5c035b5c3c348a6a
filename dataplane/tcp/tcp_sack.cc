#include "dataplane/tcp/tcp_sack.h"

#include "dataplane/tcp/tcp_types.h"

namespace terminus::tcp {

void SackScoreboard::insert(uint32_t start, uint32_t end) {
    // Find the first range that ends at or after START (it may merge).
    unsigned i = 0;
    while (i < n_ && seq_lt(r_[i].end, start)) ++i;
    if (i < n_ && seq_leq(r_[i].start, end)) {
        // Overlaps or touches range i: widen it, then swallow the ranges
        // the widened one now reaches.
        r_[i].start = seq_min(r_[i].start, start);
        r_[i].end = seq_max(r_[i].end, end);
        unsigned j = i + 1;
        while (j < n_ && seq_leq(r_[j].start, r_[i].end)) {
            r_[i].end = seq_max(r_[i].end, r_[j].end);
            ++j;
        }
        const unsigned gone = j - i - 1;
        for (unsigned k = i + 1; k + gone < n_; ++k) r_[k] = r_[k + gone];
        n_ = static_cast<uint8_t>(n_ - gone);
        return;
    }
    // A new range before range i.
    if (n_ == kMaxRanges) {
        if (i == n_) return;  // it would be the highest: forget it
        --n_;                 // forget the highest instead
    }
    for (unsigned k = n_; k > i; --k) r_[k] = r_[k - 1];
    r_[i] = Range{start, end};
    ++n_;
}

uint32_t SackScoreboard::update(const SackBlock* blocks, unsigned n, uint32_t una, uint32_t max) {
    uint32_t before = 0;
    for (unsigned i = 0; i < n_; ++i) before += r_[i].end - r_[i].start;
    for (unsigned b = 0; b < n; ++b) {
        uint32_t left = blocks[b].left;
        const uint32_t right = blocks[b].right;
        if (!seq_lt(left, right) || seq_leq(right, una) || seq_gt(right, max)) continue;
        if (seq_lt(left, una)) left = una;
        insert(left, right);
    }
    uint32_t after = 0;
    for (unsigned i = 0; i < n_; ++i) after += r_[i].end - r_[i].start;
    return after > before ? after - before : 0;
}

void SackScoreboard::advance(uint32_t una) {
    unsigned gone = 0;
    while (gone < n_ && seq_leq(r_[gone].end, una)) ++gone;
    for (unsigned k = 0; k + gone < n_; ++k) r_[k] = r_[k + gone];
    n_ = static_cast<uint8_t>(n_ - gone);
    if (n_ && seq_lt(r_[0].start, una)) r_[0].start = una;
}

bool SackScoreboard::is_sacked(uint32_t seq) const {
    for (unsigned i = 0; i < n_; ++i) {
        if (seq_in(seq, r_[i].start, r_[i].end)) return true;
    }
    return false;
}

uint32_t SackScoreboard::skip_sacked(uint32_t seq) const {
    for (unsigned i = 0; i < n_; ++i) {
        if (seq_in(seq, r_[i].start, r_[i].end)) return r_[i].end;
    }
    return seq;
}

uint32_t SackScoreboard::sacked_above(uint32_t seq) const {
    uint32_t bytes = 0;
    for (unsigned i = 0; i < n_; ++i) {
        if (seq_leq(r_[i].end, seq)) continue;
        bytes += r_[i].end - seq_max(r_[i].start, seq + 1);
    }
    return bytes;
}

bool SackScoreboard::is_lost(uint32_t seq, uint32_t smss) const {
    unsigned ranges_above = 0;
    for (unsigned i = 0; i < n_; ++i) {
        if (seq_gt(r_[i].start, seq)) ++ranges_above;
    }
    return ranges_above >= kDupThresh || sacked_above(seq) > (kDupThresh - 1) * smss;
}

uint32_t SackScoreboard::pipe(uint32_t una, uint32_t max, uint32_t high_rxt, uint32_t smss) const {
    // Walk the holes: within one hole the bytes SACKed above do not
    // change, so IsLost holds for all of it or none of it.
    uint32_t pipe = 0;
    uint32_t at = una;
    for (unsigned i = 0; i <= n_ && seq_lt(at, max); ++i) {
        const uint32_t hole_end = i < n_ ? seq_min(r_[i].start, max) : max;
        if (seq_lt(at, hole_end)) {
            if (i == n_ || !is_lost(at, smss)) pipe += hole_end - at;  // (a)
            if (seq_gt(high_rxt, at)) pipe += seq_min(high_rxt, hole_end) - at;  // (b)
        }
        if (i < n_) at = seq_max(at, r_[i].end);
    }
    return pipe;
}

bool SackScoreboard::next_hole(uint32_t una, uint32_t high_rxt, uint32_t smss, bool lost_only,
                               uint32_t& seq, uint32_t& len) const {
    uint32_t at = una;
    for (unsigned i = 0; i < n_; ++i) {
        const uint32_t hole_end = r_[i].start;
        const uint32_t from = seq_max(at, high_rxt);
        if (seq_lt(from, hole_end) && (!lost_only || is_lost(from, smss))) {
            seq = from;
            len = hole_end - from < smss ? hole_end - from : smss;
            return true;
        }
        at = seq_max(at, r_[i].end);
    }
    return false;
}

}  // namespace terminus::tcp
