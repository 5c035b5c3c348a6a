#include "dataplane/control.h"

#include <openssl/crypto.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>

#include "dataplane/dataplane.h"
#include "dataplane/proxy/health.h"
#include "dataplane/publish.h"
#include "mgmt/error_log.h"

namespace terminus::dataplane {

namespace {

std::atomic<bool> g_reload{false};
std::atomic<bool> g_reopen{false};

// Through the error log (mgmt/error_log.h): notice, as nginx logs its
// reloads; "log_error" for a refused one.
#define log(...) errlog::report_at(errlog::Level::kNotice, "terminusd", __VA_ARGS__)
#define log_error(...) errlog::report_at(errlog::Level::kError, "terminusd", __VA_ARGS__)

// How long a reload waits for every core to take the new generation.
constexpr auto kInstallWait = std::chrono::seconds(5);

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

std::string json_list(const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + json_string(v[i]);
    return out + "]";
}

void add_diagnostics(Control::Outcome& o, const std::vector<config::Diagnostic>& diags) {
    for (const auto& d : diags) {
        (d.severity == config::Severity::kError ? o.errors : o.warnings).push_back(d.to_string());
    }
}

}  // namespace

void Control::request_reload() { g_reload.store(true, std::memory_order_relaxed); }
void Control::request_reopen() { g_reopen.store(true, std::memory_order_relaxed); }

Control::Control(GenerationBase base, Lcore* lcores, const MessageRings& rings, std::string config_path)
    : base_(std::move(base)), lcores_(lcores), config_path_(std::move(config_path)) {
    rings.connect(mailbox_, base_.n_cores);
    mailbox_.set_counters(&counters_);
    mailbox_.on(MessageKind::kGenerationAck, {on_ack, nullptr, this});
    mailbox_.on(MessageKind::kQueryDone, {[](void* ctx, unsigned, const Message* msgs, unsigned n) {
                                              auto* c = static_cast<Control*>(ctx);
                                              for (unsigned i = 0; i < n; ++i) {
                                                  if (msgs[i].arg == c->query_) ++c->answered_;
                                              }
                                          },
                                          nullptr, this});
    snapshots_.reset(new proxy::SessionsSnapshot[base_.n_cores]);
}

Control::~Control() {
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        ::unlink(socket_path_.c_str());
    }
    // The live segment's writer unlinks it; the others were renamed over.
    generations_.clear();
    std::free(qsbr_);
}

Result<bool> Control::start(std::shared_ptr<const config::Config> cfg) {
    const unsigned n = base_.n_cores;
    const size_t size = rte_rcu_qsbr_get_memsize(n);
    qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE, (size + RTE_CACHE_LINE_SIZE - 1) /
                                                                                    RTE_CACHE_LINE_SIZE *
                                                                                    RTE_CACHE_LINE_SIZE));
    if (!qsbr_ || rte_rcu_qsbr_init(qsbr_, n) != 0) return make_error("cannot make the RCU QSBR variable");
    auto g = build_generation(base_, cfg, next_number_);
    if (!g) return make_error(g.error());
    for (unsigned i = 0; i < n; ++i) {
        Lcore& lc = lcores_[i];
        rte_rcu_qsbr_thread_register(qsbr_, i);
        lc.qsbr = qsbr_;
        lc.proxy->install((*g)->routes[i].get());
        lc.upstreams = (*g)->upstreams.get();
        lc.stats = (*g)->stats.get();
        lc.messages.on(MessageKind::kConfigGeneration, {on_generation, nullptr, this});
        lc.messages.on(MessageKind::kQuery, {on_query, nullptr, this});
        add_poller(lc, {"generations", poll_released, this, Poller::Stage::kOutput});
    }
    // The health checks of whichever generation core 0 gives new
    // connections (proxy/health.h: they run on core 0).
    add_poller(lcores_[0], {"health",
                            [](Lcore& lc, void*) {
                                const proxy::Routes* r = lc.proxy->current();
                                return r && r->health && r->health->poll();
                            },
                            nullptr, Poller::Stage::kApplication});
    (*g)->installed = n;
    current_ = g->get();
    generations_.push_back(std::move(*g));
    running_ = cfg;
    ++next_number_;
    rotation_ms_ = static_cast<uint64_t>(cfg->mgmt.ticket_key_rotation.count());
    std::string why;
    if (open_socket(why) != 0) return make_error(why);
    return true;
}

int Control::open_socket(std::string& why) {
    socket_path_ = running_->mgmt.control;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof addr.sun_path) {
        why = "control socket " + socket_path_ + ": path too long";
        return -1;
    }
    std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    // Its directory, as systemd's RuntimeDirectory= would make it.
    const auto slash = socket_path_.rfind('/');
    if (slash != std::string::npos && slash > 0) ::mkdir(socket_path_.substr(0, slash).c_str(), 0750);
    // A socket left by a terminusd that died is replaced; one that answers
    // belongs to a running terminusd.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        ::close(probe);
        why = "control socket " + socket_path_ + " is in use: another terminusd runs with this mgmt { control }";
        return -1;
    }
    if (probe >= 0) ::close(probe);
    ::unlink(socket_path_.c_str());
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
        why = "control socket " + socket_path_ + ": " + std::strerror(errno);
        return -1;
    }
    // The operators' group reads and writes it (docs/DEPLOY.md).
    ::chmod(socket_path_.c_str(), 0660);
    log("control socket %s (terminusctl reload | check | status)", socket_path_.c_str());
    return 0;
}

void Control::on_generation(void* ctx, unsigned self, const Message* msgs, unsigned n) {
    auto* c = static_cast<Control*>(ctx);
    Lcore& lc = c->lcores_[self];
    for (unsigned i = 0; i < n; ++i) {
        auto* g = static_cast<Generation*>(msgs[i].ptr);
        Message ack;
        ack.kind = MessageKind::kGenerationAck;
        ack.arg = g->number;
        ack.ptr = g;
        if (msgs[i].reserved[0] == kForget) {
            // OpenSSL 3.0 keeps per-thread state (DRBGs) in each library
            // context a thread used, and frees it when the thread stops:
            // a context freed by another thread first would be touched
            // then. Each core drops its own before the control thread
            // frees the contexts.
            if (self < g->core_tls.size()) OPENSSL_thread_stop_ex(g->core_tls[self]->libctx());
            if (self < g->core_upstream_tls.size()) OPENSSL_thread_stop_ex(g->core_upstream_tls[self]->libctx());
            ack.reserved[0] = kForgotten;
            lc.messages.send(lc.messages.control(), ack);
            continue;
        }
        lc.proxy->install(g->routes[self].get());
        lc.upstreams = g->upstreams.get();
        lc.stats = g->stats.get();
        // The new segment has this core's row before readers see it.
        publish(lc, *lc.stats);
        ack.reserved[0] = kInstalled;
        lc.messages.send(lc.messages.control(), ack);
    }
}

void Control::on_query(void* ctx, unsigned self, const Message* msgs, unsigned n) {
    Lcore& lc = static_cast<Control*>(ctx)->lcores_[self];
    for (unsigned i = 0; i < n; ++i) {
        lc.proxy->snapshot(*static_cast<proxy::SessionsSnapshot*>(msgs[i].ptr));
        Message done = msgs[i];
        done.kind = MessageKind::kQueryDone;
        lc.messages.send(lc.messages.control(), done);
    }
}

bool Control::poll_released(Lcore& lc, void*) {
    bool any = false;
    while (proxy::Routes* r = lc.proxy->take_released()) {
        Message ack;
        ack.kind = MessageKind::kGenerationAck;
        ack.arg = r->generation;
        ack.reserved[0] = kReleased;
        lc.messages.send(lc.messages.control(), ack);
        any = true;
    }
    return any;
}

Generation* Control::find(uint32_t number) {
    for (auto& g : generations_) {
        if (g->number == number) return g.get();
    }
    return nullptr;
}

void Control::on_ack(void* ctx, unsigned, const Message* msgs, unsigned n) {
    auto* c = static_cast<Control*>(ctx);
    for (unsigned i = 0; i < n; ++i) {
        Generation* g = c->find(msgs[i].arg);
        if (!g) continue;
        if (msgs[i].reserved[0] == kInstalled) {
            ++g->installed;
        } else if (msgs[i].reserved[0] == kForgotten) {
            ++g->forgotten;
        } else if (++g->released == c->base_.n_cores) {
            // Retired everywhere and no session left on it: free it once
            // every core has been quiescent since.
            g->qsbr_token = rte_rcu_qsbr_start(c->qsbr_);
            g->grace = true;
        }
    }
}

void Control::handle_acks() { mailbox_.poll(); }

void Control::collect() {
    for (size_t i = 0; i < generations_.size();) {
        Generation* g = generations_[i].get();
        if (g != current_ && g->grace && !g->forgetting && rte_rcu_qsbr_check(qsbr_, g->qsbr_token, false) == 1) {
            // Grace period over: each core drops its OpenSSL thread state
            // of the generation's contexts, then it goes.
            for (unsigned c = 0; c < base_.n_cores; ++c) {
                Message m;
                m.kind = MessageKind::kConfigGeneration;
                m.arg = g->number;
                m.reserved[0] = kForget;
                m.ptr = g;
                if (!mailbox_.send(c, m)) ++g->forgotten;  // counted; the ring will not fill with these
            }
            g->forgetting = true;
        }
        if (g->forgetting && g->forgotten >= base_.n_cores) {
            for (const auto& ct : g->core_tls) OPENSSL_thread_stop_ex(ct->libctx());
            for (const auto& ut : g->core_upstream_tls) OPENSSL_thread_stop_ex(ut->libctx());
            log("generation %u freed: no core serves it any more", g->number);
            generations_.erase(generations_.begin() + static_cast<std::ptrdiff_t>(i));
            continue;
        }
        ++i;
    }
}

Control::Outcome Control::reload(const std::string& path, bool check) {
    Outcome o;
    auto r = config::load_file(path);
    add_diagnostics(o, r.diagnostics);
    if (!r.ok()) {
        o.message = "configuration file " + path + " test failed; generation " + std::to_string(generation()) +
                    " still serves";
        return o;
    }
    add_diagnostics(o, unsupported_directives(*r.config));
    config::Config next = *r.config;
    add_diagnostics(o, resolve_hosts(next));
    add_diagnostics(o, restart_needed(*running_, next));
    if (!o.errors.empty()) {
        o.message = "configuration file " + path + " refused; generation " + std::to_string(generation()) +
                    " still serves";
        return o;
    }
    auto cfg = std::make_shared<const config::Config>(std::move(next));
    auto built = build_generation(base_, cfg, next_number_, current_);
    if (!built) {
        o.errors.push_back(path + ": " + built.error());
        o.message = "configuration file " + path + " refused; generation " + std::to_string(generation()) +
                    " still serves";
        return o;
    }
    if (check) {
        o.ok = true;
        o.message = "configuration file " + path + " test is successful (nothing applied)";
        return o;
    }
    // The main error_log of the new file, as nginx reopens it on a reload;
    // one that cannot be opened is a refusal like any other.
    const config::ErrorLog log_was = errlog::main_of(*running_), log_now = errlog::main_of(*cfg);
    if (log_now.path != log_was.path || log_now.level != log_was.level) {
        if (const std::string err = errlog::configure(log_now); !err.empty()) {
            o.errors.push_back(path + ": " + err);
            o.message = "configuration file " + path + " refused; generation " + std::to_string(generation()) +
                        " still serves";
            return o;
        }
    }
    Generation* g = built->get();
    generations_.push_back(std::move(*built));
    Generation* previous = current_;
    current_ = g;
    running_ = cfg;
    rotation_ms_ = static_cast<uint64_t>(cfg->mgmt.ticket_key_rotation.count());
    ++next_number_;
    const auto until = std::chrono::steady_clock::now() + kInstallWait;
    for (unsigned i = 0; i < base_.n_cores; ++i) {
        Message m;
        m.kind = MessageKind::kConfigGeneration;
        m.arg = g->number;
        m.ptr = g;
        while (!mailbox_.send(i, m) && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    while (g->installed < base_.n_cores && std::chrono::steady_clock::now() < until) {
        handle_acks();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (g->stats->go_live()) {
        if (previous) previous->stats->disown();
        g->live = true;
    } else {
        o.warnings.push_back(std::string("statistics: cannot replace the segment: ") + std::strerror(errno));
    }
    o.ok = true;
    o.generation = g->number;
    o.message = "generation " + std::to_string(g->number) + " from " + path + ": " +
                std::to_string(g->installed) + " of " + std::to_string(base_.n_cores) +
                " cores give it new connections";
    if (g->installed < base_.n_cores) o.warnings.push_back("not every core took the generation within 5 s");
    return o;
}

std::string Control::status_json() const {
    std::string s = "{\"ok\":true,\"generation\":" + std::to_string(current_ ? current_->number : 0) +
                    ",\"config\":" + json_string(config_path_) + ",\"cores\":" + std::to_string(base_.n_cores) +
                    ",\"generations\":[";
    for (size_t i = 0; i < generations_.size(); ++i) {
        const Generation& g = *generations_[i];
        s += (i ? "," : "");
        s += "{\"number\":" + std::to_string(g.number) + ",\"state\":" +
             json_string(&g == current_ ? "current" : g.grace ? "grace" : "retired") +
             ",\"installed\":" + std::to_string(g.installed) + ",\"released\":" + std::to_string(g.released) + "}";
    }
    return s + "]}\n";
}

namespace {

const char* method_name(config::BalanceMethod m) {
    switch (m) {
        case config::BalanceMethod::kRoundRobin: return "round_robin";
        case config::BalanceMethod::kLeastConn: return "least_conn";
        case config::BalanceMethod::kHash: return "hash";
        case config::BalanceMethod::kRandom: return "random";
    }
    return "?";
}

const char* check_name(uint8_t r) {
    static const char* kNames[] = {
#define TERMINUS_X(id, name) name,
        TERMINUS_CHECK_RESULTS(TERMINUS_X)
#undef TERMINUS_X
    };
    return r < std::size(kNames) ? kNames[r] : "?";
}

}  // namespace

std::string Control::upstreams_json() const {
    // The cores' clock: the TSC in microseconds, as run_once() reads it.
    const uint64_t now_us = rte_rdtsc() / (base_.tsc_hz / 1'000'000);
    // Connections open to a server in every generation still served:
    // sessions count where they started.
    auto conns = [this](const std::string& group, const config::UpstreamServer& us) {
        uint64_t n = 0;
        for (const auto& gen : generations_) {
            for (const auto& g : gen->upstreams->groups()) {
                if (g.upstream->name != group) continue;
                for (size_t i = 0; i < g.upstream->servers.size(); ++i) {
                    const auto& o = g.upstream->servers[i];
                    if (o.address == us.address && o.port == us.port && o.host == us.host) {
                        n += g.peers[i].conns.load(std::memory_order_relaxed);
                    }
                }
            }
        }
        return n;
    };
    std::string s = "{\"ok\":true,\"generation\":" + std::to_string(generation()) + ",\"upstreams\":[";
    bool first_group = true;
    for (const auto& g : current_->upstreams->groups()) {
        const config::Upstream& u = *g.upstream;
        s += std::string(first_group ? "" : ",") + "{\"name\":" + json_string(u.name) +
             ",\"method\":" + json_string(method_name(u.method)) + ",\"health_check\":" +
             (u.health_check.enabled ? "true" : "false") + ",\"servers\":[";
        first_group = false;
        for (size_t i = 0; i < u.servers.size(); ++i) {
            const config::UpstreamServer& us = u.servers[i];
            const proxy::SharedPeer& p = g.peers[i];
            s += std::string(i ? "," : "") + "{\"server\":" +
                 json_string((us.address ? config::ipv4_to_string(*us.address) : us.host) + ":" + std::to_string(us.port)) +
                 ",\"state\":" + json_string(proxy::to_string(proxy::peer_state(u, i, p, now_us))) +
                 ",\"weight\":" + std::to_string(us.weight) + ",\"max_fails\":" + std::to_string(us.max_fails) +
                 ",\"fail_timeout_s\":" + std::to_string(us.fail_timeout.count() / 1000.0) +
                 ",\"max_conns\":" + std::to_string(us.max_conns) + ",\"backup\":" + (us.backup ? "true" : "false") +
                 ",\"down\":" + (us.down ? "true" : "false") +
                 ",\"conns\":" + std::to_string(conns(u.name, us)) +
                 ",\"fails\":" + std::to_string(p.fails.load(std::memory_order_relaxed)) +
                 ",\"checks\":" + std::to_string(p.checks.load(std::memory_order_relaxed)) +
                 ",\"checks_failed\":" + std::to_string(p.checks_failed.load(std::memory_order_relaxed)) +
                 ",\"last_check\":" + json_string(check_name(p.last_check.load(std::memory_order_relaxed))) + "}";
        }
        s += "]}";
    }
    return s + "]}\n";
}

std::string Control::certs_json() const {
    const auto now = static_cast<int64_t>(std::time(nullptr));
    std::string s = "{\"ok\":true,\"generation\":" + std::to_string(generation()) + ",\"certs\":[";
    for (size_t i = 0; i < current_->certs.size(); ++i) {
        const CertInfo& c = current_->certs[i];
        s += std::string(i ? "," : "") + "{\"server\":" + json_string(c.server) + ",\"path\":" + json_string(c.path);
        if (!c.error.empty()) {
            s += ",\"error\":" + json_string(c.error) + "}";
            continue;
        }
        s += ",\"subject\":" + json_string(c.subject) + ",\"names\":" + json_list(c.names) + ",\"key\":" +
             json_string(c.key) + ",\"not_before\":" + std::to_string(c.not_before) + ",\"not_after\":" +
             std::to_string(c.not_after) + ",\"days_left\":" + std::to_string((c.not_after - now) / 86400);
        if (c.ocsp_this_update) {
            s += ",\"ocsp_age_s\":" + std::to_string(now - c.ocsp_this_update) + ",\"ocsp_next_update\":" +
                 std::to_string(c.ocsp_next_update);
        }
        s += "}";
    }
    return s + "]}\n";
}

std::string Control::sessions_json(unsigned top) {
    const unsigned n = base_.n_cores;
    ++query_;
    answered_ = 0;
    for (unsigned i = 0; i < n; ++i) {
        Message m;
        m.kind = MessageKind::kQuery;
        m.arg = query_;
        m.ptr = &snapshots_[i];
        if (!mailbox_.send(i, m)) return "{\"ok\":false,\"errors\":[\"a core's control ring is full\"]}\n";
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (answered_ < n && std::chrono::steady_clock::now() < until) {
        handle_acks();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (answered_ < n) return "{\"ok\":false,\"errors\":[\"not every core answered within 2 s\"]}\n";
    uint64_t active = 0;
    uint64_t stages[proxy::SessionsSnapshot::kStages] = {};
    uint64_t tcp_states[tcp::kNumTcpStates] = {};
    std::vector<std::pair<unsigned, const proxy::SessionsSnapshot::Top*>> all;
    for (unsigned i = 0; i < n; ++i) {
        const proxy::SessionsSnapshot& sn = snapshots_[i];
        active += sn.active;
        for (size_t k = 0; k < proxy::SessionsSnapshot::kStages; ++k) stages[k] += sn.by_stage[k];
        for (unsigned k = 0; k < tcp::kNumTcpStates; ++k) tcp_states[k] += sn.tcp_states[k];
        for (size_t k = 0; k < sn.n_top; ++k) all.push_back({i, &sn.top[k]});
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return a.second->bytes_to_upstream + a.second->bytes_to_client >
               b.second->bytes_to_upstream + b.second->bytes_to_client;
    });
    if (all.size() > top) all.resize(top);
    std::string s = "{\"ok\":true,\"generation\":" + std::to_string(generation()) +
                    ",\"active\":" + std::to_string(active) + ",\"by_stage\":{";
    for (size_t k = 0; k < proxy::SessionsSnapshot::kStages; ++k) {
        s += std::string(k ? "," : "") + json_string(proxy::stage_name(k)) + ":" + std::to_string(stages[k]);
    }
    s += "},\"tcp\":{";
    for (unsigned k = 0; k < tcp::kNumTcpStates; ++k) {
        s += std::string(k ? "," : "") + json_string(tcp::to_string(static_cast<tcp::TcpState>(k))) + ":" +
             std::to_string(tcp_states[k]);
    }
    s += "},\"top\":[";
    for (size_t k = 0; k < all.size(); ++k) {
        const auto& t = *all[k].second;
        s += std::string(k ? "," : "") + "{\"core\":" + std::to_string(all[k].first) + ",\"client\":" +
             json_string(config::ipv4_to_string(t.client_ip) + ":" + std::to_string(t.client_port)) + ",\"port\":" +
             std::to_string(t.local_port) + ",\"upstream\":" +
             json_string(t.upstream_ip ? config::ipv4_to_string(t.upstream_ip) + ":" + std::to_string(t.upstream_port) : "") +
             ",\"stage\":" + json_string(proxy::stage_name(t.stage)) + ",\"tls\":" + (t.tls ? "true" : "false") +
             ",\"bytes_to_upstream\":" + std::to_string(t.bytes_to_upstream) + ",\"bytes_to_client\":" +
             std::to_string(t.bytes_to_client) + ",\"age_s\":" + std::to_string(t.age_us / 1e6) +
             ",\"generation\":" + std::to_string(t.generation) + "}";
    }
    return s + "]}\n";
}

std::string Control::tickets_json(const std::string& arg) {
    using Keys = tls::TicketKeys;
    Keys* keys = base_.carry.random_keys.get();
    if (!keys) return "{\"ok\":false,\"errors\":[\"no random ticket keys (no TLS server)\"]}\n";
    const auto now = std::chrono::steady_clock::now();
    const bool mgmtd = mgmtd_rotates(now);
    std::string message;
    if (arg == "rotate") {
        keys->rotate();
        rotated_ = now;
        message = "random session ticket keys rotated on every core: the new key encrypts, the previous one still "
                  "decrypts until the next rotation; servers with ssl_session_ticket_key files rotate when the files "
                  "change and terminusd reloads";
        if (mgmtd) message += " (terminus-mgmtd's next rotation replaces this key)";
        log("random session ticket keys rotated (terminusctl tickets rotate)");
    } else if (arg.rfind("set ", 0) == 0) {
        // "set CUR [PREV]": terminus-mgmtd's keys.
        const std::string rest = arg.substr(4);
        const auto sp = rest.find(' ');
        Keys::Key cur, prev;
        const bool has_prev = sp != std::string::npos;
        if (!Keys::parse_hex(rest.substr(0, sp), cur) || (has_prev && !Keys::parse_hex(rest.substr(sp + 1), prev))) {
            log("control socket: tickets set: a key is not 160 hex digits (80 bytes, nginx's layout)");
            return "{\"ok\":false,\"errors\":[\"tickets set CUR [PREV]: each key is 160 hex digits (80 bytes: "
                   "name, HMAC key, AES-256 key)\"]}\n";
        }
        ++pushes_;
        pushed_ = now;
        if (keys->set(cur, has_prev ? &prev : nullptr)) {
            ++mgmtd_installs_;
            rotated_ = now;
            log("session ticket key %s from terminus-mgmtd encrypts new tickets (the previous one, %s, decrypts)",
                Keys::name_hex(keys->current_name()).c_str(), Keys::name_hex(keys->previous_name()).c_str());
            message = "installed";
        } else {
            message = "already held";
        }
    }
    const auto ago = [&](std::chrono::steady_clock::time_point t) {
        return std::to_string(std::chrono::duration<double>(now - t).count());
    };
    const bool by_mgmtd = mgmtd_rotates(now);  // a push just now counts
    std::string s = "{\"ok\":true,\"current\":" + json_string(Keys::name_hex(keys->current_name())) +
                    ",\"previous\":" + json_string(Keys::name_hex(keys->previous_name())) +
                    ",\"rotated_by\":" + json_string(by_mgmtd ? "terminus-mgmtd" : "terminusd") +
                    ",\"rotation_s\":" + std::to_string(rotation_ms_ / 1000) + ",\"rotated_s_ago\":" + ago(rotated_) +
                    ",\"pushes\":" + std::to_string(pushes_) + ",\"mgmtd_keys\":" + std::to_string(mgmtd_installs_);
    if (pushes_) s += ",\"pushed_s_ago\":" + ago(pushed_);
    if (!message.empty()) s += ",\"message\":" + json_string(message);
    // Servers with ssl_session_ticket_key files: theirs, not rotated here.
    s += ",\"files\":[";
    bool first = true;
    const auto& servers = running_->servers;
    for (size_t i = 0; i < servers.size() && current_->tls && i < current_->tls->file_keys.size(); ++i) {
        const auto& fk = current_->tls->file_keys[i];
        if (!fk) continue;
        s += std::string(first ? "" : ",") + "{\"server\":" +
             json_string(servers[i].loc.file + ":" + std::to_string(servers[i].loc.line)) +
             ",\"keys\":" + json_list(servers[i].settings.ssl_session_ticket_key) +
             ",\"current\":" + json_string(Keys::name_hex(fk->current_name())) + "}";
        first = false;
    }
    return s + "]}\n";
}

void Control::serve_client(int fd) {
    // Generous: a client on a loaded machine may be descheduled between
    // its connect and its request.
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string line;
    char buf[512];
    while (line.find('\n') == std::string::npos && line.size() < 4096) {
        const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        line.append(buf, static_cast<size_t>(got));
    }
    if (const auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto space = line.find(' ');
    const std::string cmd = line.substr(0, space);
    const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
    std::string reply;
    if (cmd == "reload" || cmd == "check") {
        const bool check = cmd == "check";
        const std::string path = check && !arg.empty() ? arg : config_path_;
        const Outcome o = reload(path, check);
        if (o.ok) {
            log("%s (%s, from the control socket)", o.message.c_str(), cmd.c_str());
        } else {
            log_error("%s (%s, from the control socket)", o.message.c_str(), cmd.c_str());
        }
        for (const auto& e : o.errors) log_error("  %s", e.c_str());
        reply = std::string("{\"ok\":") + (o.ok ? "true" : "false") + ",\"generation\":" +
                std::to_string(o.ok && !check ? o.generation : generation()) + ",\"message\":" +
                json_string(o.message) + ",\"errors\":" + json_list(o.errors) + ",\"warnings\":" +
                json_list(o.warnings) + "}\n";
    } else if (cmd == "status") {
        reply = status_json();
    } else if (cmd == "upstreams") {
        reply = upstreams_json();
    } else if (cmd == "certs") {
        reply = certs_json();
    } else if (cmd == "sessions") {
        const unsigned top = arg.empty() ? 0 : static_cast<unsigned>(std::strtoul(arg.c_str(), nullptr, 10));
        reply = sessions_json(std::min(top, 1000u));
    } else if (cmd == "tickets" && (arg.empty() || arg == "rotate" || arg.rfind("set ", 0) == 0)) {
        reply = tickets_json(arg);
    } else {
        const std::string what = line.empty() ? "no request within 10 s" : "unknown request \"" + line + "\"";
        constexpr const char* kKnown =
            " (reload, check [FILE], status, upstreams, sessions [N], certs, tickets, tickets rotate, tickets set)";
        log("control socket: %s%s", what.c_str(), kKnown);
        reply = "{\"ok\":false,\"errors\":[" + json_string(what + kKnown) + "]}\n";
    }
    size_t off = 0;
    while (off < reply.size()) {
        const ssize_t w = ::send(fd, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += static_cast<size_t>(w);
    }
}

void Control::run(const std::atomic<bool>& stop) {
    rotated_ = std::chrono::steady_clock::now();
    while (!stop.load(std::memory_order_relaxed)) {
        if (g_reload.exchange(false)) {
            const Outcome o = reload(config_path_, false);
            if (o.ok) {
                log("%s (SIGHUP)", o.message.c_str());
            } else {
                log_error("%s (SIGHUP)", o.message.c_str());
            }
            for (const auto& e : o.errors) log_error("  %s", e.c_str());
            for (const auto& w : o.warnings) errlog::report_at(errlog::Level::kWarn, "terminusd", "  %s", w.c_str());
        }
        if (g_reopen.exchange(false)) log("SIGUSR1: the error log was reopened (the access log is terminus-mgmtd's: send it SIGUSR1 too)");
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 10) > 0 && (p.revents & POLLIN)) {
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) {
                serve_client(fd);
                ::close(fd);
            }
        }
        handle_acks();
        collect();
        // The random ticket keys: the new one encrypts, the previous one
        // still decrypts; the cores see it at their next ticket. While
        // terminus-mgmtd pushes keys it rotates them; one period after its
        // last push (it is gone), terminusd rotates by itself again.
        const auto now = std::chrono::steady_clock::now();
        const auto period = std::chrono::milliseconds(rotation_ms_);
        if (rotation_ms_ && now - rotated_ >= period && !mgmtd_rotates(now)) {
            if (base_.carry.random_keys) base_.carry.random_keys->rotate();
            if (pushes_) log("terminus-mgmtd pushed no ticket key for one rotation period: terminusd rotates its own");
            rotated_ = now;
        }
    }
}

}  // namespace terminus::dataplane
