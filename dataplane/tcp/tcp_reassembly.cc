#include "dataplane/tcp/tcp_reassembly.h"

#include "dataplane/tcp/tcp_types.h"

namespace terminus::tcp {

void ReassemblyQueue::erase(unsigned i) {
    bytes_ -= seg_[i].len;
    for (unsigned j = i + 1; j < n_; ++j) seg_[j - 1] = seg_[j];
    --n_;
}

ReassemblyQueue::Insert ReassemblyQueue::insert(uint32_t seq, uint32_t len, rte_mbuf* buf,
                                                uint32_t offset, uint32_t rcv_nxt,
                                                uint32_t max_bytes) {
    const uint32_t arrived = seq;
    uint32_t end = seq + len;
    // Bytes before RCV_NXT were delivered already.
    if (seq_lt(seq, rcv_nxt)) seq = rcv_nxt;
    if (seq_geq(seq, end)) return Insert::kDuplicate;
    // Keep the first part of the segment that fills a gap: from the first
    // byte nobody holds to the next held segment. One buffer is one entry;
    // what lies beyond that gap comes again (and SACK says what is here).
    unsigned i = 0;
    for (; i < n_; ++i) {
        const uint32_t s_end = seg_[i].seq + seg_[i].len;
        if (seq_leq(s_end, seq)) continue;               // entirely before
        if (seq_leq(seg_[i].seq, seq)) {                 // covers our front
            seq = s_end;
            if (seq_geq(seq, end)) {
                last_seq_ = seg_[i].seq;
                has_last_ = true;
                return Insert::kDuplicate;
            }
            continue;
        }
        if (seq_lt(seg_[i].seq, end)) end = seg_[i].seq;  // stop at the next one
        break;
    }
    const uint32_t keep = end - seq;
    if (n_ == kMaxSegments || bytes_ + keep > max_bytes) return Insert::kFull;
    for (unsigned j = n_; j > i; --j) seg_[j] = seg_[j - 1];
    seg_[i] = HeldSegment{seq, keep, buf, offset + (seq - arrived)};
    ++n_;
    bytes_ += keep;
    last_seq_ = seq;
    has_last_ = true;
    return Insert::kHeld;
}

bool ReassemblyQueue::pop(uint32_t rcv_nxt, HeldSegment& out) {
    // Stale data is removed with drop_before() first.
    if (n_ == 0 || seg_[0].seq != rcv_nxt) return false;
    out = seg_[0];
    erase(0);
    return true;
}

unsigned ReassemblyQueue::drop_before(uint32_t rcv_nxt, rte_mbuf** out, unsigned max) {
    unsigned n = 0;
    while (n_ > 0 && n < max && seq_lt(seg_[0].seq, rcv_nxt)) {
        HeldSegment& s = seg_[0];
        const uint32_t end = s.seq + s.len;
        if (seq_leq(end, rcv_nxt)) {
            out[n++] = s.buf;
            erase(0);
        } else {
            const uint32_t skip = rcv_nxt - s.seq;
            s.seq += skip;
            s.offset += skip;
            s.len -= skip;
            bytes_ -= skip;
            break;
        }
    }
    return n;
}

unsigned ReassemblyQueue::sack_blocks(SackBlock* out, unsigned max) const {
    if (n_ == 0 || max == 0) return 0;
    // Merge adjacent segments into blocks.
    SackBlock blocks[kMaxSegments];
    unsigned nb = 0;
    unsigned recent = 0;
    for (unsigned i = 0; i < n_; ++i) {
        const uint32_t end = seg_[i].seq + seg_[i].len;
        if (nb > 0 && blocks[nb - 1].right == seg_[i].seq) {
            blocks[nb - 1].right = end;
        } else {
            blocks[nb++] = SackBlock{seg_[i].seq, end};
        }
        if (has_last_ && seq_in(last_seq_, seg_[i].seq, end)) recent = nb - 1;
    }
    unsigned n = 0;
    out[n++] = blocks[recent];
    // Then the others, highest first (most likely to be recent).
    for (unsigned k = nb; k-- > 0 && n < max;) {
        if (k != recent) out[n++] = blocks[k];
    }
    return n;
}

unsigned ReassemblyQueue::release_all(rte_mbuf** out, unsigned max) {
    unsigned n = 0;
    while (n_ > 0 && n < max) {
        out[n++] = seg_[n_ - 1].buf;
        bytes_ -= seg_[n_ - 1].len;
        --n_;
    }
    return n;
}

}  // namespace terminus::tcp
