#include "dataplane/tcp/timer_wheel.h"

namespace terminus::tcp {

TimerWheel::TimerWheel(uint32_t capacity, uint64_t, uint32_t slots) {
    uint32_t s = 1;
    while (s < slots) s <<= 1;
    mask_ = s - 1;
    heads_.assign(s, kNone);
    entries_.resize(capacity);
    for (uint32_t i = 0; i < capacity; ++i) {
        entries_[i].slot = kNone;
        entries_[i].next = i + 1 < capacity ? i + 1 : kNone;
    }
    free_head_ = capacity ? 0 : kNone;
}

void TimerWheel::link(uint32_t i) {
    Entry& e = entries_[i];
    e.slot = static_cast<uint32_t>(e.expiry) & mask_;
    e.prev = kNone;
    e.next = heads_[e.slot];
    if (e.next != kNone) entries_[e.next].prev = i;
    heads_[e.slot] = i;
}

void TimerWheel::unlink(uint32_t i) {
    Entry& e = entries_[i];
    if (e.prev != kNone) {
        entries_[e.prev].next = e.next;
    } else {
        heads_[e.slot] = e.next;
    }
    if (e.next != kNone) entries_[e.next].prev = e.prev;
}

TimerHandle TimerWheel::start(uint32_t user_id, uint8_t kind, uint64_t ticks) {
    if (free_head_ == kNone) return kInvalidTimer;
    const uint32_t i = free_head_;
    free_head_ = entries_[i].next;
    Entry& e = entries_[i];
    e.user_id = user_id;
    e.kind = kind;
    // Never in the past: a slot already passed would not be seen again
    // for a whole turn.
    e.expiry = now() + ticks < cur_ ? cur_ : now() + ticks;
    link(i);
    ++active_;
    return i;
}

void TimerWheel::stop(TimerHandle h) {
    if (h == kInvalidTimer || h >= entries_.size() || entries_[h].slot == kNone) return;
    unlink(h);
    entries_[h].slot = kNone;
    entries_[h].next = free_head_;
    free_head_ = h;
    --active_;
}

TimerHandle TimerWheel::update(TimerHandle h, uint64_t ticks) {
    if (h == kInvalidTimer || h >= entries_.size() || entries_[h].slot == kNone) return kInvalidTimer;
    unlink(h);
    Entry& e = entries_[h];
    e.expiry = now() + ticks < cur_ ? cur_ : now() + ticks;
    link(h);
    return h;
}

bool TimerWheel::drain_slot(uint32_t slot, uint64_t now_tick, ExpiredTimer* out, uint32_t max,
                            uint32_t& n) {
    uint32_t i = heads_[slot];
    while (i != kNone) {
        const uint32_t next = entries_[i].next;
        if (entries_[i].expiry <= now_tick) {
            if (n == max) return false;
            out[n++] = ExpiredTimer{entries_[i].user_id, entries_[i].kind};
            stop(i);
        }
        i = next;
    }
    return true;
}

uint32_t TimerWheel::advance(uint64_t now_tick, ExpiredTimer* out, uint32_t max) {
    uint32_t n = 0;
    if (cur_ > now_tick) return 0;
    const uint64_t span = now_tick - cur_ + 1;
    if (span > mask_) {
        // A jump of a whole turn or more: every slot once.
        for (uint32_t s = 0; s <= mask_; ++s) {
            if (!drain_slot(s, now_tick, out, max, n)) return n;
        }
        cur_ = now_tick + 1;
        return n;
    }
    while (cur_ <= now_tick) {
        if (!drain_slot(static_cast<uint32_t>(cur_) & mask_, now_tick, out, max, n)) return n;
        ++cur_;
    }
    return n;
}

}  // namespace terminus::tcp
