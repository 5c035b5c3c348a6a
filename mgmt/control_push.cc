#include "mgmt/control_push.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "mgmt/control_client.h"
#include "mgmt/json.h"

namespace terminus::mgmt {

namespace {

void random_key(TicketKeyRing::Key& k) {
    if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) {
        // OpenSSL's DRBG failing is not something to serve tickets on.
        errlog::report_at(errlog::Level::kEmerg, "terminus-mgmtd", "RAND_bytes failed: no ticket key");
        std::abort();
    }
}

std::string hex(const uint8_t* p, size_t n) {
    static const char kDigits[] = "0123456789abcdef";
    std::string s;
    s.reserve(2 * n);
    for (size_t i = 0; i < n; ++i) {
        s += kDigits[p[i] >> 4];
        s += kDigits[p[i] & 15];
    }
    return s;
}

}  // namespace

TicketKeyRing::TicketKeyRing(Clock::time_point now) : rotated_(now) { random_key(cur_); }

void TicketKeyRing::rotate(Clock::time_point now) {
    prev_ = cur_;
    has_prev_ = true;
    random_key(cur_);
    rotated_ = now;
}

bool TicketKeyRing::rotate_if_due(Clock::time_point now, std::chrono::milliseconds period) {
    if (period.count() <= 0 || now - rotated_ < period) return false;
    rotate(now);
    return true;
}

std::string TicketKeyRing::request() const {
    std::string s = "tickets set " + hex(cur_.data(), cur_.size());
    if (has_prev_) s += " " + hex(prev_.data(), prev_.size());
    return s;
}

std::string TicketKeyRing::current_name() const { return hex(cur_.data(), 16); }
std::string TicketKeyRing::previous_name() const { return has_prev_ ? hex(prev_.data(), 16) : ""; }

ControlPusher::ControlPusher(Log log, std::chrono::milliseconds interval)
    : log_(std::move(log)), interval_(interval), keys_(TicketKeyRing::Clock::now()) {}

ControlPusher::~ControlPusher() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ControlPusher::configure(Settings s) {
    bool start = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        settings_ = std::move(s);
        start = !configured_;
        configured_ = true;
    }
    if (start) {
        log_(errlog::Level::kNotice, "session ticket key " + keys_.current_name() +
                                         " made; pushed to terminusd every " +
                                         std::to_string(interval_.count() / 1000) + " s");
        thread_ = std::thread([this] { run(); });
    } else {
        cv_.notify_all();
    }
}

void ControlPusher::forward_reload() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        reload_ = true;
    }
    cv_.notify_all();
}

void ControlPusher::run() {
    // Signals are the event loop's (a signalfd): none may land here, where
    // SIGHUP's default action would end the process.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
        const Settings s = settings_;
        const bool reload_now = std::exchange(reload_, false);
        lock.unlock();
        if (reload_now) reload(s);
        if (keys_.rotate_if_due(TicketKeyRing::Clock::now(), s.rotation)) {
            log_(errlog::Level::kNotice, "session ticket key " + keys_.current_name() + " made (ticket_key_rotation " +
                                             std::to_string(s.rotation.count() / 1000) + " s); " +
                                             keys_.previous_name() + " still decrypts");
        }
        push_keys(s);
        lock.lock();
        cv_.wait_for(lock, interval_, [this] { return stop_ || reload_; });
    }
}

void ControlPusher::push_keys(const Settings& s) {
    auto answer = control_request(s.socket, keys_.request(), 10);
    std::string error;
    Result<Json> j = make_error("");
    if (!answer) {
        error = answer.error();
    } else if (j = parse_json(*answer); !j) {
        error = "terminusd answered something unreadable: " + *answer;
    } else if (!(*j)["ok"].truthy()) {
        error = (*j)["errors"].items.empty() ? *answer : (*j)["errors"].items[0].str;
    }
    const int reachable = error.empty() ? 1 : 0;
    if (reachable != reachable_ || error != last_error_) {
        if (reachable) {
            log_(errlog::Level::kNotice, "terminusd on " + s.socket + " takes the session ticket keys (current " +
                                             (*j)["current"].str + ")");
        } else {
            log_(errlog::Level::kWarn, "session ticket keys not pushed: " + error + " (again every " +
                                           std::to_string(interval_.count() / 1000) + " s)");
        }
        reachable_ = reachable;
        last_error_ = error;
    } else if (reachable && (*j)["message"].str == "installed") {
        log_(errlog::Level::kNotice, "terminusd took session ticket key " + keys_.current_name());
    }
}

void ControlPusher::reload(const Settings& s) {
    auto answer = control_request(s.socket, "reload", 30);
    if (!answer) {
        log_(errlog::Level::kWarn, "reload not forwarded: " + answer.error());
        return;
    }
    auto j = parse_json(*answer);
    if (!j) {
        log_(errlog::Level::kError, "reload: terminusd answered something unreadable: " + *answer);
        return;
    }
    const bool ok = (*j)["ok"].truthy();
    log_(ok ? errlog::Level::kNotice : errlog::Level::kError, "terminusd: " + (*j)["message"].str);
    for (const auto& e : (*j)["errors"].items) log_(errlog::Level::kError, "  " + e.str);
    for (const auto& w : (*j)["warnings"].items) log_(errlog::Level::kWarn, "  " + w.str);
}

}  // namespace terminus::mgmt
