// "ssl_session_cache shared:NAME:SIZE" as per-core caches that tell each
// other what they add and remove. A new session is serialized once into a
// slot of its core's pool and the slot goes to every other core over the
// session exchange (exchange.h: in terminusd, the dataplane's message ring
// per pair of cores); the last core to apply it gives the slot back. A
// resumption on any core then finds the session, and a TLS 1.3 session
// used once (and so removed) is gone everywhere. The upstream sessions of
// upstream.cc have an exchange of their own.
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>

#include "tls/exchange.h"
#include "tls/tls_private.h"

namespace terminus::tls {

namespace {

constexpr unsigned kMaxDer = kExchangeMaxDer;
constexpr unsigned kBurst = 32;

}  // namespace

SharedTls::SharedTls() = default;
SharedTls::~SharedTls() = default;

Result<bool> make_exchange(SharedTls& shared, const config::Config& cfg, unsigned n_cores, const TlsCarry* carry) {
    bool shared_cache = false;
    for (const auto& s : cfg.servers) shared_cache |= !s.settings.ssl_session_cache.shared_name.empty();
    if (!shared_cache || n_cores < 2) return true;
    if (carry && carry->sessions) {
        shared.exchange = carry->sessions;
        return true;
    }
    shared.exchange = std::make_shared<SessionExchange>(n_cores);
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
    if (!ex || closing_) return;
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
    s->generation = shared_.generation;
    if (ex->broadcast(core_, s)) {
        ++counters.sessions_sent;
    } else {
        ++counters.sessions_not_sent;
    }
}

void CoreTls::share_removed(size_t server, SSL_SESSION* sess) {
    SessionExchange* ex = shared_.exchange.get();
    if (!ex || closing_) return;
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
    s->generation = shared_.generation;
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
        // An entry of another generation names another configuration's servers.
        ServerTls* st = s->generation == shared_.generation ? server(s->server) : nullptr;
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
