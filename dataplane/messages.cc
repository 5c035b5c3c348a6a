// The rings between cores and each core's mailbox (messages.h).
#include "dataplane/messages.h"

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_ring_elem.h>

#include <algorithm>

namespace terminus::dataplane {

namespace {

// ring_full_<kind>, in MessageKind order.
constexpr uint64_t net::NetCounters::*kFull[kMessageKinds] = {
#define TERMINUS_X(id, name) &net::NetCounters::ring_full_##name,
    TERMINUS_MESSAGE_KINDS(TERMINUS_X)
#undef TERMINUS_X
};

}  // namespace

void Mailbox::release(const Message& m) {
    const MessageHandler& h = handlers_[static_cast<unsigned>(m.kind)];
    if (h.release) h.release(h.ctx, m);
}

bool Mailbox::send(unsigned to, const Message& m) {
    const auto k = static_cast<unsigned>(m.kind);
    rte_ring* r = to <= n_ ? to_[to] : nullptr;
    // rte_ring_sp_enqueue_elem: 0, or -ENOBUFS when the ring is full.
    if (r && rte_ring_sp_enqueue_elem(r, const_cast<Message*>(&m), sizeof(Message)) == 0) return true;
    if (counters_ && k < kMessageKinds) ++(counters_->*kFull[k]);
    release(m);
    return false;
}

unsigned Mailbox::poll() {
    unsigned total = 0;
    Message burst[kMessageBurst];
    for (unsigned c = 0; c <= n_; ++c) {
        rte_ring* r = from_[c];
        if (!r) continue;
        const unsigned n = rte_ring_sc_dequeue_burst_elem(r, burst, sizeof(Message), kMessageBurst, nullptr);
        // Runs of one kind, in arrival order: what one producer sent in
        // one order is seen in that order, whatever the kinds.
        for (unsigned i = 0; i < n;) {
            unsigned j = i + 1;
            while (j < n && burst[j].kind == burst[i].kind) ++j;
            const auto k = static_cast<unsigned>(burst[i].kind);
            const MessageHandler* h = k < kMessageKinds ? &handlers_[k] : nullptr;
            if (h && h->deliver) {
                h->deliver(h->ctx, self_, burst + i, j - i);
            } else {
                // Nobody here takes it: give its resource back.
                for (unsigned x = i; x < j; ++x) release(burst[x]);
            }
            i = j;
        }
        total += n;
    }
    return total;
}

MessageRings::~MessageRings() { free(); }

unsigned MessageRings::entries_for(unsigned mbufs, unsigned n_cores) {
    const unsigned share = mbufs / std::max(1u, n_cores);
    return rte_align32pow2(std::clamp(share, 1024u, 16384u));
}

int MessageRings::create(const std::string& prefix, unsigned n_cores, unsigned entries, std::string& why) {
    free();
    if (n_cores > kMaxMessageCores) {
        why = "at most " + std::to_string(kMaxMessageCores) + " cores";
        return -1;
    }
    n_ = n_cores;
    // Party n_ is the control thread: its rings are small (a generation
    // and its acknowledgements at a time).
    for (unsigned i = 0; i <= n_; ++i) {
        for (unsigned j = 0; j <= n_; ++j) {
            if (i == j) continue;
            const bool control = i == n_ || j == n_;
            const std::string name = prefix + "_" + (i == n_ ? "c" : std::to_string(i)) + "_" +
                                     (j == n_ ? "c" : std::to_string(j));
            const unsigned count = control ? kControlEntries : entries;
            rte_ring* r = rte_ring_create_elem(name.c_str(), sizeof(Message), count,
                                               static_cast<int>(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (!r) {
                why = "cannot create ring " + name + " of " + std::to_string(count) +
                      " messages: " + rte_strerror(rte_errno);
                return -1;
            }
            rings_[i * kParties + j] = r;
        }
    }
    return 0;
}

void MessageRings::connect(Mailbox& mb, unsigned self) const {
    mb.self_ = self;
    mb.n_ = n_;
    for (unsigned c = 0; c <= n_; ++c) {
        mb.to_[c] = c == self ? nullptr : rings_[self * kParties + c];
        mb.from_[c] = c == self ? nullptr : rings_[c * kParties + self];
    }
}

void MessageRings::free() {
    for (auto*& r : rings_) {
        rte_ring_free(r);
        r = nullptr;
    }
}

// ---------------------------------------------------------------------------
// The session exchanges over the mailboxes.

namespace {

void deliver_slots(void* ctx, unsigned self, const Message* msgs, unsigned n) {
    auto* ex = static_cast<tls::SessionExchange*>(ctx);
    for (unsigned i = 0; i < n; ++i) ex->deliver(self, static_cast<tls::ExchangeSlot*>(msgs[i].ptr));
}

void release_slot(void* ctx, const Message& m) {
    static_cast<tls::SessionExchange*>(ctx)->release(static_cast<tls::ExchangeSlot*>(m.ptr));
}

}  // namespace

ExchangeMessages::ExchangeMessages(tls::SessionExchange& ex, MessageKind kind, Mailbox* const* mailboxes,
                                   unsigned n_cores)
    : kind_(kind) {
    for (unsigned c = 0; c < n_cores && c < kMaxMessageCores; ++c) {
        mailboxes_[c] = mailboxes[c];
        mailboxes[c]->on(kind, {deliver_slots, release_slot, &ex});
    }
    ex.set_transport(this);
}

bool ExchangeMessages::post(unsigned from, unsigned to, tls::ExchangeSlot* s) {
    Message m;
    m.kind = kind_;
    m.ptr = s;
    return mailboxes_[from]->send(to, m);
}

}  // namespace terminus::dataplane
