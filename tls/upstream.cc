// TLS towards upstreams: client contexts configured as nginx's
// ngx_stream_proxy_set_ssl configures its own (but verifying by default),
// the name and SNI of ngx_stream_proxy_ssl_name, and upstream sessions
// kept per peer as nginx's round-robin peers keep theirs
// (ngx_stream_upstream_save_round_robin_peer_session), here shared by
// every core over a session exchange of their own (exchange.h; in
// terminusd its slots ride the dataplane's message rings).
#include "tls/upstream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "tls/exchange.h"
#include "tls/tls_private.h"

namespace terminus::tls {

namespace {

constexpr unsigned kBurst = 32;

// RFC 6066 3: "Literal IPv4 and IPv6 addresses are not permitted" in SNI.
bool ip_literal(const char* name) {
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

// Where an SSL keeps its UpstreamConnection; made once, before any lcore
// runs (UpstreamTls::create comes here first).
int conn_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

UpstreamConnection* conn_of(const SSL* ssl) {
    return static_cast<UpstreamConnection*>(SSL_get_ex_data(ssl, conn_index()));
}

void upstream_info_cb(const SSL* ssl, int where, int ret) {
    if (UpstreamConnection* c = conn_of(ssl)) c->on_info(where, ret);
}

int upstream_new_session_cb(SSL* ssl, SSL_SESSION* sess) {
    UpstreamConnection* c = conn_of(ssl);
    return c ? c->on_new_session(sess) : 0;
}

UpstreamFailure from_verify_result(long v) {
    switch (v) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_UNTRUSTED:
            return UpstreamFailure::k_unknown_ca;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
            return UpstreamFailure::k_self_signed;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return UpstreamFailure::k_name_mismatch;
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return UpstreamFailure::k_expired;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return UpstreamFailure::k_not_yet_valid;
        case X509_V_ERR_CERT_REVOKED:
            return UpstreamFailure::k_revoked;
        case X509_V_ERR_UNABLE_TO_GET_CRL:
        case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
        case X509_V_ERR_CRL_HAS_EXPIRED:
        case X509_V_ERR_CRL_NOT_YET_VALID:
        case X509_V_ERR_CRL_SIGNATURE_FAILURE:
        case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
        case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
        case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
            return UpstreamFailure::k_no_crl;
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
            return UpstreamFailure::k_chain_too_long;
        default:
            return UpstreamFailure::k_bad_certificate;
    }
}

// The upstream's fatal alert.
UpstreamFailure from_alert(const HandshakeTrace& t) {
    switch (t.alert_received) {
        case SSL_AD_PROTOCOL_VERSION:
            return UpstreamFailure::k_no_shared_protocol;
        case SSL_AD_HANDSHAKE_FAILURE:
            // OpenSSL below TLS 1.3 says handshake_failure for a missing
            // client certificate (certificate_required is TLS 1.3's).
            return t.cert_requested && !t.had_cert ? UpstreamFailure::k_client_cert_required
                                                   : UpstreamFailure::k_no_shared_cipher;
        case SSL_AD_INSUFFICIENT_SECURITY:
            return UpstreamFailure::k_no_shared_cipher;
        case SSL_AD_CERTIFICATE_REQUIRED:
            return UpstreamFailure::k_client_cert_required;
        case SSL_AD_BAD_CERTIFICATE:
        case SSL_AD_UNSUPPORTED_CERTIFICATE:
        case SSL_AD_CERTIFICATE_REVOKED:
        case SSL_AD_CERTIFICATE_EXPIRED:
        case SSL_AD_CERTIFICATE_UNKNOWN:
        case SSL_AD_UNKNOWN_CA:
        case SSL_AD_ACCESS_DENIED:
        case SSL_AD_DECRYPT_ERROR:  // our CertificateVerify
            if (!t.cert_requested) return UpstreamFailure::k_peer_alert;
            return t.had_cert ? UpstreamFailure::k_client_cert_refused : UpstreamFailure::k_client_cert_required;
        case SSL_AD_NO_APPLICATION_PROTOCOL:
            return UpstreamFailure::k_no_shared_alpn;
        default:
            return UpstreamFailure::k_peer_alert;
    }
}

// The error OpenSSL raised when it sent our alert.
UpstreamFailure from_error(unsigned long e) {
    if (ERR_GET_LIB(e) != ERR_LIB_SSL || ERR_COMMON_ERROR(e)) return UpstreamFailure::k_internal;
    switch (ERR_GET_REASON(e)) {
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return UpstreamFailure::k_peer_closed;
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_VERSION_TOO_HIGH:
        case SSL_R_UNKNOWN_PROTOCOL:
        case SSL_R_UNSUPPORTED_SSL_VERSION:
            return UpstreamFailure::k_no_shared_protocol;
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_SUITABLE_KEY_SHARE:
        case SSL_R_NO_SHARED_GROUPS:
        case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
        case SSL_R_NO_CIPHERS_AVAILABLE:
            return UpstreamFailure::k_no_shared_cipher;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return UpstreamFailure::k_bad_certificate;
        case SSL_R_NO_CERTIFICATE_SET:
            return UpstreamFailure::k_internal;
        default:
            // WRONG_VERSION_NUMBER (not TLS at all), record lengths,
            // unexpected messages, a cipher or extension we did not offer.
            return UpstreamFailure::k_malformed;
    }
}

}  // namespace

const char* to_string(UpstreamFailure f) {
    switch (f) {
#define TERMINUS_X(name, help)      \
    case UpstreamFailure::k_##name: \
        return #name;
        TERMINUS_UPSTREAM_TLS_FAILURES(TERMINUS_X)
#undef TERMINUS_X
        case UpstreamFailure::kCount:
            break;
    }
    return "?";
}

const char* describe(UpstreamFailure f) {
    switch (f) {
        case UpstreamFailure::k_unknown_ca: return "certificate not issued by a trusted CA";
        case UpstreamFailure::k_self_signed: return "self-signed certificate not trusted";
        case UpstreamFailure::k_name_mismatch: return "certificate not valid for the upstream's name";
        case UpstreamFailure::k_expired: return "certificate expired";
        case UpstreamFailure::k_not_yet_valid: return "certificate not yet valid";
        case UpstreamFailure::k_revoked: return "certificate revoked";
        case UpstreamFailure::k_no_crl: return "no valid CRL for the certificate's issuer";
        case UpstreamFailure::k_chain_too_long: return "certificate chain longer than proxy_ssl_verify_depth";
        case UpstreamFailure::k_bad_certificate: return "certificate did not verify";
        case UpstreamFailure::k_no_certificate: return "no certificate presented";
        case UpstreamFailure::k_client_cert_required: return "client certificate required (proxy_ssl_certificate)";
        case UpstreamFailure::k_client_cert_refused: return "our client certificate was refused";
        case UpstreamFailure::k_no_shared_protocol: return "no TLS version in common";
        case UpstreamFailure::k_no_shared_cipher: return "no cipher in common";
        case UpstreamFailure::k_no_shared_alpn: return "no ALPN protocol in common";
        case UpstreamFailure::k_peer_alert: return "alert from the upstream";
        case UpstreamFailure::k_peer_closed: return "upstream closed the connection";
        case UpstreamFailure::k_timeout: return "handshake timed out";
        case UpstreamFailure::k_malformed: return "not TLS, or a protocol violation";
        case UpstreamFailure::k_internal: return "internal error";
        case UpstreamFailure::kCount: break;
    }
    return "?";
}

UpstreamFailure classify(const HandshakeTrace& t, long verify_result, bool verify, bool eof) {
    // Our verification decides first: it is why we sent an alert.
    if (verify && verify_result != X509_V_OK) return from_verify_result(verify_result);
    if (t.alert_received >= 0) return from_alert(t);
    if (t.error) return from_error(t.error);
    return eof ? UpstreamFailure::k_peer_closed : UpstreamFailure::k_internal;
}

// ---------------------------------------------------------------------------
// Start-up.

SharedUpstreamTls::~SharedUpstreamTls() = default;

Result<std::unique_ptr<SharedUpstreamTls>> SharedUpstreamTls::create(const config::Config& cfg, unsigned n_cores,
                                                                     const TlsCarry* carry) {
    std::unique_ptr<SharedUpstreamTls> shared(new SharedUpstreamTls());
    shared->generation_ = carry ? carry->generation : 0;
    bool reuse = false;
    for (const auto& s : cfg.servers) reuse |= s.settings.proxy_ssl && s.settings.proxy_ssl_session_reuse;
    if (reuse && n_cores > 1 && carry && carry->upstream_sessions) {
        shared->exchange_ = carry->upstream_sessions;
    } else if (reuse && n_cores > 1) {
        shared->exchange_ = std::make_shared<SessionExchange>(n_cores);
        if (!shared->exchange_->ok()) return make_error("cannot make the upstream session rings");
    }
    return shared;
}

Result<std::unique_ptr<UpstreamTls>> UpstreamTls::create(const config::Config& cfg, const SharedUpstreamTls& shared,
                                                          unsigned core, OSSL_LIB_CTX* libctx,
                                                          UpstreamTlsCounters* counters) {
    std::unique_ptr<UpstreamTls> u(new UpstreamTls(cfg, shared, counters));
    u->core_ = core;
    if (!libctx) {
        // No CoreTls on this core (no listen is ssl): a library context of
        // our own, for the same reason CoreTls has one.
        u->own_libctx_ = OSSL_LIB_CTX_new();
        if (!u->own_libctx_) return make_error("cannot create an OpenSSL library context: " + openssl_error());
        u->own_provider_ = OSSL_PROVIDER_load(u->own_libctx_, "default");
        if (!u->own_provider_) return make_error("cannot load OpenSSL's default provider: " + openssl_error());
        libctx = u->own_libctx_;
    }
    u->libctx_ = libctx;
    if (conn_index() < 0) return make_error("cannot get an SSL ex_data index: " + openssl_error());
    u->servers_.resize(cfg.servers.size());
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
        if (!cfg.servers[i].settings.proxy_ssl) continue;
        auto r = u->build_server(i);
        if (!r) return make_error(r.error());
    }
    return u;
}

UpstreamTls::~UpstreamTls() {
    for (auto& p : peers_) SSL_SESSION_free(p.session);
    for (auto& s : servers_) {
        if (s && s->ctx) SSL_CTX_free(s->ctx);
    }
    if (own_provider_) OSSL_PROVIDER_unload(own_provider_);
    if (own_libctx_) OSSL_LIB_CTX_free(own_libctx_);
}

UpstreamServerTls* UpstreamTls::server(size_t server) {
    return server < servers_.size() ? servers_[server].get() : nullptr;
}

namespace {

// Versions, options and the TLS 1.2 cipher list.
Result<bool> set_policy(SSL_CTX* ctx, const config::Server& srv) {
    const config::ServerSettings& st = srv.settings;
    // As the server side: handshakes may be parked by an offloading
    // provider, records are written as space allows, idle connections
    // give their buffers back, and an upstream that closes without
    // close_notify ends its stream normally.
    SSL_CTX_set_mode(ctx, SSL_MODE_ASYNC | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF;

    // Protocols: the lowest and highest asked for, holes closed with
    // SSL_OP_NO_* (as context.cc does for ssl_protocols). TLS 1.0 and 1.1
    // need security level 0 in OpenSSL 3.
    const config::TlsVersion all[] = {config::TlsVersion::kTls1, config::TlsVersion::kTls11,
                                      config::TlsVersion::kTls12, config::TlsVersion::kTls13};
    const uint64_t no_flag[] = {SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1, SSL_OP_NO_TLSv1_2, SSL_OP_NO_TLSv1_3};
    int min = 0, max = 0;
    for (const auto v : all) {
        if (st.proxy_ssl_protocols & static_cast<uint8_t>(v)) {
            if (!min) min = version_of(v);
            max = version_of(v);
        }
    }
    for (size_t i = 0; i < 4; ++i) {
        const int v = version_of(all[i]);
        if (v > min && v < max && !(st.proxy_ssl_protocols & static_cast<uint8_t>(all[i]))) options |= no_flag[i];
    }
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    if (min && min < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);

    // The TLS 1.2 list; TLS 1.3 keeps OpenSSL's suites (nginx sets no
    // others either; proxy_ssl_conf_command Ciphersuites can).
    if (SSL_CTX_set_cipher_list(ctx, st.proxy_ssl_ciphers.c_str()) != 1) {
        return fail_at(srv.loc, "proxy_ssl_ciphers \"" + st.proxy_ssl_ciphers + "\" selects no cipher");
    }
    return true;
}

// Our certificate, for upstreams that ask for one.
Result<bool> use_certificate(SSL_CTX* ctx, OSSL_LIB_CTX* libctx, const config::Server& srv) {
    const config::ServerSettings& st = srv.settings;
    if (st.proxy_ssl_certificate.empty()) return true;
    if (SSL_CTX_use_certificate_chain_file(ctx, st.proxy_ssl_certificate.c_str()) != 1) {
        return fail_at(srv.loc, "cannot use proxy_ssl_certificate \"" + st.proxy_ssl_certificate + "\"");
    }
    const std::vector<std::string> passwords =
        st.proxy_ssl_password_file.empty() ? std::vector<std::string>{} : read_lines(st.proxy_ssl_password_file);
    EVP_PKEY* key = load_key(libctx, st.proxy_ssl_certificate_key, passwords);
    if (!key) {
        return fail_at(srv.loc, "cannot load proxy_ssl_certificate_key \"" + st.proxy_ssl_certificate_key + "\"");
    }
    const int ok = SSL_CTX_use_PrivateKey(ctx, key);
    EVP_PKEY_free(key);
    if (ok != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        return fail_at(srv.loc, "proxy_ssl_certificate_key \"" + st.proxy_ssl_certificate_key +
                                    "\" does not match its certificate");
    }
    return true;
}

// Verification. The handshake stops at a certificate that does not verify
// (nginx finishes it and then closes): the upstream sees our alert, and
// nothing is sent under a key we do not trust. Without
// proxy_ssl_trusted_certificate, the system's store (OpenSSL's default
// paths: the certs directory and cert.pem of OPENSSLDIR).
Result<bool> set_verification(SSL_CTX* ctx, const config::Server& srv) {
    const config::ServerSettings& st = srv.settings;
    if (!st.proxy_ssl_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
        return true;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(ctx, static_cast<int>(st.proxy_ssl_verify_depth));
    if (st.proxy_ssl_trusted_certificate.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return fail_at(srv.loc, "cannot load the system's CA store for proxy_ssl_verify");
        }
        ERR_clear_error();  // a default file that does not exist is no error
    } else if (SSL_CTX_load_verify_file(ctx, st.proxy_ssl_trusted_certificate.c_str()) != 1) {
        return fail_at(srv.loc, "proxy_ssl_trusted_certificate \"" + st.proxy_ssl_trusted_certificate + "\"");
    }
    if (!st.proxy_ssl_crl.empty()) {
        // Every certificate of the chain, as ssl_crl does on the server side.
        X509_STORE* store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lookup || X509_load_crl_file(lookup, st.proxy_ssl_crl.c_str(), X509_FILETYPE_PEM) <= 0) {
            return fail_at(srv.loc, "proxy_ssl_crl \"" + st.proxy_ssl_crl + "\"");
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }
    return true;
}

// proxy_ssl_conf_command, in client mode.
Result<bool> apply_conf_commands(SSL_CTX* ctx, const config::Server& srv) {
    const auto& commands = srv.settings.proxy_ssl_conf_command;
    if (commands.empty()) return true;
    SSL_CONF_CTX* cctx = SSL_CONF_CTX_new();
    if (!cctx) return fail_at(srv.loc, "cannot create an SSL_CONF_CTX");
    SSL_CONF_CTX_set_flags(cctx, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_CLIENT | SSL_CONF_FLAG_CERTIFICATE |
                                     SSL_CONF_FLAG_SHOW_ERRORS);
    SSL_CONF_CTX_set_ssl_ctx(cctx, ctx);
    for (const auto& c : commands) {
        if (SSL_CONF_cmd(cctx, c.name.c_str(), c.value.c_str()) <= 0) {
            SSL_CONF_CTX_free(cctx);
            return fail_at(c.loc, "proxy_ssl_conf_command \"" + c.name + "\" \"" + c.value + "\"");
        }
    }
    SSL_CONF_CTX_finish(cctx);
    SSL_CONF_CTX_free(cctx);
    return true;
}

}  // namespace

Result<bool> UpstreamTls::build_server(size_t index) {
    const config::Server& srv = cfg_.servers[index];
    const config::ServerSettings& st = srv.settings;
    auto out = std::make_unique<UpstreamServerTls>();
    out->server = index;
    out->verify = st.proxy_ssl_verify;
    out->server_name = st.proxy_ssl_server_name;
    out->reuse = st.proxy_ssl_session_reuse;
    out->has_cert = !st.proxy_ssl_certificate.empty();
    SSL_CTX* ctx = SSL_CTX_new_ex(libctx_, nullptr, TLS_client_method());
    if (!ctx) return fail_at(srv.loc, "cannot create an upstream SSL_CTX");
    out->ctx = ctx;
    servers_[index] = std::move(out);

    if (auto r = set_policy(ctx, srv); !r) return r;
    if (auto r = use_certificate(ctx, libctx_, srv); !r) return r;
    if (auto r = set_verification(ctx, srv); !r) return r;

    // ALPN (proxy_ssl_alpn), in wire format; a connection may offer
    // another protocol instead.
    std::vector<uint8_t> alpn;
    for (const auto& p : st.proxy_ssl_alpn) {
        if (p.empty() || p.size() > 255) continue;
        alpn.push_back(static_cast<uint8_t>(p.size()));
        alpn.insert(alpn.end(), p.begin(), p.end());
    }
    if (!alpn.empty() && SSL_CTX_set_alpn_protos(ctx, alpn.data(), static_cast<unsigned>(alpn.size())) != 0) {
        return fail_at(srv.loc, "proxy_ssl_alpn");
    }

    // Sessions: OpenSSL keeps none itself; each one the upstream gives
    // (at the end of a TLS 1.2 handshake, with each TLS 1.3
    // NewSessionTicket) comes to upstream_new_session_cb and into the
    // peer's slot.
    if (st.proxy_ssl_session_reuse) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, upstream_new_session_cb);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    // Alerts both ways and a CertificateRequest, for classify().
    SSL_CTX_set_info_callback(ctx, upstream_info_cb);

    // Last, so that it overrides what came before (as nginx applies it).
    if (auto r = apply_conf_commands(ctx, srv); !r) return r;
    ERR_clear_error();
    return true;
}

// ---------------------------------------------------------------------------
// Sessions per peer, and their exchange.

const UpstreamPeer* UpstreamTls::peer(const UpstreamKey& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &peers_[it->second];
}

UpstreamPeer& UpstreamTls::peer_for(const UpstreamKey& key) {
    auto it = index_.find(key);
    if (it != index_.end()) return peers_[it->second];
    // Once per peer and core, not per connect.
    index_.emplace(key, peers_.size());
    UpstreamPeer& p = peers_.emplace_back();
    p.key = key;
    return p;
}

SSL_SESSION* UpstreamTls::session_for(const UpstreamKey& key, std::string_view name) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : session_for(peers_[it->second], name);
}

SSL_SESSION* UpstreamTls::session_for(UpstreamPeer& p, std::string_view name) {
    SSL_SESSION* s = p.session;
    // A session proves the certificate of the name it was made for only.
    if (!s || p.name != name) return nullptr;
    unsigned int id_len = 0;
    const unsigned char* id = SSL_SESSION_get_id(s, &id_len);
    if (!SSL_SESSION_is_resumable(s)) {
        // OpenSSL marked it: a fatal alert on, or an unclean end of, a
        // connection that used it here. The others drop it too.
        uint8_t copy[SSL_MAX_SSL_SESSION_ID_LENGTH];
        const unsigned n = std::min<unsigned>(id_len, sizeof copy);
        std::memcpy(copy, id, n);
        drop(p, copy, n, true);
        return nullptr;
    }
    if (SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s) <= static_cast<long>(std::time(nullptr))) {
        // Expired: so it is on every core, at the same moment.
        drop(p, id, id_len, false);
        return nullptr;
    }
    return s;
}

void UpstreamTls::save(UpstreamPeer& p, std::string_view name, SSL_SESSION* sess) {
    if (p.session) SSL_SESSION_free(p.session);
    p.session = sess;
    p.name.assign(name.data(), name.size());
    ++counters.sessions_saved;
    // Shared at the next poll(): a TLS 1.3 upstream sends its tickets in
    // a row, and only the last of them needs to travel.
    if (shared_.exchange() && !p.dirty) {
        p.dirty = true;
        dirty_.push_back(&p);
    }
}

void UpstreamTls::drop(UpstreamPeer& p, const uint8_t* id, unsigned id_len, bool share) {
    if (p.session) {
        unsigned int len = 0;
        const unsigned char* cur = SSL_SESSION_get_id(p.session, &len);
        if (len == id_len && std::memcmp(cur, id, len) == 0) {
            SSL_SESSION_free(p.session);
            p.session = nullptr;
            ++counters.sessions_dropped;
        }
    }
    if (share) send(p, id, id_len);
}

void UpstreamTls::send(const UpstreamPeer& p, const uint8_t* drop_id, unsigned drop_len) {
    SessionExchange* ex = shared_.exchange();
    if (!ex) return;
    int len = 0;
    if (!drop_id) {
        len = i2d_SSL_SESSION(p.session, nullptr);
        if (len <= 0 || static_cast<unsigned>(len) > kExchangeMaxDer || p.name.size() > sizeof ExchangeSlot::name) {
            ++counters.sessions_not_sent;
            return;
        }
    }
    ExchangeSlot* s = ex->take(core_);
    if (!s) {
        ++counters.sessions_not_sent;
        return;
    }
    s->server = p.key.server;
    s->generation = shared_.generation();
    s->address = p.key.address;
    s->port = p.key.port;
    if (drop_id) {
        s->remove = 1;
        s->id_len = static_cast<uint8_t>(std::min<unsigned>(drop_len, sizeof s->id));
        std::memcpy(s->id, drop_id, s->id_len);
        s->len = 0;
        s->name_len = 0;
    } else {
        s->remove = 0;
        s->id_len = 0;
        s->name_len = static_cast<uint8_t>(p.name.size());
        std::memcpy(s->name, p.name.data(), p.name.size());
        unsigned char* out = s->der;
        s->len = static_cast<uint32_t>(i2d_SSL_SESSION(p.session, &out));
    }
    if (ex->broadcast(core_, s)) {
        ++counters.sessions_sent;
    } else {
        ++counters.sessions_not_sent;
    }
}

void UpstreamTls::apply(const ExchangeSlot& s) {
    // An entry of another generation names another configuration's servers.
    const UpstreamServerTls* st = s.generation == shared_.generation() ? server(s.server) : nullptr;
    if (!st || !st->reuse) return;
    UpstreamPeer& p = peer_for(UpstreamKey{s.server, s.address, s.port});
    ++counters.sessions_received;
    if (s.remove) {
        drop(p, s.id, s.id_len, false);
        return;
    }
    const unsigned char* in = s.der;
    // OpenSSL 3.0 has no d2i_SSL_SESSION_ex: the upstream's certificate
    // in it is decoded in the default library context. It is not
    // verified again: resumption trusts what the full handshake did.
    SSL_SESSION* sess = d2i_SSL_SESSION(nullptr, &in, static_cast<long>(s.len));
    if (!sess) {
        ERR_clear_error();
        return;
    }
    const std::string_view name(s.name, s.name_len);
    if (p.session && p.name == name && SSL_SESSION_get_time(p.session) > SSL_SESSION_get_time(sess)) {
        SSL_SESSION_free(sess);  // ours is newer
        return;
    }
    if (p.session) SSL_SESSION_free(p.session);
    p.session = sess;
    p.name.assign(name.data(), name.size());
}

bool UpstreamTls::poll() {
    bool progress = false;
    for (UpstreamPeer* p : dirty_) {
        p->dirty = false;
        if (p->session) {
            send(*p, nullptr, 0);
            progress = true;
        }
    }
    dirty_.clear();
    SessionExchange* ex = shared_.exchange();
    if (!ex) return progress;
    ExchangeSlot* burst[kBurst];
    const unsigned n = ex->receive(core_, burst, kBurst);
    for (unsigned i = 0; i < n; ++i) {
        apply(*burst[i]);
        ex->release(burst[i]);
    }
    return progress || n > 0;
}

// ---------------------------------------------------------------------------
// One connection.

UpstreamConnection::UpstreamConnection(UpstreamTls& core, const UpstreamKey& key, Transport& t,
                                       std::string_view name, std::string_view alpn)
    : core_(core), st_(core.server(key.server)), peer_(core.peer_for(key)), transport_(t) {
    // The name without a ":port" (ngx_stream_proxy_ssl_name): after
    // "[v6]", or a single colon (a bare IPv6 address stays whole).
    size_t from = 0;
    if (!name.empty() && name.front() == '[') {
        const size_t rb = name.find(']');
        if (rb != std::string_view::npos) from = rb;
    }
    const size_t colon = name.find(':', from);
    const bool one_colon = colon != std::string_view::npos && name.find(':', colon + 1) == std::string_view::npos;
    if (colon != std::string_view::npos && (from > 0 || one_colon)) name = name.substr(0, colon);
    name_len_ = std::min(name.size(), sizeof name_ - 1);
    std::memcpy(name_, name.data(), name_len_);
    name_[name_len_] = '\0';
    const bool literal = name_len_ && (name_[0] == '[' || ip_literal(name_));

    SSL_CTX* ctx = st_ ? st_->ctx : nullptr;
    SSL_SESSION* saved = st_ && st_->reuse ? core_.session_for(peer_, this->name()) : nullptr;
    // Each connect offers a copy of the saved session, never the saved
    // object itself: OpenSSL marks a session object unresumable when a
    // connection holding it ends badly (SSL_CTX_remove_session), and with
    // several connections in flight that mark fell on the one every other
    // connect of the core offers (perf/macro/run reencrypt_resumed: 84%
    // resumed under concurrency, 100% one connection at a time).
    SSL_SESSION* resume = saved ? SSL_SESSION_dup(saved) : nullptr;
    const bool sni = st_ && st_->server_name && name_len_ && !literal;
    endpoint_.emplace(ctx, t, sni ? name_ : nullptr, resume);
    SSL* ssl = endpoint_->ssl();
    if (!ssl) {
        ERR_clear_error();
        return;
    }
    SSL_set_ex_data(ssl, conn_index(), this);
    if (resume) {
        remember(resume, offered_id_, offered_len_);
        ++core_.counters.sessions_offered;
        SSL_SESSION_free(resume);  // the SSL holds its own reference
    }
    if (st_->verify && name_len_) {
        // The name the certificate must hold (RFC 6125): a host name, or
        // an address in an iPAddress entry.
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        if (literal) {
            std::string_view ip(name_, name_len_);
            if (ip.front() == '[') ip = ip.substr(1, ip.find(']') - 1);
            char buf[64];
            const size_t n = std::min(ip.size(), sizeof buf - 1);
            std::memcpy(buf, ip.data(), n);
            buf[n] = '\0';
            X509_VERIFY_PARAM_set1_ip_asc(param, buf);
        } else {
            X509_VERIFY_PARAM_set1_host(param, name_, name_len_);
        }
    }
    if (!alpn.empty() && alpn.size() <= 255) {
        uint8_t wire[256];
        wire[0] = static_cast<uint8_t>(alpn.size());
        std::memcpy(wire + 1, alpn.data(), alpn.size());
        SSL_set_alpn_protos(ssl, wire, static_cast<unsigned>(alpn.size() + 1));
    }
    trace_.had_cert = st_->has_cert;
    ERR_clear_error();
}

UpstreamConnection::~UpstreamConnection() {
    if (count_pending_ && !failed_) count_done();
    // What this connection used or got is dropped on every core when its
    // TLS failed: the handshake, a record, an alert. A connection cut off
    // at the TCP level (the client reset, so we reset the upstream; an
    // idle timeout) keeps its session, as nginx's quiet shutdown does —
    // dropping it there cost every core a full handshake per client reset
    // (perf/macro/run reencrypt_resumed: 84% resumed, against nginx's 99%).
    const bool bad = failed_ || broken_;
    if (!bad && endpoint_->established()) {
        // SSL_free would otherwise mark the session unresumable.
        SSL_set_shutdown(endpoint_->ssl(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }
    endpoint_.reset();
    if (bad) {
        if (saved_len_) core_.drop(peer_, saved_id_, saved_len_, true);
        if (offered_len_) core_.drop(peer_, offered_id_, offered_len_, true);
    }
}

void UpstreamConnection::remember(SSL_SESSION* sess, uint8_t* id, uint8_t& len) {
    unsigned int n = 0;
    const unsigned char* p = SSL_SESSION_get_id(sess, &n);
    len = static_cast<uint8_t>(std::min<unsigned>(n, SSL_MAX_SSL_SESSION_ID_LENGTH));
    std::memcpy(id, p, len);
}

void UpstreamConnection::on_info(int where, int ret) {
    if (where & SSL_CB_ALERT) {
        if ((ret >> 8) != SSL3_AL_FATAL) return;
        if (where & SSL_CB_READ) {
            trace_.alert_received = ret & 0xff;
        } else {
            trace_.alert_sent = ret & 0xff;
            // SSLfatal raised its reason just before it sent the alert.
            if (!trace_.error) trace_.error = ERR_peek_last_error();
        }
    } else if ((where & SSL_CB_LOOP) && SSL_get_state(endpoint_->ssl()) == TLS_ST_CR_CERT_REQ) {
        trace_.cert_requested = true;
    } else if ((where & SSL_CB_EXIT) && ret <= 0 && !trace_.error) {
        // A failure without an alert (bytes that are not TLS at all get
        // none): the reason is still queued here, not after the step.
        trace_.error = ERR_peek_last_error();
    }
}

int UpstreamConnection::on_new_session(SSL_SESSION* sess) {
    if (!st_ || !st_->reuse || !SSL_SESSION_is_resumable(sess)) return 0;
    // A TLS 1.3 server sends tickets only once it accepted our certificate.
    if (count_pending_) count_done();
    remember(sess, saved_id_, saved_len_);
    core_.save(peer_, name(), sess);
    return 1;  // the peer holds the reference OpenSSL gave us
}

UpstreamConnection::Status UpstreamConnection::handshake() {
    if (failed_) return Status::kFailed;
    if (counted_ || count_pending_) return Status::kDone;
    SSL* ssl = endpoint_->ssl();
    if (!st_ || !ssl) {
        fail(UpstreamFailure::k_internal);
        return Status::kFailed;
    }
    const Status s = endpoint_->handshake();
    parked_ = false;
    switch (s) {
        case Status::kAgain:
            if (SSL_waiting_for_async(ssl)) {
                parked_ = true;
                ++core_.counters.async_parked;
            }
            return s;
        case Status::kFailed:
            fail(classify(trace_, SSL_get_verify_result(ssl), st_->verify, transport_.eof()));
            return s;
        case Status::kDone:
            break;
    }
    // An anonymous suite (proxy_ssl_ciphers "aNULL") would verify nothing.
    if (st_->verify && !endpoint_->resumed() && !SSL_get0_peer_certificate(ssl)) {
        fail(UpstreamFailure::k_no_certificate);
        return Status::kFailed;
    }
    // A TLS 1.3 server judges our certificate after our side finished
    // (RFC 8446 4.4.2.4): its verdict comes with its first record.
    if (SSL_version(ssl) == TLS1_3_VERSION && trace_.cert_requested) {
        count_pending_ = true;
    } else {
        count_done();
    }
    return Status::kDone;
}

void UpstreamConnection::count_done() {
    if (counted_) return;
    counted_ = true;
    count_pending_ = false;
    if (endpoint_->resumed()) {
        ++core_.counters.handshakes_resumed;
        ++peer_.handshakes_resumed;
    } else {
        ++core_.counters.handshakes_full;
        ++peer_.handshakes_full;
        if (offered_len_) ++core_.counters.sessions_refused;
    }
}

void UpstreamConnection::fail(UpstreamFailure f) {
    if (failed_) return;
    failed_ = true;
    failure_ = f;
    count_pending_ = false;
    ++core_.counters.failed[static_cast<size_t>(f)];
    if (st_) ++st_->failed[static_cast<size_t>(f)];
    // The session offered is not offered again (OpenSSL's fatal alert
    // marks it too, in its own way).
    if (offered_len_) {
        core_.drop(peer_, offered_id_, offered_len_, true);
        offered_len_ = 0;
    }
}

const char* UpstreamConnection::verify_error() const {
    SSL* ssl = endpoint_->ssl();
    if (!ssl || !st_ || !st_->verify) return nullptr;
    const long v = SSL_get_verify_result(ssl);
    return v == X509_V_OK ? nullptr : X509_verify_cert_error_string(v);
}

int UpstreamConnection::read(void* dst, uint32_t len) {
    const int n = endpoint_->read(dst, len);
    if (n > 0) {
        core_.counters.bytes_decrypted += static_cast<uint64_t>(n);
        if (count_pending_) count_done();
        return n;
    }
    if (n == 0) return 0;
    if (n == -1) {  // the upstream's close_notify or EOF: a clean end
        clean_ = true;
        if (count_pending_) count_done();
        return n;
    }
    if (count_pending_) {
        // Its verdict on our certificate (certificate_required,
        // unknown_ca...), or whatever else ended it before it answered.
        fail(classify(trace_, X509_V_OK, false, transport_.eof()));
    } else if (!broken_ && !failed_) {
        broken_ = true;  // cut off: its sessions go
        ++core_.counters.bad_records;
    }
    return n;
}

int UpstreamConnection::write(const void* src, uint32_t len) {
    const int n = endpoint_->write(src, len);
    if (n > 0) core_.counters.bytes_encrypted += static_cast<uint64_t>(n);
    if (n < 0) broken_ = true;
    return n;
}

void UpstreamConnection::shutdown() {
    if (!endpoint_->established() || failed_ || broken_) return;
    if (count_pending_) count_done();
    endpoint_->shutdown();
    clean_ = true;
}

}  // namespace terminus::tls
