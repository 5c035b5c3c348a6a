// What the configuration tests share: loading text under a fixed name, the
// test certificates, and diagnostics in the forms the tests compare.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
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

// A fresh temporary directory, removed with the object.
class TempDir {
  public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "terminus-test-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        if (!path_.empty()) std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }

    // Writes CONTENT to NAME with permissions MODE and returns its path.
    std::string write(const std::string& name, std::string_view content, mode_t mode = 0600) const {
        const std::string p = path_ + "/" + name;
        {
            std::ofstream out(p, std::ios::binary);
            out << content;
        }
        ::chmod(p.c_str(), mode);
        return p;
    }

  private:
    std::string path_;
};

}  // namespace terminus::config::test_support
