// libFuzzer target for the configuration parser and validator: any byte
// string must produce diagnostics or a Config, never a crash, a hang or a
// sanitizer report. Includes and file checks are off so that the input alone
// decides what runs. Seed corpus: config/examples/ and corpus/config_parser/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    terminus::config::LoadOptions options;
    options.check_files = false;
    options.follow_includes = false;
    auto r = terminus::config::load_string(text, "/fuzz/input.conf", options);
    for (const auto& d : r.diagnostics) {
        // Every message carries a position inside the input.
        if (d.loc.file == "/fuzz/input.conf" && d.loc.line == 0) __builtin_trap();
    }
    // The value parsers on the raw bytes too.
    (void)terminus::config::parse_size(text);
    (void)terminus::config::parse_time(text);
    (void)terminus::config::parse_seconds(text);
    (void)terminus::config::parse_ipv4(text);
    return 0;
}
