// One BIO over a Transport: reads take received bytes, writes queue bytes
// to send; "would block" sets the retry flag and returns -1 (as Envoy's
// io_handle_bio.cc and HAProxy's ha_ssl_read/ha_ssl_write do).
#include <openssl/bio.h>

#include "tls/tls_private.h"

namespace terminus::tls {

namespace {

int bio_write(BIO* b, const char* data, size_t len, size_t* written) {
    BIO_clear_retry_flags(b);
    auto* t = static_cast<Transport*>(BIO_get_data(b));
    const uint32_t n = t->write(data, static_cast<uint32_t>(len > UINT32_MAX ? UINT32_MAX : len));
    if (n == 0) {
        BIO_set_retry_write(b);
        return 0;
    }
    *written = n;
    return 1;
}

int bio_read(BIO* b, char* data, size_t len, size_t* read) {
    BIO_clear_retry_flags(b);
    auto* t = static_cast<Transport*>(BIO_get_data(b));
    const uint32_t n = t->read(data, static_cast<uint32_t>(len > UINT32_MAX ? UINT32_MAX : len));
    if (n == 0) {
        if (!t->eof()) BIO_set_retry_read(b);
        return 0;  // with no retry flag: end of stream
    }
    *read = n;
    return 1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    auto* t = static_cast<Transport*>(BIO_get_data(b));
    switch (cmd) {
        case BIO_CTRL_FLUSH:
            // After each flight and each alert (ssl3_dispatch_alert), also
            // those SSL_read writes: corked bytes go now.
            t->flush();
            return 1;
        case BIO_CTRL_EOF:
            return t->eof() ? 1 : 0;
        case BIO_CTRL_PENDING:
        case BIO_CTRL_WPENDING:
            return 0;
        case BIO_CTRL_DUP:
            return 1;
        default:
            return 0;
    }
}

int bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

int bio_destroy(BIO* b) {
    BIO_set_data(b, nullptr);
    return 1;
}

BIO_METHOD* method() {
    // Made once, before any lcore runs (CoreTls::create reaches here first).
    static BIO_METHOD* m = [] {
        BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "terminus transport");
        BIO_meth_set_write_ex(bm, bio_write);
        BIO_meth_set_read_ex(bm, bio_read);
        BIO_meth_set_ctrl(bm, bio_ctrl);
        BIO_meth_set_create(bm, bio_create);
        BIO_meth_set_destroy(bm, bio_destroy);
        return bm;
    }();
    return m;
}

}  // namespace

BIO* new_transport_bio(Transport& t) {
    BIO* b = BIO_new(method());
    if (b) BIO_set_data(b, &t);
    return b;
}

}  // namespace terminus::tls
