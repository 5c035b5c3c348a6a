// The management process's event loop: one thread, poll(2) over
// registered file descriptors, one-shot and periodic timers, and signals
// taken synchronously through a signalfd. Everything terminus-mgmtd does
// (the metrics endpoint now; the control-socket client, the access-log
// writer and ticket-key rotation later) is a handler registered here, so
// none of them blocks another. Not for the dataplane: terminusd's cores
// never make a system call in their loop.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace terminus::mgmt {

class EventLoop {
  public:
    using Clock = std::chrono::steady_clock;
    using Millis = std::chrono::milliseconds;
    // REVENTS as poll(2) reports them (POLLIN, POLLOUT, POLLERR, POLLHUP...).
    using FdHandler = std::function<void(short revents)>;
    using TimerHandler = std::function<void()>;
    using SignalHandler = std::function<void(int signo)>;
    using TimerId = uint64_t;

    EventLoop() = default;
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;
    // Closes the signalfd and unblocks the signals it took. Registered
    // descriptors stay open: they belong to whoever registered them.
    ~EventLoop();

    // Calls HANDLER when FD reports EVENTS (POLLERR and POLLHUP always).
    // Watching an FD again replaces its events and handler. A handler may
    // watch, unwatch, add timers and stop the loop, its own FD included;
    // a descriptor unwatched (or closed and reused) during a turn does not
    // get the events polled for its predecessor.
    void watch(int fd, short events, FdHandler handler);
    // Changes what FD waits for; FD must be watched.
    void set_events(int fd, short events);
    // Nothing more for FD (no-op when it is not watched). Call it before
    // closing FD.
    void unwatch(int fd);
    bool watched(int fd) const { return fds_.count(fd) != 0; }

    // HANDLER once, DELAY from now.
    TimerId after(Millis delay, TimerHandler handler);
    // HANDLER every PERIOD (the first time PERIOD from now); a late turn
    // does not bunch the next ones up.
    TimerId every(Millis period, TimerHandler handler);
    // A timer that has not fired (or a periodic one) never fires again;
    // no-op for an unknown id. Safe from inside the timer's own handler.
    void cancel(TimerId id);

    // Takes SIGNO synchronously: it is blocked for the process and read
    // from a signalfd by the loop, so HANDLER runs in the loop like any
    // other event, never in a signal context. Returns "" or what failed.
    [[nodiscard]] std::string on_signal(int signo, SignalHandler handler);

    // Turns until stop(); returns "" or the poll(2) error that ended it.
    std::string run();
    // Ends run() after the current handler returns.
    void stop() { stopped_ = true; }

    Clock::time_point now() const { return Clock::now(); }
    size_t watched_count() const { return fds_.size(); }
    size_t timer_count() const { return timers_.size(); }

  private:
    struct Watch {
        short events = 0;
        uint64_t serial = 0;  // which registration of the fd this is
        std::shared_ptr<FdHandler> handler;
    };
    struct Timer {
        Millis period{0};  // 0: one-shot
        std::shared_ptr<TimerHandler> handler;
    };
    using TimerKey = std::pair<Clock::time_point, TimerId>;

    TimerId add_timer(Clock::time_point when, Millis period, TimerHandler handler);
    int poll_timeout_ms() const;
    void fire_timers();
    void read_signals();

    std::unordered_map<int, Watch> fds_;
    uint64_t next_serial_ = 1;
    std::map<TimerKey, Timer> timers_;
    std::unordered_map<TimerId, Clock::time_point> timer_at_;
    TimerId next_timer_ = 1;
    int signal_fd_ = -1;
    std::vector<int> signals_;  // blocked by on_signal, unblocked at the end
    std::unordered_map<int, std::shared_ptr<SignalHandler>> signal_handlers_;
    bool stopped_ = false;
};

}  // namespace terminus::mgmt
