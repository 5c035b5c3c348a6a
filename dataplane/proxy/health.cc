#include "dataplane/proxy/health.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <rte_random.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "dataplane/flow.h"
#include "mgmt/error_log.h"

namespace terminus::dataplane::proxy {

namespace {

constexpr uint32_t kNoProbe = UINT32_MAX;
// Checks in flight at once; more that are due wait for a probe to free (a
// check takes a round trip or two, 5 s when a server does not answer).
constexpr unsigned kMaxProbes = 64;
// Local ports of the checks: above Linux's ephemeral range, which the
// proxy's upstream connections use, so that the two never take each
// other's ports.
constexpr uint16_t kPortLo = 61000;
constexpr uint16_t kPortHi = 65535;
// Ports tried for one check before it waits for the next interval.
constexpr unsigned kPortTries = 4;
// The most of a reply examined, whatever proxy_buffer_size says: a probe's
// buffer is made at start, and a health reply is a line or two.
constexpr uint64_t kMaxExamined = 64 * 1024;

// "backend server 198.18.0.1:80" (and the name it was resolved from).
std::string server_name(const config::Upstream& u, size_t i) {
    const config::UpstreamServer& s = u.servers[i];
    const std::string addr = s.address ? config::ipv4_to_string(*s.address) : s.host;
    return u.name + " server " + addr + ":" + std::to_string(s.port) + (addr == s.host ? "" : " (" + s.host + ")");
}

}  // namespace

const char* to_string(CheckResult r) {
    switch (r) {
#define TERMINUS_X(id, name) \
    case CheckResult::id:    \
        return name;
        TERMINUS_CHECK_RESULTS(TERMINUS_X)
#undef TERMINUS_X
        case CheckResult::kCount: break;
    }
    return "?";
}

HealthCounter::HealthCounter(uint32_t fails, uint32_t passes, bool mandatory)
    : fails_(fails ? fails : 1), passes_(passes ? passes : 1),
      health_(mandatory ? Health::kChecking : Health::kHealthy) {}

bool HealthCounter::record(bool passed) {
    const Health before = health_;
    if (passed) {
        failed_ = 0;
        ++passed_;
    } else {
        passed_ = 0;
        ++failed_;
    }
    switch (health_) {
        case Health::kChecking:
            // "mandatory": the first check decides, whatever fails= and
            // passes= say; a server that failed it needs passes= passes.
            health_ = passed ? Health::kHealthy : Health::kUnhealthy;
            break;
        case Health::kHealthy:
            if (failed_ >= fails_) health_ = Health::kUnhealthy;
            break;
        case Health::kUnhealthy:
            if (passed_ >= passes_) health_ = Health::kHealthy;
            break;
    }
    if (health_ != before) failed_ = passed_ = 0;
    return health_ != before;
}

Result<Expect> Expect::compile(const config::Match& m) {
    Expect e;
    if (m.expect.empty()) return e;
    if (!m.expect_regex) {
        e.literal_ = m.expect;
        return e;
    }
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(m.expect.data()), m.expect.size(), 0, &err, &off, nullptr);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return make_error(m.loc.file + ":" + std::to_string(m.loc.line) + ": match \"" + m.name +
                          "\": expect ~ \"" + m.expect + "\": " + reinterpret_cast<const char*>(msg) +
                          " at offset " + std::to_string(off));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    e.regex_ = std::shared_ptr<void>(code, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); });
    e.match_ = std::shared_ptr<void>(pcre2_match_data_create_from_pattern(code, nullptr),
                                     [](void* p) { pcre2_match_data_free(static_cast<pcre2_match_data*>(p)); });
    if (!e.match_) return make_error("match \"" + m.name + "\": out of memory for its regular expression");
    return e;
}

bool Expect::matches(const uint8_t* data, size_t len) const {
    if (regex_) {
        return pcre2_match(static_cast<pcre2_code*>(regex_.get()), data, len, 0, 0,
                           static_cast<pcre2_match_data*>(match_.get()), nullptr) >= 0;
    }
    if (literal_.empty()) return true;
    const std::string_view hay(reinterpret_cast<const char*>(data), len);
    return hay.find(literal_) != std::string_view::npos;
}

bool HealthChecker::configured(const config::Config& cfg) {
    for (const auto& s : cfg.servers) {
        if (s.health_check.enabled) return true;
    }
    for (const auto& u : cfg.upstreams) {
        if (u.health_check.enabled) return true;
    }
    return false;
}

Result<std::unique_ptr<HealthChecker>> HealthChecker::create(const config::Config& cfg, const SharedUpstreams& shared,
                                                             tcp::Stack& stack, unsigned core, unsigned n_cores,
                                                             uint32_t local_ip, const uint64_t& now_us,
                                                             tls::UpstreamTls* tls) {
    std::unique_ptr<HealthChecker> hc(new HealthChecker(shared, stack, core, n_cores, local_ip, now_us, tls));
    std::string errors;
    const config::ServerSettings defaults;
    // A check: which group, with what, over what.
    auto add = [&](const config::HealthCheck& h, const std::string& group, const config::ServerSettings& st,
                   const config::Server* server) {
        const config::Upstream* u = cfg.find_upstream(group);
        SharedPeer* peers = shared.find(group);
        if (!u || !peers) return;  // the configuration refused it already
        Check c;
        c.hc = &h;
        c.upstream = u;
        c.peers = peers;
        for (const auto& m : cfg.matches) {
            if (!h.match.empty() && m.name == h.match) c.match = &m;
        }
        if (c.match) {
            auto e = Expect::compile(*c.match);
            if (!e) {
                errors += (errors.empty() ? "" : "; ") + e.error();
                return;
            }
            c.expect = std::move(*e);
        }
        c.interval_us = static_cast<uint64_t>(h.interval.count()) * 1000;
        c.jitter_us = static_cast<uint64_t>(h.jitter.count()) * 1000;
        c.connect_us = std::min<uint64_t>(static_cast<uint64_t>(st.proxy_connect_timeout.count()) * 1000,
                                          kCheckTimeoutUs);
        c.examined = static_cast<uint32_t>(std::clamp<uint64_t>(st.proxy_buffer_size, 1, kMaxExamined));
        if (server && st.proxy_ssl) {
            c.tls = true;
            c.server = static_cast<uint32_t>(server - cfg.servers.data());
            if (!tls || !tls->server(c.server)) {
                errors += (errors.empty() ? "" : "; ") + h.loc.file + ":" + std::to_string(h.loc.line) +
                          ": health_check with proxy_ssl: no upstream TLS context for this server{}";
                return;
            }
            // As the proxy names its upstream: proxy_ssl_name, else the
            // group's name (nginx's proxy_pass host).
            c.name = st.proxy_ssl_name.empty() ? group : st.proxy_ssl_name;
        }
        const uint32_t check = static_cast<uint32_t>(hc->checks_.size());
        for (size_t i = 0; i < u->servers.size(); ++i) {
            const config::UpstreamServer& s = u->servers[i];
            // A server marked "down" takes nothing whatever a check says.
            if (s.down || !s.address) continue;
            Target t{check, static_cast<uint32_t>(i), *s.address, h.port ? h.port : s.port,
                     HealthCounter(h.fails, h.passes, h.mandatory), 0, false};
            // A reload: a server the previous generation checked keeps what
            // it was (NGINX Plus: except that "mandatory" without
            // "persistent" checks every server again first).
            const bool carried = shared.carried(group, i);
            if (carried && (!h.mandatory || h.persistent)) {
                t.counter = HealthCounter(h.fails, h.passes, peers[i].health.load(std::memory_order_relaxed));
            } else if (h.mandatory) {
                peers[i].health.store(Health::kChecking, std::memory_order_relaxed);
            }
            hc->targets_.push_back(t);
        }
        hc->checks_.push_back(std::move(c));
    };
    for (const config::Server& s : cfg.servers) {
        if (!s.health_check.enabled || s.proxy_pass.kind != config::ProxyPass::Kind::kUpstream) continue;
        add(s.health_check, s.proxy_pass.upstream, s.settings, &s);
    }
    for (const auto& u : cfg.upstreams) {
        if (u.health_check.enabled) add(u.health_check, u.name, defaults, nullptr);
    }
    if (!errors.empty()) return make_error(errors);

    // The probes, and room for each one's reply.
    uint32_t examined = 1;
    for (const auto& c : hc->checks_) examined = std::max(examined, c.examined);
    hc->n_probes_ = static_cast<unsigned>(std::min<size_t>(hc->targets_.size(), kMaxProbes));
    hc->probes_ = std::make_unique<Probe[]>(hc->n_probes_);
    for (unsigned i = 0; i < hc->n_probes_; ++i) {
        Probe& p = hc->probes_[i];
        p.checker = hc.get();
        p.buf = std::make_unique<uint8_t[]>(examined);
        p.next_free = i + 1 < hc->n_probes_ ? i + 1 : kNoProbe;
    }
    hc->free_head_ = hc->n_probes_ ? 0 : kNoProbe;
    hc->next_port_ = kPortLo;
    // The first checks at start, each delayed by its jitter.
    for (auto& t : hc->targets_) t.next_us = now_us + jitter(hc->checks_[t.check]);
    return hc;
}

HealthChecker::~HealthChecker() {
    // Checks still in flight at exit: their TLS state goes without a word
    // to a stack that may be gone already.
    for (unsigned i = 0; i < n_probes_; ++i) {
        probes_[i].transport.conn = nullptr;
        probes_[i].tls.reset();
    }
}

void HealthChecker::stop() {
    stopped_ = true;
    for (unsigned i = 0; i < n_probes_; ++i) {
        Probe& p = probes_[i];
        if (!p.active || !p.conn) continue;
        tcp::Connection* c = p.conn;
        // Not a result: the checker that counted it is gone.
        p.active = false;
        p.tls.reset();
        p.conn = nullptr;
        p.transport.conn = nullptr;
        stack_.abort(*c);
    }
}

uint64_t HealthChecker::jitter(const Check& c) { return c.jitter_us ? rte_rand_max(c.jitter_us + 1) : 0; }

bool HealthChecker::poll() {
    const uint64_t now = now_us_;
    if (stopped_ || now < next_event_us_) return false;
    bool progress = false;
    // Checks past their time fail (the connection is reset); handshakes
    // an asynchronous crypto operation parked try again.
    bool parked = false;
    for (unsigned i = 0; i < n_probes_; ++i) {
        Probe& p = probes_[i];
        if (p.active && now >= p.deadline_us) {
            finish(p, CheckResult::kTimeout);
            progress = true;
        } else if (p.active && p.tls && p.tls->parked()) {
            if (tls_step(p)) {
                parked = true;
            } else {
                progress = true;
            }
        }
    }
    // Due checks start while there are probes; the others wait for one
    // (finish() calls for a new look when it frees one).
    for (uint32_t i = 0; i < targets_.size() && free_head_ != kNoProbe; ++i) {
        Target& t = targets_[i];
        if (!t.in_flight && now >= t.next_us) {
            start(i);
            progress = true;
        }
    }
    // Nothing to do before the next check is due or the first one in
    // flight runs out of time.
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < n_probes_; ++i) {
        if (probes_[i].active) next = std::min(next, probes_[i].deadline_us);
    }
    for (const Target& t : targets_) {
        if (!t.in_flight && t.next_us > now) next = std::min(next, t.next_us);
    }
    next_event_us_ = parked ? now : next;
    return progress;
}

void HealthChecker::start(uint32_t index) {
    Target& t = targets_[index];
    const Check& c = checks_[t.check];
    Probe& p = probes_[free_head_];
    tcp::Connection* conn = nullptr;
    for (unsigned i = 0; i < kPortTries && !conn; ++i) {
        const uint16_t lport =
            pick_local_port(next_port_, kPortLo, kPortHi, local_ip_, t.addr, t.port, core_, n_cores_);
        if (!lport) break;
        conn = stack_.connect(tcp::FourTuple{local_ip_, t.addr, lport, t.port}, &p, now_us_, c.connect_us);
    }
    if (!conn) {
        // Our shortage, not the server's failure: say so, try again later.
        c.peers[t.server].last_check.store(static_cast<uint8_t>(CheckResult::kNoConnection),
                                           std::memory_order_relaxed);
        t.next_us = now_us_ + c.interval_us + jitter(c);
        return;
    }
    free_head_ = p.next_free;
    p.target = index;
    p.conn = conn;
    p.transport = tcp::TcpTransport{};
    p.transport.stack = &stack_;
    p.transport.conn = conn;
    p.transport.now = &now_us_;
    p.tls.reset();
    p.len = 0;
    p.sent = 0;
    p.deadline_us = now_us_ + kCheckTimeoutUs;
    p.active = true;
    t.in_flight = true;
}

void HealthChecker::finish(Probe& p, CheckResult result) {
    if (!p.active) return;
    p.active = false;
    tcp::Connection* c = p.conn;
    Target& t = targets_[p.target];
    t.why = nullptr;
    if (c && result == CheckResult::kPassed && p.tls) p.tls->shutdown();  // close_notify first
    if (p.tls && result == CheckResult::kTimeout && !p.tls->established()) {
        p.tls->fail(tls::UpstreamFailure::k_timeout);
    }
    if (p.tls && p.tls->failed()) t.why = tls::to_string(p.tls->failure());
    // Forget the connection before closing it: close() and abort() call
    // on_closed() before they return.
    p.conn = nullptr;
    p.transport.conn = nullptr;
    // A FIN after the check, as nginx closes them (a RST when it ran out
    // of time). The TIME-WAIT this leaves here is taken over when the
    // local ports come round to it again (the stack's tcp_tw_reuse), or
    // recycled when connection slots run short.
    if (c && result == CheckResult::kTimeout) {
        stack_.abort(*c);
    } else if (c) {
        stack_.skip(*c, UINT32_MAX, now_us_);
        stack_.close(*c, now_us_);
    }
    p.tls.reset();
    t.in_flight = false;
    t.next_us = now_us_ + checks_[t.check].interval_us + jitter(checks_[t.check]);
    p.next_free = free_head_;
    free_head_ = static_cast<uint32_t>(&p - probes_.get());
    // A look at the targets at the next poll: one may wait for this probe.
    next_event_us_ = std::min(next_event_us_, now_us_);
    record(t, result);
}

void HealthChecker::record(Target& t, CheckResult result) {
    SharedPeer& s = checks_[t.check].peers[t.server];
    const bool passed = result == CheckResult::kPassed;
    s.checks.fetch_add(1, std::memory_order_relaxed);
    if (!passed) s.checks_failed.fetch_add(1, std::memory_order_relaxed);
    s.last_check.store(static_cast<uint8_t>(result), std::memory_order_relaxed);
    if (t.counter.record(passed)) update_health(t, result);
}

void HealthChecker::update_health(const Target& t, CheckResult last) {
    const Check& c = checks_[t.check];
    SharedPeer& s = c.peers[t.server];
    // Any check that finds it unhealthy makes it so; else any still
    // checking keeps it out.
    Health h = Health::kHealthy;
    for (const Target& o : targets_) {
        if (&checks_[o.check].peers[o.server] != &s) continue;
        if (o.counter.health() == Health::kUnhealthy) {
            h = Health::kUnhealthy;
            break;
        }
        if (o.counter.health() == Health::kChecking) h = Health::kChecking;
    }
    const Health before = s.health.exchange(h, std::memory_order_relaxed);
    if (h == before) return;
    // A change of state, as nginx logs it: rare (fails= or passes= checks
    // apart), so worth a line.
    const char* what = h == Health::kUnhealthy ? "unhealthy"
                       : h == Health::kChecking ? "checking"
                                                : "healthy";
    // Warn when it goes, notice when it comes back (nginx: "upstream server
    // temporarily disabled" is a warn).
    errlog::report_at(h == Health::kHealthy ? errlog::Level::kNotice : errlog::Level::kWarn, "terminusd",
                      "upstream %s is %s (health_check at %s:%u: %s%s%s)", server_name(*c.upstream, t.server).c_str(),
                      what, c.hc->loc.file.c_str(), c.hc->loc.line, to_string(last), t.why ? ": " : "",
                      t.why ? t.why : "");
}

bool HealthChecker::tls_step(Probe& p) {
    switch (p.tls->handshake()) {
        case tls::UpstreamConnection::Status::kAgain:
            if (!p.tls->parked()) return false;
            next_event_us_ = now_us_;  // poll() resumes it
            return true;
        case tls::UpstreamConnection::Status::kFailed: finish(p, CheckResult::kTls); return false;
        case tls::UpstreamConnection::Status::kDone: exchange(p); return false;
    }
    return false;
}

void HealthChecker::exchange(Probe& p) {
    const Check& c = checks_[targets_[p.target].check];
    const std::string empty;
    const std::string& send = c.match ? c.match->send : empty;
    while (p.sent < send.size()) {
        const auto left = static_cast<uint32_t>(send.size() - p.sent);
        int n = 0;
        if (p.tls) {
            n = p.tls->write(send.data() + p.sent, left);
        } else {
            n = static_cast<int>(stack_.write(*p.conn, send.data() + p.sent, left, now_us_));
        }
        if (n < 0) {
            finish(p, CheckResult::kTls);
            return;
        }
        if (n == 0) return;  // on_writable brings us back
        p.sent += static_cast<uint32_t>(n);
    }
    // Everything sent: with nothing to expect, the check passed.
    if (c.expect.empty()) {
        finish(p, CheckResult::kPassed);
        return;
    }
    receive(p);
}

void HealthChecker::receive(Probe& p) {
    const Check& c = checks_[targets_[p.target].check];
    bool eof = false;
    while (p.active && p.len < c.examined) {
        int n = 0;
        if (p.tls) {
            n = p.tls->read(p.buf.get() + p.len, c.examined - p.len);
            if (n < 0 && p.tls->failed()) {
                // TLS 1.3: the upstream refused our certificate only now.
                finish(p, CheckResult::kTls);
                return;
            }
            if (n < 0) {
                eof = true;
                break;
            }
        } else {
            n = static_cast<int>(stack_.read(*p.conn, p.buf.get() + p.len, c.examined - p.len, now_us_));
        }
        if (n == 0) break;
        p.len += static_cast<uint32_t>(n);
        if (c.expect.matches(p.buf.get(), p.len)) {
            finish(p, CheckResult::kPassed);
            return;
        }
    }
    if (!p.active) return;
    // Only the first proxy_buffer_size bytes are examined (as NGINX Plus):
    // once they are in without a match, more would not help.
    if (p.len >= c.examined) {
        finish(p, CheckResult::kMismatch);
        return;
    }
    if (eof || (!p.tls && p.conn->peer_closed())) finish(p, p.len ? CheckResult::kMismatch : CheckResult::kClosed);
}

void Probe::on_established(tcp::Connection&) {
    if (!active) return;
    HealthChecker& hc = *checker;
    const auto& c = hc.checks_[hc.targets_[target].check];
    if (c.tls) {
        const auto& t = hc.targets_[target];
        tls.emplace(*hc.tls_, tls::UpstreamKey{c.server, t.addr, t.port}, transport, c.name);
        hc.tls_step(*this);
        return;
    }
    hc.exchange(*this);
}

void Probe::on_readable(tcp::Connection& c) {
    if (!active) {
        checker->stack_.skip(c, UINT32_MAX, checker->now_us_);
        return;
    }
    HealthChecker& hc = *checker;
    if (tls && !tls->established()) {
        if (!tls->parked()) hc.tls_step(*this);
        return;
    }
    const auto& chk = hc.checks_[hc.targets_[target].check];
    const std::string_view send = chk.match ? std::string_view(chk.match->send) : std::string_view();
    // The reply is read once the request is out (what arrives before waits
    // in the receive queue).
    if (sent < send.size()) {
        if (c.peer_closed()) hc.finish(*this, CheckResult::kClosed);
        return;
    }
    hc.receive(*this);
}

void Probe::on_writable(tcp::Connection&) {
    if (!active) return;
    if (tls && !tls->established()) {
        if (!tls->parked()) checker->tls_step(*this);
        return;
    }
    checker->exchange(*this);
}

void Probe::on_closed(tcp::Connection& c, tcp::CloseReason why) {
    if (!active || &c != conn) return;
    conn = nullptr;
    transport.conn = nullptr;
    CheckResult r = CheckResult::kClosed;
    switch (why) {
        case tcp::CloseReason::kRefused: r = CheckResult::kRefused; break;
        case tcp::CloseReason::kTimeout:
        case tcp::CloseReason::kDeadline:
        case tcp::CloseReason::kIdle: r = CheckResult::kTimeout; break;
        case tcp::CloseReason::kReset:
        case tcp::CloseReason::kAborted: r = CheckResult::kReset; break;
        case tcp::CloseReason::kClosed: r = len ? CheckResult::kMismatch : CheckResult::kClosed; break;
    }
    checker->finish(*this, r);
}

}  // namespace terminus::dataplane::proxy
