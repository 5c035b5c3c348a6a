#include "dataplane/tcp/tcp_reassembly.h"

#include <rte_mbuf.h>

#include "dataplane/tcp/tcp_types.h"

namespace terminus::tcp {

namespace {

// What one buffer costs against the bound: its whole data room and header.
uint32_t cost(const rte_mbuf* s) { return static_cast<uint32_t>(s->buf_len) + sizeof(rte_mbuf); }

void free_seg(rte_mbuf* s) {
    s->next = nullptr;
    s->nb_segs = 1;
    rte_pktmbuf_free_seg(s);
}

// Frees the chain from S on; returns what it cost.
uint32_t free_chain(rte_mbuf* s) {
    uint32_t c = 0;
    while (s) {
        rte_mbuf* next = s->next;
        c += cost(s);
        free_seg(s);
        s = next;
    }
    return c;
}

// Trims the chain M to LEN bytes from OFFSET, freeing the segments left
// empty; returns the new head and sets TAIL and the chain's COST.
rte_mbuf* keep(rte_mbuf* m, uint32_t offset, uint32_t len, rte_mbuf*& tail, uint32_t& c) {
    while (m && offset >= m->data_len) {
        offset -= m->data_len;
        rte_mbuf* next = m->next;
        free_seg(m);
        m = next;
    }
    rte_mbuf* head = m;
    c = 0;
    tail = nullptr;
    if (!m) return nullptr;
    m->data_off = static_cast<uint16_t>(m->data_off + offset);
    m->data_len = static_cast<uint16_t>(m->data_len - offset);
    for (rte_mbuf* s = m; s; s = s->next) {
        c += cost(s);
        tail = s;
        if (s->data_len >= len) {
            s->data_len = static_cast<uint16_t>(len);
            free_chain(s->next);
            s->next = nullptr;
            break;
        }
        len -= s->data_len;
    }
    return head;
}

// Drops the first N bytes of a range's chain; returns the cost freed.
uint32_t drop_front(rte_mbuf*& head, rte_mbuf*& tail, uint32_t n) {
    uint32_t c = 0;
    while (head && n >= head->data_len) {
        n -= head->data_len;
        rte_mbuf* next = head->next;
        c += cost(head);
        free_seg(head);
        head = next;
    }
    if (!head) {
        tail = nullptr;
        return c;
    }
    head->data_off = static_cast<uint16_t>(head->data_off + n);
    head->data_len = static_cast<uint16_t>(head->data_len - n);
    return c;
}

uint32_t chain_cost(const rte_mbuf* s) {
    uint32_t c = 0;
    for (; s; s = s->next) c += cost(s);
    return c;
}

}  // namespace

struct OooBlock {
    OooRange r[ReassemblyQueue::kMaxRanges];
    OooBlock* next_free;
};

OooPool::OooPool(unsigned blocks) : blocks_(new OooBlock[blocks]) {
    for (unsigned i = blocks; i-- > 0;) put(&blocks_[i]);
}

OooPool::~OooPool() { delete[] blocks_; }

OooBlock* OooPool::get() {
    OooBlock* b = free_;
    if (!b) return nullptr;
    free_ = b->next_free;
    --available_;
    return b;
}

void OooPool::put(OooBlock* b) {
    b->next_free = free_;
    free_ = b;
    ++available_;
}

void ReassemblyQueue::release_if_empty(OooPool& pool) {
    if (n_ != 0 || !block_) return;
    pool.put(block_);
    block_ = nullptr;
    r_ = nullptr;
    has_last_ = false;
}

void ReassemblyQueue::remove(unsigned i, bool free_it) {
    bytes_ -= r_[i].len;
    if (free_it) memory_ -= free_chain(r_[i].head);
    for (unsigned j = i + 1; j < n_; ++j) r_[j - 1] = r_[j];
    --n_;
}

ReassemblyQueue::Insert ReassemblyQueue::insert(OooPool& pool, uint32_t seq, uint32_t len,
                                                rte_mbuf* m, uint32_t offset, uint32_t rcv_nxt,
                                                uint32_t max_memory) {
    const uint32_t arrived = seq;
    uint32_t end = seq + len;
    // Bytes before RCV_NXT were delivered already.
    if (seq_lt(seq, rcv_nxt)) seq = rcv_nxt;
    if (seq_geq(seq, end)) {
        free_chain(m);
        return Insert::kDuplicate;
    }
    // The first range that ends after SEQ; a range that covers our front
    // moves SEQ past it.
    unsigned i = 0;
    while (i < n_ && seq_leq(r_[i].seq + r_[i].len, seq)) ++i;
    if (i < n_ && seq_leq(r_[i].seq, seq)) {
        seq = r_[i].seq + r_[i].len;
        if (seq_geq(seq, end)) {
            last_seq_ = r_[i].seq;
            has_last_ = true;
            free_chain(m);
            return Insert::kDuplicate;
        }
        ++i;
    }
    // Ranges [i, j) lie wholly inside what arrived and are replaced by it;
    // one that reaches beyond its end cuts it there.
    unsigned j = i;
    uint32_t replaced = 0;
    while (j < n_ && seq_lt(r_[j].seq, end)) {
        if (seq_gt(r_[j].seq + r_[j].len, end)) {
            end = r_[j].seq;
            break;
        }
        replaced += chain_cost(r_[j].head);
        ++j;
    }
    rte_mbuf* tail = nullptr;
    uint32_t c = 0;
    rte_mbuf* head = keep(m, offset + (seq - arrived), end - seq, tail, c);
    if (!head) return Insert::kDuplicate;
    const bool joins_prev = i > 0 && r_[i - 1].seq + r_[i - 1].len == seq;
    const bool joins_next = j < n_ && r_[j].seq == end;
    const unsigned n_after = n_ - (j - i) + 1 - (joins_prev ? 1 : 0) - (joins_next ? 1 : 0);
    if (memory_ - replaced + c > max_memory || n_after > kMaxRanges) {
        free_chain(head);
        return Insert::kFull;
    }
    if (!block_) {
        block_ = pool.get();
        if (!block_) {
            free_chain(head);
            return Insert::kFull;
        }
        r_ = block_->r;
    }
    while (j > i) remove(--j, true);
    last_seq_ = seq;
    has_last_ = true;
    memory_ += c;
    bytes_ += end - seq;
    if (joins_prev) {
        OooRange& p = r_[i - 1];
        p.tail->next = head;
        p.tail = tail;
        p.len += end - seq;
        if (i < n_ && r_[i].seq == p.seq + p.len) {  // and the gap after it closed
            p.tail->next = r_[i].head;
            p.tail = r_[i].tail;
            p.len += r_[i].len;
            for (unsigned k = i + 1; k < n_; ++k) r_[k - 1] = r_[k];
            --n_;
        }
        return Insert::kHeld;
    }
    if (i < n_ && r_[i].seq == end) {
        OooRange& nx = r_[i];
        tail->next = nx.head;
        nx.head = head;
        nx.seq = seq;
        nx.len += end - seq;
        return Insert::kHeld;
    }
    for (unsigned k = n_; k > i; --k) r_[k] = r_[k - 1];
    r_[i] = OooRange{seq, end - seq, head, tail};
    ++n_;
    return Insert::kHeld;
}

bool ReassemblyQueue::pop(OooPool& pool, uint32_t rcv_nxt, rte_mbuf*& chain, uint32_t& len) {
    while (n_ > 0 && seq_leq(r_[0].seq + r_[0].len, rcv_nxt)) remove(0, true);
    if (n_ == 0 || seq_gt(r_[0].seq, rcv_nxt)) {
        release_if_empty(pool);
        return false;
    }
    OooRange& r = r_[0];
    if (seq_lt(r.seq, rcv_nxt)) {
        const uint32_t skip = rcv_nxt - r.seq;
        memory_ -= drop_front(r.head, r.tail, skip);
        r.seq += skip;
        r.len -= skip;
        bytes_ -= skip;
    }
    chain = r.head;
    len = r.len;
    memory_ -= chain_cost(r.head);
    remove(0, false);
    release_if_empty(pool);
    return true;
}

unsigned ReassemblyQueue::sack_blocks(SackBlock* out, unsigned max) const {
    if (n_ == 0 || max == 0) return 0;
    unsigned recent = n_ - 1;
    if (has_last_) {
        for (unsigned i = 0; i < n_; ++i) {
            if (seq_in(last_seq_, r_[i].seq, r_[i].seq + r_[i].len)) recent = i;
        }
    }
    unsigned n = 0;
    out[n++] = SackBlock{r_[recent].seq, r_[recent].seq + r_[recent].len};
    for (unsigned k = n_; k-- > 0 && n < max;) {
        if (k != recent) out[n++] = SackBlock{r_[k].seq, r_[k].seq + r_[k].len};
    }
    return n;
}

void ReassemblyQueue::clear(OooPool& pool) {
    while (n_ > 0) remove(n_ - 1, true);
    release_if_empty(pool);
}

}  // namespace terminus::tcp
