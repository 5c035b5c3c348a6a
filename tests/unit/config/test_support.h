// What the configuration tests share: loading text under a fixed name, the
// test certificates, and diagnostics in the forms the tests compare.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace terminus::config::test_support {

inline constexpr const char* kName = "/tmp/dir/t.conf";

// TERMINUS_TEST_CERTS, set by meson to the certificates scripts/gen-certs made.
inline std::string certs_dir() {
    const char* d = std::getenv("TERMINUS_TEST_CERTS");
    return d ? d : "/nonexistent/TERMINUS_TEST_CERTS-is-unset";
}

// The absolute path of a file in the test certificate directory.
inline std::string cert(std::string_view file) { return certs_dir() + "/" + std::string(file); }

inline LoadResult load(std::string_view text, const LoadOptions& options = {}) {
    return load_string(text, kName, options);
}

inline std::string listing(const LoadResult& r) {
    std::string s;
    for (const auto& d : r.diagnostics) s += d.to_string() + "\n";
    return s;
}

// Valid, and without a single warning.
inline ::testing::AssertionResult clean(const LoadResult& r) {
    if (r.ok() && r.diagnostics.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << (r.ok() ? "warnings:\n" : "errors:\n") << listing(r);
}

// Just the messages.
inline std::vector<std::string> messages(const LoadResult& r) {
    std::vector<std::string> v;
    for (const auto& d : r.diagnostics) v.push_back(d.message);
    return v;
}

// Every diagnostic as the operator reads it: "FILE:LINE:COL: error: ...".
inline std::vector<std::string> diagnostics(const LoadResult& r) {
    std::vector<std::string> v;
    for (const auto& d : r.diagnostics) v.push_back(d.to_string());
    return v;
}

}  // namespace terminus::config::test_support
