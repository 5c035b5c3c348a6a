#include "dataplane/tcp/tcp_options.h"

#include <cstring>

namespace terminus::tcp {

namespace {

enum : uint8_t {
    kEol = 0,
    kNop = 1,
    kMss = 2,
    kWscale = 3,
    kSackPermitted = 4,
    kSack = 5,
    kTimestamps = 8,
};

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
           static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

}  // namespace

OptionsResult parse_options(const uint8_t* p, size_t len, TcpOptions& out) {
    out = TcpOptions{};
    size_t i = 0;
    while (i < len) {
        const uint8_t kind = p[i];
        if (kind == kEol) break;
        if (kind == kNop) {
            ++i;
            continue;
        }
        if (i + 1 >= len) return OptionsResult::kMalformed;
        const uint8_t olen = p[i + 1];
        if (olen < 2 || i + olen > len) return OptionsResult::kMalformed;
        const uint8_t* v = p + i + 2;
        switch (kind) {
            case kMss:
                if (olen != 4) return OptionsResult::kMalformed;
                out.has_mss = true;
                out.mss = get16(v);
                break;
            case kWscale:
                if (olen != 3) return OptionsResult::kMalformed;
                out.has_wscale = true;
                // RFC 7323 2.3: a shift above 14 is used as 14 (and may be
                // logged).
                out.wscale = v[0] > kMaxWindowShift ? kMaxWindowShift : v[0];
                break;
            case kSackPermitted:
                if (olen != 2) return OptionsResult::kMalformed;
                out.sack_permitted = true;
                break;
            case kTimestamps:
                if (olen != 10) return OptionsResult::kMalformed;
                out.has_timestamps = true;
                out.ts_val = get32(v);
                out.ts_ecr = get32(v + 4);
                break;
            case kSack: {
                // RFC 2018 3: 8 bytes per block after the 2-byte header.
                if (olen < 10 || (olen - 2) % 8 != 0) return OptionsResult::kMalformed;
                const unsigned n = static_cast<unsigned>(olen - 2) / 8;
                for (unsigned b = 0; b < n && out.n_sack < kMaxSackBlocks; ++b) {
                    out.sack[out.n_sack++] = SackBlock{get32(v + 8 * b), get32(v + 8 * b + 4)};
                }
                break;
            }
            default:
                break;  // unknown: skipped by its length
        }
        i += olen;
    }
    return OptionsResult::kOk;
}

size_t write_syn_options(uint8_t* p, const SynOptions& o) {
    size_t n = 0;
    p[n++] = kMss;
    p[n++] = 4;
    put16(p + n, o.mss);
    n += 2;
    if (o.sack_permitted && o.timestamps) {
        // SACKOK + TS in 12 bytes, the layout Linux sends.
        p[n++] = kSackPermitted;
        p[n++] = 2;
    } else if (o.timestamps) {
        p[n++] = kNop;
        p[n++] = kNop;
    } else if (o.sack_permitted) {
        p[n++] = kNop;
        p[n++] = kNop;
        p[n++] = kSackPermitted;
        p[n++] = 2;
    }
    if (o.timestamps) {
        p[n++] = kTimestamps;
        p[n++] = 10;
        put32(p + n, o.ts_val);
        put32(p + n + 4, o.ts_ecr);
        n += 8;
    }
    if (o.wscale) {
        p[n++] = kNop;
        p[n++] = kWscale;
        p[n++] = 3;
        p[n++] = o.shift > kMaxWindowShift ? kMaxWindowShift : o.shift;
    }
    return n;
}

size_t write_options(uint8_t* p, bool timestamps, uint32_t ts_val, uint32_t ts_ecr,
                     const SackBlock* sack, unsigned n_sack) {
    size_t n = 0;
    if (timestamps) {
        p[n++] = kNop;
        p[n++] = kNop;
        p[n++] = kTimestamps;
        p[n++] = 10;
        put32(p + n, ts_val);
        put32(p + n + 4, ts_ecr);
        n += 8;
    }
    // 40 bytes of option space: 3 blocks fit next to timestamps, 4 without.
    const unsigned room = timestamps ? 3 : 4;
    if (n_sack > room) n_sack = room;
    if (n_sack > 0) {
        p[n++] = kNop;
        p[n++] = kNop;
        p[n++] = kSack;
        p[n++] = static_cast<uint8_t>(2 + 8 * n_sack);
        for (unsigned b = 0; b < n_sack; ++b) {
            put32(p + n, sack[b].left);
            put32(p + n + 4, sack[b].right);
            n += 8;
        }
    }
    return n;
}

}  // namespace terminus::tcp
