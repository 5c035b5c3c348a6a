#include "dataplane/proxy/balancer.h"

#include <rte_hash_crc.h>
#include <rte_random.h>

#include <algorithm>
#include <cstdio>

namespace terminus::dataplane::proxy {

namespace {

// nginx's ketama: 160 points per unit of weight
// (ngx_stream_upstream_hash_module.c).
constexpr uint32_t kPointsPerWeight = 160;
// nginx gives up on a hash after 20 unavailable picks and falls back to
// round robin.
constexpr int kHashTries = 20;

bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Splits KEY into text and "$name" / "${name}" references.
template <typename F>
void scan_key(const std::string& key, F&& on_part) {
    size_t i = 0;
    std::string text;
    while (i < key.size()) {
        if (key[i] != '$') {
            text += key[i++];
            continue;
        }
        size_t start = i + 1, end = start;
        bool braced = start < key.size() && key[start] == '{';
        if (braced) {
            ++start;
            end = key.find('}', start);
            if (end == std::string::npos) end = key.size();
        } else {
            while (end < key.size() && name_char(key[end])) ++end;
        }
        if (!text.empty()) on_part(std::string(), text);
        text.clear();
        on_part(key.substr(start, end - start), std::string());
        i = braced ? end + 1 : end;
    }
    if (!text.empty()) on_part(std::string(), text);
}

}  // namespace

bool Balancer::key_supported(const std::string& key, std::string& bad) {
    bool ok = true;
    scan_key(key, [&](const std::string& var, const std::string&) {
        if (var.empty() || !ok) return;
        if (var != "remote_addr" && var != "remote_port" && var != "server_addr" &&
            var != "server_port" && var != "binary_remote_addr") {
            bad = "$" + var;
            ok = false;
        }
    });
    return ok;
}

const char* to_string(PeerState s) {
    switch (s) {
#define TERMINUS_X(id, name) \
    case PeerState::id:      \
        return name;
        TERMINUS_PEER_STATES(TERMINUS_X)
#undef TERMINUS_X
        case PeerState::kCount: break;
    }
    return "?";
}

PeerState peer_state(const config::Upstream& u, size_t i, const SharedPeer& s, uint64_t now_us) {
    const config::UpstreamServer& srv = u.servers[i];
    if (srv.down) return PeerState::kDown;
    switch (s.health.load(std::memory_order_relaxed)) {
        case Health::kUnhealthy: return PeerState::kUnhealthy;
        case Health::kChecking: return PeerState::kChecking;
        case Health::kHealthy: break;
    }
    const uint64_t fail_timeout_us = static_cast<uint64_t>(srv.fail_timeout.count()) * 1000;
    if (passive_unavailable(s, srv.max_fails, fail_timeout_us, u.servers.size(), now_us)) {
        return PeerState::kUnavailable;
    }
    return PeerState::kUp;
}

SharedUpstreams::SharedUpstreams(const config::Config& cfg, const SharedUpstreams* previous) {
    for (const auto& u : cfg.upstreams) {
        Group g{&u, std::make_unique<SharedPeer[]>(u.servers.size()), std::vector<bool>(u.servers.size())};
        const Group* old = nullptr;
        for (const auto& pg : previous ? previous->groups_ : groups_) {
            if (previous && pg.upstream->name == u.name) old = &pg;
        }
        for (size_t i = 0; old && i < u.servers.size(); ++i) {
            const config::UpstreamServer& s = u.servers[i];
            for (size_t j = 0; j < old->upstream->servers.size(); ++j) {
                const config::UpstreamServer& o = old->upstream->servers[j];
                if (o.address != s.address || o.port != s.port || o.host != s.host) continue;
                const SharedPeer& from = old->peers[j];
                SharedPeer& to = g.peers[i];
                constexpr auto r = std::memory_order_relaxed;
                to.fails.store(from.fails.load(r), r);
                to.failed_at_us.store(from.failed_at_us.load(r), r);
                to.health.store(from.health.load(r), r);
                to.checks.store(from.checks.load(r), r);
                to.checks_failed.store(from.checks_failed.load(r), r);
                to.last_check.store(from.last_check.load(r), r);
                g.carried[i] = true;
                break;
            }
        }
        groups_.push_back(std::move(g));
    }
}

bool SharedUpstreams::carried(const std::string& name, size_t i) const {
    for (const auto& g : groups_) {
        if (g.upstream->name == name) return i < g.carried.size() && g.carried[i];
    }
    return false;
}

SharedPeer* SharedUpstreams::find(const std::string& name) const {
    for (const auto& g : groups_) {
        if (g.upstream->name == name) return g.peers.get();
    }
    return nullptr;
}

Balancer::Balancer(const config::Upstream& u, SharedPeer* shared) : method_(u.method) {
    if (!shared) {
        own_ = std::make_unique<SharedPeer[]>(u.servers.size());
        shared = own_.get();
    }
    for (const auto& s : u.servers) {
        Peer p;
        p.addr = s.address.value_or(0);
        p.port = s.port;
        p.weight = p.effective_weight = static_cast<int>(s.weight);
        p.max_fails = s.max_fails;
        p.fail_timeout_us = static_cast<uint64_t>(s.fail_timeout.count()) * 1000;
        p.max_conns = s.max_conns;
        p.backup = s.backup;
        p.down = s.down;
        p.shared = &shared[peers_.size()];
        peers_.push_back(p);
    }
    if (method_ == config::BalanceMethod::kHash) {
        scan_key(u.hash_key, [this](const std::string& var, const std::string& text) {
            KeyPart k = KeyPart::kText;
            if (var == "remote_addr") k = KeyPart::kRemoteAddr;
            if (var == "remote_port") k = KeyPart::kRemotePort;
            if (var == "server_addr") k = KeyPart::kServerAddr;
            if (var == "server_port") k = KeyPart::kServerPort;
            if (var == "binary_remote_addr") k = KeyPart::kBinaryRemoteAddr;
            key_.push_back(Part{k, text});
        });
        consistent_ = u.hash_consistent;
    }
    if (consistent_) {
        // Each server's points follow from its address, so every core (and
        // every restart) builds the same ring, and a server that leaves
        // moves only the keys that were its own.
        for (size_t i = 0; i < peers_.size(); ++i) {
            const std::string name = config::ipv4_to_string(peers_[i].addr) + ":" + std::to_string(peers_[i].port);
            const uint32_t base = rte_hash_crc(name.data(), static_cast<uint32_t>(name.size()), 0);
            uint32_t prev = 0;
            const uint32_t points = kPointsPerWeight * static_cast<uint32_t>(peers_[i].weight);
            for (uint32_t j = 0; j < points; ++j) {
                prev = rte_hash_crc_4byte(prev, base);
                ring_.push_back(Point{prev, static_cast<uint32_t>(i)});
            }
        }
        std::sort(ring_.begin(), ring_.end(), [](const Point& x, const Point& y) {
            return x.hash != y.hash ? x.hash < y.hash : x.peer < y.peer;
        });
    }
    random_two_ = method_ == config::BalanceMethod::kRandom && u.random_two;
}

uint32_t Balancer::key_hash(const FlowKey& k) const {
    char buf[256];
    size_t len = 0;
    auto put = [&](const char* p, size_t n) {
        n = std::min(n, sizeof buf - len);
        std::copy(p, p + n, buf + len);
        len += n;
    };
    auto put_num = [&](const char* fmt, unsigned a, unsigned b = 0, unsigned c = 0, unsigned d = 0) {
        char tmp[24];
        const int n = std::snprintf(tmp, sizeof tmp, fmt, a, b, c, d);
        put(tmp, static_cast<size_t>(n));
    };
    auto put_ip = [&](uint32_t ip) { put_num("%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255); };
    for (const Part& p : key_) {
        switch (p.kind) {
            case KeyPart::kText: put(p.text.data(), p.text.size()); break;
            case KeyPart::kRemoteAddr: put_ip(k.client_ip); break;
            case KeyPart::kServerAddr: put_ip(k.server_ip); break;
            case KeyPart::kRemotePort: put_num("%u", k.client_port); break;
            case KeyPart::kServerPort: put_num("%u", k.server_port); break;
            case KeyPart::kBinaryRemoteAddr: {
                const uint8_t b[4] = {static_cast<uint8_t>(k.client_ip >> 24), static_cast<uint8_t>(k.client_ip >> 16),
                                      static_cast<uint8_t>(k.client_ip >> 8), static_cast<uint8_t>(k.client_ip)};
                put(reinterpret_cast<const char*>(b), 4);
                break;
            }
        }
    }
    return rte_hash_crc(buf, static_cast<uint32_t>(len), 0);
}

Balancer::Balancer(uint32_t addr, uint16_t port) : own_(std::make_unique<SharedPeer[]>(1)) {
    Peer p;
    p.addr = addr;
    p.port = port;
    p.shared = own_.get();
    peers_.push_back(p);
}

bool Balancer::available(const Peer& p, uint64_t now_us) const {
    if (p.down) return false;
    if (p.max_conns && p.conns() >= p.max_conns) return false;
    // Active health checks hold back unhealthy servers and, with
    // "mandatory", those not checked yet; unlike max_fails, even the only
    // server of a group (NGINX Plus: no connection goes to it).
    if (p.shared->health.load(std::memory_order_relaxed) != Health::kHealthy) return false;
    return !passive_unavailable(*p.shared, p.max_fails, p.fail_timeout_us, peers_.size(), now_us);
}

bool Balancer::usable(size_t i, bool backup, uint64_t now_us, uint64_t tried) const {
    const Peer& p = peers_[i];
    return p.backup == backup && available(p, now_us) && !(tried >> (i & 63) & 1);
}

int Balancer::pick_hash(uint64_t now_us, const FlowKey& key, uint64_t tried) {
    // The key's hash over the total weight, rehashing past unavailable
    // servers (nginx: 20 tries).
    int total = 0;
    for (const auto& p : peers_) total += p.backup ? 0 : p.weight;
    if (total == 0) return -1;
    uint32_t h = key_hash(key);
    for (int attempt = 0; attempt < kHashTries; ++attempt) {
        int w = static_cast<int>(h % static_cast<uint32_t>(total));
        for (size_t i = 0; i < peers_.size(); ++i) {
            if (peers_[i].backup) continue;
            if (w < peers_[i].weight) {
                if (usable(i, false, now_us, tried)) return static_cast<int>(i);
                break;
            }
            w -= peers_[i].weight;
        }
        h = rte_hash_crc_4byte(h, static_cast<uint32_t>(attempt + 1));
    }
    return -1;
}

int Balancer::pick_consistent(uint64_t now_us, const FlowKey& key, uint64_t tried) {
    if (ring_.empty()) return -1;
    // The first point at or after the key's hash, clockwise; past points of
    // unavailable servers to the next ones (nginx: 20 tries).
    const uint32_t h = key_hash(key);
    size_t at = static_cast<size_t>(
        std::lower_bound(ring_.begin(), ring_.end(), h, [](const Point& p, uint32_t v) { return p.hash < v; }) -
        ring_.begin());
    for (int attempt = 0; attempt < kHashTries; ++attempt, ++at) {
        const size_t i = ring_[at % ring_.size()].peer;
        if (usable(i, false, now_us, tried)) return static_cast<int>(i);
    }
    return -1;
}

int Balancer::weighted_random(uint64_t now_us, uint64_t tried, int total) {
    int w = static_cast<int>(rte_rand_max(static_cast<uint64_t>(total)));
    for (size_t i = 0; i < peers_.size(); ++i) {
        if (!usable(i, false, now_us, tried)) continue;
        if (w < peers_[i].weight) return static_cast<int>(i);
        w -= peers_[i].weight;
    }
    return -1;
}

int Balancer::pick_random(uint64_t now_us, uint64_t tried) {
    int total = 0, candidates = 0;
    for (size_t i = 0; i < peers_.size(); ++i) {
        if (!usable(i, false, now_us, tried)) continue;
        total += peers_[i].weight;
        ++candidates;
    }
    if (total == 0) return -1;
    const int first = weighted_random(now_us, tried, total);
    if (!random_two_ || candidates < 2 || first < 0) return first;
    // "random two least_conn": a second, different pick; the one with
    // fewer connections per weight wins (the power of two choices).
    const uint64_t without_first = tried | uint64_t{1} << (static_cast<unsigned>(first) & 63);
    const int second = weighted_random(now_us, without_first, total - peers_[static_cast<size_t>(first)].weight);
    if (second < 0) return first;
    const Peer& a = peers_[static_cast<size_t>(first)];
    const Peer& b = peers_[static_cast<size_t>(second)];
    return static_cast<uint64_t>(b.conns()) * static_cast<uint64_t>(a.weight) <
                   static_cast<uint64_t>(a.conns()) * static_cast<uint64_t>(b.weight)
               ? second
               : first;
}

int Balancer::pick_least_conn(bool backup, uint64_t now_us, uint64_t tried) {
    // Fewest connections per weight; ties go to round robin (-2).
    int best = -1;
    for (size_t i = 0; i < peers_.size(); ++i) {
        if (!usable(i, backup, now_us, tried)) continue;
        if (best < 0) {
            best = static_cast<int>(i);
            continue;
        }
        const Peer& p = peers_[i];
        const Peer& b = peers_[static_cast<size_t>(best)];
        if (static_cast<uint64_t>(p.conns()) * static_cast<uint64_t>(b.weight) <
            static_cast<uint64_t>(b.conns()) * static_cast<uint64_t>(p.weight)) {
            best = static_cast<int>(i);
        }
    }
    if (best < 0) return -1;
    const Peer& b = peers_[static_cast<size_t>(best)];
    for (size_t i = 0; i < peers_.size(); ++i) {
        if (static_cast<int>(i) == best || !usable(i, backup, now_us, tried)) continue;
        const Peer& p = peers_[i];
        if (static_cast<uint64_t>(p.conns()) * static_cast<uint64_t>(b.weight) ==
            static_cast<uint64_t>(b.conns()) * static_cast<uint64_t>(p.weight)) {
            return -2;
        }
    }
    return best;
}

int Balancer::pick_from(bool backup, uint64_t now_us, const FlowKey& key, uint64_t tried) {
    // hash and random have no backup servers (the configuration refuses
    // them); when their picks fail they fall back to round robin, as nginx.
    if (!backup && method_ == config::BalanceMethod::kHash) {
        const int i = consistent_ ? pick_consistent(now_us, key, tried) : pick_hash(now_us, key, tried);
        if (i >= 0) return i;
    }
    if (!backup && method_ == config::BalanceMethod::kRandom) {
        const int i = pick_random(now_us, tried);
        if (i >= 0) return i;
    }
    if (method_ == config::BalanceMethod::kLeastConn) {
        const int i = pick_least_conn(backup, now_us, tried);
        if (i != -2) return i;
    }
    // nginx's smooth weighted round robin: every candidate gains its
    // effective weight, the largest wins and pays the total back.
    int best = -1;
    int total = 0;
    for (size_t i = 0; i < peers_.size(); ++i) {
        if (!usable(i, backup, now_us, tried)) continue;
        Peer& p = peers_[i];
        p.current_weight += p.effective_weight;
        total += p.effective_weight;
        if (p.effective_weight < p.weight) ++p.effective_weight;  // recovering after failures
        if (best < 0 || p.current_weight > peers_[static_cast<size_t>(best)].current_weight) {
            best = static_cast<int>(i);
        }
    }
    if (best >= 0) peers_[static_cast<size_t>(best)].current_weight -= total;
    return best;
}

bool Balancer::acquire(size_t i) {
    Peer& p = peers_[i];
    if (!p.max_conns) {
        p.shared->conns.fetch_add(1, std::memory_order_relaxed);
        return true;
    }
    // Another core may take the last slot between the check and here.
    uint32_t n = p.shared->conns.load(std::memory_order_relaxed);
    while (n < p.max_conns) {
        if (p.shared->conns.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
}

int Balancer::pick(uint64_t now_us, const FlowKey& key, uint64_t tried) {
    for (size_t attempt = 0; attempt <= peers_.size(); ++attempt) {
        int i = pick_from(false, now_us, key, tried);
        if (i < 0) i = pick_from(true, now_us, key, tried);
        if (i < 0) return -1;
        if (acquire(static_cast<size_t>(i))) return i;
        tried |= uint64_t{1} << (static_cast<unsigned>(i) & 63);  // full since: skip it
    }
    return -1;
}

void Balancer::on_failure(int i, uint64_t now_us) {
    Peer& p = peers_[static_cast<size_t>(i)];
    // A failure after fail_timeout starts a new count (nginx resets fails
    // when the window has passed).
    if (p.max_fails && now_us - p.shared->failed_at_us.load(std::memory_order_relaxed) >= p.fail_timeout_us) {
        p.shared->fails.store(0, std::memory_order_relaxed);
    }
    p.shared->fails.fetch_add(1, std::memory_order_relaxed);
    p.shared->failed_at_us.store(now_us, std::memory_order_relaxed);
    // nginx lowers the effective weight so that traffic returns gradually.
    p.effective_weight -= p.weight / static_cast<int>(p.max_fails ? p.max_fails : 1);
    if (p.effective_weight < 0) p.effective_weight = 0;
}

void Balancer::on_success(int i) {
    peers_[static_cast<size_t>(i)].shared->fails.store(0, std::memory_order_relaxed);
}

void Balancer::release(int i) {
    std::atomic<uint32_t>& c = peers_[static_cast<size_t>(i)].shared->conns;
    uint32_t n = c.load(std::memory_order_relaxed);
    while (n > 0 && !c.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
    }
}

}  // namespace terminus::dataplane::proxy
