// Active health checks, as NGINX Plus's health_check and match{} define
// them: every "interval" (plus a random "jitter"), each server of the
// checked group gets a new TCP connection — to "port=" when given — and,
// with match=, the match's "send" bytes, and must answer with what its
// "expect" wants (a substring, or "~" a PCRE) before the check's time is
// up. "fails" consecutive failed checks make a server unhealthy, "passes"
// consecutive passed ones healthy again; with "mandatory" a server is
// "checking" (and takes no connection) until its first check is done.
// Several checks on one group: a server is unhealthy when any says so.
// Behind "proxy_ssl" a check is a TLS connection made as the proxy makes
// its own: a server whose certificate would fail the proxy fails it.
//
// One checker, on core 0, runs every check over that core's TCP stack
// (the upstreams are reached through the dataplane's port, not the
// kernel). One is enough — a check every interval per server is little
// work — and one writer keeps the verdicts simple: the consecutive counts
// are the checker's alone, and what the other cores need, each server's
// Health, is one relaxed atomic in its SharedPeer that their Balancers
// read. Connections come from a fixed pool of probes made at start.
// Private to dataplane/.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/result.h"
#include "dataplane/proxy/balancer.h"
#include "dataplane/tcp/tcp.h"
#include "dataplane/tcp_transport.h"
#include "tls/tls.h"
#include "tls/upstream.h"

namespace terminus::dataplane::proxy {

// How one check ended; the names are what terminusctl shows.
#define TERMINUS_CHECK_RESULTS(X)                                                    \
    X(kNone, "none")                 /* not checked yet */                           \
    X(kPassed, "passed")                                                             \
    X(kRefused, "refused")           /* the connect met a RST */                     \
    X(kTimeout, "timeout")           /* not connected, or no match, in time */       \
    X(kReset, "reset")               /* reset once connected */                      \
    X(kClosed, "closed")             /* closed before anything matched */            \
    X(kMismatch, "mismatch")         /* a reply that does not match, then EOF or */  \
                                     /* the examined bytes full */                   \
    X(kTls, "tls")                   /* the TLS handshake failed (proxy_ssl) */      \
    X(kNoConnection, "no_connection") /* no local port or connection slot here: */   \
                                      /* not held against the server */

enum class CheckResult : uint8_t {
#define TERMINUS_X(id, name) id,
    TERMINUS_CHECK_RESULTS(TERMINUS_X)
#undef TERMINUS_X
    kCount
};
const char* to_string(CheckResult r);

// The whole of a check — connect, send, the expected reply — must be done
// within NGINX Plus's health_check_timeout, 5 s by default (the directive
// itself is not implemented); the connect also within proxy_connect_timeout.
constexpr uint64_t kCheckTimeoutUs = 5'000'000;

// The verdicts of one check on one server and the health they add up to.
class HealthCounter {
  public:
    HealthCounter(uint32_t fails, uint32_t passes, bool mandatory);
    // Starts from H instead (a server the previous generation knew).
    HealthCounter(uint32_t fails, uint32_t passes, Health h) : fails_(fails ? fails : 1), passes_(passes ? passes : 1), health_(h) {}
    // Counts one check; returns whether health() changed.
    bool record(bool passed);
    Health health() const { return health_; }

  private:
    uint32_t fails_;
    uint32_t passes_;
    uint32_t failed_ = 0;  // consecutive failures
    uint32_t passed_ = 0;  // consecutive passes
    Health health_;
};

// What a match{} expects of the reply: a literal substring (binary-safe),
// or a PCRE2 regular expression over the bytes received so far.
class Expect {
  public:
    // Nothing to expect (a match{} with "send" only, or no match{}).
    Expect() = default;
    static Result<Expect> compile(const config::Match& m);
    // Whether there is anything to wait for.
    bool empty() const { return !regex_ && literal_.empty(); }
    bool matches(const uint8_t* data, size_t len) const;

  private:
    std::string literal_;
    std::shared_ptr<void> regex_;  // pcre2_code
    std::shared_ptr<void> match_;  // pcre2_match_data
};

class HealthChecker;

// One check in flight: a connection and what it has sent and received.
struct Probe final : tcp::Handler {
    HealthChecker* checker = nullptr;
    uint32_t target = 0;
    tcp::Connection* conn = nullptr;
    tcp::TcpTransport transport;
    std::optional<tls::UpstreamConnection> tls;  // proxy_ssl
    std::unique_ptr<uint8_t[]> buf;              // the reply's first bytes
    uint32_t len = 0;
    uint32_t sent = 0;
    uint64_t deadline_us = 0;
    bool active = false;
    uint32_t next_free = 0;

    void on_established(tcp::Connection& c) override;
    void on_readable(tcp::Connection& c) override;
    void on_writable(tcp::Connection& c) override;
    void on_closed(tcp::Connection& c, tcp::CloseReason why) override;
};

class HealthChecker {
  public:
    // The checks of CFG: each server{} with health_check checks the group
    // it proxy_passes to, with its proxy_connect_timeout and the first
    // proxy_buffer_size bytes of a reply (64 KB at most); an upstream{}
    // with health_check checks its own group with the defaults, over plain
    // TCP. The checks of a server{} with proxy_ssl run over TLS as its
    // sessions do (tls/upstream.h: the same context, name, verification
    // and session reuse, and counted with them) on TLS, core 0's upstream
    // TLS: an error when that is null. Servers of "mandatory" checks are
    // marked checking here: make it before any core picks a server. STACK,
    // CORE and N_CORES: core 0's stack and where its flows go; NOW_US:
    // that core's loop clock.
    static Result<std::unique_ptr<HealthChecker>> create(const config::Config& cfg, const SharedUpstreams& shared,
                                                         tcp::Stack& stack, unsigned core, unsigned n_cores,
                                                         uint32_t local_ip, const uint64_t& now_us,
                                                         tls::UpstreamTls* tls = nullptr);
    ~HealthChecker();
    HealthChecker(const HealthChecker&) = delete;
    HealthChecker& operator=(const HealthChecker&) = delete;

    // Whether CFG has any check at all (no checker, no poller otherwise).
    static bool configured(const config::Config& cfg);

    // Starts the checks that are due and ends those past their time;
    // returns whether any started or ended.
    bool poll();
    // A newer generation's checker takes over: the checks in flight are
    // reset, and none starts again.
    void stop();
    // Checks: one per (health_check, server); probes: connections at once.
    size_t targets() const { return targets_.size(); }
    size_t probes() const { return n_probes_; }

  private:
    friend struct Probe;
    struct Check {
        const config::HealthCheck* hc = nullptr;
        const config::Upstream* upstream = nullptr;
        SharedPeer* peers = nullptr;
        const config::Match* match = nullptr;  // null: connecting is the check
        Expect expect;
        uint64_t interval_us = 0;
        uint64_t jitter_us = 0;
        uint64_t connect_us = 0;
        uint32_t examined = 0;  // bytes of the reply matched against
        // proxy_ssl: the server{} (for its context and sessions) and the
        // name its certificate must match.
        bool tls = false;
        uint32_t server = 0;
        std::string name;
    };
    struct Target {
        uint32_t check = 0;
        uint32_t server = 0;  // in the upstream's servers
        uint32_t addr = 0;
        uint16_t port = 0;
        HealthCounter counter;
        uint64_t next_us = 0;
        bool in_flight = false;
        const char* why = nullptr;  // the last failure's detail, for the log
    };

    HealthChecker(const SharedUpstreams& shared, tcp::Stack& stack, unsigned core, unsigned n_cores,
                  uint32_t local_ip, const uint64_t& now_us, tls::UpstreamTls* tls)
        : shared_(shared), stack_(stack), core_(core), n_cores_(n_cores), local_ip_(local_ip), now_us_(now_us),
          tls_(tls) {}

    void start(uint32_t target);
    // The probe's check is over: RESULT goes to its server; its connection
    // closes (a FIN after a pass, a RST when it overran its time).
    void finish(Probe& p, CheckResult result);
    void exchange(Probe& p);
    void receive(Probe& p);
    // Runs P's handshake on; true when it is still parked on an
    // asynchronous crypto operation.
    bool tls_step(Probe& p);
    void record(Target& t, CheckResult result);
    // Folds every check's verdict on the server of T into its Health.
    void update_health(const Target& t, CheckResult last);
    // A random delay of at most C's jitter.
    static uint64_t jitter(const Check& c);

    const SharedUpstreams& shared_;
    tcp::Stack& stack_;
    unsigned core_;
    unsigned n_cores_;
    uint32_t local_ip_;
    const uint64_t& now_us_;
    tls::UpstreamTls* tls_;
    std::vector<Check> checks_;
    std::vector<Target> targets_;
    std::unique_ptr<Probe[]> probes_;
    unsigned n_probes_ = 0;
    bool stopped_ = false;
    uint32_t free_head_ = 0;
    uint64_t next_event_us_ = 0;  // nothing to do before then
    uint16_t next_port_ = 0;
};

}  // namespace terminus::dataplane::proxy
