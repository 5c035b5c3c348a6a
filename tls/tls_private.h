// What the files of tls/ share among themselves. Private to tls/.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

#include "tls/tls.h"

namespace terminus::tls {

// SSL_CTX_set_client_hello_cb: picks the server block by SNI.
int client_hello_cb(SSL* ssl, int* alert, void* arg);
// SSL_CTX_set_tlsext_ticket_key_evp_cb over the shared TicketKeys.
int ticket_key_cb(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* ectx,
                  EVP_MAC_CTX* hctx, int enc);

// What server and upstream contexts load at start (load.cc).
// OpenSSL's error queue as text, drained ("unknown OpenSSL error" if empty).
std::string openssl_error();
// "FILE:LINE:COL: WHAT: " and OpenSSL's errors.
Error fail_at(const config::Location& loc, const std::string& what);
// The non-empty lines of PATH (ssl_password_file), CR/LF stripped.
std::vector<std::string> read_lines(const std::string& path);
std::string read_file(const std::string& path);
// The key at PATH, decrypted with each password of PASSWORDS in turn as
// nginx does (none: the key is not encrypted); null when none works.
EVP_PKEY* load_key(OSSL_LIB_CTX* libctx, const std::string& path, const std::vector<std::string>& passwords);
// TLS1_VERSION and friends for a config version bit.
int version_of(config::TlsVersion v);

// Our BIO over a Transport.
BIO* new_transport_bio(Transport& t);

// Sends our close_notify over T now (best effort; nothing waits for the
// peer's).
void send_close_notify(SSL* ssl, Transport& t);

// Drains OpenSSL's error queue; returns the error that caused the
// failure: the first the SSL library raised (a provider's may come
// before it: a cipher that failed), else the first of all, or 0.
unsigned long drain_errors();

// Why a handshake step failed: SSL_ERROR (SSL_get_error's, not a WANT_*)
// and the error queue, which it drains. EOF: the transport saw the peer
// finish. CAUSE: the error that decided, 0 for none (an EOF).
Failure classify_failure(int ssl_error, bool eof, unsigned long& cause);

// Records through OpenSSL's own record layer over SSL (after its handshake).
std::unique_ptr<RecordLayer> make_openssl_records(SSL* ssl, Transport& t);

// The session exchange of "ssl_session_cache shared" (session_cache.cc).
Result<bool> make_exchange(SharedTls& shared, const config::Config& cfg, unsigned n_cores, const TlsCarry* carry);
int new_session_cb(SSL* ssl, SSL_SESSION* sess);
void remove_session_cb(SSL_CTX* ctx, SSL_SESSION* sess);

// After SSL_ERROR_WANT_ASYNC: whether the paused operation will call
// back (then HOOK's cookie joins its ready list when it does), or must be
// retried.
bool park_async(SSL* ssl, Endpoint::AsyncHook& hook);
// The SSL_set_async_callback function: ARG is the endpoint's AsyncHook.
int async_ready(SSL* ssl, void* arg);

}  // namespace terminus::tls
