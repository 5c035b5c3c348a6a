// One core's TLS contexts: a library context of its own (OpenSSL 3.0 takes
// global locks when contexts are shared) and one SSL_CTX per server{} with
// "listen ... ssl", configured as nginx's ngx_stream_ssl_module configures
// its own.
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "tls/tls_private.h"

namespace terminus::tls {

namespace {

Error fail(const config::Location& loc, const std::string& what) { return fail_at(loc, what); }

int alpn_select_cb(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                   unsigned int inlen, void* arg) {
    const auto* st = static_cast<const ServerTls*>(arg);
    if (st->alpn.empty()) return SSL_TLSEXT_ERR_NOACK;
    unsigned char* selected = nullptr;
    // The server's order wins, as nginx's ngx_stream_ssl_alpn_select.
    if (SSL_select_next_proto(&selected, outlen, st->alpn.data(), static_cast<unsigned>(st->alpn.size()), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

int status_cb(SSL* ssl, void* arg) {
    const auto* st = static_cast<const ServerTls*>(arg);
    if (st->ocsp_der.empty()) return SSL_TLSEXT_ERR_NOACK;
    // OpenSSL frees what it is given.
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(st->ocsp_der.data(), st->ocsp_der.size()));
    if (!copy) return SSL_TLSEXT_ERR_NOACK;
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(st->ocsp_der.size()));
    return SSL_TLSEXT_ERR_OK;
}

// ssl_verify_client optional_no_ca: ask for a certificate, accept any.
int accept_any_cb(int, X509_STORE_CTX*) { return 1; }

}  // namespace

const char* to_string(Failure f) {
    switch (f) {
#define TERMINUS_X(name, help) \
    case Failure::k_##name:    \
        return #name;
        TERMINUS_TLS_FAILURES(TERMINUS_X)
#undef TERMINUS_X
        case Failure::kCount:
            break;
    }
    return "?";
}

Result<std::unique_ptr<CoreTls>> CoreTls::create(const config::Config& cfg, const SharedTls& shared,
                                                  unsigned core_index, TlsCounters* counters) {
    std::unique_ptr<CoreTls> core(new CoreTls(cfg, shared, counters));
    core->core_ = core_index;
    core->libctx_ = OSSL_LIB_CTX_new();
    if (!core->libctx_) return make_error("cannot create an OpenSSL library context: " + openssl_error());
    core->default_provider_ = OSSL_PROVIDER_load(core->libctx_, "default");
    if (!core->default_provider_) return make_error("cannot load OpenSSL's default provider: " + openssl_error());
    // Fetched once per core, used by every ticket (SSL_CTX_set_tlsext_ticket_key_evp_cb).
    core->aes128_cbc_ = EVP_CIPHER_fetch(core->libctx_, "AES-128-CBC", nullptr);
    core->aes256_cbc_ = EVP_CIPHER_fetch(core->libctx_, "AES-256-CBC", nullptr);
    if (!core->aes128_cbc_ || !core->aes256_cbc_) return make_error("cannot fetch AES-CBC: " + openssl_error());
    core->servers_.resize(cfg.servers.size());
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
        bool ssl = false;
        for (const auto& l : cfg.servers[i].listen) ssl |= l.ssl;
        if (!ssl) continue;
        auto r = core->build_server(i);
        if (!r) return make_error(r.error());
    }
    return core;
}

CoreTls::~CoreTls() {
    // SSL_CTX_free reports each cached session removed: on another
    // thread than the core's, and of a generation nobody serves.
    closing_ = true;
    for (auto& s : servers_) {
        if (s && s->ctx) SSL_CTX_free(s->ctx);
    }
    for (auto& [key, sess] : cached_) SSL_SESSION_free(sess);
    EVP_CIPHER_free(aes128_cbc_);
    EVP_CIPHER_free(aes256_cbc_);
    if (default_provider_) OSSL_PROVIDER_unload(default_provider_);
    if (libctx_) OSSL_LIB_CTX_free(libctx_);
}

ServerTls* CoreTls::server(size_t server) {
    return server < servers_.size() ? servers_[server].get() : nullptr;
}

const ServerTls* CoreTls::server(size_t server) const {
    return server < servers_.size() ? servers_[server].get() : nullptr;
}

Result<bool> CoreTls::build_server(size_t index) {
    const config::Server& srv = cfg_.servers[index];
    const config::ServerSettings& st = srv.settings;
    auto out = std::make_unique<ServerTls>();
    out->server = index;
    out->core = this;
    out->tickets = shared_.keys_for(index);
    out->reject = st.ssl_reject_handshake;
    SSL_CTX* ctx = SSL_CTX_new_ex(libctx_, nullptr, TLS_server_method());
    if (!ctx) return fail(srv.loc, "cannot create an SSL_CTX");
    out->ctx = ctx;
    SSL_CTX_set_app_data(ctx, out.get());
    ServerTls* raw = out.get();
    servers_[index] = std::move(out);

    // Handshakes may be parked by an offloading provider; records are
    // written as space allows; idle connections give their buffers back.
    SSL_CTX_set_mode(ctx, SSL_MODE_ASYNC | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    // A client that closes without close_notify ends its stream normally,
    // as nginx treats it (SSL_OP_IGNORE_UNEXPECTED_EOF).
    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_SINGLE_ECDH_USE |
                       SSL_OP_SINGLE_DH_USE | SSL_OP_IGNORE_UNEXPECTED_EOF;
    if (st.ssl_prefer_server_ciphers) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    if (!st.ssl_session_tickets) options |= SSL_OP_NO_TICKET;

    // Protocols: the lowest and highest asked for, holes closed with
    // SSL_OP_NO_*. TLS 1.0 and 1.1 need security level 0 in OpenSSL 3; it
    // is lowered only in servers that ask for them.
    const config::TlsVersion all[] = {config::TlsVersion::kTls1, config::TlsVersion::kTls11,
                                      config::TlsVersion::kTls12, config::TlsVersion::kTls13};
    const uint64_t no_flag[] = {SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1, SSL_OP_NO_TLSv1_2, SSL_OP_NO_TLSv1_3};
    int min = 0, max = 0;
    for (size_t i = 0; i < 4; ++i) {
        if (st.ssl_protocols & static_cast<uint8_t>(all[i])) {
            if (!min) min = version_of(all[i]);
            max = version_of(all[i]);
        }
    }
    for (size_t i = 0; i < 4; ++i) {
        const int v = version_of(all[i]);
        if (v > min && v < max && !(st.ssl_protocols & static_cast<uint8_t>(all[i]))) options |= no_flag[i];
    }
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    raw->min_version = min;
    raw->max_version = max;
    if (min && min < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);

    if (SSL_CTX_set_cipher_list(ctx, st.ssl_ciphers.c_str()) != 1) {
        return fail(srv.loc, "ssl_ciphers \"" + st.ssl_ciphers + "\" selects no cipher");
    }
    if (st.ssl_ecdh_curve != "auto" && SSL_CTX_set1_groups_list(ctx, st.ssl_ecdh_curve.c_str()) != 1) {
        return fail(srv.loc, "ssl_ecdh_curve \"" + st.ssl_ecdh_curve + "\"");
    }
    if (!st.ssl_dhparam.empty()) {
        BIO* bio = BIO_new_file(st.ssl_dhparam.c_str(), "r");
        EVP_PKEY* dh = bio ? PEM_read_bio_Parameters_ex(bio, nullptr, libctx_, nullptr) : nullptr;
        BIO_free(bio);
        if (!dh || SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
            EVP_PKEY_free(dh);
            return fail(srv.loc, "ssl_dhparam \"" + st.ssl_dhparam + "\"");
        }
    }

    // Certificates and keys, in pairs as written: OpenSSL keeps one per key
    // type and presents the one the client's signature algorithms allow.
    const std::vector<std::string> passwords =
        st.ssl_password_file.empty() ? std::vector<std::string>{} : read_lines(st.ssl_password_file);
    for (const auto& pair : st.ssl_certificates) {
        if (SSL_CTX_use_certificate_chain_file(ctx, pair.certificate.c_str()) != 1) {
            return fail(pair.certificate_loc, "cannot use certificate \"" + pair.certificate + "\"");
        }
        EVP_PKEY* key = load_key(libctx_, pair.key, passwords);
        if (!key) return fail(pair.key_loc, "cannot load key \"" + pair.key + "\"");
        const int ok = SSL_CTX_use_PrivateKey(ctx, key);
        EVP_PKEY_free(key);
        if (ok != 1 || SSL_CTX_check_private_key(ctx) != 1) {
            return fail(pair.key_loc, "key \"" + pair.key + "\" does not match its certificate");
        }
    }

    // Client certificates.
    if (st.ssl_verify_client != config::VerifyClient::kOff) {
        int mode = SSL_VERIFY_PEER;
        if (st.ssl_verify_client == config::VerifyClient::kOn) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode,
                           st.ssl_verify_client == config::VerifyClient::kOptionalNoCa ? accept_any_cb : nullptr);
        SSL_CTX_set_verify_depth(ctx, static_cast<int>(st.ssl_verify_depth));
    }
    if (!st.ssl_client_certificate.empty()) {
        if (SSL_CTX_load_verify_file(ctx, st.ssl_client_certificate.c_str()) != 1) {
            return fail(srv.loc, "ssl_client_certificate \"" + st.ssl_client_certificate + "\"");
        }
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file_ex(st.ssl_client_certificate.c_str(), libctx_, nullptr);
        if (!names) return fail(srv.loc, "ssl_client_certificate \"" + st.ssl_client_certificate + "\"");
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (!st.ssl_trusted_certificate.empty() &&
        SSL_CTX_load_verify_file(ctx, st.ssl_trusted_certificate.c_str()) != 1) {
        return fail(srv.loc, "ssl_trusted_certificate \"" + st.ssl_trusted_certificate + "\"");
    }
    if (!st.ssl_crl.empty()) {
        X509_STORE* store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lookup || X509_load_crl_file(lookup, st.ssl_crl.c_str(), X509_FILETYPE_PEM) <= 0) {
            return fail(srv.loc, "ssl_crl \"" + st.ssl_crl + "\"");
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    }

    // ALPN (ssl_alpn), in wire format.
    for (const auto& p : st.ssl_alpn) {
        raw->alpn.push_back(static_cast<uint8_t>(p.size()));
        raw->alpn.insert(raw->alpn.end(), p.begin(), p.end());
    }
    if (!raw->alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, raw);

    // OCSP stapling from a file, from the first connection on.
    if (st.ssl_stapling && !st.ssl_stapling_file.empty()) {
        const std::string der = read_file(st.ssl_stapling_file);
        raw->ocsp_der.assign(der.begin(), der.end());
        SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
        SSL_CTX_set_tlsext_status_arg(ctx, raw);
    }

    // Resumption. A session is bound to this server block, its
    // certificates and its client-certificate policy: the session ID
    // context is a digest of them, and OpenSSL refuses a session (from
    // the cache or a ticket) whose context differs.
    std::string binding = "terminus server " + std::to_string(index) + "\n";
    for (const auto& pair : st.ssl_certificates) binding += pair.certificate + "\n";
    binding += "verify " + std::to_string(static_cast<int>(st.ssl_verify_client)) + " " +
               std::to_string(st.ssl_verify_depth) + " " + st.ssl_client_certificate + " " +
               st.ssl_trusted_certificate + " " + st.ssl_crl;
    unsigned char sid_ctx[EVP_MAX_MD_SIZE];
    unsigned int sid_len = 0;
    EVP_Digest(binding.data(), binding.size(), sid_ctx, &sid_len, EVP_sha256(), nullptr);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, std::min<unsigned>(sid_len, SSL_MAX_SID_CTX_LENGTH));

    const config::SessionCache& cache = st.ssl_session_cache;
    if (cache.off) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    } else if (cache.builtin || !cache.shared_name.empty()) {
        // Every core keeps every session (they are exchanged), so each
        // core's cache holds what nginx's one shared zone would: about
        // 4000 sessions per megabyte, or builtin's count.
        long size = 0;
        if (!cache.shared_name.empty()) size += static_cast<long>(cache.shared_size / 256);
        if (cache.builtin) size += static_cast<long>(cache.builtin_size);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, size);
        if (!cache.shared_name.empty()) {
            // What this core adds or drops, the others learn.
            SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
            SSL_CTX_sess_set_remove_cb(ctx, remove_session_cb);
        }
    } else {
        // "none": clients may offer sessions, nothing is stored.
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    }
    SSL_CTX_set_timeout(ctx, static_cast<long>(st.ssl_session_timeout.count() / 1000));
    if (st.ssl_session_tickets && raw->tickets) {
        // Keys every core shares, so a ticket from one core opens on all.
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb);
    }

    // Choosing the server block by SNI happens on the ClientHello, before
    // the protocol version is chosen, so that each block's ssl_protocols
    // hold.
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, nullptr);

    // ssl_conf_command last, so that it overrides what came before (as
    // nginx applies it).
    if (!st.ssl_conf_command.empty()) {
        SSL_CONF_CTX* cctx = SSL_CONF_CTX_new();
        SSL_CONF_CTX_set_flags(cctx, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_SERVER | SSL_CONF_FLAG_CERTIFICATE |
                                         SSL_CONF_FLAG_SHOW_ERRORS);
        SSL_CONF_CTX_set_ssl_ctx(cctx, ctx);
        for (const auto& c : st.ssl_conf_command) {
            if (SSL_CONF_cmd(cctx, c.name.c_str(), c.value.c_str()) <= 0) {
                SSL_CONF_CTX_free(cctx);
                return fail(c.loc, "ssl_conf_command \"" + c.name + "\" \"" + c.value + "\"");
            }
        }
        SSL_CONF_CTX_finish(cctx);
        SSL_CONF_CTX_free(cctx);
        raw->min_version = static_cast<int>(SSL_CTX_get_min_proto_version(ctx));
        raw->max_version = static_cast<int>(SSL_CTX_get_max_proto_version(ctx));
    }
    ERR_clear_error();
    return true;
}

}  // namespace terminus::tls
