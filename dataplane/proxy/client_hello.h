// ssl_preread: what a TLS ClientHello says before anything decrypts it —
// the server name, the ALPN protocols and the highest version offered —
// read from the bytes a client sent first, without OpenSSL and without
// allocating. The input is untrusted: every length is checked against the
// record, the handshake message and the field it sits in.
//
// Semantics are those of nginx's ngx_stream_ssl_preread_module:
//   * at least 5 bytes are needed before anything is decided;
//   * a first byte with the high bit set, a message type of 1 and a
//     version major of 0 or 3 is an SSLv2-style ClientHello: done, with
//     the version it names and neither server name nor ALPN;
//   * otherwise a first record that is not a handshake (0x16) of SSL
//     major version 3 is not TLS;
//   * a record is parsed only once all of it has arrived, and the
//     ClientHello may be fragmented over any number of handshake records;
//   * the first server_name and the first ALPN extension count; a server
//     name whose type is not host_name, and an empty ALPN protocol, make
//     the hello malformed;
//   * a supported_versions extension means "TLSv1.3" (nginx does not read
//     the list); without one the legacy client_version names the protocol.
// Stricter than nginx, as a TLS server is: an extension's contents must fit
// in the extension, the extensions block must fill the rest of the message,
// and a host name longer than 255 bytes (RFC 1035 2.3.4) is malformed.
//
// What the proxy does with each status is nginx's preread phase
// (ngx_stream_core_preread_phase): on kNeedMore it reads more, and closes
// the connection when preread_timeout passes (armed once, when preread
// starts), when the client ends its stream first, or when
// preread_buffer_size bytes have arrived and the answer is still kNeedMore
// (nginx logs "preread buffer full"); kNotTls and kInvalid are nginx's
// NGX_DECLINED: the session goes on with every $ssl_preread_* variable
// empty.
//
// Private to dataplane/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace terminus::dataplane::proxy {

#define TERMINUS_PREREAD_STATUSES(X)                                              \
    X(kNeedMore, "need_more", "the bytes so far end inside the ClientHello")       \
    X(kDone, "done", "a whole ClientHello was read")                              \
    X(kNotTls, "not_tls", "the first record is not a TLS handshake")              \
    X(kInvalid, "invalid", "a TLS handshake record that holds no valid ClientHello")

enum class PrereadStatus : uint8_t {
#define TERMINUS_X(e, name, help) e,
    TERMINUS_PREREAD_STATUSES(TERMINUS_X)
#undef TERMINUS_X
};

// "need_more", "done", "not_tls", "invalid": for logs and counter names.
const char* to_string(PrereadStatus s);

// What a ClientHello said, in fixed storage (no allocation). Filled only by
// kDone; every other status leaves it empty.
struct ClientHelloInfo {
    static constexpr size_t kMaxServerName = 255;
    // Room for "h2,http/1.1" many times over; a longer list keeps the
    // protocols that fit whole and sets alpn_truncated.
    static constexpr size_t kMaxAlpn = 255;

    // $ssl_preread_server_name: the host name as the client sent it (not
    // lowercased, not validated), empty without a server_name extension.
    std::string_view server_name() const { return {server_name_buf, server_name_len}; }
    // $ssl_preread_alpn_protocols: the offered protocols in the client's
    // order, joined by ",", e.g. "h2,http/1.1".
    std::string_view alpn_protocols() const { return {alpn_buf, alpn_len}; }
    // $ssl_preread_protocol: "SSLv2", "SSLv3", "TLSv1", "TLSv1.1",
    // "TLSv1.2", "TLSv1.3", or empty for a version nginx has no name for.
    std::string_view protocol() const { return protocol_name; }

    // The version behind protocol(): 0x0304 when supported_versions was
    // present, else the client_version field (the SSLv2 form's version).
    uint16_t version = 0;
    bool alpn_truncated = false;

    char server_name_buf[kMaxServerName] = {};
    uint8_t server_name_len = 0;
    uint8_t alpn_len = 0;
    char alpn_buf[kMaxAlpn] = {};
    const char* protocol_name = "";

    void clear() {
        version = 0;
        alpn_truncated = false;
        server_name_len = 0;
        alpn_len = 0;
        protocol_name = "";
    }
};

// Parses the SIZE bytes at DATA, which are everything the client has sent
// so far, from its first byte. Stateless: call it again, from the start,
// with more bytes after kNeedMore (the cost is one pass over SIZE bytes,
// and nothing before the terminal answer needs keeping). Once a call has
// returned kDone, kNotTls or kInvalid, any longer input gives the same
// answer and the same OUT: the decision depends only on bytes already seen.
//   kNeedMore  fewer than 5 bytes, or the ClientHello continues past the
//              last complete record (OUT is cleared)
//   kDone      OUT holds the server name, ALPN list and protocol
//   kNotTls    not a TLS handshake record; OUT is cleared
//   kInvalid   handshake records, but not a well-formed ClientHello; OUT
//              is cleared
PrereadStatus parse_client_hello(const uint8_t* data, size_t size, ClientHelloInfo& out);

}  // namespace terminus::dataplane::proxy
