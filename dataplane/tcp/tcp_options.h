// TCP options: parse what a peer sent (untrusted: every length checked)
// and write ours. MSS (RFC 9293 3.7.1), window scale and timestamps
// (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).
#pragma once

#include <cstddef>
#include <cstdint>

namespace terminus::tcp {

constexpr unsigned kMaxSackBlocks = 4;
constexpr uint8_t kMaxWindowShift = 14;  // RFC 7323 2.3

// The smallest shift that lets a 16-bit window field cover BUF bytes.
constexpr uint8_t window_shift_for(uint32_t buf) {
    uint8_t shift = 0;
    while (shift < kMaxWindowShift && (buf >> shift) > 65535) ++shift;
    return shift;
}

struct SackBlock {
    uint32_t left = 0;   // first sequence number of the block
    uint32_t right = 0;  // one past its last
};

struct TcpOptions {
    bool has_mss = false;
    uint16_t mss = 0;
    bool has_wscale = false;
    uint8_t wscale = 0;  // clamped to kMaxWindowShift, as RFC 7323 2.3 says
    bool sack_permitted = false;
    bool has_timestamps = false;
    uint32_t ts_val = 0;
    uint32_t ts_ecr = 0;
    uint8_t n_sack = 0;
    SackBlock sack[kMaxSackBlocks];
};

enum class OptionsResult {
    kOk,
    kMalformed,  // a length that runs past the header or is impossible
};

// Parses the LEN option bytes at P. Unknown options are skipped (RFC 9293
// 3.1: "must be prepared to handle an illegal option length"); malformed
// ones make the whole segment suspect.
OptionsResult parse_options(const uint8_t* p, size_t len, TcpOptions& out);

// What to put in a SYN or SYN-ACK.
struct SynOptions {
    uint16_t mss = 1460;
    bool wscale = false;
    uint8_t shift = 0;
    bool sack_permitted = false;
    bool timestamps = false;
    uint32_t ts_val = 0;
    uint32_t ts_ecr = 0;
};
constexpr size_t kMaxSynOptionsLen = 20;  // MSS 4 + SACKOK/TS 12 + WS 3 + NOP
// Writes SYN options at P (room for kMaxSynOptionsLen bytes), padded to a
// multiple of 4; returns the length written.
size_t write_syn_options(uint8_t* p, const SynOptions& o);

// Options on other segments: timestamps and up to N SACK blocks, padded
// to a multiple of 4. Returns the length written (at most 40).
size_t write_options(uint8_t* p, bool timestamps, uint32_t ts_val, uint32_t ts_ecr,
                     const SackBlock* sack, unsigned n_sack);

}  // namespace terminus::tcp
