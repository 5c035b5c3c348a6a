#include "mgmt/event_loop.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace terminus::mgmt {

EventLoop::~EventLoop() {
    if (signal_fd_ < 0) return;
    ::close(signal_fd_);
    sigset_t set;
    sigemptyset(&set);
    for (int s : signals_) sigaddset(&set, s);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

void EventLoop::watch(int fd, short events, FdHandler handler) {
    Watch& w = fds_[fd];
    w.events = events;
    w.serial = next_serial_++;
    w.handler = std::make_shared<FdHandler>(std::move(handler));
}

void EventLoop::set_events(int fd, short events) {
    auto it = fds_.find(fd);
    if (it != fds_.end()) it->second.events = events;
}

void EventLoop::unwatch(int fd) { fds_.erase(fd); }

EventLoop::TimerId EventLoop::add_timer(Clock::time_point when, Millis period, TimerHandler handler) {
    const TimerId id = next_timer_++;
    timers_.emplace(TimerKey{when, id}, Timer{period, std::make_shared<TimerHandler>(std::move(handler))});
    timer_at_.emplace(id, when);
    return id;
}

EventLoop::TimerId EventLoop::after(Millis delay, TimerHandler handler) {
    return add_timer(now() + delay, Millis{0}, std::move(handler));
}

EventLoop::TimerId EventLoop::every(Millis period, TimerHandler handler) {
    if (period <= Millis{0}) period = Millis{1};
    return add_timer(now() + period, period, std::move(handler));
}

void EventLoop::cancel(TimerId id) {
    auto it = timer_at_.find(id);
    if (it == timer_at_.end()) return;
    timers_.erase(TimerKey{it->second, id});
    timer_at_.erase(it);
}

std::string EventLoop::on_signal(int signo, SignalHandler handler) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : signals_) sigaddset(&set, s);
    sigaddset(&set, signo);
    // Blocked first, so that one arriving now waits in the signalfd.
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
        return std::string("sigprocmask: ") + std::strerror(errno);
    }
    const int fd = ::signalfd(signal_fd_, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) return std::string("signalfd: ") + std::strerror(errno);
    if (signal_fd_ < 0) {
        signal_fd_ = fd;
        watch(signal_fd_, POLLIN, [this](short) { read_signals(); });
    }
    bool known = false;
    for (int s : signals_) known |= s == signo;
    if (!known) signals_.push_back(signo);
    signal_handlers_[signo] = std::make_shared<SignalHandler>(std::move(handler));
    return "";
}

void EventLoop::read_signals() {
    signalfd_siginfo info[8];
    for (;;) {
        const ssize_t n = ::read(signal_fd_, info, sizeof info);
        if (n <= 0) return;  // EAGAIN: all taken
        for (size_t i = 0; i < static_cast<size_t>(n) / sizeof info[0]; ++i) {
            auto it = signal_handlers_.find(static_cast<int>(info[i].ssi_signo));
            if (it == signal_handlers_.end()) continue;
            const std::shared_ptr<SignalHandler> h = it->second;  // the handler may replace itself
            (*h)(static_cast<int>(info[i].ssi_signo));
        }
    }
}

int EventLoop::poll_timeout_ms() const {
    if (timers_.empty()) return -1;
    const auto wait = timers_.begin()->first.first - now();
    if (wait <= Clock::duration::zero()) return 0;
    // Rounded up: waking a little early would only poll again.
    const auto ms = std::chrono::ceil<Millis>(wait).count();
    return ms > 60'000 ? 60'000 : static_cast<int>(ms);
}

void EventLoop::fire_timers() {
    const Clock::time_point t = now();
    // Only those due now: a handler that adds a timer due at once runs it
    // next turn, after the descriptors had theirs.
    std::vector<TimerId> due;
    for (auto it = timers_.begin(); it != timers_.end() && it->first.first <= t; ++it) due.push_back(it->first.second);
    for (TimerId id : due) {
        if (stopped_) return;
        auto at = timer_at_.find(id);
        if (at == timer_at_.end()) continue;  // cancelled by an earlier handler
        auto it = timers_.find(TimerKey{at->second, id});
        Timer timer = std::move(it->second);
        timers_.erase(it);
        if (timer.period > Millis{0}) {
            Clock::time_point next = at->second + timer.period;
            if (next <= t) next = t + timer.period;
            at->second = next;
            timers_.emplace(TimerKey{next, id}, timer);
        } else {
            timer_at_.erase(at);
        }
        (*timer.handler)();
    }
}

std::string EventLoop::run() {
    stopped_ = false;
    std::vector<pollfd> pfds;
    std::vector<uint64_t> serials;
    while (!stopped_) {
        pfds.clear();
        serials.clear();
        for (const auto& [fd, w] : fds_) {
            pfds.push_back(pollfd{fd, w.events, 0});
            serials.push_back(w.serial);
        }
        const int n = ::poll(pfds.data(), pfds.size(), poll_timeout_ms());
        if (n < 0) {
            if (errno == EINTR) continue;
            return std::string("poll: ") + std::strerror(errno);
        }
        for (size_t i = 0; i < pfds.size() && n > 0 && !stopped_; ++i) {
            if (pfds[i].revents == 0) continue;
            auto it = fds_.find(pfds[i].fd);
            // Unwatched, or watched anew, by an earlier handler this turn.
            if (it == fds_.end() || it->second.serial != serials[i]) continue;
            const std::shared_ptr<FdHandler> h = it->second.handler;  // it may unwatch itself
            (*h)(pfds[i].revents);
        }
        if (!stopped_) fire_timers();
    }
    return "";
}

}  // namespace terminus::mgmt
