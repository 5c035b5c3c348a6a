// One client-side TLS connection over a Transport: the same BIO, the same
// handshake mapping of SSL_get_error, the same failure classes and the
// same record layer as the server side (endpoint.cc).
#include <openssl/err.h>

#include "tls/tls_private.h"

namespace terminus::tls {

ClientEndpoint::ClientEndpoint(SSL_CTX* ctx, Transport& t, const char* sni, SSL_SESSION* resume)
    : transport_(t) {
    ssl_ = SSL_new(ctx);
    if (!ssl_) return;
    BIO* bio = new_transport_bio(t);
    SSL_set_bio(ssl_, bio, bio);
    SSL_set_connect_state(ssl_);
    if (sni && *sni) SSL_set_tlsext_host_name(ssl_, sni);
    if (resume) SSL_set_session(ssl_, resume);
}

ClientEndpoint::ClientEndpoint(SSL_CTX* ctx, Transport& t, Accept) : transport_(t) {
    ssl_ = SSL_new(ctx);
    if (!ssl_) return;
    BIO* bio = new_transport_bio(t);
    SSL_set_bio(ssl_, bio, bio);
    SSL_set_accept_state(ssl_);
}

ClientEndpoint::~ClientEndpoint() {
    if (ssl_) SSL_free(ssl_);
}

ClientEndpoint::Status ClientEndpoint::handshake() {
    if (failed_ || !ssl_) {
        if (!ssl_) failure_ = Failure::k_internal;
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
    transport_.flush();
    parked_ = false;
    switch (err) {
        case SSL_ERROR_NONE:
            done_ = true;
            records_ = make_openssl_records(ssl_, transport_);
            return Status::kDone;
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return Status::kAgain;
        case SSL_ERROR_WANT_ASYNC:
        case SSL_ERROR_WANT_ASYNC_JOB:
            parked_ = true;
            park_async(ssl_, async_);
            return Status::kAgain;
        default:
            failure_ = classify_failure(err, transport_.eof(), error_);
            failed_ = true;
            return Status::kFailed;
    }
}

bool ClientEndpoint::resumed() const { return ssl_ && done_ && SSL_session_reused(ssl_); }

int ClientEndpoint::read(void* dst, uint32_t len) {
    return records_ ? records_->read(dst, len) : RecordLayer::kFailed;
}

int ClientEndpoint::write(const void* src, uint32_t len) {
    return records_ ? records_->write(src, len) : RecordLayer::kFailed;
}

uint32_t ClientEndpoint::write_room() const { return records_ ? records_->write_room() : 0; }

uint32_t ClientEndpoint::pending_write() const { return records_ ? records_->pending_write() : 0; }

void ClientEndpoint::shutdown() {
    if (!ssl_ || !done_) return;
    // Our direction only (RFC 8446 6.1): what the server still sends is
    // read until its close_notify (a response after the request's end,
    // proxy_half_close on). SSL_shutdown sets SSL_SENT_SHUTDOWN, which is
    // what keeps the session resumable (ssl_clear_bad_session).
    send_close_notify(ssl_, transport_);
}

SSL_SESSION* ClientEndpoint::get1_session() const {
    if (!ssl_ || !done_) return nullptr;
    SSL_SESSION* s = SSL_get1_session(ssl_);
    if (s && !SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(s);
        return nullptr;
    }
    return s;
}

}  // namespace terminus::tls
