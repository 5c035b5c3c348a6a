// Two userspace TCP stacks joined in memory, for the tests: each stack's
// frames go over a Link (its tcp::Output) that can lose, reorder,
// duplicate and delay them with a seeded generator, and reach the other
// stack when they are due on one simulated clock. The TCP stack's own
// end-to-end tests use it, and so do the tests of what runs on top of
// real connections (the proxy's transports). Needs an EAL for mbufs
// (tests/unit/dataplane/eal_env.h).
#pragma once

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <cstdint>
#include <deque>
#include <random>

#include "dataplane/tcp/tcp.h"

namespace terminus::testing {

struct Impairment {
    double loss = 0, duplicate = 0, reorder = 0;
    uint64_t delay_us = 100;
    uint64_t jitter_us = 0;
};

// One direction: the frames a stack sends, held until they are due.
class Link : public tcp::Output {
  public:
    // The stacks build IPv4 headers without options.
    static constexpr unsigned kIhl = sizeof(rte_ipv4_hdr);

    Link(std::mt19937& rng, const Impairment& imp) : rng_(rng), imp_(imp) {}
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    void send(rte_mbuf* m, uint32_t) override {
        // An Ethernet link with a 1500-byte MTU: larger frames never arrive.
        if (rte_pktmbuf_pkt_len(m) > 1514) {
            ++oversized;
            rte_pktmbuf_free(m);
            return;
        }
        std::uniform_real_distribution<double> u(0, 1);
        if (u(rng_) < imp_.loss) {
            rte_pktmbuf_free(m);
            return;
        }
        uint64_t at = now + imp_.delay_us;
        if (imp_.jitter_us && u(rng_) < imp_.reorder) at += rng_() % imp_.jitter_us;
        if (u(rng_) < imp_.duplicate) {
            rte_mbuf* copy = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
            if (copy) {
                queue_.push_back({at + 50, copy});
                ++frames;
            }
        }
        queue_.push_back({at, m});
        ++frames;
    }
    // Delivers what is due at T to TO; returns whether anything was.
    bool deliver(tcp::Stack& to, uint64_t t) {
        bool any = false;
        for (size_t i = 0; i < queue_.size();) {
            if (queue_[i].at <= t) {
                rte_mbuf* m = queue_[i].m;
                queue_.erase(queue_.begin() + static_cast<long>(i));
                to.input(m, kIhl, t);
                any = true;
            } else {
                ++i;
            }
        }
        return any;
    }
    // Frames on the way (each one mbuf of the sender's pool).
    size_t in_flight() const { return queue_.size(); }
    ~Link() override {
        for (auto& q : queue_) rte_pktmbuf_free(q.m);
    }

    uint64_t now = 0;        // the sender's clock, set by whoever drives it
    uint64_t oversized = 0;  // frames dropped for the MTU
    uint64_t frames = 0;     // frames queued for delivery (duplicates included)

  private:
    struct Item {
        uint64_t at;
        rte_mbuf* m;
    };
    std::deque<Item> queue_;
    std::mt19937& rng_;
    Impairment imp_;
};

// Stacks A and B, each sending over its own Link to the other, on one
// clock. The generator seeded with SEED drives both links' impairments
// (and whatever else the test draws from it, in one sequence).
class StackLink {
  public:
    StackLink(const tcp::TcpParams& p, rte_mempool* pool, uint32_t seed = 1, const Impairment& imp = {})
        : rng(seed),
          a_to_b(rng, imp),
          b_to_a(rng, imp),
          a(p, pool, a_to_b, tcp::SipKey{3, 4}, rte_ether_addr{{2, 0, 0, 0, 0, 2}}),
          b(p, pool, b_to_a, tcp::SipKey{5, 6}, rte_ether_addr{{2, 0, 0, 0, 0, 1}}) {}
    StackLink(const StackLink&) = delete;
    StackLink& operator=(const StackLink&) = delete;

    // Moves the clock DT on: what is due crosses both ways, then each
    // stack's timers fire. Returns whether any frame crossed.
    bool step(uint64_t dt = 100) {
        now += dt;
        a_to_b.now = b_to_a.now = now;
        bool any = a_to_b.deliver(b, now);
        any = b_to_a.deliver(a, now) || any;
        a.poll(now);
        b.poll(now);
        return any;
    }
    // Frames sent both ways so far.
    uint64_t frames() const { return a_to_b.frames + b_to_a.frames; }

    std::mt19937 rng;
    // Declared before the stacks, which send into them: destroyed after.
    Link a_to_b, b_to_a;
    tcp::Stack a, b;
    uint64_t now = 0;
};

}  // namespace terminus::testing
