// Tests config/directives.cc: for every directive in the table, a valid use
// and the typed field it sets, nginx's default, inheritance from stream{} to
// server{}, and an invalid value with its exact message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "tests/unit/config/test_support.h"

namespace terminus::config {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

using namespace test_support;

std::vector<std::string> messages_of(std::string_view text) { return messages(load(text)); }

// One server on port 443 that proxies to upstream "b"; BODY goes inside the
// server, STREAM inside stream{} before it.
std::string in_server(std::string_view body, std::string_view stream = "") {
    return "stream {\n"
           "    upstream b { server 198.18.0.1:8080; }\n" +
           std::string(stream) +
           "\n"
           "    server {\n"
           "        listen 443;\n" +
           std::string(body) +
           "\n"
           "        proxy_pass b;\n"
           "    }\n"
           "}\n";
}

// The same, with the server's proxy_pass or return written in BODY.
std::string in_server_without_proxy_pass(std::string_view body, std::string_view stream = "") {
    return "stream {\n"
           "    upstream b { server 198.18.0.1:8080; }\n" +
           std::string(stream) +
           "\n"
           "    server {\n"
           "        listen 443;\n" +
           std::string(body) +
           "\n"
           "    }\n"
           "}\n";
}

// A whole upstream{} block named "u" with BODY, used by a server.
std::string with_upstream(std::string_view body) {
    return "stream {\n"
           "    upstream u {\n" +
           std::string(body) +
           "\n"
           "    }\n"
           "    server { listen 443; proxy_pass u; }\n"
           "}\n";
}

std::string minimal() { return in_server(""); }

std::string with_dataplane(std::string_view body) {
    return "dataplane {\n" + std::string(body) + "\n}\n" + minimal();
}

std::string with_mgmt(std::string_view body) {
    return "mgmt {\n" + std::string(body) + "\n}\n" + minimal();
}

const ServerSettings& settings(const LoadResult& r) { return r.config->servers.at(0).settings; }
const Server& server(const LoadResult& r) { return r.config->servers.at(0); }


// ---------------------------------------------------------------------------
// The minimal configuration and nginx's defaults.

TEST(Directives, MinimalConfigurationLoadsWithoutDiagnostics) {
    EXPECT_TRUE(clean(load(minimal())));
}

TEST(Directives, ProxyConnectTimeoutDefaultsToSixtySeconds) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_connect_timeout, 60s);
}

TEST(Directives, ProxyTimeoutDefaultsToTenMinutes) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_timeout, 10min);
}

TEST(Directives, ProxyBufferSizeDefaultsToSixteenKilobytes) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_buffer_size, 16u * 1024);
}

TEST(Directives, PrereadTimeoutDefaultsToThirtySeconds) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).preread_timeout, 30s);
    EXPECT_EQ(settings(r).preread_buffer_size, 16u * 1024);
}

TEST(Directives, SslHandshakeTimeoutDefaultsToSixtySeconds) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_handshake_timeout, 60s);
}

TEST(Directives, SslSessionTimeoutDefaultsToFiveMinutes) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_session_timeout, 5min);
}

TEST(Directives, SslProtocolsDefaultToTls12AndTls13) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_protocols, kTlsDefaultProtocols);
    EXPECT_EQ(tls_protocols_to_string(settings(r).ssl_protocols), "TLSv1.2 TLSv1.3");
    EXPECT_EQ(settings(r).proxy_ssl_protocols, kTlsDefaultProtocols);
}

TEST(Directives, SslCiphersDefaultToNginxHighNoNullNoMd5) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_ciphers, "HIGH:!aNULL:!MD5");
}

TEST(Directives, ProxySslCiphersDefaultToOpensslDefault) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_ssl_ciphers, "DEFAULT");
}

TEST(Directives, SslSessionTicketsDefaultToOn) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).ssl_session_tickets);
    EXPECT_TRUE(settings(r).ssl_session_ticket_key.empty());
}

TEST(Directives, SslVerifyDepthDefaultsToOne) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_verify_depth, 1u);
    EXPECT_EQ(settings(r).proxy_ssl_verify_depth, 1u);
    EXPECT_EQ(settings(r).ssl_verify_client, VerifyClient::kOff);
}

TEST(Directives, ProxySslVerifyDefaultsToOnUnlikeNginx) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).proxy_ssl_verify);
    EXPECT_TRUE(settings(r).proxy_ssl_trusted_certificate.empty());  // the system's store
}

TEST(Directives, ProxySslSessionReuseDefaultsToOn) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).proxy_ssl_session_reuse);
}

TEST(Directives, SslSessionCacheDefaultsToNone) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    const SessionCache& c = settings(r).ssl_session_cache;
    EXPECT_FALSE(c.off);
    EXPECT_FALSE(c.builtin);
    EXPECT_TRUE(c.shared_name.empty());
    EXPECT_EQ(c.shared_size, 0u);
}

TEST(Directives, ProxyNextUpstreamDefaultsToOnWithoutLimits) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).proxy_next_upstream);
    EXPECT_EQ(settings(r).proxy_next_upstream_tries, 0u);
    EXPECT_EQ(settings(r).proxy_next_upstream_timeout, 0ms);
}

TEST(Directives, RatesDefaultToUnlimited) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_upload_rate, 0u);
    EXPECT_EQ(settings(r).proxy_download_rate, 0u);
}

TEST(Directives, EcdhCurveDefaultsToAuto) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_ecdh_curve, "auto");
}

TEST(Directives, FileAndListSettingsDefaultToEmpty) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    const ServerSettings& s = settings(r);
    EXPECT_TRUE(s.access_rules.empty());
    EXPECT_TRUE(s.limit_conn.empty());
    EXPECT_TRUE(s.access_log.empty());
    EXPECT_FALSE(s.access_log_off);
    EXPECT_FALSE(s.error_log.has_value());
    EXPECT_TRUE(s.ssl_certificates.empty());
    EXPECT_TRUE(s.ssl_password_file.empty());
    EXPECT_TRUE(s.ssl_conf_command.empty());
    EXPECT_TRUE(s.ssl_dhparam.empty());
    EXPECT_TRUE(s.ssl_client_certificate.empty());
    EXPECT_TRUE(s.ssl_trusted_certificate.empty());
    EXPECT_TRUE(s.ssl_crl.empty());
    EXPECT_TRUE(s.ssl_alpn.empty());
    EXPECT_TRUE(s.ssl_stapling_file.empty());
    EXPECT_TRUE(s.proxy_ssl_certificate.empty());
    EXPECT_TRUE(s.proxy_ssl_certificate_key.empty());
    EXPECT_TRUE(s.proxy_ssl_password_file.empty());
    EXPECT_TRUE(s.proxy_ssl_conf_command.empty());
    EXPECT_TRUE(s.proxy_ssl_trusted_certificate.empty());
    EXPECT_TRUE(s.proxy_ssl_crl.empty());
    EXPECT_TRUE(s.proxy_ssl_name.empty());
    EXPECT_TRUE(s.proxy_ssl_alpn.empty());
}

TEST(Directives, ServerWithoutServerNameHasNoNames) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(server(r).server_name.empty());
    EXPECT_FALSE(server(r).return_value.has_value());
    EXPECT_FALSE(server(r).health_check.enabled);
}

TEST(Directives, ErrorLogDefaultsToStderrAtError) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->error_log.path, "stderr");
    EXPECT_EQ(r.config->error_log.level, LogLevel::kError);
}

TEST(Directives, DataplaneDefaultsToTheLabTapPort) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    const DataplaneConfig& dp = r.config->dataplane;
    EXPECT_TRUE(dp.ports_defaulted);
    ASSERT_EQ(dp.ports.size(), 1u);
    EXPECT_EQ(dp.ports[0].devargs_string(), "net_tap0,iface=terminus0");
    EXPECT_FALSE(dp.ports[0].is_pci);
    EXPECT_EQ(ipv4_to_string(dp.ports[0].address.addr), "198.18.0.2");
    EXPECT_EQ(dp.ports[0].address.len, 24);
    ASSERT_TRUE(dp.ports[0].gateway.has_value());
    EXPECT_EQ(ipv4_to_string(*dp.ports[0].gateway), "198.18.0.1");
    EXPECT_EQ(dp.ports[0].mtu, 1500);
    EXPECT_THAT(dp.lcores, ElementsAre(0u));
    EXPECT_EQ(dp.crypto, CryptoBackend::kIpsecMb);
    EXPECT_EQ(dp.mbufs, 32767u);
    EXPECT_EQ(dp.max_connections, 65536u);
    EXPECT_TRUE(dp.eal_args.empty());
    EXPECT_EQ(dp.syncookies, SynCookies::kOn);
    EXPECT_EQ(dp.tcp_congestion, CongestionControl::kNewReno);
}

TEST(Directives, MgmtDefaults) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    const MgmtConfig& m = r.config->mgmt;
    EXPECT_EQ(m.control, "/run/terminus/control.sock");
    EXPECT_FALSE(m.metrics.has_value());
    EXPECT_EQ(m.ticket_key_rotation, 1h);
    EXPECT_EQ(m.access_log_buffer, 64u * 1024);
}

TEST(Directives, UpstreamDefaultsToRoundRobinAndServerDefaults) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->upstreams.size(), 1u);
    const Upstream& u = r.config->upstreams[0];
    EXPECT_EQ(u.method, BalanceMethod::kRoundRobin);
    EXPECT_FALSE(u.health_check.enabled);
    ASSERT_EQ(u.servers.size(), 1u);
    const UpstreamServer& s = u.servers[0];
    EXPECT_EQ(s.weight, 1u);
    EXPECT_EQ(s.max_fails, 1u);
    EXPECT_EQ(s.fail_timeout, 10s);
    EXPECT_EQ(s.max_conns, 0u);
    EXPECT_FALSE(s.backup);
    EXPECT_FALSE(s.down);
}

TEST(Directives, ListenDefaults) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(server(r).listen.size(), 1u);
    const Listen& l = server(r).listen[0];
    EXPECT_EQ(l.address, 0u);
    EXPECT_EQ(l.port, 443);
    EXPECT_FALSE(l.ssl);
    EXPECT_FALSE(l.proxy_protocol);
    EXPECT_FALSE(l.default_server);
    EXPECT_FALSE(l.reuseport);
    EXPECT_EQ(l.backlog, 511);
    EXPECT_FALSE(l.so_keepalive.set);
}

// ---------------------------------------------------------------------------
// Flags: every on|off directive of server{} and stream{}.

struct FlagCase {
    const char* name;
    bool ServerSettings::*field;
    bool nginx_default;
};

class FlagDirective : public ::testing::TestWithParam<FlagCase> {};

TEST_P(FlagDirective, DefaultsToNginxValue) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).*GetParam().field, GetParam().nginx_default);
}

TEST_P(FlagDirective, OnSetsTrue) {
    auto r = load(in_server(std::string(GetParam().name) + " on;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).*GetParam().field);
}

TEST_P(FlagDirective, OffSetsFalse) {
    auto r = load(in_server(std::string(GetParam().name) + " off;"));
    ASSERT_TRUE(clean(r));
    EXPECT_FALSE(settings(r).*GetParam().field);
}

TEST_P(FlagDirective, OtherValueIsRefused) {
    const std::string name = GetParam().name;
    EXPECT_THAT(messages_of(in_server(name + " yes;")),
                ElementsAre("invalid value \"yes\" in \"" + name + "\": it must be \"on\" or \"off\""));
}

TEST_P(FlagDirective, StreamValueIsInheritedAndServerValueOverrides) {
    const std::string name = GetParam().name;
    const bool flipped = !GetParam().nginx_default;
    const std::string stream_value = flipped ? " on;" : " off;";
    const std::string server_value = flipped ? " off;" : " on;";
    auto inherited = load(in_server("", "    " + name + stream_value));
    ASSERT_TRUE(clean(inherited));
    EXPECT_EQ(settings(inherited).*GetParam().field, flipped);
    auto overridden = load(in_server(name + server_value, "    " + name + stream_value));
    ASSERT_TRUE(clean(overridden));
    EXPECT_EQ(settings(overridden).*GetParam().field, !flipped);
}

INSTANTIATE_TEST_SUITE_P(
    Directives, FlagDirective,
    ::testing::Values(
        FlagCase{"proxy_next_upstream", &ServerSettings::proxy_next_upstream, true},
        FlagCase{"proxy_protocol", &ServerSettings::proxy_protocol, false},
        FlagCase{"proxy_half_close", &ServerSettings::proxy_half_close, false},
        FlagCase{"ssl_preread", &ServerSettings::ssl_preread, false},
        FlagCase{"ssl_prefer_server_ciphers", &ServerSettings::ssl_prefer_server_ciphers, false},
        FlagCase{"ssl_session_tickets", &ServerSettings::ssl_session_tickets, true},
        FlagCase{"ssl_stapling", &ServerSettings::ssl_stapling, false},
        FlagCase{"ssl_stapling_verify", &ServerSettings::ssl_stapling_verify, false},
        FlagCase{"ssl_reject_handshake", &ServerSettings::ssl_reject_handshake, false},
        FlagCase{"ssl_early_data", &ServerSettings::ssl_early_data, false},
        FlagCase{"proxy_ssl", &ServerSettings::proxy_ssl, false},
        // The one default that is not nginx's: Terminus verifies upstreams.
        FlagCase{"proxy_ssl_verify", &ServerSettings::proxy_ssl_verify, true},
        FlagCase{"proxy_ssl_server_name", &ServerSettings::proxy_ssl_server_name, false},
        FlagCase{"proxy_ssl_session_reuse", &ServerSettings::proxy_ssl_session_reuse, true}),
    [](const ::testing::TestParamInfo<FlagCase>& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------
// Times.

struct TimeCase {
    const char* name;
    Millis ServerSettings::*field;
    Millis nginx_default;
    bool whole_seconds;  // ngx_conf_set_sec_slot: "ms" is refused
};

class TimeDirective : public ::testing::TestWithParam<TimeCase> {};

TEST_P(TimeDirective, DefaultsToNginxValue) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).*GetParam().field, GetParam().nginx_default);
}

TEST_P(TimeDirective, SecondsAreReadAsMilliseconds) {
    auto r = load(in_server(std::string(GetParam().name) + " 5s;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).*GetParam().field, 5000ms);
}

TEST_P(TimeDirective, CombinedUnitsAndBareNumbersAreSeconds) {
    auto r = load(in_server(std::string(GetParam().name) + " 1h30m;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).*GetParam().field, 90min);
    auto bare = load(in_server(std::string(GetParam().name) + " 7;"));
    ASSERT_TRUE(clean(bare));
    EXPECT_EQ(settings(bare).*GetParam().field, 7s);
}

TEST_P(TimeDirective, MillisecondsFollowNginxSlot) {
    const std::string name = GetParam().name;
    auto r = load(in_server(name + " 500ms;"));
    if (GetParam().whole_seconds) {
        EXPECT_THAT(messages(r), ElementsAre("invalid time \"500ms\": expected a number with units "
                                             "y M w d h m s in that order, such as \"1h30m\" in \"" +
                                             name + "\""));
    } else {
        ASSERT_TRUE(clean(r));
        EXPECT_EQ(settings(r).*GetParam().field, 500ms);
    }
}

TEST_P(TimeDirective, GarbageIsRefused) {
    const std::string name = GetParam().name;
    const std::string units = GetParam().whole_seconds ? "y M w d h m s" : "w d h m s ms";
    EXPECT_THAT(messages_of(in_server(name + " 5x;")),
                ElementsAre("invalid time \"5x\": expected a number with units " + units +
                            " in that order, such as \"1h30m\" in \"" + name + "\""));
}

TEST_P(TimeDirective, StreamValueIsInheritedAndServerValueOverrides) {
    const std::string name = GetParam().name;
    auto inherited = load(in_server("", "    " + name + " 2s;"));
    ASSERT_TRUE(clean(inherited));
    EXPECT_EQ(settings(inherited).*GetParam().field, 2s);
    auto overridden = load(in_server(name + " 3s;", "    " + name + " 2s;"));
    ASSERT_TRUE(clean(overridden));
    EXPECT_EQ(settings(overridden).*GetParam().field, 3s);
}

INSTANTIATE_TEST_SUITE_P(
    Directives, TimeDirective,
    ::testing::Values(
        TimeCase{"proxy_connect_timeout", &ServerSettings::proxy_connect_timeout, 60s, false},
        TimeCase{"proxy_timeout", &ServerSettings::proxy_timeout, 10min, false},
        TimeCase{"proxy_next_upstream_timeout", &ServerSettings::proxy_next_upstream_timeout, 0ms,
                 false},
        TimeCase{"preread_timeout", &ServerSettings::preread_timeout, 30s, false},
        TimeCase{"ssl_handshake_timeout", &ServerSettings::ssl_handshake_timeout, 60s, false},
        TimeCase{"ssl_session_timeout", &ServerSettings::ssl_session_timeout, 5min, true}),
    [](const ::testing::TestParamInfo<TimeCase>& info) { return std::string(info.param.name); });

TEST(Directives, ProxyTimeoutFiveSecondsIsFiveThousandMilliseconds) {
    auto r = load(in_server("proxy_timeout 5s;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_timeout, 5000ms);
}

TEST(Directives, MillisecondTimesRefuseMonthsAndYears) {
    EXPECT_THAT(messages_of(in_server("proxy_timeout 1M;")),
                ElementsAre("invalid time \"1M\": expected a number with units w d h m s ms in "
                            "that order, such as \"1h30m\" in \"proxy_timeout\""));
}

TEST(Directives, SessionTimeoutAcceptsDays) {
    auto r = load(in_server("ssl_session_timeout 1d;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_session_timeout, 24h);
}

// ---------------------------------------------------------------------------
// Sizes.

struct SizeCase {
    const char* name;
    uint64_t ServerSettings::*field;
    uint64_t nginx_default;
    bool zero_refused;
};

class SizeDirective : public ::testing::TestWithParam<SizeCase> {};

TEST_P(SizeDirective, DefaultsToNginxValue) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).*GetParam().field, GetParam().nginx_default);
}

TEST_P(SizeDirective, SuffixesArePowersOf1024) {
    const std::string name = GetParam().name;
    auto k = load(in_server(name + " 32k;"));
    ASSERT_TRUE(clean(k));
    EXPECT_EQ(settings(k).*GetParam().field, 32u * 1024);
    auto m = load(in_server(name + " 2m;"));
    ASSERT_TRUE(clean(m));
    EXPECT_EQ(settings(m).*GetParam().field, 2u * 1024 * 1024);
    auto bytes = load(in_server(name + " 1000;"));
    ASSERT_TRUE(clean(bytes));
    EXPECT_EQ(settings(bytes).*GetParam().field, 1000u);
}

TEST_P(SizeDirective, GarbageIsRefused) {
    const std::string name = GetParam().name;
    EXPECT_THAT(messages_of(in_server(name + " 1x;")),
                ElementsAre("invalid size \"1x\": expected a number optionally followed by k, m "
                            "or g, such as \"16k\" in \"" +
                            name + "\""));
}

TEST_P(SizeDirective, ZeroFollowsNginx) {
    const std::string name = GetParam().name;
    auto r = load(in_server(name + " 0;"));
    if (GetParam().zero_refused) {
        EXPECT_THAT(messages(r), ElementsAre("\"" + name + "\" must be larger than 0"));
    } else {
        ASSERT_TRUE(clean(r));
        EXPECT_EQ(settings(r).*GetParam().field, 0u);
    }
}

TEST_P(SizeDirective, StreamValueIsInheritedAndServerValueOverrides) {
    const std::string name = GetParam().name;
    auto inherited = load(in_server("", "    " + name + " 4k;"));
    ASSERT_TRUE(clean(inherited));
    EXPECT_EQ(settings(inherited).*GetParam().field, 4096u);
    auto overridden = load(in_server(name + " 8k;", "    " + name + " 4k;"));
    ASSERT_TRUE(clean(overridden));
    EXPECT_EQ(settings(overridden).*GetParam().field, 8192u);
}

INSTANTIATE_TEST_SUITE_P(
    Directives, SizeDirective,
    ::testing::Values(
        SizeCase{"proxy_buffer_size", &ServerSettings::proxy_buffer_size, 16 * 1024, true},
        SizeCase{"preread_buffer_size", &ServerSettings::preread_buffer_size, 16 * 1024, true},
        SizeCase{"proxy_upload_rate", &ServerSettings::proxy_upload_rate, 0, false},
        SizeCase{"proxy_download_rate", &ServerSettings::proxy_download_rate, 0, false}),
    [](const ::testing::TestParamInfo<SizeCase>& info) { return std::string(info.param.name); });

TEST(Directives, RatesRefuseVariables) {
    EXPECT_THAT(messages_of(in_server("proxy_upload_rate $remote_addr;")),
                ElementsAre("\"proxy_upload_rate\" does not take variables in Terminus: write the "
                            "value itself"));
    EXPECT_THAT(messages_of(in_server("proxy_download_rate $remote_addr;")),
                ElementsAre("\"proxy_download_rate\" does not take variables in Terminus: write "
                            "the value itself"));
}

// ---------------------------------------------------------------------------
// Numbers.

TEST(Directives, ProxyNextUpstreamTriesSetsTheLimit) {
    auto r = load(in_server("proxy_next_upstream_tries 3;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_next_upstream_tries, 3u);
    EXPECT_THAT(messages_of(in_server("proxy_next_upstream_tries 1001;")),
                ElementsAre("invalid number \"1001\" in \"proxy_next_upstream_tries\": expected "
                            "an integer from 0 to 1000"));
}

TEST(Directives, SslVerifyDepthSetsTheDepth) {
    auto r = load(in_server("ssl_verify_depth 3;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_verify_depth, 3u);
    EXPECT_THAT(messages_of(in_server("ssl_verify_depth 101;")),
                ElementsAre("invalid number \"101\" in \"ssl_verify_depth\": expected an integer "
                            "from 0 to 100"));
    EXPECT_THAT(messages_of(in_server("ssl_verify_depth -1;")),
                ElementsAre("invalid number \"-1\" in \"ssl_verify_depth\": expected an integer "
                            "from 0 to 100"));
}

TEST(Directives, ProxySslVerifyDepthSetsTheDepth) {
    auto r = load(in_server("proxy_ssl_verify_depth 4;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_ssl_verify_depth, 4u);
    EXPECT_THAT(messages_of(in_server("proxy_ssl_verify_depth two;")),
                ElementsAre("invalid number \"two\" in \"proxy_ssl_verify_depth\": expected an "
                            "integer from 0 to 100"));
}

// ---------------------------------------------------------------------------
// error_log

TEST(Directives, ErrorLogAtTopLevelSetsPathAndLevel) {
    auto r = load("error_log /var/log/terminus/error.log warn;\n" + minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->error_log.path, "/var/log/terminus/error.log");
    EXPECT_EQ(r.config->error_log.level, LogLevel::kWarn);
}

TEST(Directives, ErrorLogRelativePathResolvesAgainstTheConfigDirectory) {
    auto r = load("error_log logs/error.log;\n" + minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->error_log.path, "/tmp/dir/logs/error.log");
    EXPECT_EQ(r.config->error_log.level, LogLevel::kError);
}

TEST(Directives, ErrorLogInStreamIsInheritedByServers) {
    auto r = load(in_server("", "    error_log stderr debug;"));
    ASSERT_TRUE(clean(r));
    ASSERT_TRUE(settings(r).error_log.has_value());
    EXPECT_EQ(settings(r).error_log->path, "stderr");
    EXPECT_EQ(settings(r).error_log->level, LogLevel::kDebug);
}

TEST(Directives, ErrorLogInServerOverridesStream) {
    auto r = load(in_server("error_log /var/log/s.log emerg;", "    error_log stderr debug;"));
    ASSERT_TRUE(clean(r));
    ASSERT_TRUE(settings(r).error_log.has_value());
    EXPECT_EQ(settings(r).error_log->path, "/var/log/s.log");
    EXPECT_EQ(settings(r).error_log->level, LogLevel::kEmerg);
}

TEST(Directives, ErrorLogUnknownLevelIsRefused) {
    EXPECT_THAT(messages_of("error_log stderr loud;\n" + minimal()),
                ElementsAre("invalid log level \"loud\": expected debug, info, notice, warn, "
                            "error, crit, alert or emerg"));
}

TEST(Directives, ErrorLogToSyslogIsRefused) {
    EXPECT_THAT(messages_of("error_log syslog:server=127.0.0.1;\n" + minimal()),
                ElementsAre("error_log \"syslog:server=127.0.0.1\": Terminus writes its error log "
                            "to stderr or a file"));
}

// ---------------------------------------------------------------------------
// include

TEST(Directives, IncludeSplicesTheNamedFile) {
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    dir.write("upstreams.conf", "upstream b { server 198.18.0.1:8080 weight=7; }\n");
    const std::string main = dir.write("main.conf",
                                       "stream {\n"
                                       "    include upstreams.conf;\n"
                                       "    server { listen 443; proxy_pass b; }\n"
                                       "}\n");
    auto r = load_file(main);
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->upstreams.size(), 1u);
    EXPECT_EQ(r.config->upstreams[0].servers.at(0).weight, 7u);
}

TEST(Directives, IncludeOfAMissingFileIsReported) {
    EXPECT_THAT(messages_of("include /nonexistent/terminus/x.conf;\n" + minimal()),
                ElementsAre("cannot open \"/nonexistent/terminus/x.conf\": No such file or "
                            "directory"));
}

// ---------------------------------------------------------------------------
// Top-level blocks.

TEST(Directives, TopLevelBlocksNeedABlock) {
    EXPECT_THAT(messages_of("stream;\n"),
                ElementsAre("\"stream\" needs a block: write stream ... { ... }"));
    EXPECT_THAT(messages_of("dataplane;\n" + minimal()),
                ElementsAre("\"dataplane\" needs a block: write dataplane ... { ... }"));
    EXPECT_THAT(messages_of("mgmt;\n" + minimal()),
                ElementsAre("\"mgmt\" needs a block: write mgmt ... { ... }"));
}

TEST(Directives, TopLevelBlocksTakeNoArguments) {
    EXPECT_THAT(messages_of("mgmt main {}\n" + minimal()),
                ElementsAre("invalid number of arguments in \"mgmt\": expected none, got 1"));
}

// ---------------------------------------------------------------------------
// dataplane {}

TEST(Directives, DataplanePortWithDevargsAddressGatewayAndMtu) {
    auto r = load(with_dataplane(
        "port net_tap0 iface=tap0 address=198.18.0.2/24 gateway=198.18.0.1 mtu=9000;"));
    ASSERT_TRUE(clean(r));
    const DataplaneConfig& dp = r.config->dataplane;
    EXPECT_FALSE(dp.ports_defaulted);
    ASSERT_EQ(dp.ports.size(), 1u);
    const PortConfig& p = dp.ports[0];
    EXPECT_EQ(p.device, "net_tap0");
    EXPECT_FALSE(p.is_pci);
    ASSERT_EQ(p.devargs.size(), 1u);
    EXPECT_EQ(p.devargs[0].first, "iface");
    EXPECT_EQ(p.devargs[0].second, "tap0");
    EXPECT_EQ(p.devargs_string(), "net_tap0,iface=tap0");
    EXPECT_EQ(ipv4_to_string(p.address.addr), "198.18.0.2");
    EXPECT_EQ(p.address.len, 24);
    ASSERT_TRUE(p.gateway.has_value());
    EXPECT_EQ(ipv4_to_string(*p.gateway), "198.18.0.1");
    EXPECT_EQ(p.mtu, 9000);
    EXPECT_EQ(p.loc.line, 2u);
}

TEST(Directives, DataplanePortAcceptsPciAddresses) {
    auto r = load(with_dataplane("port 0000:03:00.0 address=198.18.0.2/24;\n"
                                 "port 04:00.1 address=198.18.1.2/24;"));
    ASSERT_TRUE(clean(r));
    const auto& ports = r.config->dataplane.ports;
    ASSERT_EQ(ports.size(), 2u);
    EXPECT_EQ(ports[0].device, "0000:03:00.0");
    EXPECT_TRUE(ports[0].is_pci);
    EXPECT_FALSE(ports[0].gateway.has_value());
    EXPECT_EQ(ports[0].mtu, 1500);
    EXPECT_EQ(ports[1].device, "04:00.1");
    EXPECT_TRUE(ports[1].is_pci);
}

TEST(Directives, DataplanePortRefusesAnUnknownDevice) {
    EXPECT_THAT(messages_of(with_dataplane("port eth0 address=198.18.0.2/24;")),
                ElementsAre("invalid port \"eth0\": expected a PCI address (0000:03:00.0) or a "
                            "DPDK virtual device such as net_tap0, net_af_packet0, net_memif0"));
}

TEST(Directives, DataplanePortNeedsAnAddress) {
    EXPECT_THAT(messages_of(with_dataplane("port net_tap0 iface=tap0;")),
                ElementsAre("port \"net_tap0\" needs an address: add address=A.B.C.D/LEN (and "
                            "gateway= for off-link upstreams)"));
}

TEST(Directives, DataplanePortRefusesAnAddressWithoutPrefixLength) {
    EXPECT_THAT(messages_of(with_dataplane("port net_tap0 address=198.18.0.2;")),
                ElementsAre("invalid address \"198.18.0.2\": expected an IPv4 address with a "
                            "prefix length, such as 198.18.0.2/24"));
}

TEST(Directives, DataplanePortRefusesAGatewayOutsideItsPrefix) {
    EXPECT_THAT(messages_of(with_dataplane(
                    "port net_tap0 address=198.18.0.2/24 gateway=198.19.0.1;")),
                ElementsAre("gateway 198.19.0.1 is not inside 198.18.0.2/24"));
}

TEST(Directives, DataplanePortRefusesAnInvalidGateway) {
    EXPECT_THAT(messages_of(with_dataplane("port net_tap0 address=198.18.0.2/24 gateway=x;")),
                ElementsAre("invalid gateway \"x\": expected an IPv4 address"));
}

TEST(Directives, DataplanePortRefusesAnMtuOutOfRange) {
    EXPECT_THAT(messages_of(with_dataplane("port net_tap0 address=198.18.0.2/24 mtu=100;")),
                ElementsAre("invalid number \"100\" in \"port\": expected an integer from 576 "
                            "to 9216"));
}

TEST(Directives, DataplanePortRefusesAParameterWithoutValue) {
    EXPECT_THAT(messages_of(with_dataplane("port net_tap0 address=198.18.0.2/24 promisc;")),
                ElementsAre("invalid port parameter \"promisc\": expected KEY=VALUE (address=, "
                            "gateway=, mtu= or a device argument)"));
}

TEST(Directives, DataplanePortDeclaredTwiceIsRefused) {
    EXPECT_THAT(messages_of(with_dataplane("port net_tap0 address=198.18.0.2/24;\n"
                                           "port net_tap0 address=198.18.1.2/24;")),
                ElementsAre("port \"net_tap0\" is declared twice"));
}

TEST(Directives, LcoresAcceptsRanges) {
    auto r = load(with_dataplane("lcores 0-1;"));
    ASSERT_TRUE(clean(r));
    EXPECT_THAT(r.config->dataplane.lcores, ElementsAre(0u, 1u));
}

TEST(Directives, LcoresAcceptsListsOfRanges) {
    auto r = load(with_dataplane("lcores 0,2-3;"));
    ASSERT_TRUE(clean(r));
    EXPECT_THAT(r.config->dataplane.lcores, ElementsAre(0u, 2u, 3u));
}

TEST(Directives, LcoresAcceptsSeveralWords) {
    auto r = load(with_dataplane("lcores 4 1-2;"));
    ASSERT_TRUE(clean(r));
    EXPECT_THAT(r.config->dataplane.lcores, ElementsAre(1u, 2u, 4u));
}

TEST(Directives, LcoresRefusesAnOpenRange) {
    EXPECT_THAT(messages_of(with_dataplane("lcores 0-;")),
                ElementsAre("invalid lcore list \"0-\": expected core numbers below 128 and "
                            "ranges, such as \"0-1\" or \"0,2-3\""));
}

TEST(Directives, LcoresRefusesCoresAbove127) {
    EXPECT_THAT(messages_of(with_dataplane("lcores 128;")),
                ElementsAre("invalid lcore list \"128\": expected core numbers below 128 and "
                            "ranges, such as \"0-1\" or \"0,2-3\""));
}

TEST(Directives, LcoresRefusesACoreListedTwice) {
    EXPECT_THAT(messages_of(with_dataplane("lcores 0-2,1;")),
                ElementsAre("an lcore is listed twice in \"lcores\""));
}

TEST(Directives, CryptoSelectsTheBackend) {
    auto mb = load(with_dataplane("crypto ipsec_mb;"));
    ASSERT_TRUE(clean(mb));
    EXPECT_EQ(mb.config->dataplane.crypto, CryptoBackend::kIpsecMb);
    auto ossl = load(with_dataplane("crypto openssl;"));
    ASSERT_TRUE(clean(ossl));
    EXPECT_EQ(ossl.config->dataplane.crypto, CryptoBackend::kOpenssl);
    auto dev = load(with_dataplane("crypto cryptodev:crypto_aesni_gcm0;"));
    ASSERT_TRUE(clean(dev));
    EXPECT_EQ(dev.config->dataplane.crypto, CryptoBackend::kCryptodev);
    EXPECT_EQ(dev.config->dataplane.crypto_device, "crypto_aesni_gcm0");
}

TEST(Directives, CryptoRefusesAnUnknownBackend) {
    const std::string expected =
        "invalid crypto backend \"%s\": expected ipsec_mb, openssl or cryptodev:DEVICE (such as "
        "cryptodev:crypto_aesni_gcm0 or a QAT PCI address)";
    auto with = [&](const std::string& v) {
        std::string s = expected;
        return s.replace(s.find("%s"), 2, v);
    };
    EXPECT_THAT(messages_of(with_dataplane("crypto aesni;")), ElementsAre(with("aesni")));
    EXPECT_THAT(messages_of(with_dataplane("crypto cryptodev:;")), ElementsAre(with("cryptodev:")));
}

TEST(Directives, MbufsSetsThePoolSize) {
    auto r = load(with_dataplane("mbufs 8191;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->dataplane.mbufs, 8191u);
    EXPECT_THAT(messages_of(with_dataplane("mbufs 10;")),
                ElementsAre("invalid number \"10\" in \"mbufs\": expected an integer from 1023 to "
                            "16777216"));
}

TEST(Directives, MaxConnectionsSetsTheTableSize) {
    auto r = load(with_dataplane("max_connections 1000;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->dataplane.max_connections, 1000u);
    EXPECT_THAT(messages_of(with_dataplane("max_connections 0;")),
                ElementsAre("invalid number \"0\" in \"max_connections\": expected an integer "
                            "from 1 to 67108864"));
}

TEST(Directives, EalArgsAreAppendedInOrder) {
    auto r = load(with_dataplane("eal_args --log-level=8 --no-huge;\neal_args -m 512;"));
    ASSERT_TRUE(clean(r));
    EXPECT_THAT(r.config->dataplane.eal_args,
                ElementsAre("--log-level=8", "--no-huge", "-m", "512"));
}

TEST(Directives, EalArgsNeedsAnArgument) {
    EXPECT_THAT(messages_of(with_dataplane("eal_args;")),
                ElementsAre("invalid number of arguments in \"eal_args\": expected at least 1, "
                            "got 0"));
}

TEST(Directives, SyncookiesAcceptsOnOffAlways) {
    auto on = load(with_dataplane("syncookies on;"));
    ASSERT_TRUE(clean(on));
    EXPECT_EQ(on.config->dataplane.syncookies, SynCookies::kOn);
    auto off = load(with_dataplane("syncookies off;"));
    ASSERT_TRUE(clean(off));
    EXPECT_EQ(off.config->dataplane.syncookies, SynCookies::kOff);
    auto always = load(with_dataplane("syncookies always;"));
    ASSERT_TRUE(clean(always));
    EXPECT_EQ(always.config->dataplane.syncookies, SynCookies::kAlways);
    EXPECT_THAT(messages_of(with_dataplane("syncookies sometimes;")),
                ElementsAre("invalid value \"sometimes\" in \"syncookies\": expected on (when a "
                            "SYN backlog is full), off or always"));
}

TEST(Directives, ShutdownTimeoutIsATime) {
    auto r = load(with_dataplane("shutdown_timeout 1m30s;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->dataplane.shutdown_timeout, std::chrono::seconds(90));
    EXPECT_EQ(load(with_dataplane("")).config->dataplane.shutdown_timeout, std::chrono::seconds(10));
    EXPECT_FALSE(messages_of(with_dataplane("shutdown_timeout soon;")).empty());
    EXPECT_THAT(messages_of("worker_shutdown_timeout 5s;\n" + with_dataplane("")),
                ElementsAre(::testing::HasSubstr("set \"shutdown_timeout\" in dataplane {}")));
}

TEST(Directives, TcpCongestionAcceptsNewrenoAndCubic) {
    auto reno = load(with_dataplane("tcp_congestion newreno;"));
    ASSERT_TRUE(clean(reno));
    EXPECT_EQ(reno.config->dataplane.tcp_congestion, CongestionControl::kNewReno);
    auto cubic = load(with_dataplane("tcp_congestion cubic;"));
    ASSERT_TRUE(clean(cubic));
    EXPECT_EQ(cubic.config->dataplane.tcp_congestion, CongestionControl::kCubic);
    EXPECT_THAT(messages_of(with_dataplane("tcp_congestion bbr;")),
                ElementsAre("invalid value \"bbr\" in \"tcp_congestion\": expected newreno or "
                            "cubic"));
}

// ---------------------------------------------------------------------------
// mgmt {}

TEST(Directives, ControlTakesAUnixSocketPath) {
    auto r = load(with_mgmt("control unix:/run/t/control.sock;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->mgmt.control, "/run/t/control.sock");
    auto bare = load(with_mgmt("control /run/t/c.sock;"));
    ASSERT_TRUE(clean(bare));
    EXPECT_EQ(bare.config->mgmt.control, "/run/t/c.sock");
}

TEST(Directives, ControlRefusesARelativePath) {
    EXPECT_THAT(messages_of(with_mgmt("control unix:control.sock;")),
                ElementsAre("\"control\" needs an absolute UNIX socket path, such as "
                            "unix:/run/terminus/control.sock"));
}

TEST(Directives, ControlRefusesAPathTooLongForSunPath) {
    EXPECT_THAT(messages_of(with_mgmt("control /" + std::string(107, 'x') + ";")),
                ElementsAre("control socket path is longer than a UNIX socket address allows "
                            "(107 bytes)"));
}

TEST(Directives, MetricsTakesAnAddressAndPort) {
    auto r = load(with_mgmt("metrics 127.0.0.1:9145;"));
    ASSERT_TRUE(clean(r));
    ASSERT_TRUE(r.config->mgmt.metrics.has_value());
    EXPECT_EQ(ipv4_to_string(r.config->mgmt.metrics->first), "127.0.0.1");
    EXPECT_EQ(r.config->mgmt.metrics->second, 9145);
    auto off = load(with_mgmt("metrics off;"));
    ASSERT_TRUE(clean(off));
    EXPECT_FALSE(off.config->mgmt.metrics.has_value());
}

TEST(Directives, MetricsRefusesAHostName) {
    EXPECT_THAT(messages_of(with_mgmt("metrics localhost:9145;")),
                ElementsAre("metrics address \"localhost:9145\": use an IPv4 address, such as "
                            "127.0.0.1:9145"));
}

TEST(Directives, MetricsRefusesAnAddressWithoutPort) {
    EXPECT_THAT(messages_of(with_mgmt("metrics 9145;")),
                ElementsAre("metrics address \"9145\" has no port: write it as HOST:PORT"));
}

TEST(Directives, MetricsWithAnEmptyPortIsRefused) {
    auto r = load(with_mgmt("metrics 127.0.0.1:;"));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error_count(), 1u) << listing(r);
}

TEST(Directives, TicketKeyRotationIsInSeconds) {
    auto r = load(with_mgmt("ticket_key_rotation 30m;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->mgmt.ticket_key_rotation, 30min);
    EXPECT_THAT(messages_of(with_mgmt("ticket_key_rotation 30s;")),
                ElementsAre("\"ticket_key_rotation\" below 1m would make tickets useless; use 1m "
                            "or more"));
}

TEST(Directives, AccessLogBufferSetsTheBufferSize) {
    auto r = load(with_mgmt("access_log_buffer 128k;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->mgmt.access_log_buffer, 128u * 1024);
    EXPECT_THAT(messages_of(with_mgmt("access_log_buffer 1k;")),
                ElementsAre("\"access_log_buffer\" must be at least 4k"));
}

// ---------------------------------------------------------------------------
// listen

TEST(Directives, ListenWithEveryParameter) {
    auto r = load(in_server_without_proxy_pass(
        "listen 198.18.0.2:443 ssl proxy_protocol default_server backlog=100 "
        "so_keepalive=30m::10;\n"
        "ssl_certificate " + cert("server.crt") + ";\n"
        "ssl_certificate_key " + cert("server.key") + ";\n"
        "proxy_pass b;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(server(r).listen.size(), 2u);
    const Listen& l = server(r).listen[1];
    EXPECT_EQ(ipv4_to_string(l.address), "198.18.0.2");
    EXPECT_EQ(l.port, 443);
    EXPECT_TRUE(l.ssl);
    EXPECT_TRUE(l.proxy_protocol);
    EXPECT_TRUE(l.default_server);
    EXPECT_EQ(l.backlog, 100);
    EXPECT_TRUE(l.so_keepalive.set);
    EXPECT_TRUE(l.so_keepalive.on);
    EXPECT_EQ(l.so_keepalive.idle_s, 1800u);
    EXPECT_EQ(l.so_keepalive.interval_s, 0u);
    EXPECT_EQ(l.so_keepalive.count, 10u);
}

TEST(Directives, ListenAcceptsStarPortAndReuseport) {
    auto r = load(in_server_without_proxy_pass("listen *:8443 reuseport so_keepalive=on;\n"
                                               "proxy_pass b;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(server(r).listen.size(), 2u);
    const Listen& l = server(r).listen[1];
    EXPECT_EQ(l.address, 0u);
    EXPECT_EQ(l.port, 8443);
    EXPECT_TRUE(l.reuseport);
    EXPECT_TRUE(l.so_keepalive.set);
    EXPECT_TRUE(l.so_keepalive.on);
}

TEST(Directives, ListenSoKeepaliveOffIsRecorded) {
    auto r = load(in_server_without_proxy_pass("listen 8443 so_keepalive=off;\nproxy_pass b;"));
    ASSERT_TRUE(clean(r));
    const Listen& l = server(r).listen.at(1);
    EXPECT_TRUE(l.so_keepalive.set);
    EXPECT_FALSE(l.so_keepalive.on);
}

TEST(Directives, ListenRefusesAnInvalidPort) {
    EXPECT_THAT(messages_of(in_server("listen 70000;")),
                Contains("listen \"70000\": invalid port \"70000\", expected 1 to 65535"));
}

TEST(Directives, ListenRefusesAHostName) {
    EXPECT_THAT(messages_of(in_server("listen localhost:443;")),
                ElementsAre("listen \"localhost:443\": the dataplane listens on IPv4 addresses "
                            "of its ports; write the address or \"*\", not a host name"));
}

TEST(Directives, ListenRefusesIpv6AndUnixSockets) {
    EXPECT_THAT(messages_of(in_server("listen [::]:443;")),
                ElementsAre("listen \"[::]:443\": IPv6 is not supported by the Terminus "
                            "dataplane yet; use an IPv4 address"));
    EXPECT_THAT(messages_of(in_server("listen unix:/run/x.sock;")),
                ElementsAre("listen \"unix:/run/x.sock\": UNIX-domain sockets are not reachable "
                            "from the dataplane; use an IPv4 address and port"));
}

TEST(Directives, ListenRefusesAnUnknownParameter) {
    EXPECT_THAT(messages_of(in_server("listen 8443 fast;")),
                ElementsAre("invalid listen parameter \"fast\": expected ssl, proxy_protocol, "
                            "default_server, backlog=, so_keepalive= or reuseport"));
}

TEST(Directives, ListenRefusesNginxSocketParameters) {
    EXPECT_THAT(messages_of(in_server("listen 8443 udp;")),
                ElementsAre("listen parameter \"udp\" is nginx's but not supported by Terminus, "
                            "whose dataplane owns its sockets (TCP over IPv4 only)"));
    EXPECT_THAT(messages_of(in_server("listen 8443 rcvbuf=64k;")),
                ElementsAre("listen parameter \"rcvbuf\" is nginx's but not supported by "
                            "Terminus, whose dataplane owns its sockets (TCP over IPv4 only)"));
}

TEST(Directives, ListenRefusesAZeroBacklog) {
    EXPECT_THAT(messages_of(in_server("listen 8443 backlog=0;")),
                ElementsAre("invalid number \"0\" in \"listen\": expected an integer from 1 to "
                            "65535"));
}

TEST(Directives, ListenRefusesAMalformedSoKeepalive) {
    EXPECT_THAT(messages_of(in_server("listen 8443 so_keepalive=30m;")),
                ElementsAre("invalid so_keepalive \"30m\": expected on, off or "
                            "[keepidle]:[keepintvl]:[keepcnt]"));
    EXPECT_THAT(messages_of(in_server("listen 8443 so_keepalive=::200;")),
                ElementsAre("invalid number \"200\" in \"listen\": expected an integer from 1 to "
                            "127"));
}

// ---------------------------------------------------------------------------
// server_name

TEST(Directives, ServerNameKinds) {
    auto r = load(in_server(
        "server_name Example.COM *.example.org www.example.* .example.net ~^(?<n>.+)\\.io$;"));
    ASSERT_TRUE(clean(r));
    const auto& names = server(r).server_name;
    ASSERT_EQ(names.size(), 5u);
    EXPECT_EQ(names[0].name, "example.com");
    EXPECT_EQ(names[0].kind, ServerNameKind::kExact);
    EXPECT_EQ(names[1].name, "*.example.org");
    EXPECT_EQ(names[1].kind, ServerNameKind::kWildcardFront);
    EXPECT_EQ(names[2].name, "www.example.*");
    EXPECT_EQ(names[2].kind, ServerNameKind::kWildcardBack);
    EXPECT_EQ(names[3].name, ".example.net");
    EXPECT_EQ(names[3].kind, ServerNameKind::kWildcardFront);
    EXPECT_EQ(names[4].name, "^(?<n>.+)\\.io$");
    EXPECT_EQ(names[4].kind, ServerNameKind::kRegex);
}

TEST(Directives, ServerNameEmptyStringIsTheNamelessServer) {
    auto r = load(in_server("server_name \"\";"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(server(r).server_name.empty());
}

TEST(Directives, ServerNameRefusesAWildcardInTheMiddle) {
    EXPECT_THAT(messages_of(in_server("server_name www.*.com;")),
                ElementsAre("invalid server name \"www.*.com\": a wildcard is \"*.example.com\" or "
                            "\"www.example.*\""));
}

TEST(Directives, ServerNameRefusesAnInvalidRegex) {
    EXPECT_THAT(messages_of(in_server("server_name ~(;")),
                ElementsAre("invalid regular expression \"(\": missing closing parenthesis at "
                            "offset 1"));
}

// ---------------------------------------------------------------------------
// proxy_pass and return

TEST(Directives, ProxyPassToAnUpstream) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    const ProxyPass& pp = server(r).proxy_pass;
    EXPECT_EQ(pp.kind, ProxyPass::Kind::kUpstream);
    EXPECT_EQ(pp.upstream, "b");
    EXPECT_EQ(pp.value, "b");
}

TEST(Directives, ProxyPassToAnAddressAndPort) {
    auto r = load(in_server_without_proxy_pass("proxy_pass 198.18.0.9:9000;"));
    ASSERT_TRUE(clean(r));
    const ProxyPass& pp = server(r).proxy_pass;
    EXPECT_EQ(pp.kind, ProxyPass::Kind::kAddress);
    EXPECT_EQ(pp.host, "198.18.0.9");
    ASSERT_TRUE(pp.address.has_value());
    EXPECT_EQ(ipv4_to_string(*pp.address), "198.18.0.9");
    EXPECT_EQ(pp.port, 9000);
}

TEST(Directives, ProxyPassToAHostNameAndPort) {
    auto r = load(in_server_without_proxy_pass("proxy_pass backend.example.com:443;"));
    ASSERT_TRUE(clean(r));
    const ProxyPass& pp = server(r).proxy_pass;
    EXPECT_EQ(pp.kind, ProxyPass::Kind::kAddress);
    EXPECT_EQ(pp.host, "backend.example.com");
    EXPECT_FALSE(pp.address.has_value());
    EXPECT_EQ(pp.port, 443);
}

TEST(Directives, ProxyPassToAVariable) {
    auto r = load(in_server_without_proxy_pass(
        "ssl_preread on;\nproxy_pass $backend;",
        "    map $ssl_preread_server_name $backend { default b; }"));
    ASSERT_TRUE(clean(r));
    const ProxyPass& pp = server(r).proxy_pass;
    EXPECT_EQ(pp.kind, ProxyPass::Kind::kVariable);
    EXPECT_EQ(pp.value, "$backend");
}

TEST(Directives, ProxyPassRefusesPortZero) {
    EXPECT_THAT(messages_of(in_server_without_proxy_pass("proxy_pass 198.18.0.9:0;")),
                Contains("proxy_pass \"198.18.0.9:0\": invalid port \"0\", expected 1 to 65535"));
}

TEST(Directives, ProxyPassRefusesUnixSockets) {
    EXPECT_THAT(messages_of(in_server_without_proxy_pass("proxy_pass unix:/run/b.sock;")),
                Contains("proxy_pass \"unix:/run/b.sock\": UNIX-domain sockets are not reachable "
                         "from the dataplane; use an IPv4 address and port"));
}

// "HOST:" has an empty port, which nginx refuses ("invalid port"); it must
// not become port 0.
TEST(Directives, ProxyPassWithAnEmptyPortIsRefused) {
    auto r = load(in_server_without_proxy_pass("proxy_pass 198.18.0.9:;"));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error_count(), 1u) << listing(r);
}

TEST(Directives, ReturnSetsTheValue) {
    auto r = load(in_server_without_proxy_pass("return \"hello $remote_addr\\n\";"));
    ASSERT_TRUE(clean(r));
    ASSERT_TRUE(server(r).return_value.has_value());
    EXPECT_EQ(*server(r).return_value, "hello $remote_addr\n");
    EXPECT_EQ(server(r).proxy_pass.kind, ProxyPass::Kind::kNone);
}

TEST(Directives, ReturnRefusesAnUnknownVariable) {
    EXPECT_THAT(messages_of(in_server_without_proxy_pass("return $nosuch;")),
                ElementsAre("unknown variable \"$nosuch\" in \"return\": define it with \"map\""));
}

// ---------------------------------------------------------------------------
// upstream {}

TEST(Directives, UpstreamServerWithEveryParameter) {
    auto r = load(with_upstream(
        "server 198.18.0.1:8080 weight=2 max_fails=3 fail_timeout=10s max_conns=5 backup;\n"
        "server 198.18.0.3:8080 down;\n"
        "server backend.example.com:8081 fail_timeout=1m;"));
    ASSERT_TRUE(clean(r));
    const Upstream& u = r.config->upstreams.at(0);
    EXPECT_EQ(u.name, "u");
    ASSERT_EQ(u.servers.size(), 3u);
    const UpstreamServer& a = u.servers[0];
    EXPECT_EQ(a.host, "198.18.0.1");
    ASSERT_TRUE(a.address.has_value());
    EXPECT_EQ(ipv4_to_string(*a.address), "198.18.0.1");
    EXPECT_EQ(a.port, 8080);
    EXPECT_EQ(a.weight, 2u);
    EXPECT_EQ(a.max_fails, 3u);
    EXPECT_EQ(a.fail_timeout, 10s);
    EXPECT_EQ(a.max_conns, 5u);
    EXPECT_TRUE(a.backup);
    EXPECT_FALSE(a.down);
    EXPECT_TRUE(u.servers[1].down);
    EXPECT_FALSE(u.servers[1].backup);
    EXPECT_EQ(u.servers[2].host, "backend.example.com");
    EXPECT_FALSE(u.servers[2].address.has_value());
    EXPECT_EQ(u.servers[2].port, 8081);
    EXPECT_EQ(u.servers[2].fail_timeout, 60s);
}

TEST(Directives, UpstreamServerRefusesZeroWeight) {
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080 weight=0;")),
                ElementsAre("invalid number \"0\" in \"server\": expected an integer from 1 to "
                            "1000000"));
}

TEST(Directives, UpstreamServerFailTimeoutIsInWholeSeconds) {
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080 fail_timeout=500ms;")),
                ElementsAre("invalid time \"500ms\": expected a number with units y M w d h m s "
                            "in that order, such as \"1h30m\" in \"server\""));
}

TEST(Directives, UpstreamServerRefusesUnknownAndPlusParameters) {
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080 heavy;")),
                ElementsAre("invalid upstream server parameter \"heavy\": expected weight=, "
                            "max_fails=, fail_timeout=, max_conns=, backup or down"));
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080 slow_start=30s;")),
                ElementsAre("upstream server parameter \"slow_start\" is NGINX Plus's and not "
                            "supported by Terminus"));
}

TEST(Directives, UpstreamServerRefusesTheWildcardAddress) {
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080;\nserver 0.0.0.0:8080;")),
                ElementsAre("upstream server \"0.0.0.0:8080\" needs a real address, not \"*\" or "
                            "0.0.0.0"));
}

TEST(Directives, UpstreamServerNeedsAPort) {
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080;\nserver 198.18.0.2;")),
                ElementsAre("upstream server \"198.18.0.2\" has no port: write it as HOST:PORT"));
}

TEST(Directives, UpstreamServerWithAnEmptyPortIsRefused) {
    auto r = load(with_upstream("server 198.18.0.1:8080;\nserver 198.18.0.2:;"));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error_count(), 1u) << listing(r);
}

TEST(Directives, LeastConnSelectsTheMethod) {
    auto r = load(with_upstream("least_conn;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->upstreams.at(0).method, BalanceMethod::kLeastConn);
    EXPECT_THAT(messages_of(with_upstream("least_conn now;\nserver 198.18.0.1:8080;")),
                ElementsAre("invalid number of arguments in \"least_conn\": expected none, got 1"));
}

TEST(Directives, HashWithConsistent) {
    auto r = load(with_upstream("hash $remote_addr consistent;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(clean(r));
    const Upstream& u = r.config->upstreams.at(0);
    EXPECT_EQ(u.method, BalanceMethod::kHash);
    EXPECT_EQ(u.hash_key, "$remote_addr");
    EXPECT_TRUE(u.hash_consistent);
}

TEST(Directives, HashWithoutConsistent) {
    auto r = load(with_upstream("hash $remote_addr$remote_port;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->upstreams.at(0).hash_key, "$remote_addr$remote_port");
    EXPECT_FALSE(r.config->upstreams.at(0).hash_consistent);
}

TEST(Directives, HashRefusesAnUnknownParameter) {
    EXPECT_THAT(messages_of(with_upstream("hash $remote_addr ketama;\nserver 198.18.0.1:8080;")),
                ElementsAre("invalid parameter \"ketama\" in \"hash\": expected \"consistent\""));
}

TEST(Directives, HashRefusesAnUnknownVariable) {
    EXPECT_THAT(messages_of(with_upstream("hash $remote_adr;\nserver 198.18.0.1:8080;")),
                ElementsAre("unknown variable \"$remote_adr\" in \"hash\" — did you mean "
                            "\"$remote_addr\"?"));
}

TEST(Directives, RandomAndRandomTwoLeastConn) {
    auto plain = load(with_upstream("random;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(clean(plain));
    EXPECT_EQ(plain.config->upstreams.at(0).method, BalanceMethod::kRandom);
    EXPECT_FALSE(plain.config->upstreams.at(0).random_two);
    auto two = load(with_upstream("random two least_conn;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(clean(two));
    const Upstream& u = two.config->upstreams.at(0);
    EXPECT_EQ(u.method, BalanceMethod::kRandom);
    EXPECT_TRUE(u.random_two);
    EXPECT_TRUE(u.random_two_least_conn);
}

TEST(Directives, RandomRefusesUnknownParameters) {
    EXPECT_THAT(messages_of(with_upstream("random three;\nserver 198.18.0.1:8080;")),
                ElementsAre("invalid parameter \"three\" in \"random\": expected \"two\""));
    EXPECT_THAT(messages_of(with_upstream("random two most_conn;\nserver 198.18.0.1:8080;")),
                ElementsAre("invalid parameter \"most_conn\" in \"random two\": expected "
                            "\"least_conn\""));
}

TEST(Directives, RedefiningTheBalancingMethodWarns) {
    auto r = load(with_upstream("hash $remote_addr;\nrandom;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(r.ok()) << listing(r);
    EXPECT_THAT(messages(r), ElementsAre("load balancing method redefined: \"random\" replaces "
                                         "\"hash\""));
    EXPECT_EQ(r.config->upstreams.at(0).method, BalanceMethod::kRandom);
}

TEST(Directives, ZoneSetsNameAndSize) {
    auto r = load(with_upstream("zone backends 64k;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->upstreams.at(0).zone, "backends");
    EXPECT_EQ(r.config->upstreams.at(0).zone_size, 64u * 1024);
    auto nosize = load(with_upstream("zone backends;\nserver 198.18.0.1:8080;"));
    ASSERT_TRUE(clean(nosize));
    EXPECT_EQ(nosize.config->upstreams.at(0).zone_size, 0u);
    EXPECT_THAT(messages_of(with_upstream("zone backends 64q;\nserver 198.18.0.1:8080;")),
                ElementsAre("invalid size \"64q\": expected a number optionally followed by k, m "
                            "or g, such as \"16k\" in \"zone\""));
}

TEST(Directives, HealthCheckWithEveryParameter) {
    auto r = load(
        "stream {\n"
        "    match m { send \"PING\\r\\n\"; expect \"+PONG\"; }\n"
        "    upstream u {\n"
        "        zone u 64k;\n"
        "        server 198.18.0.1:8080;\n"
        "        health_check interval=2s jitter=100ms fails=2 passes=3 port=8081 match=m "
        "mandatory persistent;\n"
        "    }\n"
        "    server { listen 443; proxy_pass u; }\n"
        "}\n");
    ASSERT_TRUE(clean(r));
    const HealthCheck& hc = r.config->upstreams.at(0).health_check;
    EXPECT_TRUE(hc.enabled);
    EXPECT_EQ(hc.interval, 2s);
    EXPECT_EQ(hc.jitter, 100ms);
    EXPECT_EQ(hc.fails, 2u);
    EXPECT_EQ(hc.passes, 3u);
    EXPECT_EQ(hc.port, 8081);
    EXPECT_EQ(hc.match, "m");
    EXPECT_TRUE(hc.mandatory);
    EXPECT_TRUE(hc.persistent);
    EXPECT_EQ(hc.loc.line, 6u);
}

TEST(Directives, HealthCheckDefaults) {
    auto r = load(with_upstream("server 198.18.0.1:8080;\nhealth_check;"));
    ASSERT_TRUE(clean(r));
    const HealthCheck& hc = r.config->upstreams.at(0).health_check;
    EXPECT_TRUE(hc.enabled);
    EXPECT_EQ(hc.interval, 5s);
    EXPECT_EQ(hc.jitter, 0ms);
    EXPECT_EQ(hc.fails, 1u);
    EXPECT_EQ(hc.passes, 1u);
    EXPECT_EQ(hc.port, 0);
    EXPECT_TRUE(hc.match.empty());
    EXPECT_FALSE(hc.mandatory);
    EXPECT_FALSE(hc.persistent);
}

TEST(Directives, HealthCheckInServerIsTheNginxPlusPlacement) {
    auto r = load(in_server("health_check interval=10s;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(server(r).health_check.enabled);
    EXPECT_EQ(server(r).health_check.interval, 10s);
}

TEST(Directives, HealthCheckRefusesInvalidParameters) {
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080;\nhealth_check interval=abc;")),
                ElementsAre("invalid time \"abc\": expected a number with units w d h m s ms in "
                            "that order, such as \"1h30m\" in \"health_check\""));
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080;\nhealth_check port=0;")),
                ElementsAre("invalid number \"0\" in \"health_check\": expected an integer from 1 "
                            "to 65535"));
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080;\nhealth_check often;")),
                ElementsAre("invalid health_check parameter \"often\": expected interval=, "
                            "jitter=, fails=, passes=, port=, match=, mandatory or persistent"));
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080;\nhealth_check udp;")),
                ElementsAre("health_check udp: Terminus proxies TCP only"));
}

TEST(Directives, HealthCheckPersistentNeedsMandatory) {
    EXPECT_THAT(messages_of(with_upstream("server 198.18.0.1:8080;\nhealth_check persistent;")),
                ElementsAre("health_check \"persistent\" needs \"mandatory\""));
}

// ---------------------------------------------------------------------------
// match {}

TEST(Directives, MatchSendAndLiteralExpect) {
    auto r = load(in_server("", "    match m { send \"GET / HTTP/1.0\\r\\n\\r\\n\"; expect \"200 OK\"; }"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->matches.size(), 1u);
    const Match& m = r.config->matches[0];
    EXPECT_EQ(m.name, "m");
    EXPECT_EQ(m.send, "GET / HTTP/1.0\r\n\r\n");
    EXPECT_EQ(m.expect, "200 OK");
    EXPECT_FALSE(m.expect_regex);
}

TEST(Directives, MatchExpectRegex) {
    auto r = load(in_server("", "    match m { expect ~ \"^HTTP/1\\.[01] (200|301)\"; }"));
    ASSERT_TRUE(clean(r));
    const Match& m = r.config->matches.at(0);
    EXPECT_TRUE(m.send.empty());
    EXPECT_EQ(m.expect, "^HTTP/1\\.[01] (200|301)");
    EXPECT_TRUE(m.expect_regex);
}

TEST(Directives, MatchExpectRefusesAnOperatorOtherThanTilde) {
    EXPECT_THAT(messages_of(in_server("", "    match m { expect = \"x\"; }")),
                Contains("\"expect\" takes a string, or \"~\" and a regular expression"));
}

TEST(Directives, MatchExpectRefusesAnInvalidRegex) {
    EXPECT_THAT(messages_of(in_server("", "    match m { expect ~ \"(\"; }")),
                ElementsAre("invalid regular expression \"(\": missing closing parenthesis at "
                            "offset 1"));
}

TEST(Directives, MatchSendTakesOneString) {
    EXPECT_THAT(messages_of(in_server("", "    match m { send a b; expect x; }")),
                ElementsAre("invalid number of arguments in \"send\": expected 1, got 2"));
    EXPECT_THAT(messages_of(in_server("", "    match m { send a; send b; }")),
                ElementsAre("\"send\" is duplicate: it is already set at /tmp/dir/t.conf:3"));
}

TEST(Directives, MatchNeedsSendOrExpect) {
    EXPECT_THAT(messages_of(in_server("", "    match m { }")),
                ElementsAre("match \"m\" has neither \"send\" nor \"expect\""));
}

TEST(Directives, MatchDeclaredTwiceIsRefused) {
    EXPECT_THAT(messages_of(in_server("", "    match m { send x; }\n    match m { send y; }")),
                ElementsAre("duplicate match \"m\""));
}

// ---------------------------------------------------------------------------
// map {}

TEST(Directives, MapWithHostnamesDefaultAndRegexKeys) {
    auto r = load(in_server_without_proxy_pass(
        "ssl_preread on;\nproxy_pass $backend;",
        "    map $ssl_preread_server_name $backend {\n"
        "        hostnames;\n"
        "        volatile;\n"
        "        default b;\n"
        "        API.Example.com b;\n"
        "        *.example.org b;\n"
        "        ~^db\\d+\\. b;\n"
        "        ~*^APP b;\n"
        "        \\default b;\n"
        "    }"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->maps.size(), 1u);
    const Map& m = r.config->maps[0];
    EXPECT_EQ(m.source, "$ssl_preread_server_name");
    EXPECT_EQ(m.variable, "backend");
    EXPECT_TRUE(m.hostnames);
    EXPECT_TRUE(m.is_volatile);
    EXPECT_EQ(m.default_value, "b");
    ASSERT_EQ(m.entries.size(), 5u);
    EXPECT_EQ(m.entries[0].key, "api.example.com");
    EXPECT_FALSE(m.entries[0].regex);
    EXPECT_EQ(m.entries[1].key, "*.example.org");
    EXPECT_EQ(m.entries[2].key, "^db\\d+\\.");
    EXPECT_TRUE(m.entries[2].regex);
    EXPECT_FALSE(m.entries[2].caseless);
    EXPECT_EQ(m.entries[3].key, "^APP");
    EXPECT_TRUE(m.entries[3].regex);
    EXPECT_TRUE(m.entries[3].caseless);
    // "\default" is the key "default", not the default value.
    EXPECT_EQ(m.entries[4].key, "default");
    EXPECT_FALSE(m.entries[4].regex);
    for (const MapEntry& e : m.entries) EXPECT_EQ(e.value, "b");
}

TEST(Directives, MapWithoutHostnamesKeepsKeyCase) {
    auto r = load(in_server("", "    map $remote_addr $tag { default x; Key1 y; }"));
    ASSERT_TRUE(clean(r));
    const Map& m = r.config->maps.at(0);
    EXPECT_FALSE(m.hostnames);
    EXPECT_EQ(m.entries.at(0).key, "Key1");
    EXPECT_EQ(m.entries.at(0).value, "y");
}

TEST(Directives, MapRefusesAVariableWithoutDollar) {
    EXPECT_THAT(messages_of(in_server("", "    map $remote_addr tag { default x; }")),
                ElementsAre("invalid variable name \"tag\": the second argument of \"map\" must be "
                            "\"$name\""));
}

TEST(Directives, MapRefusesTwoDefaults) {
    EXPECT_THAT(messages_of(in_server("", "    map $remote_addr $t { default x; default y; }")),
                ElementsAre("duplicate default map parameter"));
}

TEST(Directives, MapRefusesAnEntryWithoutValue) {
    EXPECT_THAT(messages_of(in_server("", "    map $remote_addr $t { default x; lonely; }")),
                ElementsAre("invalid number of the map parameters: write \"KEY VALUE;\""));
}

TEST(Directives, MapRefusesADuplicateKey) {
    EXPECT_THAT(messages_of(in_server("", "    map $remote_addr $t {\n default x;\n a 1;\n a 2;\n }")),
                ElementsAre("conflicting map parameter \"a\", first at line 5"));
}

TEST(Directives, MapRefusesBlocks) {
    EXPECT_THAT(messages_of(in_server("", "    map $remote_addr $t { default x; a { } }")),
                ElementsAre("blocks are not allowed inside \"map\""));
}

// nginx compiles "~" and "~*" keys as two different regular expressions
// (one case-sensitive, one not) and never compares regex keys; they are not
// the same key.
TEST(Directives, MapCaseSensitiveAndCaselessRegexWithOnePatternAreTwoKeys) {
    auto r = load(in_server("", "    map $ssl_preread_server_name $t { default x; ~^api 1; ~*^api 2; }"));
    ASSERT_TRUE(clean(r));
    const Map& m = r.config->maps.at(0);
    ASSERT_EQ(m.entries.size(), 2u);
    EXPECT_FALSE(m.entries[0].caseless);
    EXPECT_TRUE(m.entries[1].caseless);
}

// nginx decides "~" and "default" on the key's text, quoted or not, and its
// documentation asks for quotes around a regex that holds "{", "}" or ";".
TEST(Directives, MapQuotedRegexKeyIsARegex) {
    auto r = load(in_server_without_proxy_pass(
        "ssl_preread on;\nproxy_pass $pool;",
        "    map $ssl_preread_server_name $pool {\n"
        "        \"~^api\\d{2}\\.example\\.com$\" b;\n"
        "        '~*^(?<app>[a-z]{3,})\\.example\\.com$' b;\n"
        "        default b;\n"
        "    }"));
    ASSERT_TRUE(clean(r));
    const Map& m = r.config->maps.at(0);
    ASSERT_EQ(m.entries.size(), 2u);
    EXPECT_TRUE(m.entries[0].regex);
    EXPECT_FALSE(m.entries[0].caseless);
    EXPECT_EQ(m.entries[0].key, "^api\\d{2}\\.example\\.com$");
    EXPECT_TRUE(m.entries[1].regex);
    EXPECT_TRUE(m.entries[1].caseless);
    EXPECT_EQ(m.entries[1].key, "^(?<app>[a-z]{3,})\\.example\\.com$");
}

TEST(Directives, MapQuotedDefaultIsTheDefault) {
    auto r = load(in_server_without_proxy_pass(
        "ssl_preread on;\nproxy_pass $pool;",
        "    map $ssl_preread_server_name $pool { \"default\" b; }"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->maps.at(0).default_value, "b");
    EXPECT_TRUE(r.config->maps.at(0).entries.empty());
}

TEST(Directives, MapRefusesAnInvalidRegexKey) {
    EXPECT_THAT(messages_of(in_server("", "    map $remote_addr $t { default x; ~( y; }")),
                ElementsAre("invalid regular expression \"(\": missing closing parenthesis at "
                            "offset 1"));
}

// ---------------------------------------------------------------------------
// log_format, access_log

TEST(Directives, LogFormatWithJsonEscapingConcatenatesStrings) {
    auto r = load(in_server("",
                            "    log_format main escape=json '{\"addr\":\"$remote_addr\",'\n"
                            "                                '\"status\":$status}';"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->log_formats.size(), 1u);
    const LogFormat& f = r.config->log_formats[0];
    EXPECT_EQ(f.name, "main");
    EXPECT_EQ(f.escape, LogEscape::kJson);
    EXPECT_EQ(f.format, "{\"addr\":\"$remote_addr\",\"status\":$status}");
}

TEST(Directives, LogFormatDefaultEscaping) {
    auto r = load(in_server("", "    log_format basic '$remote_addr $bytes_sent';"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(r.config->log_formats.at(0).escape, LogEscape::kDefault);
    auto none = load(in_server("", "    log_format raw escape=none '$remote_addr';"));
    ASSERT_TRUE(clean(none));
    EXPECT_EQ(none.config->log_formats.at(0).escape, LogEscape::kNone);
}

TEST(Directives, LogFormatRefusesUnknownEscaping) {
    EXPECT_THAT(messages_of(in_server("", "    log_format main escape=xml '$status';")),
                ElementsAre("unknown log format escaping \"xml\": expected default, json or none"));
}

TEST(Directives, LogFormatNeedsAFormatString) {
    EXPECT_THAT(messages_of(in_server("", "    log_format main escape=json;")),
                ElementsAre("\"log_format\" \"main\" has no format string"));
}

TEST(Directives, LogFormatRefusesAnUnknownVariable) {
    EXPECT_THAT(messages_of(in_server("", "    log_format main '$remote_addr $statuss';")),
                ElementsAre("unknown variable \"$statuss\" in \"log_format\" — did you mean "
                            "\"$status\"?"));
}

TEST(Directives, AccessLogWithEveryParameter) {
    auto r = load(in_server(
        "access_log /var/log/terminus/a.log main buffer=32k flush=5s gzip=5 if=$remote_addr;",
        "    log_format main '$remote_addr';"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).access_log.size(), 1u);
    const AccessLog& a = settings(r).access_log[0];
    EXPECT_EQ(a.path, "/var/log/terminus/a.log");
    EXPECT_EQ(a.format, "main");
    EXPECT_EQ(a.buffer, 32u * 1024);
    EXPECT_EQ(a.flush, 5s);
    EXPECT_EQ(a.gzip_level, 5);
    EXPECT_EQ(a.if_condition, "$remote_addr");
    EXPECT_FALSE(settings(r).access_log_off);
}

TEST(Directives, AccessLogGzipWithoutLevelIsLevelOne) {
    auto r = load(in_server("access_log logs/a.log main buffer=4k gzip;",
                            "    log_format main '$remote_addr';"));
    ASSERT_TRUE(clean(r));
    const AccessLog& a = settings(r).access_log.at(0);
    EXPECT_EQ(a.gzip_level, 1);
    EXPECT_EQ(a.path, "/tmp/dir/logs/a.log");
}

TEST(Directives, AccessLogOff) {
    auto r = load(in_server("access_log off;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).access_log_off);
    EXPECT_TRUE(settings(r).access_log.empty());
}

TEST(Directives, AccessLogSeveralInOneBlockAreKept) {
    auto r = load(in_server("access_log /var/log/a.log main;\naccess_log /var/log/b.log main;",
                            "    log_format main '$remote_addr';"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).access_log.size(), 2u);
    EXPECT_EQ(settings(r).access_log[0].path, "/var/log/a.log");
    EXPECT_EQ(settings(r).access_log[1].path, "/var/log/b.log");
}

TEST(Directives, AccessLogRefusesInvalidParameters) {
    const std::string fmt = "    log_format main '$remote_addr';";
    EXPECT_THAT(messages_of(in_server("access_log /var/log/a.log main level=1;", fmt)),
                ElementsAre("invalid access_log parameter \"level=1\": expected buffer=, flush=, "
                            "gzip[=LEVEL] or if="));
    EXPECT_THAT(messages_of(in_server("access_log /var/log/a.log main buffer=4k gzip=10;", fmt)),
                ElementsAre("invalid number \"10\" in \"access_log\": expected an integer from 1 "
                            "to 9"));
    EXPECT_THAT(messages_of(in_server("access_log /var/log/a.log main buffer=4x;", fmt)),
                ElementsAre("invalid size \"4x\": expected a number optionally followed by k, m "
                            "or g, such as \"16k\" in \"access_log\""));
}

TEST(Directives, AccessLogFlushNeedsBuffer) {
    EXPECT_THAT(messages_of(in_server("access_log /var/log/a.log main flush=1s;",
                                      "    log_format main '$remote_addr';")),
                ElementsAre("\"flush\" needs \"buffer\" in \"access_log\""));
}

TEST(Directives, AccessLogNeedsAFormat) {
    EXPECT_THAT(messages_of(in_server("access_log /var/log/a.log;")),
                ElementsAre("\"access_log\" needs a path and a log_format name: access_log PATH "
                            "FORMAT [buffer=SIZE] [flush=TIME] [gzip[=LEVEL]] [if=CONDITION]"));
}

TEST(Directives, AccessLogOffTakesNoParameters) {
    EXPECT_THAT(messages_of(in_server("access_log off main;")),
                ElementsAre("\"access_log off\" takes no other parameters"));
}

TEST(Directives, AccessLogRefusesSyslogAndVariablePaths) {
    const std::string fmt = "    log_format main '$remote_addr';";
    EXPECT_THAT(messages_of(in_server("access_log syslog:server=10.0.0.1 main;", fmt)),
                ElementsAre("access_log to syslog is not supported: write to a file, which "
                            "terminus-mgmtd appends to"));
    EXPECT_THAT(messages_of(in_server("access_log /var/log/$remote_addr.log main;", fmt)),
                ElementsAre("\"access_log\" does not take variables in Terminus: write the value "
                            "itself"));
}

// ---------------------------------------------------------------------------
// limit_conn_zone, limit_conn

TEST(Directives, LimitConnZoneAndLimitConn) {
    auto r = load(in_server("limit_conn addr 10;",
                            "    limit_conn_zone $binary_remote_addr zone=addr:10m;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->limit_conn_zones.size(), 1u);
    const LimitConnZone& z = r.config->limit_conn_zones[0];
    EXPECT_EQ(z.key, "$binary_remote_addr");
    EXPECT_EQ(z.name, "addr");
    EXPECT_EQ(z.size, 10u * 1024 * 1024);
    ASSERT_EQ(settings(r).limit_conn.size(), 1u);
    EXPECT_EQ(settings(r).limit_conn[0].zone, "addr");
    EXPECT_EQ(settings(r).limit_conn[0].number, 10u);
}

TEST(Directives, LimitConnZoneRefusesAMalformedZone) {
    EXPECT_THAT(messages_of(in_server("", "    limit_conn_zone $remote_addr zone=addr;")),
                ElementsAre("invalid zone \"zone=addr\": write zone=NAME:SIZE, such as "
                            "zone=addr:10m"));
}

TEST(Directives, LimitConnZoneRefusesATinyZone) {
    EXPECT_THAT(messages_of(in_server("", "    limit_conn_zone $remote_addr zone=addr:16k;")),
                ElementsAre("zone \"addr\" is too small: use 32k or more"));
}

TEST(Directives, LimitConnZoneDeclaredTwiceIsRefused) {
    EXPECT_THAT(messages_of(in_server("",
                                      "    limit_conn_zone $remote_addr zone=addr:1m;\n"
                                      "    limit_conn_zone $server_addr zone=addr:1m;")),
                ElementsAre("limit_conn_zone \"addr\" is already declared at line 3"));
}

TEST(Directives, LimitConnRefusesZeroConnections) {
    EXPECT_THAT(messages_of(in_server("limit_conn addr 0;",
                                      "    limit_conn_zone $remote_addr zone=addr:1m;")),
                ElementsAre("invalid number \"0\" in \"limit_conn\": expected an integer from 1 "
                            "to 65535"));
}

TEST(Directives, LimitConnTwiceForOneZoneIsRefused) {
    EXPECT_THAT(messages_of(in_server("limit_conn addr 1;\nlimit_conn addr 2;",
                                      "    limit_conn_zone $remote_addr zone=addr:1m;")),
                ElementsAre("duplicate limit_conn for zone \"addr\""));
}

// ---------------------------------------------------------------------------
// allow, deny

TEST(Directives, ProxyProtocolVersionAndTimeoutDefaults) {
    auto r = load(minimal());
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_protocol_version, 1);
    EXPECT_EQ(settings(r).proxy_protocol_timeout, 30s);
    EXPECT_TRUE(settings(r).set_real_ip_from.empty());
}

TEST(Directives, ProxyProtocolVersionTakesOneOrTwo) {
    auto r = load(in_server("proxy_protocol on;\nproxy_protocol_version 2;\nproxy_protocol_timeout 5s;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).proxy_protocol);
    EXPECT_EQ(settings(r).proxy_protocol_version, 2);
    EXPECT_EQ(settings(r).proxy_protocol_timeout, 5s);
    EXPECT_THAT(messages_of(in_server("proxy_protocol_version 3;")),
                ElementsAre("invalid value \"3\" in \"proxy_protocol_version\": expected 1 or 2"));
}

TEST(Directives, SetRealIpFromListsPrefixesAndAServerReplacesTheStreams) {
    auto r = load(in_server("set_real_ip_from 198.18.0.1;\nset_real_ip_from 10.0.0.0/8;",
                            "    set_real_ip_from 192.0.2.0/24;"));
    ASSERT_TRUE(clean(r));
    const auto& list = settings(r).set_real_ip_from;
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(ipv4_to_string(list[0].addr), "198.18.0.1");
    EXPECT_EQ(list[0].len, 32);
    EXPECT_EQ(ipv4_to_string(list[1].addr), "10.0.0.0");
    EXPECT_EQ(list[1].len, 8);
    EXPECT_THAT(messages_of(in_server("set_real_ip_from 10.0.0.0/40;")),
                ElementsAre("invalid parameter \"10.0.0.0/40\" in \"set_real_ip_from\": expected an IPv4 "
                            "address or ADDRESS/LEN"));
}

TEST(Directives, AllowAndDenyKeepTheirOrder) {
    auto r = load(in_server("allow 198.18.0.0/24;\nallow 10.1.2.3;\ndeny all;"));
    ASSERT_TRUE(clean(r));
    const auto& rules = settings(r).access_rules;
    ASSERT_EQ(rules.size(), 3u);
    EXPECT_TRUE(rules[0].allow);
    EXPECT_EQ(ipv4_to_string(rules[0].prefix.addr), "198.18.0.0");
    EXPECT_EQ(rules[0].prefix.len, 24);
    EXPECT_TRUE(rules[1].allow);
    EXPECT_EQ(ipv4_to_string(rules[1].prefix.addr), "10.1.2.3");
    EXPECT_EQ(rules[1].prefix.len, 32);
    EXPECT_FALSE(rules[2].allow);
    EXPECT_EQ(rules[2].prefix.addr, 0u);
    EXPECT_EQ(rules[2].prefix.len, 0);
}

// A server that writes "allow A; deny all;" lets A in and keeps everyone
// else out: the allow must not be dropped when the first deny is read.
TEST(Directives, OneAllowThenDenyAllKeepsBothRules) {
    auto r = load(in_server("allow 10.0.0.0/8;\ndeny all;"));
    ASSERT_TRUE(clean(r));
    const auto& rules = settings(r).access_rules;
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_TRUE(rules[0].allow);
    EXPECT_EQ(rules[0].prefix.len, 8);
    EXPECT_FALSE(rules[1].allow);
    EXPECT_EQ(rules[1].prefix.len, 0);
}

// The reverse: "deny A; allow all;" must keep A out.
TEST(Directives, OneDenyThenAllowAllKeepsBothRules) {
    auto r = load(in_server("deny 198.18.0.66;\nallow all;"));
    ASSERT_TRUE(clean(r));
    const auto& rules = settings(r).access_rules;
    ASSERT_EQ(rules.size(), 2u);
    EXPECT_FALSE(rules[0].allow);
    EXPECT_EQ(ipv4_to_string(rules[0].prefix.addr), "198.18.0.66");
    EXPECT_TRUE(rules[1].allow);
}

TEST(Directives, OneAllowThenDenyAllInStreamIsInheritedWhole) {
    auto r = load(in_server("", "    allow 10.0.0.0/8;\n    deny all;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).access_rules.size(), 2u);
}

TEST(Directives, AllowWithLowBitsSetWarnsAndMasksThem) {
    auto r = load(in_server("allow 10.0.0.1/8;"));
    ASSERT_TRUE(r.ok()) << listing(r);
    EXPECT_THAT(messages(r), ElementsAre("low address bits of 10.0.0.1/8 are meaningless"));
    EXPECT_EQ(r.diagnostics.at(0).severity, Severity::kWarning);
    const auto& rules = settings(r).access_rules;
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(ipv4_to_string(rules[0].prefix.addr), "10.0.0.0");
    EXPECT_EQ(rules[0].prefix.len, 8);
}

TEST(Directives, AllowRefusesAnInvalidAddress) {
    EXPECT_THAT(messages_of(in_server("allow 10.0.0.256;")),
                ElementsAre("invalid parameter \"10.0.0.256\" in \"allow\": expected an IPv4 "
                            "address, ADDRESS/LEN or all"));
    EXPECT_THAT(messages_of(in_server("deny 10.0.0.0/33;")),
                ElementsAre("invalid parameter \"10.0.0.0/33\" in \"deny\": expected an IPv4 "
                            "address, ADDRESS/LEN or all"));
}

TEST(Directives, AllowRefusesIpv6AndUnix) {
    EXPECT_THAT(messages_of(in_server("allow ::1;")),
                ElementsAre("\"allow\" \"::1\": only IPv4 addresses and prefixes are supported"));
    EXPECT_THAT(messages_of(in_server("deny unix:;")),
                ElementsAre("\"deny\" \"unix:\": only IPv4 addresses and prefixes are supported"));
}

// ---------------------------------------------------------------------------
// Inheritance of list directives: a server that writes its own replaces the
// stream's list instead of appending to it.

TEST(Directives, AccessRulesInheritedFromStream) {
    auto r = load(in_server("", "    deny 198.18.0.66;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).access_rules.size(), 1u);
    EXPECT_FALSE(settings(r).access_rules[0].allow);
}

TEST(Directives, AccessRulesInServerReplaceTheStreamList) {
    auto r = load(in_server("deny 192.168.0.0/16;", "    allow 10.0.0.0/8;\n    allow 10.1.0.0/16;"));
    ASSERT_TRUE(clean(r));
    const auto& rules = settings(r).access_rules;
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_FALSE(rules[0].allow);
    EXPECT_EQ(ipv4_to_string(rules[0].prefix.addr), "192.168.0.0");
}

TEST(Directives, SslConfCommandInServerReplacesTheStreamList) {
    auto r = load(in_server("ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;",
                            "    ssl_conf_command Options PrioritizeChaCha;\n"
                            "    ssl_conf_command Groups X25519;"));
    ASSERT_TRUE(clean(r));
    const auto& cmds = settings(r).ssl_conf_command;
    ASSERT_EQ(cmds.size(), 1u);
    EXPECT_EQ(cmds[0].name, "Ciphersuites");
    EXPECT_EQ(cmds[0].value, "TLS_AES_128_GCM_SHA256");
}

TEST(Directives, SslConfCommandInheritedFromStream) {
    auto r = load(in_server("", "    ssl_conf_command Options PrioritizeChaCha;\n"
                                "    ssl_conf_command Groups X25519;"));
    ASSERT_TRUE(clean(r));
    const auto& cmds = settings(r).ssl_conf_command;
    ASSERT_EQ(cmds.size(), 2u);
    EXPECT_EQ(cmds[0].name, "Options");
    EXPECT_EQ(cmds[1].name, "Groups");
}

TEST(Directives, AccessLogInServerReplacesTheStreamList) {
    auto r = load(in_server("access_log /var/log/server.log main;",
                            "    log_format main '$remote_addr';\n"
                            "    access_log /var/log/stream.log main;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).access_log.size(), 1u);
    EXPECT_EQ(settings(r).access_log[0].path, "/var/log/server.log");
}

TEST(Directives, AccessLogOffInServerOverridesStreamLogs) {
    auto r = load(in_server("access_log off;", "    log_format main '$remote_addr';\n"
                                               "    access_log /var/log/stream.log main;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).access_log_off);
    EXPECT_TRUE(settings(r).access_log.empty());
}

TEST(Directives, AccessLogInServerOverridesStreamOff) {
    auto r = load(in_server("access_log /var/log/server.log main;",
                            "    log_format main '$remote_addr';\n    access_log off;"));
    ASSERT_TRUE(clean(r));
    EXPECT_FALSE(settings(r).access_log_off);
    ASSERT_EQ(settings(r).access_log.size(), 1u);
}

TEST(Directives, LimitConnInServerReplacesTheStreamList) {
    auto r = load(in_server("limit_conn perserver 100;",
                            "    limit_conn_zone $remote_addr zone=addr:1m;\n"
                            "    limit_conn_zone $server_addr zone=perserver:1m;\n"
                            "    limit_conn addr 5;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).limit_conn.size(), 1u);
    EXPECT_EQ(settings(r).limit_conn[0].zone, "perserver");
}

TEST(Directives, StreamSettingsWrittenAfterTheServersAreInherited) {
    // nginx merges once the whole stream{} is read; so does Terminus.
    auto r = load("stream {\n"
                  "    upstream b { server 198.18.0.1:8080; }\n"
                  "    server { listen 443; proxy_pass b; }\n"
                  "    proxy_timeout 5s;\n"
                  "}\n");
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_timeout, 5s);
}

TEST(Directives, EachServerInheritsIndependently) {
    auto r = load("stream {\n"
                  "    upstream b { server 198.18.0.1:8080; }\n"
                  "    proxy_timeout 5s;\n"
                  "    server { listen 443; proxy_timeout 1s; proxy_pass b; }\n"
                  "    server { listen 444; proxy_pass b; }\n"
                  "}\n");
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(r.config->servers.size(), 2u);
    EXPECT_EQ(r.config->servers[0].settings.proxy_timeout, 1s);
    EXPECT_EQ(r.config->servers[1].settings.proxy_timeout, 5s);
}

// ---------------------------------------------------------------------------
// Server-side TLS

TEST(Directives, SslCertificatesPairWithKeysInOrder) {
    auto r = load(in_server_without_proxy_pass(
        "listen 8443 ssl;\n"
        "ssl_certificate " + cert("rsa.crt") + ";\n"
        "ssl_certificate_key " + cert("rsa.key") + ";\n"
        "ssl_certificate " + cert("ecdsa.crt") + ";\n"
        "ssl_certificate_key " + cert("ecdsa.key") + ";\n"
        "proxy_pass b;"));
    ASSERT_TRUE(clean(r));
    const auto& pairs = settings(r).ssl_certificates;
    ASSERT_EQ(pairs.size(), 2u);
    EXPECT_EQ(pairs[0].certificate, cert("rsa.crt"));
    EXPECT_EQ(pairs[0].key, cert("rsa.key"));
    EXPECT_EQ(pairs[1].certificate, cert("ecdsa.crt"));
    EXPECT_EQ(pairs[1].key, cert("ecdsa.key"));
    EXPECT_EQ(pairs[0].certificate_loc.line, 7u);
    EXPECT_EQ(pairs[0].key_loc.line, 8u);
}

TEST(Directives, SslCertificateInheritedFromStream) {
    auto r = load(in_server_without_proxy_pass(
        "listen 8443 ssl;\nproxy_pass b;",
        "    ssl_certificate " + cert("server.crt") + ";\n    ssl_certificate_key " +
            cert("server.key") + ";"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).ssl_certificates.size(), 1u);
    EXPECT_EQ(settings(r).ssl_certificates[0].certificate, cert("server.crt"));
}

TEST(Directives, SslCertificateInServerReplacesTheStreamPair) {
    auto r = load(in_server_without_proxy_pass(
        "listen 8443 ssl;\n"
        "ssl_certificate " + cert("ecdsa.crt") + ";\n"
        "ssl_certificate_key " + cert("ecdsa.key") + ";\n"
        "proxy_pass b;",
        "    ssl_certificate " + cert("server.crt") + ";\n    ssl_certificate_key " +
            cert("server.key") + ";"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).ssl_certificates.size(), 1u);
    EXPECT_EQ(settings(r).ssl_certificates[0].certificate, cert("ecdsa.crt"));
}

TEST(Directives, RelativeCertificatePathsResolveAgainstTheConfigDirectory) {
    LoadOptions no_files;
    no_files.check_files = false;
    auto r = load_string(in_server_without_proxy_pass("listen 8443 ssl;\n"
                                                      "ssl_certificate certs/a.crt;\n"
                                                      "ssl_certificate_key ../keys/a.key;\n"
                                                      "proxy_pass b;"),
                         kName, no_files);
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).ssl_certificates.size(), 1u);
    EXPECT_EQ(settings(r).ssl_certificates[0].certificate, "/tmp/dir/certs/a.crt");
    EXPECT_EQ(settings(r).ssl_certificates[0].key, "/tmp/keys/a.key");
}

TEST(Directives, SslCertificateRefusesVariables) {
    EXPECT_THAT(messages_of(in_server("ssl_certificate /etc/$ssl_server_name.crt;")),
                ElementsAre("\"ssl_certificate\" with variables is not supported by Terminus: "
                            "write one server{} per name with its own certificate"));
}

TEST(Directives, SslCertificateKeyRefusesEngineKeys) {
    EXPECT_THAT(messages_of(in_server("ssl_certificate_key engine:pkcs11:id_45;")),
                ElementsAre("\"engine:\" keys are not supported: give a PEM file"));
    EXPECT_THAT(messages_of(in_server("ssl_certificate_key data:-----BEGIN;")),
                ElementsAre("\"data:\" keys are not supported: give a PEM file"));
}

TEST(Directives, SslPasswordFileSetsThePath) {
    auto r = load(in_server("ssl_password_file " + cert("password.txt") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_password_file, cert("password.txt"));
}

TEST(Directives, SslProtocolsSetsTheMask) {
    auto r = load(in_server("ssl_protocols TLSv1.3;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_protocols, static_cast<uint8_t>(TlsVersion::kTls13));
    auto p = load(in_server("proxy_ssl_protocols TLSv1.2;"));
    ASSERT_TRUE(clean(p));
    EXPECT_EQ(settings(p).proxy_ssl_protocols, static_cast<uint8_t>(TlsVersion::kTls12));
}

TEST(Directives, SslProtocolsWithDeprecatedVersionsWarnsAndEnablesThem) {
    auto r = load(in_server("ssl_protocols TLSv1 TLSv1.1 TLSv1.2;"));
    ASSERT_TRUE(r.ok()) << listing(r);
    EXPECT_THAT(messages(r),
                ElementsAre("TLSv1 is deprecated (RFC 8996); it is enabled because it is listed, "
                            "and OpenSSL's security level is lowered for it alone",
                            "TLSv1.1 is deprecated (RFC 8996); it is enabled because it is "
                            "listed, and OpenSSL's security level is lowered for it alone"));
    EXPECT_EQ(tls_protocols_to_string(settings(r).ssl_protocols), "TLSv1 TLSv1.1 TLSv1.2");
}

TEST(Directives, SslProtocolsRefusesAnUnknownVersion) {
    EXPECT_THAT(messages_of(in_server("ssl_protocols TLSv1.2 TLSv2;")),
                ElementsAre("unknown protocol \"TLSv2\" in \"ssl_protocols\": expected TLSv1.2, "
                            "TLSv1.3 (or the deprecated TLSv1, TLSv1.1)"));
}

TEST(Directives, SslCiphersSetsTheList) {
    auto r = load(in_server("ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256;\n"
                            "proxy_ssl_ciphers HIGH;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_ciphers, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256");
    EXPECT_EQ(settings(r).proxy_ssl_ciphers, "HIGH");
}

TEST(Directives, SslCiphersRefusesAListOpensslDoesNotKnow) {
    EXPECT_THAT(messages_of(in_server("proxy_ssl_ciphers NOT-A-CIPHER;")),
                ElementsAre("no cipher in \"NOT-A-CIPHER\" is known to OpenSSL (TLS 1.3 suites go "
                            "in ssl_conf_command Ciphersuites ...)"));
}

TEST(Directives, SslConfCommandRecordsNameAndValue) {
    auto r = load(in_server("ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;\n"
                            "proxy_ssl_conf_command Groups X25519;"));
    ASSERT_TRUE(clean(r));
    ASSERT_EQ(settings(r).ssl_conf_command.size(), 1u);
    EXPECT_EQ(settings(r).ssl_conf_command[0].name, "Ciphersuites");
    EXPECT_EQ(settings(r).ssl_conf_command[0].value, "TLS_AES_128_GCM_SHA256");
    ASSERT_EQ(settings(r).proxy_ssl_conf_command.size(), 1u);
    EXPECT_EQ(settings(r).proxy_ssl_conf_command[0].name, "Groups");
}

TEST(Directives, SslConfCommandNeedsNameAndValue) {
    EXPECT_THAT(messages_of(in_server("ssl_conf_command Ciphersuites;")),
                ElementsAre("invalid number of arguments in \"ssl_conf_command\": expected 2, "
                            "got 1"));
}

TEST(Directives, SslEcdhCurveSetsTheGroups) {
    auto r = load(in_server("ssl_ecdh_curve X25519:prime256v1;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_ecdh_curve, "X25519:prime256v1");
    EXPECT_THAT(messages_of(in_server("ssl_ecdh_curve nosuchcurve;")),
                ElementsAre("unknown curve in \"nosuchcurve\": expected auto or a list such as "
                            "X25519:prime256v1:secp384r1"));
}

TEST(Directives, SslDhparamSetsThePath) {
    auto r = load(in_server("ssl_dhparam " + cert("dhparam.pem") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_dhparam, cert("dhparam.pem"));
    EXPECT_THAT(messages_of(in_server("ssl_dhparam /etc/$x.pem;")),
                ElementsAre("\"ssl_dhparam\" does not take variables in Terminus: write the value "
                            "itself"));
}

TEST(Directives, SslSessionCacheOff) {
    auto r = load(in_server("ssl_session_cache off;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).ssl_session_cache.off);
    EXPECT_FALSE(settings(r).ssl_session_cache.builtin);
}

TEST(Directives, SslSessionCacheNone) {
    auto r = load(in_server("ssl_session_cache none;"));
    ASSERT_TRUE(clean(r));
    EXPECT_FALSE(settings(r).ssl_session_cache.off);
    EXPECT_FALSE(settings(r).ssl_session_cache.builtin);
    EXPECT_TRUE(settings(r).ssl_session_cache.shared_name.empty());
}

TEST(Directives, SslSessionCacheBuiltinDefaultsToTwentyThousandSessions) {
    auto r = load(in_server("ssl_session_cache builtin;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).ssl_session_cache.builtin);
    EXPECT_EQ(settings(r).ssl_session_cache.builtin_size, 20480u);
}

TEST(Directives, SslSessionCacheBuiltinWithSize) {
    auto r = load(in_server("ssl_session_cache builtin:1000;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).ssl_session_cache.builtin);
    EXPECT_EQ(settings(r).ssl_session_cache.builtin_size, 1000u);
}

TEST(Directives, SslSessionCacheShared) {
    auto r = load(in_server("ssl_session_cache shared:SSL:20m;"));
    ASSERT_TRUE(clean(r));
    EXPECT_FALSE(settings(r).ssl_session_cache.builtin);
    EXPECT_EQ(settings(r).ssl_session_cache.shared_name, "SSL");
    EXPECT_EQ(settings(r).ssl_session_cache.shared_size, 20u * 1024 * 1024);
}

TEST(Directives, SslSessionCacheBuiltinAndSharedTogether) {
    auto r = load(in_server("ssl_session_cache builtin:1000 shared:SSL:20m;"));
    ASSERT_TRUE(clean(r));
    const SessionCache& c = settings(r).ssl_session_cache;
    EXPECT_TRUE(c.builtin);
    EXPECT_EQ(c.builtin_size, 1000u);
    EXPECT_EQ(c.shared_name, "SSL");
    EXPECT_EQ(c.shared_size, 20u * 1024 * 1024);
}

TEST(Directives, SslSessionCacheNoneWithShared) {
    auto r = load(in_server("ssl_session_cache none shared:SSL:1m;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_session_cache.shared_name, "SSL");
}

TEST(Directives, SslSessionCacheOffCannotBeCombined) {
    EXPECT_THAT(messages_of(in_server("ssl_session_cache off shared:SSL:1m;")),
                ElementsAre("\"ssl_session_cache off\" cannot be combined with other caches"));
}

TEST(Directives, SslSessionCacheRefusesMalformedValues) {
    EXPECT_THAT(messages_of(in_server("ssl_session_cache shared:SSL;")),
                ElementsAre("invalid session cache \"shared:SSL\": write shared:NAME:SIZE, such "
                            "as shared:SSL:20m"));
    EXPECT_THAT(messages_of(in_server("ssl_session_cache shared:SSL:16k;")),
                ElementsAre("session cache \"SSL\" is too small: use 32k or more (1m holds about "
                            "4000 sessions)"));
    EXPECT_THAT(messages_of(in_server("ssl_session_cache builtin:0;")),
                ElementsAre("invalid number \"0\" in \"ssl_session_cache\": expected an integer "
                            "from 1 to 4294967295"));
    EXPECT_THAT(messages_of(in_server("ssl_session_cache memcached;")),
                ElementsAre("invalid session cache \"memcached\": expected off, none, builtin[:N] "
                            "or shared:NAME:SIZE"));
}

TEST(Directives, SslSessionCacheInheritedFromStream) {
    auto r = load(in_server("", "    ssl_session_cache shared:SSL:10m;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_session_cache.shared_name, "SSL");
    EXPECT_EQ(settings(r).ssl_session_cache.shared_size, 10u * 1024 * 1024);
}

// nginx merges the shared zone apart from the builtin cache
// (ngx_stream_ssl_merge_conf: "if (conf->shm_zone == NULL) conf->shm_zone =
// prev->shm_zone"), so a server that writes only "builtin" keeps the shared
// cache of stream{}; so does "none" (it only sets the built-in part), and
// only "off" turns every cache off.
TEST(Directives, SslSessionCacheBuiltinInServerKeepsTheSharedCacheOfStream) {
    auto r = load(in_server("ssl_session_cache builtin:1000;",
                            "    ssl_session_cache shared:SSL:10m;"));
    ASSERT_TRUE(clean(r));
    const SessionCache& c = settings(r).ssl_session_cache;
    EXPECT_TRUE(c.builtin);
    EXPECT_EQ(c.builtin_size, 1000u);
    EXPECT_EQ(c.shared_name, "SSL");
    EXPECT_EQ(c.shared_size, 10u * 1024 * 1024);
}

TEST(Directives, SslSessionCacheNoneInServerKeepsTheSharedCacheOfStream) {
    auto r = load(in_server("ssl_session_cache none;", "    ssl_session_cache shared:SSL:10m;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_session_cache.shared_name, "SSL");
    EXPECT_FALSE(settings(r).ssl_session_cache.off);
}

TEST(Directives, SslSessionCacheOffInServerDropsEveryCache) {
    auto r = load(in_server("ssl_session_cache off;", "    ssl_session_cache shared:SSL:10m;"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).ssl_session_cache.off);
    EXPECT_TRUE(settings(r).ssl_session_cache.shared_name.empty());
}

TEST(Directives, SslSessionTicketKeysAreListedInOrder) {
    auto r = load(in_server("ssl_session_ticket_key " + cert("ticket80.key") +
                            ";\nssl_session_ticket_key " + cert("ticket48.key") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_THAT(settings(r).ssl_session_ticket_key,
                ElementsAre(cert("ticket80.key"), cert("ticket48.key")));
}

TEST(Directives, SslSessionTicketKeyInServerReplacesTheStreamList) {
    auto r = load(in_server("ssl_session_ticket_key " + cert("ticket48.key") + ";",
                            "    ssl_session_ticket_key " + cert("ticket80.key") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_THAT(settings(r).ssl_session_ticket_key, ElementsAre(cert("ticket48.key")));
}

TEST(Directives, SslSessionTicketKeyRefusesVariables) {
    EXPECT_THAT(messages_of(in_server("ssl_session_ticket_key /etc/$x.key;")),
                ElementsAre("\"ssl_session_ticket_key\" does not take variables in Terminus: "
                            "write the value itself"));
}

TEST(Directives, SslVerifyClientValues) {
    const std::string ca = "ssl_client_certificate " + cert("client-ca.crt") + ";\n";
    auto on = load(in_server(ca + "ssl_verify_client on;"));
    ASSERT_TRUE(clean(on));
    EXPECT_EQ(settings(on).ssl_verify_client, VerifyClient::kOn);
    auto optional = load(in_server(ca + "ssl_verify_client optional;"));
    ASSERT_TRUE(clean(optional));
    EXPECT_EQ(settings(optional).ssl_verify_client, VerifyClient::kOptional);
    auto no_ca = load(in_server("ssl_verify_client optional_no_ca;"));
    ASSERT_TRUE(clean(no_ca));
    EXPECT_EQ(settings(no_ca).ssl_verify_client, VerifyClient::kOptionalNoCa);
    auto off = load(in_server("ssl_verify_client off;"));
    ASSERT_TRUE(clean(off));
    EXPECT_EQ(settings(off).ssl_verify_client, VerifyClient::kOff);
    EXPECT_THAT(messages_of(in_server("ssl_verify_client maybe;")),
                ElementsAre("invalid value \"maybe\" in \"ssl_verify_client\": expected on, off, "
                            "optional or optional_no_ca"));
}

TEST(Directives, CaAndCrlFilesSetTheirPaths) {
    auto r = load(in_server("ssl_client_certificate " + cert("client-ca.crt") + ";\n" +
                            "ssl_trusted_certificate " + cert("ca.crt") + ";\n" +
                            "ssl_crl " + cert("crl.pem") + ";\n" +
                            "proxy_ssl_trusted_certificate " + cert("other-ca.crt") + ";\n" +
                            "proxy_ssl_crl " + cert("crl.pem") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).ssl_client_certificate, cert("client-ca.crt"));
    EXPECT_EQ(settings(r).ssl_trusted_certificate, cert("ca.crt"));
    EXPECT_EQ(settings(r).ssl_crl, cert("crl.pem"));
    EXPECT_EQ(settings(r).proxy_ssl_trusted_certificate, cert("other-ca.crt"));
    EXPECT_EQ(settings(r).proxy_ssl_crl, cert("crl.pem"));
}

TEST(Directives, CaFilesRefuseVariables) {
    EXPECT_THAT(messages_of(in_server("ssl_client_certificate /etc/$x.crt;")),
                ElementsAre("\"ssl_client_certificate\" does not take variables in Terminus: "
                            "write the value itself"));
    EXPECT_THAT(messages_of(in_server("proxy_ssl_crl /etc/$x.pem;")),
                ElementsAre("\"proxy_ssl_crl\" does not take variables in Terminus: write the "
                            "value itself"));
}

TEST(Directives, SslAlpnListsProtocols) {
    auto r = load(in_server("ssl_alpn h2 http/1.1;\nproxy_ssl_alpn postgresql;"));
    ASSERT_TRUE(clean(r));
    EXPECT_THAT(settings(r).ssl_alpn, ElementsAre("h2", "http/1.1"));
    EXPECT_THAT(settings(r).proxy_ssl_alpn, ElementsAre("postgresql"));
}

TEST(Directives, SslAlpnRefusesAnEmptyName) {
    EXPECT_THAT(messages_of(in_server("ssl_alpn h2 \"\";")),
                ElementsAre("ALPN protocol names are 1 to 255 bytes long (RFC 7301)"));
    EXPECT_THAT(messages_of(in_server("proxy_ssl_alpn " + std::string(256, 'a') + ";")),
                ElementsAre("ALPN protocol names are 1 to 255 bytes long (RFC 7301)"));
}

TEST(Directives, SslStaplingFileSetsThePath) {
    auto r = load(in_server("ssl_stapling on;\nssl_stapling_file " + cert("ocsp.der") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).ssl_stapling);
    EXPECT_EQ(settings(r).ssl_stapling_file, cert("ocsp.der"));
}

// ---------------------------------------------------------------------------
// Upstream-side TLS

TEST(Directives, ProxySslClientCertificateAndKey) {
    auto r = load(in_server("proxy_ssl on;\n"
                            "proxy_ssl_certificate " + cert("client.crt") + ";\n"
                            "proxy_ssl_certificate_key " + cert("client.key") + ";\n"
                            "proxy_ssl_password_file " + cert("password.txt") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).proxy_ssl);
    EXPECT_EQ(settings(r).proxy_ssl_certificate, cert("client.crt"));
    EXPECT_EQ(settings(r).proxy_ssl_certificate_key, cert("client.key"));
    EXPECT_EQ(settings(r).proxy_ssl_password_file, cert("password.txt"));
}

TEST(Directives, ProxySslCertificateRefusesVariables) {
    EXPECT_THAT(messages_of(in_server("proxy_ssl_certificate /etc/$x.crt;\n"
                                      "proxy_ssl_certificate_key /etc/x.key;")),
                Contains("\"proxy_ssl_certificate\" with variables is not supported by Terminus"));
}

TEST(Directives, ProxySslKeyAndPasswordFileRefuseVariables) {
    EXPECT_THAT(messages_of(in_server("proxy_ssl_certificate_key /etc/$x.key;")),
                ElementsAre("\"proxy_ssl_certificate_key\" with variables is not supported by "
                            "Terminus"));
    EXPECT_THAT(messages_of(in_server("proxy_ssl_password_file /etc/$x;")),
                ElementsAre("\"proxy_ssl_password_file\" with variables is not supported by "
                            "Terminus"));
}

TEST(Directives, ProxySslVerifyWithTrustedCertificate) {
    auto r = load(in_server("proxy_ssl on;\nproxy_ssl_verify on;\nproxy_ssl_verify_depth 2;\n"
                            "proxy_ssl_trusted_certificate " + cert("ca.crt") + ";"));
    ASSERT_TRUE(clean(r));
    EXPECT_TRUE(settings(r).proxy_ssl_verify);
    EXPECT_EQ(settings(r).proxy_ssl_verify_depth, 2u);
    EXPECT_EQ(settings(r).proxy_ssl_trusted_certificate, cert("ca.crt"));
}

TEST(Directives, ProxySslNameTakesAValueWithVariables) {
    auto r = load(in_server("proxy_ssl_name backend.internal;"));
    ASSERT_TRUE(clean(r));
    EXPECT_EQ(settings(r).proxy_ssl_name, "backend.internal");
    auto v = load(in_server("proxy_ssl_name $ssl_preread_server_name;"));
    ASSERT_TRUE(clean(v));
    EXPECT_EQ(settings(v).proxy_ssl_name, "$ssl_preread_server_name");
    EXPECT_THAT(messages_of(in_server("proxy_ssl_name $ssl_server_nam;")),
                ElementsAre("unknown variable \"$ssl_server_nam\" in \"proxy_ssl_name\" — did you "
                            "mean \"$ssl_server_name\"?"));
}

}  // namespace
}  // namespace terminus::config
