// Tests for config/dump.cc: "terminusd -T", the configuration with includes
// expanded and defaults filled in.
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "config/config.h"

namespace terminus::config {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMinimal =
    "stream {\n"
    "    upstream b { server 198.18.0.1:8080; }\n"
    "    server { listen 443; proxy_pass b; }\n"
    "}\n";

constexpr std::string_view kDefaultPort =
    "port net_tap0 iface=terminus0 address=198.18.0.2/24 gateway=198.18.0.1;  # default\n";

size_t count(std::string_view text, std::string_view what) {
    size_t n = 0;
    for (size_t pos = text.find(what); pos != std::string_view::npos;
         pos = text.find(what, pos + what.size())) {
        ++n;
    }
    return n;
}

// The lines of the top-level block that starts with HEADER ("stream {"),
// up to and including its closing "}" in column one; empty if absent.
std::string top_block(const std::string& text, const std::string& header) {
    size_t begin = text.rfind("\n" + header + "\n");
    if (begin == std::string::npos) return {};
    ++begin;
    size_t end = text.find("\n}\n", begin);
    if (end == std::string::npos) return {};
    return text.substr(begin, end + 3 - begin);
}

std::string diagnostics_text(const DumpResult& r) {
    std::string s;
    for (const Diagnostic& d : r.diagnostics) s += d.to_string() + "\n";
    return s;
}

class DumpEffective : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "terminus-dump-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = fs::canonical(tmpl).string();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string write(const std::string& name, std::string_view text) {
        fs::path p = fs::path(dir_) / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p.string();
    }

    // Dumps TEXT written to DIR/NAME; fails the test on errors.
    std::string dump_ok(std::string_view text, const std::string& name = "terminus.conf") {
        const std::string path = write(name, text);
        DumpResult r = dump_effective(path);
        EXPECT_TRUE(r.ok) << diagnostics_text(r);
        EXPECT_EQ(diagnostics_text(r), "");
        return r.text;
    }

    std::string dir_;
};

TEST_F(DumpEffective, StartsWithTheMainFileName) {
    const std::string text = dump_ok(kMinimal);
    const std::string header = "# configuration file " + dir_ + "/terminus.conf:\n";
    EXPECT_EQ(text.substr(0, header.size()), header);
}

TEST_F(DumpEffective, WrittenDirectivesAreKeptInOrderOnePerLine) {
    const std::string text = dump_ok(kMinimal);
    EXPECT_NE(text.find("stream {\n"
                        "    upstream b {\n"
                        "        server 198.18.0.1:8080;\n"
                        "    }\n"
                        "    server {\n"
                        "        listen 443;\n"
                        "        proxy_pass b;\n"),
              std::string::npos)
        << text;
}

TEST_F(DumpEffective, StreamDefaultsAreFilledInsideStream) {
    const std::string text = dump_ok(kMinimal);
    const std::string stream = top_block(text, "stream {");
    ASSERT_FALSE(stream.empty()) << text;
    for (const char* line : {"    proxy_timeout 10m;  # default\n",
                             "    proxy_connect_timeout 60s;  # default\n",
                             "    proxy_buffer_size 16k;  # default\n",
                             "    access_log off;  # default\n",
                             "    ssl_protocols TLSv1.2 TLSv1.3;  # default\n",
                             "    ssl_ciphers HIGH:!aNULL:!MD5;  # default\n",
                             "    ssl_session_timeout 5m;  # default\n"}) {
        EXPECT_EQ(count(stream, line), 1u) << line << "in:\n" << stream;
    }
    // Each default once in the whole dump: not again in server{}.
    EXPECT_EQ(count(text, "proxy_timeout"), 1u) << text;
}

TEST_F(DumpEffective, DefaultsFollowTheWrittenDirectivesOfTheirBlock) {
    const std::string text = dump_ok(kMinimal);
    const std::string stream = top_block(text, "stream {");
    // Lines of stream{} itself (four spaces, then a non-blank).
    std::vector<std::string> lines;
    for (size_t pos = 0, nl; (nl = stream.find('\n', pos)) != std::string::npos; pos = nl + 1) {
        std::string line = stream.substr(pos, nl - pos);
        if (line.size() > 4 && line.compare(0, 4, "    ") == 0 && line[4] != ' ') {
            lines.push_back(line);
        }
    }
    ASSERT_GE(lines.size(), 4u) << stream;
    EXPECT_EQ(lines[0], "    upstream b {");
    EXPECT_EQ(lines[1], "    }");
    EXPECT_EQ(lines[2], "    server {");
    EXPECT_EQ(lines[3], "    }");
    for (size_t i = 4; i < lines.size(); ++i) {
        EXPECT_NE(lines[i].find(";  # default"), std::string::npos) << lines[i];
    }
}

TEST_F(DumpEffective, DirectiveSetInStreamIsNotRepeatedAsDefault) {
    const std::string text = dump_ok(
        "stream {\n"
        "    proxy_timeout 5m;\n"
        "    upstream b { server 198.18.0.1:8080; }\n"
        "    server { listen 443; proxy_pass b; }\n"
        "}\n");
    EXPECT_EQ(count(text, "    proxy_timeout 5m;\n"), 1u) << text;
    EXPECT_EQ(count(text, "proxy_timeout"), 1u) << text;
    // The others are still filled in.
    EXPECT_EQ(count(text, "    proxy_connect_timeout 60s;  # default\n"), 1u) << text;
}

TEST_F(DumpEffective, DirectiveSetOnlyInServerStillShowsTheInheritedDefault) {
    // Other servers would inherit stream{}'s value, which is the default.
    const std::string text = dump_ok(
        "stream {\n"
        "    upstream b { server 198.18.0.1:8080; }\n"
        "    server { listen 443; proxy_pass b; proxy_timeout 5m; }\n"
        "}\n");
    EXPECT_EQ(count(text, "        proxy_timeout 5m;\n"), 1u) << text;
    EXPECT_EQ(count(text, "    proxy_timeout 10m;  # default\n"), 1u) << text;
}

TEST_F(DumpEffective, ServerOnlyDefaultsGoInsideServer) {
    const std::string text = dump_ok(
        "stream {\n"
        "    upstream b { server 198.18.0.1:8080; }\n"
        "    server { listen 443; proxy_pass b; }\n"
        "    server { listen 444; proxy_pass b; server_name example.com; }\n"
        "}\n");
    EXPECT_NE(text.find("        listen 443;\n"
                        "        proxy_pass b;\n"
                        "        server_name \"\";  # default\n"
                        "    }\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("        server_name example.com;\n"
                        "    }\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(count(text, " server_name "), 2u) << text;
}

TEST_F(DumpEffective, UpstreamAndMapGetNoDefaultLines) {
    const std::string text = dump_ok(
        "stream {\n"
        "    map $remote_addr $pick {\n"
        "        default b;\n"
        "    }\n"
        "    upstream b { server 198.18.0.1:8080; }\n"
        "    server { listen 443; proxy_pass $pick; }\n"
        "}\n");
    EXPECT_NE(text.find("    map $remote_addr $pick {\n"
                        "        default b;\n"
                        "    }\n"
                        "    upstream b {\n"
                        "        server 198.18.0.1:8080;\n"
                        "    }\n"),
              std::string::npos)
        << text;
}

TEST_F(DumpEffective, ErrorLogDefaultIsAtTopLevel) {
    const std::string text = dump_ok(kMinimal);
    EXPECT_NE(text.find("\nerror_log stderr error;  # default\n"), std::string::npos) << text;
    EXPECT_EQ(count(text, "error_log"), 1u) << text;
}

TEST_F(DumpEffective, WrittenErrorLogIsNotRepeatedAsDefault) {
    std::string config = "error_log stderr warn;\n";
    config += kMinimal;
    const std::string text = dump_ok(config);
    EXPECT_NE(text.find("\nerror_log stderr warn;\n"), std::string::npos) << text;
    EXPECT_EQ(count(text, "error_log"), 1u) << text;
}

TEST_F(DumpEffective, DataplaneBlockIsFilledInWhenNotWritten) {
    const std::string text = dump_ok(kMinimal);
    const std::string dataplane = top_block(text, "dataplane {  # default");
    EXPECT_EQ(dataplane, "dataplane {  # default\n"
                         "    " + std::string(kDefaultPort) +
                         "    lcores 0;  # default\n"
                         "    crypto ipsec_mb;  # default\n"
                         "    mbufs 32767;  # default\n"
                         "    max_connections 65536;  # default\n"
                         "    syncookies on;  # default\n"
                         "    tcp_congestion newreno;  # default\n"
                         "    shutdown_timeout 10s;  # default\n"
                         "}\n")
        << text;
}

TEST_F(DumpEffective, MgmtBlockIsFilledInWhenNotWritten) {
    const std::string text = dump_ok(kMinimal);
    EXPECT_EQ(top_block(text, "mgmt {  # default"),
              "mgmt {  # default\n"
              "    control unix:/run/terminus/control.sock;  # default\n"
              "    metrics off;  # default\n"
              "    ticket_key_rotation 1h;  # default\n"
              "    access_log_buffer 64k;  # default\n"
              "}\n")
        << text;
}

TEST_F(DumpEffective, WrittenDataplaneWithoutPortGetsTheDefaultPort) {
    std::string config = "dataplane {\n    mbufs 8191;\n}\n";
    config += kMinimal;
    const std::string text = dump_ok(config);
    EXPECT_EQ(count(text, "dataplane {"), 1u) << text;
    EXPECT_EQ(text.find("dataplane {  # default"), std::string::npos) << text;
    const std::string dataplane = top_block(text, "dataplane {");
    EXPECT_EQ(dataplane.substr(0, dataplane.find("    crypto")),
              "dataplane {\n"
              "    mbufs 8191;\n"
              "    " + std::string(kDefaultPort) +
              "    lcores 0;  # default\n")
        << text;
    EXPECT_EQ(count(text, "mbufs"), 1u) << text;
}

TEST_F(DumpEffective, WrittenPortIsNotDefaulted) {
    std::string config =
        "dataplane {\n"
        "    port net_tap0 iface=tap7 address=10.1.0.2/24 gateway=10.1.0.1;\n"
        "}\n";
    config += kMinimal;
    const std::string text = dump_ok(config);
    EXPECT_NE(text.find("dataplane {\n"
                        "    port net_tap0 iface=tap7 address=10.1.0.2/24 gateway=10.1.0.1;\n"
                        "    lcores 0;  # default\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(count(text, "port net_tap0"), 1u) << text;
}

TEST_F(DumpEffective, IncludedFileAppearsInlineAfterAComment) {
    const std::string main = write("terminus.conf",
                                   "stream {\n"
                                   "    include upstreams.conf;\n"
                                   "    server { listen 443; proxy_pass b; }\n"
                                   "}\n");
    const std::string inc = write("upstreams.conf", "upstream b {\n    server 198.18.0.1:8080;\n}\n");
    DumpResult r = dump_effective(main);
    ASSERT_TRUE(r.ok) << diagnostics_text(r);
    EXPECT_NE(r.text.find("stream {\n"
                          "    # include upstreams.conf (" + main + ":2): " + inc + "\n"
                          "    upstream b {\n"
                          "        server 198.18.0.1:8080;\n"
                          "    }\n"
                          "    server {\n"),
              std::string::npos)
        << r.text;
    EXPECT_EQ(r.text.find("include upstreams.conf;"), std::string::npos) << r.text;
}

TEST_F(DumpEffective, GlobIncludeAppearsFileByFileInSortedOrder) {
    const std::string main = write("terminus.conf",
                                   "stream {\n"
                                   "    include conf.d/*.conf;\n"
                                   "    server { listen 443; proxy_pass b; }\n"
                                   "}\n");
    const std::string second = write("conf.d/20-c.conf", "upstream c { server 198.18.0.3:80; }\n");
    const std::string first = write("conf.d/10-b.conf", "upstream b { server 198.18.0.1:80; }\n");
    DumpResult r = dump_effective(main);
    ASSERT_TRUE(r.ok) << diagnostics_text(r);
    const std::string by = "    # include conf.d/*.conf (" + main + ":2): ";
    EXPECT_NE(r.text.find(by + first + "\n"
                          "    upstream b {\n"
                          "        server 198.18.0.1:80;\n"
                          "    }\n" +
                          by + second + "\n"
                          "    upstream c {\n"
                          "        server 198.18.0.3:80;\n"
                          "    }\n"),
              std::string::npos)
        << r.text;
}

TEST_F(DumpEffective, DirectiveInIncludedFileIsNotRepeatedAsDefault) {
    const std::string main = write("terminus.conf",
                                   "stream {\n"
                                   "    include timeouts.conf;\n"
                                   "    upstream b { server 198.18.0.1:8080; }\n"
                                   "    server { listen 443; proxy_pass b; }\n"
                                   "}\n");
    write("timeouts.conf", "proxy_timeout 1h;\n");
    DumpResult r = dump_effective(main);
    ASSERT_TRUE(r.ok) << diagnostics_text(r);
    EXPECT_EQ(count(r.text, "proxy_timeout"), 1u) << r.text;
    EXPECT_NE(r.text.find("    proxy_timeout 1h;\n"), std::string::npos) << r.text;
}

TEST_F(DumpEffective, WordsAreQuotedWhereNeeded) {
    const std::string text = dump_ok(
        "stream {\n"
        "    log_format main '$remote_addr [$time_local] $status';\n"
        "    upstream b { server 198.18.0.1:8080; }\n"
        "    server { listen 443; proxy_pass b; access_log /tmp/terminus-access.log main; }\n"
        "}\n");
    EXPECT_NE(text.find("    log_format main \"$remote_addr [$time_local] $status\";\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("        access_log /tmp/terminus-access.log main;\n"), std::string::npos)
        << text;
}

TEST_F(DumpEffective, DumpedTextLoadsBackWithoutErrors) {
    std::string config = "error_log stderr warn;\n";
    config += kMinimal;
    const std::string text = dump_ok(config);
    const std::string again = write("dumped.conf", text);
    LoadResult loaded = load_file(again);
    std::string diags;
    for (const Diagnostic& d : loaded.diagnostics) diags += d.to_string() + "\n";
    EXPECT_TRUE(loaded.ok()) << diags << "\n" << text;
    EXPECT_EQ(diags, "");
}

TEST_F(DumpEffective, WarningsDoNotStopTheDump) {
    const std::string path = write("terminus.conf",
                                   "stream {\n"
                                   "    map $ssl_preread_server_name $name {\n"
                                   "        default b;\n"
                                   "    }\n"
                                   "    upstream b { server 198.18.0.1:8080; }\n"
                                   "    server { listen 443; proxy_pass $name; }\n"
                                   "}\n");
    DumpResult r = dump_effective(path);
    EXPECT_TRUE(r.ok);
    EXPECT_NE(r.text.find("        proxy_pass $name;\n"), std::string::npos) << r.text;
    ASSERT_EQ(r.diagnostics.size(), 1u) << diagnostics_text(r);
    EXPECT_EQ(r.diagnostics[0].severity, Severity::kWarning);
    EXPECT_EQ(r.diagnostics[0].loc.file, path);
    EXPECT_EQ(r.diagnostics[0].loc.line, 6u);
}

TEST_F(DumpEffective, ConfigWithErrorsGivesNoText) {
    const std::string path = write("terminus.conf",
                                   "stream {\n"
                                   "    proxy_timeout 1h1d;\n"
                                   "    upstream b { server 198.18.0.1:8080; }\n"
                                   "    server { listen 443; proxy_pass b; }\n"
                                   "}\n");
    DumpResult r = dump_effective(path);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.text, "");
    ASSERT_FALSE(r.diagnostics.empty());
    EXPECT_EQ(r.diagnostics[0].severity, Severity::kError);
    const std::string first = r.diagnostics[0].to_string();
    const std::string prefix = path + ":2:19: error: invalid time \"1h1d\"";
    EXPECT_EQ(first.substr(0, prefix.size()), prefix) << first;
}

TEST_F(DumpEffective, SyntaxErrorInIncludedFileGivesNoText) {
    const std::string main = write("terminus.conf",
                                   "stream {\n"
                                   "    include bad.conf;\n"
                                   "    upstream b { server 198.18.0.1:8080; }\n"
                                   "    server { listen 443; proxy_pass b; }\n"
                                   "}\n");
    const std::string bad = write("bad.conf", "proxy_timeout \"5m\"x;\n");
    DumpResult r = dump_effective(main);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.text, "");
    EXPECT_NE(diagnostics_text(r).find(bad + ":1:19: error: unexpected \"x\" after a quoted string"),
              std::string::npos)
        << diagnostics_text(r);
}

TEST_F(DumpEffective, MissingFileGivesNoText) {
    const std::string path = dir_ + "/missing.conf";
    DumpResult r = dump_effective(path);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.text, "");
    ASSERT_FALSE(r.diagnostics.empty());
    EXPECT_NE(r.diagnostics[0].to_string().find("cannot open \"" + path +
                                                 "\": No such file or directory"),
              std::string::npos)
        << diagnostics_text(r);
}

TEST_F(DumpEffective, TlsServerWithTestCertificates) {
    const char* certs = std::getenv("TERMINUS_TEST_CERTS");
    if (certs == nullptr) GTEST_SKIP() << "TERMINUS_TEST_CERTS is not set";
    const std::string c = certs;
    const std::string text = dump_ok(
        "stream {\n"
        "    upstream b { server 198.18.0.1:8080; }\n"
        "    server {\n"
        "        listen 443 ssl;\n"
        "        proxy_pass b;\n"
        "        ssl_certificate " + c + "/rsa.crt;\n"
        "        ssl_certificate_key " + c + "/rsa.key;\n"
        "        ssl_certificate " + c + "/ecdsa.crt;\n"
        "        ssl_certificate_key " + c + "/ecdsa.key;\n"
        "        ssl_session_ticket_key " + c + "/ticket80.key;\n"
        "        ssl_protocols TLSv1.3;\n"
        "    }\n"
        "}\n");
    EXPECT_NE(text.find("        listen 443 ssl;\n"
                        "        proxy_pass b;\n"
                        "        ssl_certificate " + c + "/rsa.crt;\n"
                        "        ssl_certificate_key " + c + "/rsa.key;\n"
                        "        ssl_certificate " + c + "/ecdsa.crt;\n"
                        "        ssl_certificate_key " + c + "/ecdsa.key;\n"
                        "        ssl_session_ticket_key " + c + "/ticket80.key;\n"
                        "        ssl_protocols TLSv1.3;\n"
                        "        server_name \"\";  # default\n"
                        "    }\n"),
              std::string::npos)
        << text;
    // Set in server{} only: stream{} still shows what other servers inherit.
    EXPECT_EQ(count(text, "    ssl_protocols TLSv1.2 TLSv1.3;  # default\n"), 1u) << text;
}

}  // namespace
}  // namespace terminus::config
