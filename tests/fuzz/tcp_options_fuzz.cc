// libFuzzer target for the TCP option parser, which reads bytes straight
// from the network: no input may crash it, read past its buffer, or yield
// values outside their ranges.
#include <cstddef>
#include <cstdint>

#include "dataplane/tcp/tcp_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Options occupy at most 40 bytes; longer inputs still must not break.
    terminus::tcp::TcpOptions o;
    if (terminus::tcp::parse_options(data, size, o) == terminus::tcp::OptionsResult::kOk) {
        if (o.wscale > terminus::tcp::kMaxWindowShift) __builtin_trap();
        if (o.n_sack > terminus::tcp::kMaxSackBlocks) __builtin_trap();
        uint8_t out[40];
        size_t n = terminus::tcp::write_options(out, o.has_timestamps, o.ts_val, o.ts_ecr, o.sack,
                                                o.n_sack);
        terminus::tcp::TcpOptions back;
        if (n > 40 || n % 4 != 0) __builtin_trap();
        if (terminus::tcp::parse_options(out, n, back) != terminus::tcp::OptionsResult::kOk) {
            __builtin_trap();
        }
        if (back.has_timestamps != o.has_timestamps || back.ts_val != o.ts_val) __builtin_trap();
    }
    return 0;
}
