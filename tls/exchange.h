// How cores tell each other about TLS sessions: a change is serialized
// once into a slot of its producer's pool and the slot's address goes to
// every other core over a single-producer/single-consumer rte_ring (one
// per pair of cores, Seastar's smp_message_queue shape); the last core to
// apply it gives the slot back. Two users, each with an exchange of its
// own so that neither's traffic delays the other's: the server-side
// "ssl_session_cache shared" (session_cache.cc) and the upstream sessions
// of "proxy_ssl_session_reuse" (upstream.cc). Private to tls/.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <vector>

struct rte_ring;

namespace terminus::tls {

// Larger sessions (long certificate chains) stay on their core.
constexpr unsigned kExchangeMaxDer = 4000;

struct alignas(64) ExchangeSlot {
    std::atomic<uint32_t> refs{0};
    uint16_t producer = 0;
    uint8_t remove = 0;  // drop the session called ID instead of adding one
    uint8_t id_len = 0;
    uint32_t server = 0;  // index in Config::servers
    uint32_t len = 0;     // bytes in der
    // Upstream sessions only: the peer, and the name its certificate was
    // verified for (a session is offered only for that name again).
    uint32_t address = 0;
    uint16_t port = 0;
    uint8_t name_len = 0;
    char name[255];
    uint8_t id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    uint8_t der[kExchangeMaxDer];
};

// The rings and slot pools; made once, before the cores start, and used
// by every core with its own index.
class SessionExchange {
  public:
    explicit SessionExchange(unsigned n_cores);
    ~SessionExchange();
    SessionExchange(const SessionExchange&) = delete;
    SessionExchange& operator=(const SessionExchange&) = delete;
    // Every ring and pool was made.
    bool ok() const;
    unsigned cores() const { return n_; }

    // A free slot of CORE's pool, or null when all are in flight.
    ExchangeSlot* take(unsigned core);
    // Sends S to every core but FROM; false when it reached none of them
    // (S is back in its pool then).
    bool broadcast(unsigned from, ExchangeSlot* s);
    // Up to MAX slots sent to core TO; each goes back with release().
    unsigned receive(unsigned to, ExchangeSlot** out, unsigned max);
    void release(ExchangeSlot* s);

  private:
    void give_back(ExchangeSlot* s);

    unsigned n_;
    std::vector<rte_ring*> rings_;  // [producer * n + consumer]
    std::vector<rte_ring*> free_;   // per producer
    std::vector<ExchangeSlot*> slots_;  // per producer
};

}  // namespace terminus::tls
