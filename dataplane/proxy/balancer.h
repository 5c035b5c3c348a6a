// Choosing a server of an upstream group, per core: nginx's smooth
// weighted round robin, least_conn and hash $remote_addr, with passive
// health (max_fails within fail_timeout), backup, down and max_conns.
// Private to dataplane/.
#pragma once

#include <cstdint>
#include <vector>

#include "config/config.h"

namespace terminus::dataplane::proxy {

struct Peer {
    uint32_t addr = 0;
    uint16_t port = 0;
    int weight = 1;
    int effective_weight = 1;
    int current_weight = 0;
    uint32_t max_fails = 1;
    uint64_t fail_timeout_us = 10'000'000;
    uint32_t fails = 0;
    uint64_t failed_at_us = 0;
    uint32_t max_conns = 0;
    uint32_t conns = 0;
    bool backup = false;
    bool down = false;
};

class Balancer {
  public:
    explicit Balancer(const config::Upstream& u);
    // A single server (proxy_pass HOST:PORT).
    Balancer(uint32_t addr, uint16_t port);

    // The peer to try, or -1 when none is available. TRIED: bit i set for
    // peers this session already tried.
    int pick(uint64_t now_us, uint32_t client_ip, uint64_t tried);
    void on_failure(int peer, uint64_t now_us);
    void on_success(int peer);
    void release(int peer);

    const Peer& peer(int i) const { return peers_[static_cast<size_t>(i)]; }
    size_t size() const { return peers_.size(); }
    config::BalanceMethod method() const { return method_; }

  private:
    bool available(const Peer& p, uint64_t now_us) const;
    int pick_from(bool backup, uint64_t now_us, uint32_t client_ip, uint64_t tried);

    std::vector<Peer> peers_;
    config::BalanceMethod method_ = config::BalanceMethod::kRoundRobin;
};

}  // namespace terminus::dataplane::proxy
