// Initial sequence numbers (RFC 6528) and SYN cookies (RFC 4987 3.6).
// Pure functions of a secret, the connection's addresses and a clock, so
// that every core computes the same values without sharing state.
#pragma once

#include <cstdint>
#include <optional>

#include "dataplane/tcp/siphash.h"

namespace terminus::tcp {

// Host-byte-order addresses and ports of one connection as seen from us.
struct FourTuple {
    uint32_t local_ip = 0;
    uint32_t remote_ip = 0;
    uint16_t local_port = 0;
    uint16_t remote_port = 0;

    friend bool operator==(const FourTuple&, const FourTuple&) = default;
};

// RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey), with M a 4-microsecond clock.
uint32_t initial_sequence(const SipKey& secret, const FourTuple& t, uint64_t now_us);

// A SYN cookie: the ISN of our SYN-ACK when the backlog is full. It keeps
// what the connection needs of the SYN — its MSS (as an index into a
// table), and, when the client sent timestamps, its window scale and
// SACK-permitted in the low bits of our timestamp (the echo comes back).
struct CookieData {
    uint16_t mss = 0;       // rounded down to a table value
    bool wscale_ok = false;  // carried only with timestamps
    uint8_t wscale = 0;
    bool sack_ok = false;
};

constexpr uint64_t kCookiePeriodUs = 64'000'000;  // a cookie lives 1 to 2 periods

uint32_t make_cookie(const SipKey& secret, const FourTuple& t, uint32_t client_isn,
                     uint16_t mss, uint64_t now_us);
// The TSval to send with a cookie SYN-ACK: NOW_TS with the options in its
// low 5 bits.
uint32_t cookie_timestamp(uint32_t now_ts, const CookieData& d);

// Checks the ACK of a cookie SYN-ACK: ACK_SEQ is the segment's ACK number
// (cookie + 1), SEQ its sequence number (client ISN + 1), TS_ECR the
// echoed timestamp when the segment has timestamps. Returns what the
// cookie carried, or nothing when it does not validate or has expired.
std::optional<CookieData> check_cookie(const SipKey& secret, const FourTuple& t, uint32_t ack_seq,
                                       uint32_t seq, bool has_ts, uint32_t ts_ecr,
                                       uint64_t now_us);

}  // namespace terminus::tcp
