// A hashed timer wheel owned by one lcore: start, stop and restart in O(1),
// expiry amortised O(1) per tick (Varghese and Lauck's scheme 6). Timers
// are handles, never callbacks: an expiry hands back (user_id, kind) and
// the owner looks its object up. All memory is taken in the constructor.
#pragma once

#include <cstdint>
#include <vector>

namespace terminus::tcp {

using TimerHandle = uint32_t;
constexpr TimerHandle kInvalidTimer = UINT32_MAX;

struct ExpiredTimer {
    uint32_t user_id;
    uint8_t timer_kind;
};

class TimerWheel {
  public:
    // CAPACITY timers at most; TICK_US only documents the unit of ticks.
    TimerWheel(uint32_t capacity, uint64_t tick_us, uint32_t slots = 4096);

    // Fires TICKS after the wheel's current tick (0: at the next advance).
    // Returns kInvalidTimer when CAPACITY timers are running.
    TimerHandle start(uint32_t user_id, uint8_t kind, uint64_t ticks);
    // Stops H; stop(kInvalidTimer) does nothing. The owner sets its handle
    // to kInvalidTimer when it receives the expiry, so a stale handle is
    // never stopped.
    void stop(TimerHandle h);
    // Restarts H to fire TICKS from now; returns the (same) handle.
    TimerHandle update(TimerHandle h, uint64_t ticks);

    // Moves the wheel to NOW_TICK and writes up to MAX due timers to OUT.
    // Timers that did not fit are handed out by the next call.
    uint32_t advance(uint64_t now_tick, ExpiredTimer* out, uint32_t max);

    uint32_t size() const { return active_; }
    uint32_t capacity() const { return static_cast<uint32_t>(entries_.size()); }
    uint64_t now() const { return cur_ == 0 ? 0 : cur_ - 1; }

  private:
    static constexpr uint32_t kNone = UINT32_MAX;
    struct Entry {
        uint64_t expiry;
        uint32_t user_id;
        uint32_t prev, next;
        uint32_t slot;  // kNone when free
        uint8_t kind;
    };
    void link(uint32_t i);
    void unlink(uint32_t i);
    // Fires what is due in SLOT; false when OUT filled up first.
    bool drain_slot(uint32_t slot, uint64_t now_tick, ExpiredTimer* out, uint32_t max, uint32_t& n);

    std::vector<Entry> entries_;
    std::vector<uint32_t> heads_;
    uint32_t mask_;
    uint32_t free_head_ = kNone;
    uint32_t active_ = 0;
    uint64_t cur_ = 0;  // the next tick to process
};

}  // namespace terminus::tcp
