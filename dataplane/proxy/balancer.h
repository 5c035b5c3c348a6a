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

// One upstream server's state shared by all cores: written when a
// connection starts or ends, never per packet; each on its own cache line.
struct alignas(64) SharedPeer {
    std::atomic<uint32_t> conns{0};
    std::atomic<uint32_t> fails{0};
    std::atomic<uint64_t> failed_at_us{0};
};

// The shared state of every upstream group, made once at start.
class SharedUpstreams {
  public:
    explicit SharedUpstreams(const config::Config& cfg);
    // The entries for upstream NAME (one per server), or null.
    SharedPeer* find(const std::string& name) const;

  private:
    std::vector<std::pair<std::string, std::unique_ptr<SharedPeer[]>>> groups_;
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
