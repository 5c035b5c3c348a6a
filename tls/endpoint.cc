// One server-side TLS connection: the handshake driven as far as the
// received bytes allow (nginx's ngx_ssl_handshake, Envoy's doHandshake),
// the server block chosen by SNI on the ClientHello, failures sorted by
// reason from OpenSSL's error queue, then records through a RecordLayer.
#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/tls_private.h"

namespace terminus::tls {

namespace {

// Records through OpenSSL's own record layer, over the same SSL.
class OpenSslRecords final : public RecordLayer {
  public:
    OpenSslRecords(SSL* ssl, Transport& t) : ssl_(ssl), t_(t) {}

    int read(void* dst, uint32_t len) override {
        if (broken_) return RecordLayer::kAlerted;
        ERR_clear_error();
        size_t n = 0;
        const int ok = SSL_read_ex(ssl_, dst, len, &n);
        const int err = ok == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, 0);
        if (err == SSL_ERROR_NONE || err == SSL_ERROR_WANT_READ) answer_key_update();
        switch (err) {
            case SSL_ERROR_NONE:
                return static_cast<int>(n);
            case SSL_ERROR_WANT_READ:
            case SSL_ERROR_WANT_WRITE:
            case SSL_ERROR_WANT_ASYNC:
                return 0;
            case SSL_ERROR_ZERO_RETURN:
                return RecordLayer::kPeerClosed;  // close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF)
            case SSL_ERROR_SYSCALL:
                ERR_clear_error();
                return t_.eof() ? RecordLayer::kPeerClosed : RecordLayer::kFailed;
            default: {
                // An EOF inside a record, where the caller's context does
                // not ignore it (a client's): the peer finished all the same.
                const unsigned long e = drain_errors();
                if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                    return RecordLayer::kPeerClosed;
                }
                // A record that does not decrypt, a message not allowed
                // now, a KeyUpdate of an unknown type, or the peer's own
                // fatal alert: OpenSSL wrote its alert (SSLfatal) through
                // the BIO and flushed it (BIO_flush), unless the transport
                // had no room or a record of ours was still half written.
                // The connection is over either way. The flush here keeps
                // a corked transport from holding the alert whatever
                // OpenSSL does.
                broken_ = true;
                t_.flush();
                return RecordLayer::kAlerted;
            }
        }
    }

    int write(const void* src, uint32_t len) override {
        // OpenSSL holds a record it could not send whole; a retry with
        // fewer bytes than that is a fatal error (SSL_R_BAD_LENGTH).
        if (len < pending_) len = pending_;
        ERR_clear_error();
        size_t n = 0;
        t_.cork();
        const int ok = SSL_write_ex(ssl_, src, len, &n);
        t_.flush();
        if (ok == 1) {
            pending_ = 0;
            return static_cast<int>(n);
        }
        switch (SSL_get_error(ssl_, 0)) {
            case SSL_ERROR_WANT_READ:
            case SSL_ERROR_WANT_WRITE:
            case SSL_ERROR_WANT_ASYNC:
                pending_ = len;
                return 0;
            default:
                ERR_clear_error();
                return RecordLayer::kFailed;
        }
    }

    uint32_t pending_write() const override { return pending_; }

    uint32_t write_room() const override {
        // Each record of up to 16 KB costs its header, the AEAD tag or
        // CBC padding and MAC: 96 bytes covers every suite we offer.
        constexpr uint32_t kRecord = 16384, kOverhead = 96;
        const uint32_t space = t_.write_space();
        const uint32_t records = space / (kRecord + kOverhead) + 1;
        return space > records * kOverhead ? space - records * kOverhead : 0;
    }

  private:
    // A TLS 1.3 KeyUpdate that requested ours (RFC 8446 4.6.3) is only
    // queued by OpenSSL 3.0 (SSL_get_key_update_type() says which type
    // it will send) and written by the next SSL_write: SSL_do_handshake
    // alone does not enter the state machine for it. A peer that asked
    // and then only listens (an upstream that has nothing to say, a
    // client waiting for its response) would wait for ever, and a strict
    // one gives up. SSL_key_update with the type queued marks the machine
    // in init, and SSL_do_handshake writes the message now. While a record
    // of ours is half written SSL_key_update would refuse: the SSL_write
    // that finishes that record, or a read after it, sends the answer.
    void answer_key_update() {
        const int type = SSL_get_key_update_type(ssl_);
        if (type == SSL_KEY_UPDATE_NONE || pending_ != 0) return;
        ERR_clear_error();
        t_.cork();
        // WANT_WRITE: the next SSL_write (or SSL_read) finishes it first.
        if (SSL_key_update(ssl_, type) == 1) SSL_do_handshake(ssl_);
        t_.flush();
        ERR_clear_error();
    }

    SSL* ssl_;
    Transport& t_;
    uint32_t pending_ = 0;  // the length of a write OpenSSL holds
    bool broken_ = false;   // a fatal alert was sent or received: no more reads
};

// The host name of a ClientHello's server_name extension (RFC 6066 3):
// list length, then entries of type, length, name; host_name is type 0.
bool parse_sni(const unsigned char* p, size_t len, std::string& out) {
    if (len < 2) return false;
    const size_t list = static_cast<size_t>(p[0]) << 8 | p[1];
    if (list + 2 != len || list < 3) return false;
    p += 2;
    if (p[0] != 0) return false;
    const size_t n = static_cast<size_t>(p[1]) << 8 | p[2];
    if (n == 0 || n + 3 > list || n > 255) return false;
    out.assign(reinterpret_cast<const char*>(p + 3), n);
    for (char c : out) {
        if (c == '\0' || c == '/' || static_cast<unsigned char>(c) < 0x21) return false;
    }
    return true;
}

}  // namespace

std::unique_ptr<RecordLayer> make_openssl_records(SSL* ssl, Transport& t) {
    return std::make_unique<OpenSslRecords>(ssl, t);
}

int client_hello_cb(SSL* ssl, int* alert, void*) {
    auto* ep = static_cast<Endpoint*>(SSL_get_app_data(ssl));
    return ep ? ep->on_client_hello(alert) : SSL_CLIENT_HELLO_SUCCESS;
}

Endpoint::Endpoint(CoreTls& core, const ListenGroup& group, Transport& t)
    : core_(core), group_(group), transport_(t), server_(group.default_server) {
    ServerTls* st = core_.server(server_);
    if (!st) return;
    ssl_ = SSL_new(st->ctx);
    if (!ssl_) return;
    SSL_set_app_data(ssl_, this);
    BIO* bio = new_transport_bio(t);
    SSL_set_bio(ssl_, bio, bio);
    SSL_set_accept_state(ssl_);
}

Endpoint::~Endpoint() {
    if (!ssl_) return;
    // A connection that ended without close_notify both ways would take
    // its session out of the cache in SSL_free (ssl_clear_bad_session); a
    // good one keeps it, as nginx keeps it (SSL_set_shutdown before free).
    if (done_ && !failed_) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl_);
}

int Endpoint::on_client_hello(int* alert) {
    const unsigned char* ext = nullptr;
    size_t len = 0;
    sni_.clear();
    if (SSL_client_hello_get0_ext(ssl_, TLSEXT_TYPE_server_name, &ext, &len) == 1 && !parse_sni(ext, len, sni_)) {
        sni_.clear();
        *alert = SSL_AD_DECODE_ERROR;
        fail(Failure::k_malformed);
        return SSL_CLIENT_HELLO_ERROR;
    }
    server_ = select_server(core_.config(), group_, sni_.c_str());
    ServerTls* st = core_.server(server_);
    if (!st) {
        *alert = SSL_AD_INTERNAL_ERROR;
        fail(Failure::k_internal);
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (st->reject) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        fail(Failure::k_unknown_sni);
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (SSL_get_SSL_CTX(ssl_) != st->ctx) {
        // The chosen block's certificates, policy and session context
        // (SSL_set_SSL_CTX), then what SSL_new copied from the first one.
        SSL_set_SSL_CTX(ssl_, st->ctx);
        SSL_clear_options(ssl_, SSL_get_options(ssl_) & ~SSL_CTX_get_options(st->ctx));
        SSL_set_options(ssl_, SSL_CTX_get_options(st->ctx));
        SSL_set_verify(ssl_, SSL_CTX_get_verify_mode(st->ctx), SSL_CTX_get_verify_callback(st->ctx));
        SSL_set_verify_depth(ssl_, SSL_CTX_get_verify_depth(st->ctx));
        SSL_set_min_proto_version(ssl_, st->min_version);
        SSL_set_max_proto_version(ssl_, st->max_version);
        if (STACK_OF(X509_NAME)* cas = SSL_CTX_get_client_CA_list(st->ctx)) {
            SSL_set_client_CA_list(ssl_, SSL_dup_CA_list(cas));
        }
        SSL_set_security_level(ssl_, SSL_CTX_get_security_level(st->ctx));
        // TLS 1.3 tickets per handshake ("ssl_conf_command NumTickets").
        SSL_set_num_tickets(ssl_, SSL_CTX_get_num_tickets(st->ctx));
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

void Endpoint::fail(Failure f) {
    if (failed_) return;
    failed_ = true;
    failure_ = f;
    ++core_.counters.failed[static_cast<size_t>(f)];
    if (ServerTls* st = core_.server(server_)) ++st->failed[static_cast<size_t>(f)];
}

unsigned long drain_errors() {
    unsigned long first = 0, e;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
            ERR_clear_error();
            return e;
        }
        if (!first) first = e;
    }
    return first;
}

Failure classify_failure(int ssl_error, bool eof, unsigned long& cause) {
    cause = 0;
    switch (ssl_error) {
        case SSL_ERROR_ZERO_RETURN:
            // close_notify, or an EOF under SSL_OP_IGNORE_UNEXPECTED_EOF.
            ERR_clear_error();
            return Failure::k_peer_closed;
        case SSL_ERROR_SYSCALL:
            // The BIO said end of stream (no retry flag) with the queue
            // empty: an EOF, unless the transport has not seen one.
            ERR_clear_error();
            return eof ? Failure::k_peer_closed : Failure::k_internal;
        default:
            break;
    }
    cause = drain_errors();
    // No error from the SSL library: ours (a provider, memory).
    if (ERR_GET_LIB(cause) != ERR_LIB_SSL) return cause ? Failure::k_internal : Failure::k_malformed;
    // ERR_R_INTERNAL_ERROR, ERR_R_MALLOC_FAILURE...: reasons common to
    // every library, flagged as such (and numbered above any alert's).
    if (ERR_COMMON_ERROR(cause)) return Failure::k_internal;
    const int reason = ERR_GET_REASON(cause);
    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        // An alert the peer sent (SSL_R_SSLV3_ALERT_*, SSL_R_TLSV1_ALERT_*).
        return Failure::k_peer_alert;
    }
    switch (reason) {
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            // An EOF where the context does not ignore it (a client's).
            return Failure::k_peer_closed;
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_VERSION_TOO_HIGH:
        case SSL_R_UNKNOWN_PROTOCOL:
            return Failure::k_no_shared_protocol;
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_SUITABLE_KEY_SHARE:
        case SSL_R_NO_SHARED_GROUPS:
        case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
        case SSL_R_NO_CIPHERS_AVAILABLE:
            return Failure::k_no_shared_cipher;
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return Failure::k_no_client_cert;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
            return Failure::k_bad_client_cert;
        case SSL_R_NO_APPLICATION_PROTOCOL:
            return Failure::k_no_shared_alpn;
        case SSL_R_NO_CERTIFICATE_SET:
            return Failure::k_internal;
        default:
            // WRONG_VERSION_NUMBER (not TLS at all), HTTP_REQUEST, record
            // lengths, unexpected messages, bad extensions, records that
            // do not decrypt...
            return Failure::k_malformed;
    }
}

Endpoint::Status Endpoint::handshake() {
    if (failed_ || !ssl_) {
        if (!ssl_) fail(Failure::k_internal);
        return Status::kFailed;
    }
    if (done_) return Status::kDone;
    if (async_.ready && !parked_) {
        SSL_set_async_callback(ssl_, async_ready);
        SSL_set_async_callback_arg(ssl_, &async_);
    }
    ERR_clear_error();
    transport_.cork();
    const int rc = SSL_do_handshake(ssl_);
    const int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
    transport_.flush();  // the flight, and any alert, leave now
    parked_ = false;
    switch (err) {
        case SSL_ERROR_NONE:
            done_ = true;
            count_done();
            records_ = make_openssl_records(ssl_, transport_);
            return Status::kDone;
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return Status::kAgain;
        case SSL_ERROR_WANT_ASYNC:
        case SSL_ERROR_WANT_ASYNC_JOB:
            // An offloaded operation holds the job: call again on a later
            // turn of the loop.
            parked_ = true;
            park_async(ssl_, async_);
            ++core_.counters.async_parked;
            return Status::kAgain;
        default: {
            unsigned long cause = 0;
            const Failure why = classify_failure(err, transport_.eof(), cause);
            if (!failed_) {
                // (Else a callback said why already.)
                error_ = cause;
                fail(why);
            }
            return Status::kFailed;
        }
    }
}

void Endpoint::count_done() {
    TlsCounters& c = core_.counters;
    if (SSL_session_reused(ssl_)) {
        if (ticket_used_) {
            ++c.handshakes_resumed_ticket;
        } else {
            ++c.handshakes_resumed_cache;
        }
    } else {
        ++c.handshakes_full;
    }
    switch (SSL_version(ssl_)) {
        case TLS1_VERSION: ++c.proto_tls10; break;
        case TLS1_1_VERSION: ++c.proto_tls11; break;
        case TLS1_2_VERSION: ++c.proto_tls12; break;
        case TLS1_3_VERSION: ++c.proto_tls13; break;
        default: break;
    }
    switch (SSL_CIPHER_get_cipher_nid(SSL_get_current_cipher(ssl_))) {
        case NID_aes_128_gcm: ++c.cipher_aes128_gcm; break;
        case NID_aes_256_gcm: ++c.cipher_aes256_gcm; break;
        case NID_chacha20_poly1305: ++c.cipher_chacha20_poly1305; break;
        default: ++c.cipher_other; break;
    }
    // The certificate presented is the one whose key signed (none signs
    // on a resumption).
    int sig = NID_undef;
    if (SSL_get_signature_type_nid(ssl_, &sig) == 1) {
        if (sig == EVP_PKEY_EC) ++c.cert_ecdsa;
        if (sig == EVP_PKEY_RSA || sig == EVP_PKEY_RSA_PSS) ++c.cert_rsa;
    }
    if (SSL_get0_peer_certificate(ssl_) && SSL_get_verify_result(ssl_) == X509_V_OK) ++c.client_certs;
}

int Endpoint::read(void* dst, uint32_t len) {
    if (!records_) return RecordLayer::kFailed;
    const int n = records_->read(dst, len);
    if (n > 0) {
        core_.counters.bytes_decrypted += static_cast<uint64_t>(n);
    } else if (n == RecordLayer::kAlerted && !bad_record_) {
        bad_record_ = true;
        // Ours to count when we found the fault; not the client's own
        // fatal alert (OpenSSL marks it as received shutdown).
        if (!(SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN)) ++core_.counters.bad_records;
    }
    return n;
}

int Endpoint::write(const void* src, uint32_t len) {
    if (!records_) return RecordLayer::kFailed;
    const int n = records_->write(src, len);
    if (n > 0) core_.counters.bytes_encrypted += static_cast<uint64_t>(n);
    return n;
}

uint32_t Endpoint::write_room() const { return records_ ? records_->write_room() : 0; }

uint32_t Endpoint::pending_write() const { return records_ ? records_->pending_write() : 0; }

int async_ready(SSL*, void* arg) {
    auto* hook = static_cast<Endpoint::AsyncHook*>(arg);
    if (hook->ready) hook->ready->cookies.push_back(hook->cookie);
    return 1;
}

bool park_async(SSL* ssl, Endpoint::AsyncHook& hook) {
    hook.callback = false;
    if (!hook.ready) return false;
    // The callback is set before each step's job may start; the status is
    // what the operation's provider said when it paused.
    int status = ASYNC_STATUS_UNSUPPORTED;
    if (SSL_get_async_status(ssl, &status) != 1) return false;
    hook.callback = status == ASYNC_STATUS_OK;
    return hook.callback;
}

void send_close_notify(SSL* ssl, Transport& t) {
    ERR_clear_error();
    t.cork();
    SSL_shutdown(ssl);  // our close_notify; we do not wait for theirs
    t.flush();
    ERR_clear_error();
}

void Endpoint::shutdown() {
    if (ssl_ && done_) send_close_notify(ssl_, transport_);
}

}  // namespace terminus::tls
