// terminus-mgmtd's ticket keys and its control-socket pushes, against a
// socket that answers as terminusd's does (the real one is exercised by
// tests/integration/mgmtd_test.sh).
#include "mgmt/control_push.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace terminus::mgmt {
namespace {

using namespace std::chrono_literals;
using Clock = TicketKeyRing::Clock;

bool is_hex(const std::string& s) { return s.find_first_not_of("0123456789abcdef") == std::string::npos; }

TEST(TicketKeyRing, StartsWithOneKeyAndNoPrevious) {
    TicketKeyRing k(Clock::now());
    const std::string r = k.request();
    ASSERT_EQ(r.rfind("tickets set ", 0), 0u) << r;
    const std::string key = r.substr(12);
    EXPECT_EQ(key.size(), 160u);
    EXPECT_TRUE(is_hex(key));
    EXPECT_EQ(key.substr(0, 32), k.current_name());
    EXPECT_EQ(k.previous_name(), "");
}

TEST(TicketKeyRing, RotatesOnlyWhenThePeriodHasPassed) {
    const auto t0 = Clock::now();
    TicketKeyRing k(t0);
    const std::string first = k.current_name();
    EXPECT_FALSE(k.rotate_if_due(t0 + 59s, 60s));
    EXPECT_EQ(k.current_name(), first);
    EXPECT_TRUE(k.rotate_if_due(t0 + 60s, 60s));
    EXPECT_NE(k.current_name(), first);
    EXPECT_EQ(k.previous_name(), first);
    // The next period counts from this rotation.
    EXPECT_FALSE(k.rotate_if_due(t0 + 119s, 60s));
    EXPECT_TRUE(k.rotate_if_due(t0 + 120s, 60s));
    // Off: never.
    EXPECT_FALSE(k.rotate_if_due(t0 + 1000h, 0ms));
}

TEST(TicketKeyRing, RequestCarriesTheCurrentThenThePreviousKey) {
    const auto t0 = Clock::now();
    TicketKeyRing k(t0);
    const std::string before = k.request().substr(12);
    k.rotate(t0);
    const std::string r = k.request().substr(12);
    ASSERT_EQ(r.size(), 160u + 1 + 160u);
    EXPECT_EQ(r.substr(161), before);
    EXPECT_EQ(r.substr(0, 32), k.current_name());
    EXPECT_NE(r.substr(0, 160), before);
}

// A unix socket that records each request line and answers ANSWER(line).
class FakeControl {
  public:
    explicit FakeControl(std::function<std::string(const std::string&)> answer) : answer_(std::move(answer)) {
        path_ = "/tmp/terminus-push-test-" + std::to_string(::getpid()) + ".sock";
        ::unlink(path_.c_str());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        EXPECT_EQ(::listen(fd_, 8), 0);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakeControl() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    const std::string& path() const { return path_; }
    std::vector<std::string> requests() {
        std::lock_guard<std::mutex> l(mu_);
        return requests_;
    }
    bool wait_requests(size_t n) {
        for (int i = 0; i < 500; ++i) {
            if (requests().size() >= n) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

  private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            std::string line;
            char buf[512];
            ssize_t n;
            while (line.find('\n') == std::string::npos && (n = ::recv(c, buf, sizeof buf, 0)) > 0) line.append(buf, n);
            line.resize(line.find('\n') == std::string::npos ? line.size() : line.find('\n'));
            {
                std::lock_guard<std::mutex> l(mu_);
                requests_.push_back(line);
            }
            const std::string a = answer_(line);
            (void)!::send(c, a.data(), a.size(), MSG_NOSIGNAL);
            ::close(c);
        }
    }
    std::function<std::string(const std::string&)> answer_;
    std::string path_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mu_;
    std::vector<std::string> requests_;
};

struct Logged {
    std::mutex mu;
    std::vector<std::pair<errlog::Level, std::string>> lines;
    ControlPusher::Log sink() {
        return [this](errlog::Level l, const std::string& s) {
            std::lock_guard<std::mutex> g(mu);
            lines.emplace_back(l, s);
        };
    }
    bool has(errlog::Level l, const std::string& part) {
        std::lock_guard<std::mutex> g(mu);
        for (const auto& [lv, s] : lines) {
            if (lv == l && s.find(part) != std::string::npos) return true;
        }
        return false;
    }
};

TEST(ControlPusher, PushesTheKeysAtOnceAndThenEveryInterval) {
    FakeControl fake([](const std::string&) { return "{\"ok\":true,\"current\":\"ab\",\"message\":\"installed\"}\n"; });
    Logged log;
    {
        ControlPusher p(log.sink(), 50ms);
        p.configure({fake.path(), std::chrono::hours(1)});
        ASSERT_TRUE(fake.wait_requests(3));
    }
    const auto r = fake.requests();
    EXPECT_EQ(r[0].rfind("tickets set ", 0), 0u) << r[0];
    // The same key each time: the period has not passed.
    EXPECT_EQ(r[0], r[1]);
    EXPECT_TRUE(log.has(errlog::Level::kNotice, "takes the session ticket keys"));
}

TEST(ControlPusher, ForwardsAReloadAndLogsTheRefusal) {
    FakeControl fake([](const std::string& line) -> std::string {
        if (line == "reload") {
            return "{\"ok\":false,\"message\":\"configuration file /x refused; generation 1 still serves\","
                   "\"errors\":[\"/x:3:5: error: unknown directive \\\"foo\\\"\"],\"warnings\":[]}\n";
        }
        return "{\"ok\":true,\"current\":\"ab\"}\n";
    });
    Logged log;
    ControlPusher p(log.sink(), 1h);
    p.configure({fake.path(), std::chrono::hours(1)});
    ASSERT_TRUE(fake.wait_requests(1));
    p.forward_reload();
    ASSERT_TRUE(fake.wait_requests(2));
    for (int i = 0; i < 200 && !log.has(errlog::Level::kError, "/x:3:5"); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(fake.requests()[1], "reload");
    EXPECT_TRUE(log.has(errlog::Level::kError, "generation 1 still serves"));
    EXPECT_TRUE(log.has(errlog::Level::kError, "/x:3:5: error: unknown directive"));
}

TEST(ControlPusher, SaysOnceThatTerminusdIsAbsent) {
    Logged log;
    {
        ControlPusher p(log.sink(), 20ms);
        p.configure({"/tmp/terminus-push-test-nobody.sock", std::chrono::hours(1)});
        std::this_thread::sleep_for(200ms);
    }
    std::lock_guard<std::mutex> g(log.mu);
    size_t warns = 0;
    for (const auto& [l, s] : log.lines) warns += l == errlog::Level::kWarn;
    EXPECT_EQ(warns, 1u);
}

}  // namespace
}  // namespace terminus::mgmt
