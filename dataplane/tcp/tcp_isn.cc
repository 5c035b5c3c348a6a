#include "dataplane/tcp/tcp_isn.h"

#include <cstring>

namespace terminus::tcp {

namespace {

// The MSS values a cookie can carry (3 bits), the common ones first seen on
// the Internet and in data centres.
constexpr uint16_t kCookieMss[8] = {536, 1200, 1220, 1360, 1400, 1440, 1460, 8960};

uint64_t hash_tuple(const SipKey& k, const FourTuple& t, uint32_t extra1, uint32_t extra2) {
    uint8_t buf[20];
    std::memcpy(buf, &t.local_ip, 4);
    std::memcpy(buf + 4, &t.remote_ip, 4);
    std::memcpy(buf + 8, &t.local_port, 2);
    std::memcpy(buf + 10, &t.remote_port, 2);
    std::memcpy(buf + 12, &extra1, 4);
    std::memcpy(buf + 16, &extra2, 4);
    return siphash24(k, buf, sizeof buf);
}

// Layout: [31..27] period counter mod 32, [26..24] MSS index, [23..0] MAC.
constexpr unsigned kMacBits = 24;
constexpr uint32_t kMacMask = (1u << kMacBits) - 1;

uint32_t cookie_for(const SipKey& k, const FourTuple& t, uint32_t client_isn, uint32_t period,
                    unsigned mss_index) {
    const uint32_t mac = static_cast<uint32_t>(
                             hash_tuple(k, t, client_isn, (period << 3) | mss_index)) &
                         kMacMask;
    return ((period & 31u) << 27) | (mss_index << kMacBits) | mac;
}

}  // namespace

uint32_t initial_sequence(const SipKey& secret, const FourTuple& t, uint64_t now_us) {
    return static_cast<uint32_t>(now_us / 4) + static_cast<uint32_t>(hash_tuple(secret, t, 0, 0));
}

uint32_t make_cookie(const SipKey& secret, const FourTuple& t, uint32_t client_isn,
                     uint16_t mss, uint64_t now_us) {
    unsigned idx = 0;
    for (unsigned i = 0; i < 8; ++i) {
        if (kCookieMss[i] <= mss) idx = i;
    }
    const uint32_t period = static_cast<uint32_t>(now_us / kCookiePeriodUs) & 31u;
    return cookie_for(secret, t, client_isn, period, idx);
}

uint32_t cookie_timestamp(uint32_t now_ts, const CookieData& d) {
    // Low 5 bits: [4] SACK-permitted, [3..0] window shift + 1 (0: none).
    const uint32_t opts = (d.sack_ok ? 0x10u : 0u) |
                          (d.wscale_ok ? static_cast<uint32_t>(d.wscale + 1) & 0xfu : 0u);
    // Keep the clock monotonic: round up past NOW_TS.
    uint32_t ts = (now_ts & ~0x1fu) | opts;
    if (ts < now_ts) ts += 0x20;
    return ts;
}

std::optional<CookieData> check_cookie(const SipKey& secret, const FourTuple& t, uint32_t ack_seq,
                                       uint32_t seq, bool has_ts, uint32_t ts_ecr,
                                       uint64_t now_us) {
    const uint32_t cookie = ack_seq - 1;
    const uint32_t client_isn = seq - 1;
    const uint32_t period = cookie >> 27;
    const unsigned idx = (cookie >> kMacBits) & 7u;
    const uint32_t now_period = static_cast<uint32_t>(now_us / kCookiePeriodUs) & 31u;
    // Valid for the period it was made in and the next one.
    const uint32_t age = (now_period - period) & 31u;
    if (age > 1) return std::nullopt;
    if (cookie_for(secret, t, client_isn, period, idx) != cookie) return std::nullopt;
    CookieData d;
    d.mss = kCookieMss[idx];
    if (has_ts) {
        const uint32_t ws = ts_ecr & 0xfu;
        d.wscale_ok = ws != 0;
        d.wscale = d.wscale_ok ? static_cast<uint8_t>(ws - 1) : 0;
        d.sack_ok = (ts_ecr & 0x10u) != 0;
    }
    return d;
}

}  // namespace terminus::tcp
