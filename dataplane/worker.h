// What a poll-mode core runs: a list of pollers, and the application on
// its TCP stack (the proxy in terminusd, the load generator in
// terminus-loadgen). Programs built on the dataplane plug in here.
#pragma once

#include <cstdint>

namespace terminus::dataplane {

struct Lcore;

// One step of the loop (Seastar's pollfn). It returns whether it made
// progress — moved a packet, a byte, a handshake, a message — not whether
// something is pending: that return value is what the loop's busy-cycle
// accounting counts, so a poller that keeps finding the same unfinished
// work must return false.
struct Poller {
    using Fn = bool (*)(Lcore& lc, void* arg);
    // Where in an iteration it runs: input (rx, rings, timers), then the
    // applications, then output (housekeeping, tx).
    enum class Stage : uint8_t { kInput, kApplication, kOutput };
    const char* name = nullptr;
    Fn fn = nullptr;
    void* arg = nullptr;
    Stage stage = Stage::kInput;
    uint64_t progress = 0;  // iterations in which it made progress
};

// The application of a core: what the loop tells it besides polling.
class Application {
  public:
    virtual ~Application() = default;
    // This iteration's clock, before any poller runs.
    virtual void set_now(uint64_t now_us) = 0;
    // Graceful shutdown: take nothing new...
    virtual void stop_accepting() = 0;
    // ...wait while sessions are active...
    virtual uint64_t sessions_active() const = 0;
    // ...and reset what is left when the drain time is over.
    virtual void abort_all() = 0;
};

}  // namespace terminus::dataplane
