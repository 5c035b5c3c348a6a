// How cores tell each other about TLS sessions: a change is serialized
// once into a slot of its producer's pool and the slot's address goes to
// every other core; the last core to apply it gives the slot back. Two
// users, each with an exchange of its own (its own slot pool, so that
// neither's traffic starves the other): the server-side "ssl_session_cache
// shared" (session_cache.cc) and the upstream sessions of
// "proxy_ssl_session_reuse" (upstream.cc).
//
// The slots travel over a transport. In terminusd it is the dataplane's
// one message ring per pair of cores (dataplane/messages.h), drained by
// each core's "rings" poller, which puts what arrives into the consumer's
// inbox here; without one (unit tests, one process with no dataplane) the
// exchange keeps its own single-producer/single-consumer rte_ring per pair.
// Either way the user polls receive() and sees the changes in the order
// their producer made them. The transport half (ExchangeTransport,
// set_transport, deliver, release) is what the dataplane wires up; the
// rest is private to tls/.
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
    uint32_t generation = 0;  // of the configuration SERVER belongs to (TlsCarry)
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

// Carries slot references between cores.
class ExchangeTransport {
  public:
    virtual ~ExchangeTransport() = default;
    // Passes one reference of S from core FROM (the caller) to core TO,
    // whose side hands it to SessionExchange::deliver. Returns true, or
    // false when the way to TO is full, after giving that reference back
    // (SessionExchange::release). Never blocks.
    virtual bool post(unsigned from, unsigned to, ExchangeSlot* s) = 0;
};

// The slot pools, the inboxes and (without a transport) the rings; made
// once, before the cores start, and used by every core with its own index.
class SessionExchange {
  public:
    explicit SessionExchange(unsigned n_cores);
    ~SessionExchange();
    SessionExchange(const SessionExchange&) = delete;
    SessionExchange& operator=(const SessionExchange&) = delete;
    // Every ring and pool was made.
    bool ok() const;
    unsigned cores() const { return n_; }

    // Carries the slots over T instead of the exchange's own rings, which
    // are freed. Before the cores start; T outlives the exchange's use.
    void set_transport(ExchangeTransport* t);

    // A free slot of CORE's pool, or null when all are in flight.
    ExchangeSlot* take(unsigned core);
    // Sends S to every core but FROM; false when it reached none of them
    // (S is back in its pool then).
    bool broadcast(unsigned from, ExchangeSlot* s);
    // On core TO: S arrived over the transport; queued, in order, for
    // receive(). Takes the reference S carries.
    void deliver(unsigned to, ExchangeSlot* s);
    // Up to MAX slots sent to core TO; each goes back with release().
    unsigned receive(unsigned to, ExchangeSlot** out, unsigned max);
    // Gives back one reference of S (to its producer's pool with the last).
    void release(ExchangeSlot* s);

  private:
    void give_back(ExchangeSlot* s);

    // What the transport brought one consumer: a FIFO only that core
    // touches, as long as every slot that could be in flight to it.
    struct alignas(64) Inbox {
        std::vector<ExchangeSlot*> q;
        size_t head = 0, count = 0;
    };

    unsigned n_;
    ExchangeTransport* transport_ = nullptr;
    std::vector<rte_ring*> rings_;  // [producer * n + consumer]; none with a transport
    std::vector<rte_ring*> free_;   // per producer
    std::vector<ExchangeSlot*> slots_;  // per producer
    std::vector<Inbox> inbox_;          // per consumer
};

}  // namespace terminus::tls
