// Out-of-order data of one connection, held until the gap before it fills,
// with the SACK blocks that describe it (RFC 2018). Contiguous arrivals
// coalesce into one range (Linux's ofo queue does the same), each range a
// chain of mbufs trimmed to exactly its bytes, so a window with many holes
// costs ranges and a window with one hole costs one. The bound is memory --
// the mbuf buffers held, as Linux counts skb truesize against the receive
// buffer -- not a count of segments; ranges are bounded too, at a number no
// SACK sender tracks beyond. Private to dataplane/.
#pragma once

#include <cstdint>

#include "dataplane/tcp/tcp_options.h"

struct rte_mbuf;

namespace terminus::tcp {

// The ranges of one connection live in a block taken from the stack's
// pool when its first out-of-order segment arrives and given back when the
// gap closes, so an idle connection holds a pointer, not 64 ranges.
struct OooRange {
    uint32_t seq;
    uint32_t len;
    rte_mbuf* head;
    rte_mbuf* tail;
};
struct OooBlock;

class OooPool {
  public:
    explicit OooPool(unsigned blocks);
    ~OooPool();
    OooPool(const OooPool&) = delete;
    OooPool& operator=(const OooPool&) = delete;
    OooBlock* get();  // null when none is left
    void put(OooBlock* b);
    unsigned available() const { return available_; }

  private:
    OooBlock* blocks_;
    OooBlock* free_ = nullptr;
    unsigned available_ = 0;
};

class ReassemblyQueue {
  public:
    static constexpr unsigned kMaxRanges = 64;

    enum class Insert {
        kHeld,       // kept (perhaps trimmed); the queue owns the buffer now
        kDuplicate,  // nothing new in it; freed
        kFull,       // over the memory or range bound, or no block left; freed (count it)
    };

    ReassemblyQueue() = default;
    ReassemblyQueue(const ReassemblyQueue&) = delete;
    ReassemblyQueue& operator=(const ReassemblyQueue&) = delete;

    // Adds bytes [SEQ, SEQ+LEN) found at OFFSET in the mbuf chain M, which
    // the queue takes in every case. RCV_NXT: data before it is already
    // delivered. MAX_MEMORY bounds the buffer bytes held.
    Insert insert(OooPool& pool, uint32_t seq, uint32_t len, rte_mbuf* m, uint32_t offset,
                  uint32_t rcv_nxt, uint32_t max_memory);

    // The bytes from RCV_NXT on, when the first range reaches it (what
    // RCV_NXT overtook is freed first): an mbuf chain holding exactly LEN
    // bytes, the caller's now. False when a gap is still open.
    bool pop(OooPool& pool, uint32_t rcv_nxt, rte_mbuf*& chain, uint32_t& len);

    // SACK blocks, the one holding the most recent arrival first (RFC 2018
    // 4), then the highest first; at most MAX.
    unsigned sack_blocks(SackBlock* out, unsigned max) const;

    unsigned ranges() const { return n_; }
    uint32_t bytes() const { return bytes_; }
    // Buffer bytes held (what MAX_MEMORY bounds).
    uint32_t memory() const { return memory_; }
    bool empty() const { return n_ == 0; }

    // Frees everything held and gives the block back.
    void clear(OooPool& pool);

  private:
    void remove(unsigned i, bool free_chain);
    void release_if_empty(OooPool& pool);

    OooRange* r_ = nullptr;  // the block's ranges: sorted, disjoint, never adjacent
    OooBlock* block_ = nullptr;
    uint8_t n_ = 0;
    bool has_last_ = false;
    uint32_t bytes_ = 0;
    uint32_t memory_ = 0;
    uint32_t last_seq_ = 0;  // start of the most recent arrival
};

}  // namespace terminus::tcp
