// Out-of-order segments of one connection, held until the gap before them
// fills, with the SACK blocks that describe them (RFC 2018). Bounded in
// segments and bytes, so a peer that sprays segments costs at most that.
// Segments are (sequence, length, buffer, offset): overlaps are trimmed by
// moving the offset, never by touching the buffer, so this is tested
// without DPDK.
#pragma once

#include <cstdint>

#include "dataplane/tcp/tcp_options.h"

struct rte_mbuf;

namespace terminus::tcp {

struct HeldSegment {
    uint32_t seq = 0;
    uint32_t len = 0;
    rte_mbuf* buf = nullptr;
    uint32_t offset = 0;  // of the first held byte in BUF's data
};

class ReassemblyQueue {
  public:
    static constexpr unsigned kMaxSegments = 32;

    enum class Insert {
        kHeld,       // kept (perhaps trimmed); the queue owns BUF now
        kDuplicate,  // nothing new in it; the caller frees BUF
        kFull,       // no room; the caller frees BUF (and counts it)
    };

    // Adds bytes [SEQ, SEQ+LEN) found at OFFSET in BUF. RCV_NXT: data
    // before it is already delivered. MAX_BYTES bounds what is held.
    Insert insert(uint32_t seq, uint32_t len, rte_mbuf* buf, uint32_t offset, uint32_t rcv_nxt,
                  uint32_t max_bytes);

    // The next in-order piece at RCV_NXT, or false. Removes it.
    bool pop(uint32_t rcv_nxt, HeldSegment& out);

    // Buffers no longer needed (fully overtaken by RCV_NXT), up to MAX;
    // returns how many were written to OUT.
    unsigned drop_before(uint32_t rcv_nxt, rte_mbuf** out, unsigned max);

    // SACK blocks, the one holding the most recent arrival first (RFC 2018
    // 4), at most MAX.
    unsigned sack_blocks(SackBlock* out, unsigned max) const;

    unsigned segments() const { return n_; }
    uint32_t bytes() const { return bytes_; }
    bool empty() const { return n_ == 0; }

    // Every held buffer, for freeing when the connection ends.
    unsigned release_all(rte_mbuf** out, unsigned max);

  private:
    void erase(unsigned i);

    HeldSegment seg_[kMaxSegments];
    unsigned n_ = 0;
    uint32_t bytes_ = 0;
    uint32_t last_seq_ = 0;  // start of the most recent arrival
    bool has_last_ = false;
};

}  // namespace terminus::tcp
