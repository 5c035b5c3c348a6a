#include "dataplane/proxy/balancer.h"

#include <rte_hash_crc.h>

namespace terminus::dataplane::proxy {

Balancer::Balancer(const config::Upstream& u) : method_(u.method) {
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
        peers_.push_back(p);
    }
}

Balancer::Balancer(uint32_t addr, uint16_t port) {
    Peer p;
    p.addr = addr;
    p.port = port;
    peers_.push_back(p);
}

bool Balancer::available(const Peer& p, uint64_t now_us) const {
    if (p.down) return false;
    if (p.max_conns && p.conns >= p.max_conns) return false;
    // nginx: max_fails failures within fail_timeout take the server out for
    // fail_timeout; max_fails=0 disables the accounting, and a group of one
    // server never marks it unavailable.
    if (peers_.size() > 1 && p.max_fails && p.fails >= p.max_fails &&
        now_us - p.failed_at_us < p.fail_timeout_us) {
        return false;
    }
    return true;
}

int Balancer::pick_from(bool backup, uint64_t now_us, uint32_t client_ip, uint64_t tried) {
    int best = -1;
    if (method_ == config::BalanceMethod::kHash) {
        // Hash of the client address over the total weight, rehashing past
        // unavailable servers (as nginx does, 20 tries).
        int total = 0;
        for (const auto& p : peers_) total += p.backup == backup ? p.weight : 0;
        if (total == 0) return -1;
        uint32_t h = rte_hash_crc_4byte(client_ip, 0);
        for (int attempt = 0; attempt < 20; ++attempt) {
            int w = static_cast<int>(h % static_cast<uint32_t>(total));
            for (size_t i = 0; i < peers_.size(); ++i) {
                const Peer& p = peers_[i];
                if (p.backup != backup) continue;
                if (w < p.weight) {
                    if (available(p, now_us) && !(tried >> i & 1)) return static_cast<int>(i);
                    break;
                }
                w -= p.weight;
            }
            h = rte_hash_crc_4byte(h, static_cast<uint32_t>(attempt + 1));
        }
        // Fall back to round robin, as nginx does.
    }
    if (method_ == config::BalanceMethod::kLeastConn) {
        // Fewest connections per weight; ties go to round robin below.
        for (size_t i = 0; i < peers_.size(); ++i) {
            const Peer& p = peers_[i];
            if (p.backup != backup || !available(p, now_us) || (tried >> i & 1)) continue;
            if (best < 0) {
                best = static_cast<int>(i);
                continue;
            }
            const Peer& b = peers_[static_cast<size_t>(best)];
            if (static_cast<uint64_t>(p.conns) * static_cast<uint64_t>(b.weight) <
                static_cast<uint64_t>(b.conns) * static_cast<uint64_t>(p.weight)) {
                best = static_cast<int>(i);
            }
        }
        if (best < 0) return -1;
        const Peer& b = peers_[static_cast<size_t>(best)];
        bool tie = false;
        for (size_t i = 0; i < peers_.size(); ++i) {
            const Peer& p = peers_[i];
            if (static_cast<int>(i) == best || p.backup != backup || !available(p, now_us) ||
                (tried >> i & 1)) {
                continue;
            }
            tie |= static_cast<uint64_t>(p.conns) * static_cast<uint64_t>(b.weight) ==
                   static_cast<uint64_t>(b.conns) * static_cast<uint64_t>(p.weight);
        }
        if (!tie) return best;
        best = -1;
    }
    // nginx's smooth weighted round robin: every candidate gains its
    // effective weight, the largest wins and pays the total back.
    int total = 0;
    for (size_t i = 0; i < peers_.size(); ++i) {
        Peer& p = peers_[i];
        if (p.backup != backup || !available(p, now_us) || (tried >> i & 1)) continue;
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

int Balancer::pick(uint64_t now_us, uint32_t client_ip, uint64_t tried) {
    int i = pick_from(false, now_us, client_ip, tried);
    if (i < 0) i = pick_from(true, now_us, client_ip, tried);
    if (i >= 0) ++peers_[static_cast<size_t>(i)].conns;
    return i;
}

void Balancer::on_failure(int i, uint64_t now_us) {
    Peer& p = peers_[static_cast<size_t>(i)];
    if (p.max_fails && now_us - p.failed_at_us >= p.fail_timeout_us) p.fails = 0;
    ++p.fails;
    p.failed_at_us = now_us;
    // nginx lowers the effective weight so that traffic returns gradually.
    p.effective_weight -= p.weight / static_cast<int>(p.max_fails ? p.max_fails : 1);
    if (p.effective_weight < 0) p.effective_weight = 0;
}

void Balancer::on_success(int i) {
    Peer& p = peers_[static_cast<size_t>(i)];
    p.fails = 0;
}

void Balancer::release(int i) {
    Peer& p = peers_[static_cast<size_t>(i)];
    if (p.conns) --p.conns;
}

}  // namespace terminus::dataplane::proxy
