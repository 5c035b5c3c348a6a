// Session ticket keys in nginx's file formats, random keys rotated for all
// cores, and the ticket callback (RFC 5077's recommended construction:
// AES-CBC and HMAC-SHA256, as nginx's ngx_ssl_ticket_key_callback).
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "tls/tls_private.h"

namespace terminus::tls {

Result<std::unique_ptr<TicketKeys>> TicketKeys::from_files(const std::vector<std::string>& paths) {
    std::unique_ptr<TicketKeys> keys(new TicketKeys());
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        const std::string buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto* b = reinterpret_cast<const uint8_t*>(buf.data());
        Key k{};
        if (buf.size() == 48) {
            // name[16], AES-128 key[16], HMAC key[16]
            k.size = 48;
            std::memcpy(k.name, b, 16);
            std::memcpy(k.aes, b + 16, 16);
            std::memcpy(k.hmac, b + 32, 16);
        } else if (buf.size() == 80) {
            // name[16], HMAC key[32], AES-256 key[32]
            k.size = 80;
            std::memcpy(k.name, b, 16);
            std::memcpy(k.hmac, b + 16, 32);
            std::memcpy(k.aes, b + 48, 32);
        } else {
            return make_error("ssl_session_ticket_key \"" + path + "\" holds " + std::to_string(buf.size()) +
                              " bytes: expected 48 or 80");
        }
        keys->file_keys_.push_back(k);
    }
    return keys;
}

namespace {
void random_key(TicketKeys::Key& k) {
    k.size = 80;
    RAND_bytes(k.name, sizeof k.name);
    RAND_bytes(k.hmac, sizeof k.hmac);
    RAND_bytes(k.aes, sizeof k.aes);
}
}  // namespace

std::unique_ptr<TicketKeys> TicketKeys::random() {
    std::unique_ptr<TicketKeys> keys(new TicketKeys());
    keys->rotating_ = true;
    random_key(keys->slots_[0]);
    random_key(keys->slots_[kSlots - 1]);  // a "previous" that no ticket names yet
    keys->current_.store(0, std::memory_order_release);
    return keys;
}

void TicketKeys::install(const Key& k) {
    const unsigned cur = current_.load(std::memory_order_relaxed);
    const unsigned next = (cur + 1) % kSlots;
    // NEXT held the key from two rotations ago: no reader uses it now. (Two
    // installs back to back, as set() may make, can overwrite a key a core
    // is still comparing: the worst it sees is a ticket that does not
    // decrypt, which is a full handshake.)
    slots_[next] = k;
    current_.store(next, std::memory_order_release);
}

void TicketKeys::rotate() {
    if (!rotating_) return;
    Key k;
    random_key(k);
    install(k);
}

bool TicketKeys::set(const Key& cur, const Key* prev) {
    if (!rotating_ || holds(cur.name)) return false;
    if (prev && !holds(prev->name)) install(*prev);
    install(cur);
    return true;
}

const uint8_t* TicketKeys::current_name() const {
    if (!rotating_) return file_keys_.front().name;
    return slots_[current_.load(std::memory_order_acquire)].name;
}

const uint8_t* TicketKeys::previous_name() const {
    if (!rotating_) return file_keys_.size() > 1 ? file_keys_[1].name : nullptr;
    return slots_[(current_.load(std::memory_order_acquire) + kSlots - 1) % kSlots].name;
}

bool TicketKeys::holds(const uint8_t* name) const {
    bool renew = false;
    return find(name, renew) != nullptr;
}

bool TicketKeys::parse_hex(std::string_view text, Key& out) {
    if (text.size() != 160) return false;
    uint8_t raw[80];
    for (size_t i = 0; i < 80; ++i) {
        int v = 0;
        for (size_t j = 0; j < 2; ++j) {
            const char c = text[2 * i + j];
            const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return false;
            v = v * 16 + d;
        }
        raw[i] = static_cast<uint8_t>(v);
    }
    // nginx's 80-byte file layout, as from_files() reads it.
    out = Key{};
    out.size = 80;
    std::memcpy(out.name, raw, 16);
    std::memcpy(out.hmac, raw + 16, 32);
    std::memcpy(out.aes, raw + 48, 32);
    return true;
}

namespace {
void append_hex(std::string& out, const uint8_t* p, size_t n) {
    static const char kDigits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; ++i) {
        out += kDigits[p[i] >> 4];
        out += kDigits[p[i] & 15];
    }
}
}  // namespace

std::string TicketKeys::to_hex(const Key& k) {
    std::string s;
    s.reserve(160);
    append_hex(s, k.name, 16);
    append_hex(s, k.hmac, 32);
    append_hex(s, k.aes, 32);
    return s;
}

std::string TicketKeys::name_hex(const uint8_t* name) {
    std::string s;
    if (name) append_hex(s, name, 16);
    return s;
}

const TicketKeys::Key& TicketKeys::encrypting() const {
    if (!rotating_) return file_keys_.front();
    return slots_[current_.load(std::memory_order_acquire)];
}

const TicketKeys::Key* TicketKeys::find(const uint8_t* name, bool& renew) const {
    if (!rotating_) {
        for (size_t i = 0; i < file_keys_.size(); ++i) {
            if (std::memcmp(file_keys_[i].name, name, 16) == 0) {
                renew = i != 0;
                return &file_keys_[i];
            }
        }
        return nullptr;
    }
    const unsigned cur = current_.load(std::memory_order_acquire);
    const unsigned prev = (cur + kSlots - 1) % kSlots;
    if (std::memcmp(slots_[cur].name, name, 16) == 0) {
        renew = false;
        return &slots_[cur];
    }
    if (std::memcmp(slots_[prev].name, name, 16) == 0) {
        renew = true;
        return &slots_[prev];
    }
    return nullptr;
}

Result<std::unique_ptr<SharedTls>> SharedTls::create(const config::Config& cfg, unsigned n_cores,
                                                     const TlsCarry* carry) {
    auto shared = std::make_unique<SharedTls>();
    if (auto ex = make_exchange(*shared, cfg, n_cores, carry); !ex) return make_error(ex.error());
    shared->random_keys = carry && carry->random_keys ? carry->random_keys : std::shared_ptr<TicketKeys>(TicketKeys::random());
    shared->generation = carry ? carry->generation : 0;
    shared->file_keys.resize(cfg.servers.size());
    for (size_t i = 0; i < cfg.servers.size(); ++i) {
        const auto& files = cfg.servers[i].settings.ssl_session_ticket_key;
        if (files.empty()) continue;
        auto keys = TicketKeys::from_files(files);
        if (!keys) return make_error(keys.error());
        shared->file_keys[i] = std::move(*keys);
    }
    return shared;
}

TicketKeys* SharedTls::keys_for(size_t server) const {
    if (server < file_keys.size() && file_keys[server]) return file_keys[server].get();
    return random_keys.get();
}

int ticket_key_cb(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* ectx,
                  EVP_MAC_CTX* hctx, int enc) {
    const auto* st = static_cast<const ServerTls*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    if (!st || !st->tickets) return -1;
    const TicketKeys::Key* key = nullptr;
    bool renew = false;
    if (enc == 1) {
        key = &st->tickets->encrypting();
        std::memcpy(key_name, key->name, 16);
        EVP_CIPHER* cipher = st->core->ticket_cipher(key->size);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(cipher)) != 1) return -1;
        if (EVP_EncryptInit_ex2(ectx, cipher, key->aes, iv, nullptr) != 1) return -1;
    } else {
        key = st->tickets->find(key_name, renew);
        if (!key) return 0;  // unknown key: a full handshake, and a new ticket
        if (EVP_DecryptInit_ex2(ectx, st->core->ticket_cipher(key->size), key->aes, iv, nullptr) != 1) return -1;
        if (auto* ep = static_cast<Endpoint*>(SSL_get_app_data(ssl))) ep->note_ticket();
    }
    const size_t hmac_len = key->size == 48 ? 16 : 32;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(key->hmac), hmac_len),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(hctx, params) != 1) return -1;
    return renew ? 2 : 1;
}

}  // namespace terminus::tls
