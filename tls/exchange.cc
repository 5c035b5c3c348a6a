// The session exchange (exchange.h): slot pools with reference counts, the
// consumers' inboxes for a transport, and the exchange's own rings for
// when there is none.
#include "tls/exchange.h"

#include <rte_ring.h>

#include <cstdlib>
#include <new>

namespace terminus::tls {

namespace {

constexpr unsigned kRingSize = 1024;     // per pair of cores, without a transport
constexpr unsigned kSlotsPerCore = 512;  // changes in flight per producer

rte_ring* make_ring(const char* name, unsigned count, unsigned flags) {
    const ssize_t size = rte_ring_get_memsize(count);
    if (size < 0) return nullptr;
    void* mem = std::aligned_alloc(64, (static_cast<size_t>(size) + 63) / 64 * 64);
    if (!mem) return nullptr;
    auto* r = static_cast<rte_ring*>(mem);
    if (rte_ring_init(r, name, count, flags) != 0) {
        std::free(mem);
        return nullptr;
    }
    return r;
}

}  // namespace

SessionExchange::SessionExchange(unsigned n)
    : n_(n), rings_(n * n, nullptr), free_(n, nullptr), slots_(n, nullptr), inbox_(n) {
    for (unsigned p = 0; p < n; ++p) {
        // Consumers give slots back from any core: multi-producer.
        free_[p] = make_ring("tls_free", kSlotsPerCore, RING_F_SC_DEQ);
        slots_[p] = static_cast<ExchangeSlot*>(std::aligned_alloc(64, sizeof(ExchangeSlot) * kSlotsPerCore));
        if (!free_[p] || !slots_[p]) continue;
        for (unsigned i = 0; i < kSlotsPerCore; ++i) {
            ExchangeSlot* s = new (&slots_[p][i]) ExchangeSlot();
            void* obj = s;
            rte_ring_enqueue(free_[p], obj);
        }
        for (unsigned c = 0; c < n; ++c) {
            if (c != p) rings_[p * n + c] = make_ring("tls_sess", kRingSize, RING_F_SP_ENQ | RING_F_SC_DEQ);
        }
        // Every other producer's whole pool can be on its way here at once.
        inbox_[p].q.resize(static_cast<size_t>(n - 1) * kSlotsPerCore + 1);
    }
}

SessionExchange::~SessionExchange() {
    for (auto* r : rings_) std::free(r);
    for (auto* r : free_) std::free(r);
    for (auto* s : slots_) std::free(s);
}

bool SessionExchange::ok() const {
    for (unsigned p = 0; p < n_; ++p) {
        if (!free_[p] || !slots_[p]) return false;
        for (unsigned c = 0; c < n_; ++c) {
            if (!transport_ && c != p && !rings_[p * n_ + c]) return false;
        }
    }
    return true;
}

void SessionExchange::set_transport(ExchangeTransport* t) {
    transport_ = t;
    for (auto*& r : rings_) {
        std::free(r);
        r = nullptr;
    }
}

ExchangeSlot* SessionExchange::take(unsigned core) {
    void* obj = nullptr;
    return rte_ring_sc_dequeue(free_[core], &obj) == 0 ? static_cast<ExchangeSlot*>(obj) : nullptr;
}

void SessionExchange::give_back(ExchangeSlot* s) { rte_ring_mp_enqueue(free_[s->producer], s); }

bool SessionExchange::broadcast(unsigned from, ExchangeSlot* s) {
    s->producer = static_cast<uint16_t>(from);
    s->refs.store(n_ - 1, std::memory_order_relaxed);
    unsigned sent = 0;
    for (unsigned c = 0; c < n_; ++c) {
        if (c == from) continue;
        if (transport_) {
            if (transport_->post(from, c, s)) ++sent;  // else released by the transport
        } else if (rte_ring_sp_enqueue(rings_[from * n_ + c], s) == 0) {
            ++sent;
        } else {
            release(s);  // that core will not see it
        }
    }
    return sent > 0;
}

void SessionExchange::release(ExchangeSlot* s) {
    if (s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) give_back(s);
}

void SessionExchange::deliver(unsigned to, ExchangeSlot* s) {
    Inbox& in = inbox_[to];
    if (in.count == in.q.size()) {
        release(s);  // cannot happen: the inbox holds every slot there is
        return;
    }
    in.q[(in.head + in.count) % in.q.size()] = s;
    ++in.count;
}

unsigned SessionExchange::receive(unsigned to, ExchangeSlot** out, unsigned max) {
    unsigned got = 0;
    Inbox& in = inbox_[to];
    while (got < max && in.count > 0) {
        out[got++] = in.q[in.head];
        in.head = (in.head + 1) % in.q.size();
        --in.count;
    }
    if (transport_) return got;
    for (unsigned p = 0; p < n_ && got < max; ++p) {
        if (p == to) continue;
        got += rte_ring_sc_dequeue_burst(rings_[p * n_ + to], reinterpret_cast<void**>(out + got), max - got,
                                         nullptr);
    }
    return got;
}

}  // namespace terminus::tls
