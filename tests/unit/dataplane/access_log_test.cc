// What terminusd refuses at start because the access log cannot do it
// (dataplane/access_log.h): variables terminus-mgmtd does not write, maps
// over them, gzip, more access_log lines than a record has bits for.
#include "dataplane/access_log.h"

#include <gtest/gtest.h>

#include <string>

namespace terminus::dataplane {
namespace {

std::vector<config::Diagnostic> problems(const std::string& stream_body) {
    auto r = config::load_string("stream {\n" + stream_body + "\n}\n", "/tmp/al/t.conf");
    std::string why;
    for (const auto& d : r.diagnostics) why += d.to_string() + "\n";
    EXPECT_TRUE(r.ok()) << why;
    return r.ok() ? access_log_problems(*r.config) : std::vector<config::Diagnostic>{};
}

std::string text(const std::vector<config::Diagnostic>& ds) {
    std::string s;
    for (const auto& d : ds) s += d.to_string() + "\n";
    return s;
}

const std::string kServer = "server { listen 80; proxy_pass 198.18.0.1:9; }";

TEST(AccessLogProblems, EveryVariableItWritesIsAccepted) {
    std::string format;
    for (size_t i = 0; i < mgmt::kAccessLogVariableCount; ++i) format += std::string("$") + mgmt::kAccessLogVariables[i] + " ";
    format += "$binary_remote_addr $proxy_protocol_addr $proxy_protocol_port $proxy_protocol_server_addr "
              "$proxy_protocol_server_port $m";
    const auto ds = problems("map $ssl_preread_server_name $m { default x; }\nlog_format all '" + format +
                             "';\naccess_log /tmp/al/a.log all if=$m;\n" + kServer);
    EXPECT_TRUE(ds.empty()) << text(ds);
}

TEST(AccessLogProblems, AVariableItDoesNotWriteIsRefusedAtItsFormat) {
    const auto ds = problems("log_format f '$remote_addr $ssl_client_s_dn';\naccess_log /tmp/al/a.log f;\n" + kServer);
    ASSERT_EQ(ds.size(), 1u) << text(ds);
    EXPECT_EQ(ds[0].loc.line, 2u);
    EXPECT_NE(ds[0].message.find("\"$ssl_client_s_dn\""), std::string::npos) << ds[0].message;
}

TEST(AccessLogProblems, AConditionOverAMapOfALogVariableIsRefused) {
    const auto ds = problems("map $status $loggable { ~^[23] 0; default 1; }\nlog_format f '$status';\n"
                             "access_log /tmp/al/a.log f if=$loggable;\n" + kServer);
    ASSERT_EQ(ds.size(), 1u) << text(ds);
    EXPECT_EQ(ds[0].loc.line, 4u);
    EXPECT_NE(ds[0].message.find("if="), std::string::npos) << ds[0].message;
    EXPECT_NE(ds[0].message.find("$status"), std::string::npos) << ds[0].message;
}

TEST(AccessLogProblems, GzipIsRefusedOncePerLine) {
    // Two servers inherit the stream{} line: one error, at the line.
    const auto ds = problems("log_format f '$status';\naccess_log /tmp/al/a.log.gz f gzip=5;\n" + kServer + "\n" +
                             "server { listen 81; proxy_pass 198.18.0.1:9; }");
    ASSERT_EQ(ds.size(), 1u) << text(ds);
    EXPECT_NE(ds[0].message.find("gzip"), std::string::npos) << ds[0].message;
}

TEST(AccessLogProblems, AtMostSixteenLinesPerServer) {
    std::string lines;
    for (int i = 0; i < 17; ++i) lines += "access_log /tmp/al/" + std::to_string(i) + ".log f; ";
    const auto ds = problems("log_format f '$status';\nserver { listen 80; proxy_pass 198.18.0.1:9; " + lines + "}");
    ASSERT_EQ(ds.size(), 1u) << text(ds);
    EXPECT_NE(ds[0].message.find("more than 16"), std::string::npos) << ds[0].message;
}

}  // namespace
}  // namespace terminus::dataplane
