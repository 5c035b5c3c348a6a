// "ssl_session_cache shared:NAME:SIZE" as per-core caches that tell each
// other what they add and remove. A new session is serialized once into a
// slot of its core's pool and the slot's address goes to every other core
// over a single-producer/single-consumer rte_ring (one per pair of cores,
// Seastar's smp_message_queue shape); the last core to apply it gives the
// slot back. A resumption on any core then finds the session, and a TLS
// 1.3 session used once (and so removed) is gone everywhere. The exchange
// (exchange.h) also carries the upstream sessions of upstream.cc, over
// rings of their own.
#include <rte_ring.h>

#include <openssl/ssl.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "tls/exchange.h"
#include "tls/tls_private.h"

namespace terminus::tls {

namespace {

constexpr unsigned kRingSize = 1024;    // per pair of cores
constexpr unsigned kSlotsPerCore = 512;  // changes in flight per producer
constexpr unsigned kMaxDer = kExchangeMaxDer;
constexpr unsigned kBurst = 32;

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

SessionExchange::SessionExchange(unsigned n) : n_(n), rings_(n * n, nullptr), free_(n, nullptr), slots_(n, nullptr) {
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
            if (c != p && !rings_[p * n_ + c]) return false;
        }
    }
    return true;
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
        if (rte_ring_sp_enqueue(rings_[from * n_ + c], s) == 0) {
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

unsigned SessionExchange::receive(unsigned to, ExchangeSlot** out, unsigned max) {
    unsigned got = 0;
    for (unsigned p = 0; p < n_ && got < max; ++p) {
        if (p == to) continue;
        got += rte_ring_sc_dequeue_burst(rings_[p * n_ + to], reinterpret_cast<void**>(out + got), max - got,
                                         nullptr);
    }
    return got;
}

SharedTls::SharedTls() = default;
SharedTls::~SharedTls() = default;

Result<bool> make_exchange(SharedTls& shared, const config::Config& cfg, unsigned n_cores) {
    bool shared_cache = false;
    for (const auto& s : cfg.servers) shared_cache |= !s.settings.ssl_session_cache.shared_name.empty();
    if (!shared_cache || n_cores < 2) return true;
    shared.exchange = std::make_unique<SessionExchange>(n_cores);
    if (!shared.exchange->ok()) return make_error("cannot make the session-cache rings");
    return true;
}

std::string CoreTls::cache_key(size_t server, const unsigned char* id, unsigned id_len) {
    std::string k(reinterpret_cast<const char*>(&server), sizeof server);
    k.append(reinterpret_cast<const char*>(id), id_len);
    return k;
}

void CoreTls::share_new(size_t server, SSL_SESSION* sess) {
    SessionExchange* ex = shared_.exchange.get();
    if (!ex) return;
    unsigned int id_len = 0;
    const unsigned char* id = SSL_SESSION_get_id(sess, &id_len);
    if (cached_.emplace(cache_key(server, id, id_len), sess).second) SSL_SESSION_up_ref(sess);
    if (applying_) return;
    const int len = i2d_SSL_SESSION(sess, nullptr);
    ExchangeSlot* s = len > 0 && static_cast<unsigned>(len) <= kMaxDer ? ex->take(core_) : nullptr;
    if (!s) {
        ++counters.sessions_not_sent;
        return;
    }
    unsigned char* p = s->der;
    s->len = static_cast<uint32_t>(i2d_SSL_SESSION(sess, &p));
    s->remove = 0;
    s->server = static_cast<uint32_t>(server);
    if (ex->broadcast(core_, s)) {
        ++counters.sessions_sent;
    } else {
        ++counters.sessions_not_sent;
    }
}

void CoreTls::share_removed(size_t server, SSL_SESSION* sess) {
    SessionExchange* ex = shared_.exchange.get();
    if (!ex) return;
    unsigned int id_len = 0;
    const unsigned char* id = SSL_SESSION_get_id(sess, &id_len);
    auto it = cached_.find(cache_key(server, id, id_len));
    if (it != cached_.end()) {
        SSL_SESSION_free(it->second);
        cached_.erase(it);
    }
    if (applying_) return;
    ExchangeSlot* s = ex->take(core_);
    if (!s) {
        ++counters.sessions_not_sent;
        return;
    }
    s->id_len = static_cast<uint8_t>(std::min<unsigned>(id_len, sizeof s->id));
    std::memcpy(s->id, id, s->id_len);
    s->remove = 1;
    s->len = 0;
    s->server = static_cast<uint32_t>(server);
    if (ex->broadcast(core_, s)) {
        ++counters.sessions_sent;
    } else {
        ++counters.sessions_not_sent;
    }
}

bool CoreTls::poll() {
    SessionExchange* ex = shared_.exchange.get();
    if (!ex) return false;
    ExchangeSlot* burst[kBurst];
    const unsigned n = ex->receive(core_, burst, kBurst);
    applying_ = true;
    for (unsigned i = 0; i < n; ++i) {
        ExchangeSlot* s = burst[i];
        ServerTls* st = server(s->server);
        if (st && st->ctx) {
            if (s->remove) {
                auto it = cached_.find(cache_key(s->server, s->id, s->id_len));
                // The remove callback drops our reference and the entry.
                if (it != cached_.end()) SSL_CTX_remove_session(st->ctx, it->second);
            } else {
                const unsigned char* p = s->der;
                // OpenSSL 3.0 has no d2i_SSL_SESSION_ex: the peer certificate, if
                // any, is decoded in the default library context.
                SSL_SESSION* sess = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(s->len));
                if (sess) {
                    unsigned int id_len = 0;
                    const unsigned char* id = SSL_SESSION_get_id(sess, &id_len);
                    if (SSL_CTX_add_session(st->ctx, sess) == 1 &&
                        cached_.emplace(cache_key(s->server, id, id_len), sess).second) {
                        SSL_SESSION_up_ref(sess);
                    }
                    SSL_SESSION_free(sess);  // the cache (and cached_) hold their own
                }
            }
            ++counters.sessions_received;
        }
        ex->release(s);
    }
    applying_ = false;
    return n > 0;
}

int new_session_cb(SSL* ssl, SSL_SESSION* sess) {
    auto* st = static_cast<ServerTls*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    if (st && st->core) st->core->share_new(st->server, sess);
    return 0;  // we keep no reference of our own
}

void remove_session_cb(SSL_CTX* ctx, SSL_SESSION* sess) {
    auto* st = static_cast<ServerTls*>(SSL_CTX_get_app_data(ctx));
    if (st && st->core) st->core->share_removed(st->server, sess);
}

}  // namespace terminus::tls
