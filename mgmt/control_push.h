// terminus-mgmtd's side of terminusd's control socket (dataplane/control.h):
// the session ticket keys mgmtd owns and pushes to every terminusd core,
// and the reloads it forwards.
//
// Ticket keys: mgmtd makes a random 80-byte key (nginx's layout: name,
// HMAC-SHA256 key, AES-256 key) and a new one every ticket_key_rotation;
// the previous one still decrypts for one period. Every few seconds it
// sends "tickets set CUR PREV": terminusd installs what it does not hold
// (a terminusd that restarted gets both, so tickets issued before the
// restart still resume) and leaves its own rotation alone while the pushes
// come. Keys never touch a disk; a restart of mgmtd makes a new key (the
// one it pushed last still decrypts in terminusd).
//
// The pushes run on a thread of their own: a control request may wait for
// a reload on every core, and mgmtd's event loop (metrics, access log)
// must not.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "mgmt/error_log.h"

namespace terminus::mgmt {

// The keys, and when they rotate. No I/O: unit-tested alone.
class TicketKeyRing {
  public:
    using Clock = std::chrono::steady_clock;
    using Key = std::array<uint8_t, 80>;
    // A random key made at NOW; no previous one yet.
    explicit TicketKeyRing(Clock::time_point now);
    // A new key (the current one becomes the previous) when PERIOD has
    // passed since the last rotation; true when it rotated.
    bool rotate_if_due(Clock::time_point now, std::chrono::milliseconds period);
    void rotate(Clock::time_point now);
    // "tickets set CUR [PREV]", the keys as hex.
    std::string request() const;
    // The current key's name (its first 16 bytes) as hex, as terminusd
    // reports it.
    std::string current_name() const;
    std::string previous_name() const;
    Clock::time_point rotated() const { return rotated_; }

  private:
    Key cur_{}, prev_{};
    bool has_prev_ = false;
    Clock::time_point rotated_;
};

class ControlPusher {
  public:
    using Log = std::function<void(errlog::Level, const std::string&)>;
    struct Settings {
        std::string socket;                   // mgmt { control }
        std::chrono::milliseconds rotation{};  // mgmt { ticket_key_rotation }
    };
    // INTERVAL: how often the keys are pushed (and terminusd's presence
    // seen).
    explicit ControlPusher(Log log, std::chrono::milliseconds interval = std::chrono::seconds(5));
    ~ControlPusher();  // stops the thread
    ControlPusher(const ControlPusher&) = delete;
    ControlPusher& operator=(const ControlPusher&) = delete;

    // Thread-safe; the first call starts the thread, which pushes at once.
    void configure(Settings s);
    // Asks terminusd to reload its configuration file at the next turn,
    // and logs its answer (the errors as FILE:LINE:COLUMN lines).
    void forward_reload();

  private:
    void run();
    void push_keys(const Settings& s);
    void reload(const Settings& s);

    Log log_;
    std::chrono::milliseconds interval_;
    std::mutex mu_;
    std::condition_variable cv_;
    Settings settings_;
    bool stop_ = false, reload_ = false, configured_ = false;
    std::thread thread_;
    // The thread's own.
    TicketKeyRing keys_;
    int reachable_ = -1;  // terminusd at the last push: -1 not tried yet
    std::string last_error_;
};

}  // namespace terminus::mgmt
