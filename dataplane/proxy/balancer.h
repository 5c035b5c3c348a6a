// Choosing a server of an upstream group, per core: nginx's smooth
// weighted round robin, least_conn, hash KEY [consistent] (a ketama ring,
// as nginx builds it) and random [two [least_conn]], with passive health
// (max_fails within fail_timeout), backup, down and max_conns. Each core
// has its own Balancer; what nginx keeps in an upstream's shared "zone"
// (connections, failures) lives in SharedPeer entries that every core's
// Balancer for that upstream points to. Private to dataplane/.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace terminus::dataplane::proxy {

// What the active health checks (health.h) make of a server.
enum class Health : uint8_t {
    kHealthy,    // no check configured, or the checks pass
    kUnhealthy,  // "fails" consecutive checks failed, and not "passes" passed since
    kChecking,   // "mandatory": the first check is not done yet
};

// Why a server takes connections or not, as terminusctl shows it (the
// names of NGINX Plus's API).
#define TERMINUS_PEER_STATES(X)                                      \
    X(kUp, "up")                                                     \
    X(kDown, "down")             /* "down" in its server line */     \
    X(kUnavailable, "unavail")   /* max_fails within fail_timeout */ \
    X(kUnhealthy, "unhealthy")   /* failed its health checks */      \
    X(kChecking, "checking")     /* mandatory: not checked yet */

enum class PeerState : uint8_t {
#define TERMINUS_X(id, name) id,
    TERMINUS_PEER_STATES(TERMINUS_X)
#undef TERMINUS_X
    kCount
};
const char* to_string(PeerState s);

// One upstream server's state shared by all cores: written when a
// connection starts or ends, never per packet; each on its own cache line.
// HEALTH and the check counts are written by the health checker alone (on
// core 0); the counts sit on a line of their own, away from the
// connection counts every core writes.
struct alignas(64) SharedPeer {
    std::atomic<uint32_t> conns{0};
    std::atomic<uint32_t> fails{0};
    std::atomic<uint64_t> failed_at_us{0};
    std::atomic<Health> health{Health::kHealthy};
    alignas(64) std::atomic<uint64_t> checks{0};
    std::atomic<uint64_t> checks_failed{0};
    std::atomic<uint8_t> last_check{0};  // a health.h CheckResult
};

// nginx's passive health: MAX_FAILS failures within FAIL_TIMEOUT take the
// server out for FAIL_TIMEOUT; max_fails=0 disables the accounting, and a
// group of one server never marks it unavailable.
inline bool passive_unavailable(const SharedPeer& s, uint32_t max_fails, uint64_t fail_timeout_us,
                                size_t group_size, uint64_t now_us) {
    return group_size > 1 && max_fails && s.fails.load(std::memory_order_relaxed) >= max_fails &&
           now_us - s.failed_at_us.load(std::memory_order_relaxed) < fail_timeout_us;
}

// The state of server I of upstream U, whose shared entry is S.
PeerState peer_state(const config::Upstream& u, size_t i, const SharedPeer& s, uint64_t now_us);

// The shared state of every upstream group, made once at start, in the
// order of Config::upstreams.
class SharedUpstreams {
  public:
    // PREVIOUS: the generation before (a reload): each server it had
    // (same group, address and port) keeps its health, passive failures
    // and check counts; its open connections stay counted there.
    explicit SharedUpstreams(const config::Config& cfg, const SharedUpstreams* previous = nullptr);
    // Whether server I of group NAME was carried from the previous generation.
    bool carried(const std::string& name, size_t i) const;
    // The entries for upstream NAME (one per server), or null.
    SharedPeer* find(const std::string& name) const;

    struct Group {
        const config::Upstream* upstream;
        std::unique_ptr<SharedPeer[]> peers;  // parallel to upstream->servers
        std::vector<bool> carried;            // likewise
    };
    const std::vector<Group>& groups() const { return groups_; }

  private:
    std::vector<Group> groups_;
};

struct Peer {
    uint32_t addr = 0;
    uint16_t port = 0;
    int weight = 1;
    int effective_weight = 1;  // this core's smooth round robin
    int current_weight = 0;
    uint32_t max_fails = 1;
    uint64_t fail_timeout_us = 10'000'000;
    uint32_t max_conns = 0;
    bool backup = false;
    bool down = false;
    SharedPeer* shared = nullptr;
    uint32_t conns() const { return shared->conns.load(std::memory_order_relaxed); }
};

// What a "hash" key may refer to: the connection's addresses and ports.
struct FlowKey {
    uint32_t client_ip = 0;
    uint16_t client_port = 0;
    uint32_t server_ip = 0;
    uint16_t server_port = 0;
};

class Balancer {
  public:
    // SHARED: the upstream's entries in SharedUpstreams; null gives this
    // Balancer state of its own (tests, a single core).
    explicit Balancer(const config::Upstream& u, SharedPeer* shared = nullptr);
    // A single server (proxy_pass HOST:PORT).
    Balancer(uint32_t addr, uint16_t port);

    // The variables a "hash" key may use here; BAD gets the first other one.
    static bool key_supported(const std::string& key, std::string& bad);

    // The peer to try, or -1 when none is available. TRIED: bit i set for
    // peers this session already tried.
    int pick(uint64_t now_us, const FlowKey& key, uint64_t tried);
    void on_failure(int peer, uint64_t now_us);
    void on_success(int peer);
    void release(int peer);

    const Peer& peer(int i) const { return peers_[static_cast<size_t>(i)]; }
    size_t size() const { return peers_.size(); }
    config::BalanceMethod method() const { return method_; }

    // The key's hash for K (CRC32-C of the key as text, as nginx hashes
    // the evaluated string).
    uint32_t key_hash(const FlowKey& k) const;

  private:
    bool available(const Peer& p, uint64_t now_us) const;
    bool usable(size_t i, bool backup, uint64_t now_us, uint64_t tried) const;
    int pick_from(bool backup, uint64_t now_us, const FlowKey& key, uint64_t tried);
    int pick_hash(uint64_t now_us, const FlowKey& key, uint64_t tried);
    int pick_consistent(uint64_t now_us, const FlowKey& key, uint64_t tried);
    int pick_random(uint64_t now_us, uint64_t tried);
    int pick_least_conn(bool backup, uint64_t now_us, uint64_t tried);
    int weighted_random(uint64_t now_us, uint64_t tried, int total);
    // Takes a connection slot on peer I (false: max_conns reached).
    bool acquire(size_t i);

    enum class KeyPart : uint8_t { kText, kRemoteAddr, kRemotePort, kServerAddr, kServerPort, kBinaryRemoteAddr };
    struct Part {
        KeyPart kind;
        std::string text;
    };
    struct Point {
        uint32_t hash;
        uint32_t peer;
    };

    std::vector<Peer> peers_;
    std::unique_ptr<SharedPeer[]> own_;  // when no shared state was given
    config::BalanceMethod method_ = config::BalanceMethod::kRoundRobin;
    std::vector<Part> key_;
    bool consistent_ = false;
    std::vector<Point> ring_;  // consistent hashing: sorted by hash
    bool random_two_ = false;
};

}  // namespace terminus::dataplane::proxy
