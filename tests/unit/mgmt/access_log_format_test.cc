// log_format and if= as terminus-mgmtd applies them: every variable from a
// record made by hand, nginx's three escapings, values that are not found,
// conditions (with maps), what is refused, and the configuration signature.
#include "mgmt/access_log_format.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace terminus::mgmt {
namespace {

std::shared_ptr<const config::Config> load(const std::string& stream_body) {
    auto r = config::load_string("stream {\n" + stream_body + "\n}\n", "/tmp/al/t.conf");
    std::string why;
    for (const auto& d : r.diagnostics) why += d.to_string() + "\n";
    EXPECT_TRUE(r.ok()) << why;
    return r.config;
}

// A TLS session that went through preread, two upstream tries (the first
// refused), from 198.18.0.1:40000 to 198.18.0.2:443.
AccessRecord record() {
    AccessRecord r{};
    r.magic = kAccessRecordMagic;
    r.generation = 3;
    r.start_us = 1'700'000'000'000'000ull + 250'400;  // 2023-11-14T22:13:20.250400Z
    r.end_us = r.start_us + 1'234'567;
    r.connection = 77;
    r.bytes_received = 321;
    r.bytes_sent = 4567;
    r.upstream_bytes_sent = 321;
    r.upstream_bytes_received = 4567;
    r.remote_addr = 0xC6120001;  // 198.18.0.1
    r.remote_port = 40000;
    r.server_addr = 0xC6120002;
    r.server_port = 443;
    r.status = 200;
    r.logs = 1;
    r.flags = kRecordTls | kRecordTlsDone | kRecordSessionReused | kRecordPreread | kRecordPrereadRan;
    r.ssl_version = 0x0304;
    r.preread_version = 0x0304;
    r.n_upstreams = 2;
    r.upstreams[0] = {0xC6120001, 9001, 0, UINT32_MAX, 100};
    r.upstreams[1] = {0xC6120001, 9002, 0, 3'456, 2'000};
    const std::string cipher = "TLS_AES_256_GCM_SHA384", name = "www.example.com", alpn = "h2,http/1.1";
    std::memcpy(r.cipher, cipher.data(), cipher.size());
    r.cipher_len = static_cast<uint8_t>(cipher.size());
    std::memcpy(r.name, name.data(), name.size());
    r.name_len = static_cast<uint8_t>(name.size());
    std::memcpy(r.alpn, alpn.data(), alpn.size());
    r.alpn_len = static_cast<uint8_t>(alpn.size());
    return r;
}

LogContext context() { return LogContext{"lab-host", "0.1.0", 4242}; }

// The line FORMAT (with ESCAPE) makes of R, compiled against CFG's maps.
std::string line(const std::string& format, const AccessRecord& r, const std::string& maps = "",
                 const std::string& escape = "") {
    auto cfg = load(maps + "\nlog_format f " + escape + " '" + format +
                    "';\nserver { listen 80; proxy_pass 198.18.0.1:9; access_log /tmp/al/x.log f; }");
    if (!cfg) return "<no config>";
    auto lc = LogConfig::build(cfg);
    if (!lc) return "<" + lc.error() + ">";
    const auto& lines = (*lc)->lines(0);
    if (lines.size() != 1) return "<no line>";
    std::string out;
    lines[0].format->format(r, context(), out);
    return out;
}

class AccessLogFormat : public ::testing::Test {
  protected:
    void SetUp() override {
        ::setenv("TZ", "UTC", 1);
        ::tzset();
    }
};

TEST_F(AccessLogFormat, EveryVariableOfTheConnectionAndSession) {
    const AccessRecord r = record();
    EXPECT_EQ(line("$remote_addr:$remote_port $server_addr:$server_port $protocol $status", r),
              "198.18.0.1:40000 198.18.0.2:443 TCP 200");
    EXPECT_EQ(line("$bytes_sent $bytes_received $session_time $connection", r), "4567 321 1.234 77");
    EXPECT_EQ(line("$hostname $pid $nginx_version", r), "lab-host 4242 0.1.0");
    EXPECT_EQ(line("$msec", r), "1700000001.484");
    EXPECT_EQ(line("[$time_local]", r), "[14/Nov/2023:22:13:21 +0000]");
    EXPECT_EQ(line("$time_iso8601", r), "2023-11-14T22:13:21+00:00");
}

TEST_F(AccessLogFormat, LocalTimeCarriesTheZoneOffset) {
    ::setenv("TZ", "EST5EDT", 1);  // November: EST, -05:00
    ::tzset();
    AccessRecord r = record();
    r.end_us += 3'600'000'000;  // another second than the tests before (the text is made once a second)
    EXPECT_EQ(line("$time_local|$time_iso8601", r), "14/Nov/2023:18:13:21 -0500|2023-11-14T18:13:21-05:00");
}

TEST_F(AccessLogFormat, EveryTlsAndPrereadVariable) {
    AccessRecord r = record();
    EXPECT_EQ(line("$ssl_protocol $ssl_cipher $ssl_server_name $ssl_session_reused", r),
              "TLSv1.3 TLS_AES_256_GCM_SHA384 www.example.com r");
    EXPECT_EQ(line("$ssl_preread_server_name $ssl_preread_alpn_protocols $ssl_preread_protocol", r),
              "www.example.com h2,http/1.1 TLSv1.3");
    r.flags &= static_cast<uint16_t>(~kRecordSessionReused);
    r.ssl_version = 0x0303;
    EXPECT_EQ(line("$ssl_protocol $ssl_session_reused", r), "TLSv1.2 .");
}

TEST_F(AccessLogFormat, UpstreamVariablesListEveryTry) {
    const AccessRecord r = record();
    EXPECT_EQ(line("$upstream_addr", r), "198.18.0.1:9001, 198.18.0.1:9002");
    EXPECT_EQ(line("$upstream_connect_time", r), "-, 0.003");
    EXPECT_EQ(line("$upstream_bytes_sent|$upstream_bytes_received", r), "0, 321|0, 4567");
    // From the second try's start (2 ms in) to the session's end.
    EXPECT_EQ(line("$upstream_session_time", r), "-, 1.232");
}

TEST_F(AccessLogFormat, AValueNotFoundIsADashUnlessEscapingIsJsonOrNone) {
    AccessRecord r = record();
    r.flags = 0;  // plain TCP, no preread
    r.n_upstreams = 0;
    const std::string f = "[$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_session_reused|$ssl_preread_server_name|"
                          "$upstream_addr|$upstream_connect_time|$upstream_bytes_sent]";
    EXPECT_EQ(line(f, r), "[-|-|-|-|-|-|-|-]");
    EXPECT_EQ(line(f, r, "", "escape=json"), "[|||||||]");
    EXPECT_EQ(line(f, r, "", "escape=none"), "[|||||||]");
}

TEST_F(AccessLogFormat, PrereadThatFoundNoHelloIsEmptyNotMissing) {
    AccessRecord r = record();
    r.flags = kRecordPrereadRan;  // the listen prereads; the client sent no TLS
    EXPECT_EQ(line("[$ssl_preread_server_name][$ssl_preread_protocol]", r), "[][]");
    // A TLS session whose handshake failed: the SNI it sent, no protocol.
    r.flags = kRecordTls;
    EXPECT_EQ(line("[$ssl_server_name][$ssl_protocol][$ssl_cipher][$ssl_session_reused]", r),
              "[www.example.com][-][-][.]");
}

TEST_F(AccessLogFormat, TrustedProxyHeaderMakesTheClientAddress) {
    AccessRecord r = record();
    r.flags |= kRecordProxyHeader;
    r.pp_src_addr = 0xCB007107;  // 203.0.113.7
    r.pp_src_port = 5555;
    r.pp_dst_addr = 0xCB007101;
    r.pp_dst_port = 8443;
    EXPECT_EQ(line("$remote_addr:$remote_port $proxy_protocol_addr:$proxy_protocol_port "
                   "$proxy_protocol_server_addr:$proxy_protocol_server_port",
                   r),
              "198.18.0.1:40000 203.0.113.7:5555 203.0.113.1:8443");
    r.flags |= kRecordRealIp;
    EXPECT_EQ(line("$remote_addr:$remote_port $server_addr", r), "203.0.113.7:5555 198.18.0.2");
}

TEST_F(AccessLogFormat, DefaultEscapingIsHexForQuotesBackslashAndControls) {
    AccessRecord r = record();
    const char name[] = "a\"b\\c\x01\x7f\xff d";
    std::memcpy(r.name, name, sizeof name - 1);
    r.name_len = sizeof name - 1;
    EXPECT_EQ(line("\"$ssl_server_name\"", r), "\"a\\x22b\\x5Cc\\x01\\x7F\\xFF d\"");
    // $binary_remote_addr is four raw bytes: escaped as any other value.
    EXPECT_EQ(line("$binary_remote_addr", r), "\\xC6\\x12\\x00\\x01");
}

TEST_F(AccessLogFormat, JsonEscaping) {
    AccessRecord r = record();
    const char name[] = "a\"b\\c\n\r\t\b\f\x01\x1f\xc3\xa9";
    std::memcpy(r.name, name, sizeof name - 1);
    r.name_len = sizeof name - 1;
    EXPECT_EQ(line("{\"sni\":\"$ssl_server_name\"}", r, "", "escape=json"),
              "{\"sni\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001F\xc3\xa9\"}");
    EXPECT_EQ(line("$ssl_server_name", r, "", "escape=none"), std::string(name, sizeof name - 1));
}

TEST_F(AccessLogFormat, TextAroundVariablesIsWrittenAsIs) {
    const AccessRecord r = record();
    EXPECT_EQ(line("a\"${status}b$status", r), "a\"200b200");
}

TEST_F(AccessLogFormat, MapsAreTheDataplanesOwn) {
    const AccessRecord r = record();
    const std::string maps =
        "map $ssl_preread_server_name $tenant { hostnames; *.example.com ex; default other; }\n"
        "map $remote_addr $net { ~^198\\.18\\. lab; default far; }";
    EXPECT_EQ(line("$tenant $net", r, maps), "ex lab");
}

bool holds(const std::string& cond, const AccessRecord& r, const std::string& maps = "") {
    auto cfg = load(maps + "\nlog_format f '$status';\nserver { listen 80; proxy_pass 198.18.0.1:9; "
                           "access_log /tmp/al/x.log f if=" +
                    cond + "; }");
    auto lc = LogConfig::build(cfg);
    EXPECT_TRUE(lc) << (lc ? "" : lc.error());
    if (!lc) return false;
    return (*lc)->lines(0)[0].condition->holds(r, context());
}

TEST_F(AccessLogFormat, ConditionIsFalseForEmptyAndZero) {
    AccessRecord r = record();
    EXPECT_TRUE(holds("$ssl_server_name", r));
    r.name_len = 0;
    EXPECT_FALSE(holds("$ssl_server_name", r));
    r.flags = 0;
    EXPECT_FALSE(holds("$ssl_server_name", r)) << "not found is empty";
    const std::string maps = "map $remote_addr $loggable { 198.18.0.1 0; 198.18.0.3 00; default 1; }";
    EXPECT_FALSE(holds("$loggable", r, maps));
    r.remote_addr = 0xC6120003;
    EXPECT_TRUE(holds("$loggable", r, maps)) << "\"00\" is not \"0\"";
    r.remote_addr = 0xC6120009;
    EXPECT_TRUE(holds("$loggable", r, maps));
    EXPECT_TRUE(holds("x$ssl_cipher", r));
}

TEST_F(AccessLogFormat, VariablesItCannotWriteAreRefused) {
    const AccessRecord r = record();
    EXPECT_NE(line("$ssl_client_s_dn", r).find("cannot write \"$ssl_client_s_dn\""), std::string::npos)
        << line("$ssl_client_s_dn", r);
    // A map over a variable only the log knows: the dataplane's maps do
    // not evaluate it, so it is refused rather than always "default".
    const std::string out = line("$loggable", r, "map $status $loggable { ~^[23] 0; default 1; }");
    EXPECT_NE(out.find("$status"), std::string::npos) << out;
    EXPECT_EQ(out.front(), '<') << out;
}

TEST_F(AccessLogFormat, SignatureFollowsTheLogConfigurationOnly) {
    const std::string base = "log_format f '$status';\nupstream u { server 198.18.0.1:9; }\n"
                             "server { listen 80; proxy_pass u; access_log /tmp/al/x.log f; }";
    const uint64_t a = access_log_signature(*load(base));
    EXPECT_EQ(a, access_log_signature(*load(base)));
    std::string other_upstream = base;
    other_upstream.replace(other_upstream.find(":9;"), 3, ":10;");
    EXPECT_EQ(a, access_log_signature(*load(other_upstream))) << "an upstream is not the log's business";
    std::string other_format = base;
    other_format.replace(other_format.find("'$status'"), 9, "'$status '");
    EXPECT_NE(a, access_log_signature(*load(other_format)));
    std::string other_path = base;
    other_path.replace(other_path.find("x.log"), 5, "y.log");
    EXPECT_NE(a, access_log_signature(*load(other_path)));
}

TEST(AccessLogRecord, ValidationRejectsBadMagicAndLengths) {
    AccessRecord r = record();
    EXPECT_TRUE(record_valid(r));
    r.magic = 0;
    EXPECT_FALSE(record_valid(r));
    r = record();
    r.n_upstreams = kMaxUpstreamTries + 1;
    EXPECT_FALSE(record_valid(r));
    r = record();
    r.alpn_len = sizeof r.alpn + 1;
    EXPECT_FALSE(record_valid(r));
    r = record();
    r.cipher_len = sizeof r.cipher + 1;
    EXPECT_FALSE(record_valid(r));
}

TEST(AccessLogRecord, RingSizeIsAPowerOfTwoOfRecords) {
    EXPECT_EQ(access_log_ring_count(64 * 1024), 128u);
    EXPECT_EQ(access_log_ring_count(100 * 1024), 128u);
    EXPECT_EQ(access_log_ring_count(1024 * 1024), 2048u);
    EXPECT_EQ(access_log_ring_count(4096), 8u);
}

}  // namespace
}  // namespace terminus::mgmt
