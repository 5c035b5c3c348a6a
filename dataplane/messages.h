// What cores tell each other: small typed messages, on one single-producer/
// single-consumer rte_ring per ordered pair of cores (the shape of Seastar's
// smp_message_queue, core/smp.hh), made once before the cores start. Each
// core drains every ring it reads in bursts from one poller ("rings") and
// hands each run of messages of one kind to the handler registered for it.
//
// Kinds:
//   kPacket          a frame for the core that owns its flow (mbuf; arg: port)
//   kArp             an ARP frame flooded to every core (mbuf, one reference
//                    per core; arg: port)
//   kSessionEntry    a change of "ssl_session_cache shared" (tls::ExchangeSlot)
//   kUpstreamSession an upstream session of proxy_ssl_session_reuse (the same)
//   kConfigGeneration a configuration generation for the core to install
//                    (control -> core: a pointer to it, arg: its number)
//   kGenerationAck   what a core did with one (core -> control: the same
//                    pointer, arg: its number, reserved[0]: kInstalled or
//                    kReleased)
//   kQuery           control -> core: fill the snapshot it points to
//                    (terminusctl sessions; arg: the query's number)
//   kQueryDone       core -> control: filled (the same pointer and arg)
//
// Besides the cores there is one more party, the control thread (the
// configuration's, not an lcore): one ring from it to each core and one
// back, of kControlEntries messages, made whatever the number of cores.
//
// A full ring never blocks: the message is counted (ring_full_<kind>) and
// its resource given back by the kind's release function (the mbuf freed,
// the slot's reference dropped). Private to dataplane/.
#pragma once

#include <rte_ring.h>

#include <array>
#include <cstdint>
#include <string>

#include "dataplane/net/counters.h"
#include "tls/exchange.h"

namespace terminus::dataplane {

constexpr unsigned kMaxMessageCores = 16;
constexpr unsigned kMessageBurst = 32;

#define TERMINUS_MESSAGE_KINDS(X)               \
    X(kPacket, packet)                          \
    X(kArp, arp)                                \
    X(kSessionEntry, session_entry)             \
    X(kUpstreamSession, upstream_session)       \
    X(kConfigGeneration, config_generation)     \
    X(kGenerationAck, generation_ack)           \
    X(kQuery, query)                            \
    X(kQueryDone, query_done)

enum class MessageKind : uint8_t {
#define TERMINUS_X(id, name) id,
    TERMINUS_MESSAGE_KINDS(TERMINUS_X)
#undef TERMINUS_X
    kCount
};
constexpr unsigned kMessageKinds = static_cast<unsigned>(MessageKind::kCount);

// One message: what it is and what it carries. 16 bytes, so that a cache
// line holds four and a burst of 32 fits in eight.
struct Message {
    MessageKind kind = MessageKind::kPacket;
    uint8_t reserved[3] = {};
    uint32_t arg = 0;  // kind-specific (the port of a frame)
    void* ptr = nullptr;
};
static_assert(sizeof(Message) == 16, "a message is 16 bytes");

// kConfigGeneration's reserved[0].
constexpr uint8_t kInstall = 0;  // give new connections this generation
constexpr uint8_t kForget = 1;   // it is about to be freed: drop what OpenSSL keeps for this thread
// kGenerationAck's reserved[0].
constexpr uint8_t kInstalled = 0;  // new connections get it from now on
constexpr uint8_t kReleased = 1;   // retired, and its last session ended
constexpr uint8_t kForgotten = 2;  // this core's thread holds nothing of it
constexpr unsigned kControlEntries = 64;

// What a core does with a kind. DELIVER gets a run of consecutive messages
// of the kind, in the order they were sent, on core SELF; it owns them.
// RELEASE gives back the resource of a message that could not be sent.
struct MessageHandler {
    using Deliver = void (*)(void* ctx, unsigned self, const Message* msgs, unsigned n);
    using Release = void (*)(void* ctx, const Message& m);
    Deliver deliver = nullptr;
    Release release = nullptr;
    void* ctx = nullptr;
};

// One core's end of the rings: where it sends, what it reads, and what it
// does with each kind. Used by its own core only.
class Mailbox {
  public:
    // What FULL counts into: the core's network counters (ring_full_*).
    void set_counters(net::NetCounters* c) { counters_ = c; }
    void on(MessageKind k, const MessageHandler& h) { handlers_[static_cast<unsigned>(k)] = h; }

    // Sends M to core TO: true, or false when TO's ring is full (or there
    // is none), after counting it and releasing M's resource.
    bool send(unsigned to, const Message& m);
    // One burst from every inbound ring, each dispatched by kind in the
    // order it arrived. Returns the number of messages handled.
    unsigned poll();

    unsigned self() const { return self_; }
    unsigned cores() const { return n_; }
    // The control thread's index in send(): one past the last core.
    unsigned control() const { return n_; }

  private:
    friend class MessageRings;
    void release(const Message& m);

    unsigned self_ = 0;
    unsigned n_ = 1;  // cores; the control thread is party N_
    net::NetCounters* counters_ = nullptr;
    std::array<rte_ring*, kMaxMessageCores + 1> to_{};    // to_[c]: this party -> c
    std::array<rte_ring*, kMaxMessageCores + 1> from_{};  // from_[c]: c -> this party
    std::array<MessageHandler, kMessageKinds> handlers_{};
};

// The rings between N cores: one per ordered pair, single producer and
// single consumer, made once before the cores start.
class MessageRings {
  public:
    MessageRings() = default;
    ~MessageRings();
    MessageRings(const MessageRings&) = delete;
    MessageRings& operator=(const MessageRings&) = delete;

    // Entries per ring for a pool of MBUFS shared by N_CORES: a core's
    // share of the pool (what it can hold to hand over), at least 1024 so
    // that the session slots in flight (tls/exchange.h) fit too, at most
    // 16384; a power of two.
    static unsigned entries_for(unsigned mbufs, unsigned n_cores);

    // Makes the N_CORES * (N_CORES - 1) rings of ENTRIES messages (a power
    // of two; ENTRIES - 1 usable), named PREFIX_FROM_TO, and the control
    // thread's two per core (PREFIX_c_TO, PREFIX_FROM_c). Returns 0, or -1
    // with the reason in WHY (what was made is freed by the destructor).
    int create(const std::string& prefix, unsigned n_cores, unsigned entries, std::string& why);
    // Points MB at core SELF's rings; SELF == N_CORES: the control thread's.
    void connect(Mailbox& mb, unsigned self) const;
    // Frees the rings (before the EAL goes).
    void free();
    unsigned count() const { return n_ * (n_ - 1); }

  private:
    static constexpr unsigned kParties = kMaxMessageCores + 1;
    unsigned n_ = 0;
    std::array<rte_ring*, kParties * kParties> rings_{};  // [from * kParties + to]
};

// The session exchanges' transport over the mailboxes: the slot of an
// exchange travels as a message of KIND, goes into the consumer's inbox of
// that exchange (tls::SessionExchange::deliver), and is applied where the
// exchange's user polls it. Registers the handlers on every core's mailbox.
class ExchangeMessages final : public tls::ExchangeTransport {
  public:
    ExchangeMessages(tls::SessionExchange& ex, MessageKind kind, Mailbox* const* mailboxes, unsigned n_cores);
    bool post(unsigned from, unsigned to, tls::ExchangeSlot* s) override;

  private:
    MessageKind kind_;
    std::array<Mailbox*, kMaxMessageCores> mailboxes_{};
};

}  // namespace terminus::dataplane
