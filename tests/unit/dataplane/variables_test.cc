// Variables, expressions and map {} evaluated as nginx evaluates them.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "config/config.h"
#include "dataplane/proxy/variables.h"

namespace terminus::dataplane::proxy {
namespace {

std::shared_ptr<const config::Config> load(const std::string& stream_body) {
    const std::string text = "stream {\n" + stream_body + "\n}\n";
    config::LoadResult r = config::load_string(text, "/tmp/dir/t.conf", config::LoadOptions{.check_files = false});
    std::string errors;
    for (const auto& d : r.diagnostics) {
        if (d.severity == config::Severity::kError) errors += d.to_string() + "\n";
    }
    EXPECT_TRUE(r.ok()) << errors;
    return r.config;
}

std::unique_ptr<Maps> build(const config::Config& cfg) {
    auto m = Maps::build(cfg);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error());
    return m.ok() ? std::move(*m) : nullptr;
}

ClientHelloInfo hello(std::string_view name, std::string_view alpn = "", const char* protocol = "TLSv1.3") {
    ClientHelloInfo h;
    std::memcpy(h.server_name_buf, name.data(), name.size());
    h.server_name_len = static_cast<uint8_t>(name.size());
    std::memcpy(h.alpn_buf, alpn.data(), alpn.size());
    h.alpn_len = static_cast<uint8_t>(alpn.size());
    h.protocol_name = protocol;
    return h;
}

std::string eval(const Expression& e, const SessionVars& v) {
    char buf[512];
    const size_t n = e.evaluate(v, buf, sizeof buf);
    EXPECT_LE(n, sizeof buf);
    return std::string(buf, std::min(n, sizeof buf));
}

// Map variable NAME for a session whose preread saw server name SNI.
std::string by_sni(const Maps& maps, const char* name, std::string_view sni) {
    const int i = maps.find(name);
    EXPECT_GE(i, 0) << name;
    const ClientHelloInfo h = hello(sni);
    SessionVars v;
    v.preread = &h;
    char buf[512];
    const size_t n = maps.evaluate(i, v, buf, sizeof buf);
    return std::string(buf, std::min(n, sizeof buf));
}

Expression compile(std::string_view value, const Maps* maps = nullptr) {
    auto e = Expression::compile(value, maps);
    EXPECT_TRUE(e.ok()) << value << ": " << (e.ok() ? "" : e.error());
    return e.ok() ? *e : *Expression::compile("", nullptr);
}

// config/examples/ssl-passthrough-sni.conf, without its dataplane {}.
constexpr const char* kPassthroughExample = R"(
    map $ssl_preread_server_name $backend_name {
        app1.example.com app1;
        app2.example.com app2;
    }
    upstream app1 {
        server 198.18.1.11:443;
    }
    upstream app2 {
        server 198.18.1.12:443;
    }
    server {
        listen 443;
        proxy_pass $backend_name;
        ssl_preread on;
    }
)";

TEST(Variables, PassthroughExampleRoutesBySni) {
    auto cfg = load(kPassthroughExample);
    ASSERT_TRUE(cfg);
    auto maps = build(*cfg);
    ASSERT_TRUE(maps);
    const config::ProxyPass& pp = cfg->servers[0].proxy_pass;
    ASSERT_EQ(pp.kind, config::ProxyPass::Kind::kVariable);
    const Expression e = compile(pp.value, maps.get());
    EXPECT_FALSE(e.is_constant());

    SessionVars v;
    const ClientHelloInfo app1 = hello("app1.example.com"), app2 = hello("APP2.Example.Com"),
                          other = hello("app3.example.com");
    v.preread = &app1;
    EXPECT_EQ(eval(e, v), "app1");
    v.preread = &app2;  // nginx lowercases the value before the lookup
    EXPECT_EQ(eval(e, v), "app2");
    v.preread = &other;  // no default: empty, and the proxy closes
    EXPECT_EQ(eval(e, v), "");
    v.preread = nullptr;  // not TLS: $ssl_preread_server_name is empty
    EXPECT_EQ(eval(e, v), "");
}

TEST(Variables, ExactKeysMatchWhateverTheCase) {
    auto cfg = load("map $ssl_preread_server_name $m { App1.Example.COM one; default d; }");
    auto maps = build(*cfg);
    EXPECT_EQ(by_sni(*maps, "m", "app1.example.com"), "one");
    EXPECT_EQ(by_sni(*maps, "m", "APP1.EXAMPLE.COM"), "one");
    EXPECT_EQ(by_sni(*maps, "m", "app1.example.com."), "d");  // the dot goes only with "hostnames"
}

TEST(Variables, HostnamesPrecedenceIsNginxs) {
    auto cfg = load(R"(
        map $ssl_preread_server_name $m {
            hostnames;
            default          d;
            example.com      exact;
            *.example.com    star;
            .foo.example.com dotfoo;
            www.example.*    tail;
            www.*            tail_short;
            ~^mail\.         regex;
            ~^www\.example\.org$ regex_org;
        }
    )");
    auto maps = build(*cfg);
    struct Case {
        const char* host;
        const char* want;
    } cases[] = {
        {"example.com", "exact"},
        {"EXAMPLE.COM.", "exact"},  // a trailing dot and the case do not matter
        {"a.example.com", "star"},
        {"a.b.example.com", "star"},
        {"foo.example.com", "dotfoo"},  // ".foo..." names the domain itself too
        {"x.foo.example.com", "dotfoo"},  // the longer suffix wins
        {"www.example.com", "star"},  // leading wildcards before trailing ones
        {"www.example.org", "tail"},  // trailing wildcards before regexes
        {"www.example.co.uk", "tail"},
        {"www.other.net", "tail_short"},
        {"www.example", "tail_short"},  // "www.example.*" needs a label after
        {"mail.other.net", "regex"},
        {"other.net", "d"},
        {"com", "d"},
        {"", "d"},
    };
    for (const Case& c : cases) EXPECT_EQ(by_sni(*maps, "m", c.host), c.want) << c.host;
}

TEST(Variables, WildcardsAreExactKeysWithoutHostnames) {
    auto cfg = load(R"(
        map $ssl_preread_server_name $m {
            *.example.com star;
            .example.net dot;
            default d;
        }
    )");
    auto maps = build(*cfg);
    EXPECT_EQ(by_sni(*maps, "m", "a.example.com"), "d");
    EXPECT_EQ(by_sni(*maps, "m", "example.net"), "d");
    EXPECT_EQ(by_sni(*maps, "m", "*.example.com"), "star");
    EXPECT_EQ(by_sni(*maps, "m", ".example.net"), "dot");
}

TEST(Variables, RegexesInWrittenOrderCaselessOnlyWithTilde) {
    auto cfg = load(R"(
        map $ssl_preread_server_name $m {
            ~^api\.            first;
            ~*^API\.v2         second;
            ~*\.EXAMPLE\.net$  caseless;
            ~\.example\.org$   cased;
            api.exact.com      exact;
            default            none;
        }
    )");
    auto maps = build(*cfg);
    EXPECT_EQ(by_sni(*maps, "m", "api.v2.x"), "first");
    EXPECT_EQ(by_sni(*maps, "m", "API.v2.x"), "second");
    EXPECT_EQ(by_sni(*maps, "m", "www.Example.NET"), "caseless");
    EXPECT_EQ(by_sni(*maps, "m", "www.example.org"), "cased");
    EXPECT_EQ(by_sni(*maps, "m", "www.EXAMPLE.org"), "none");
    EXPECT_EQ(by_sni(*maps, "m", "api.exact.com"), "exact");  // exact keys before any regex
}

TEST(Variables, EmptySourceMatchesTheEmptyKeyButNoRegex) {
    auto cfg = load(R"(
        map $ssl_preread_server_name $with_key { "" empty; default d; }
        map $ssl_preread_server_name $regex_only { ~^$ regex; ~.* any; default d; }
    )");
    auto maps = build(*cfg);
    EXPECT_EQ(by_sni(*maps, "with_key", ""), "empty");
    EXPECT_EQ(by_sni(*maps, "with_key", "x"), "d");
    EXPECT_EQ(by_sni(*maps, "regex_only", ""), "d");
    EXPECT_EQ(by_sni(*maps, "regex_only", "x"), "any");
}

TEST(Variables, RegexCapturesInTheEntrysValue) {
    auto cfg = load(R"(
        map $ssl_preread_server_name $m {
            ~^(?<svc>[a-z]+)\.(\w+)\.example\.com$  $svc-$2:443;
            ~^(a)|(b)$                                [$1][$2];
            ~^(x+)$                                   $12;
            default                                   d;
        }
    )");
    auto maps = build(*cfg);
    EXPECT_EQ(by_sni(*maps, "m", "api.eu.example.com"), "api-eu:443");
    EXPECT_EQ(by_sni(*maps, "m", "b"), "[][b]");    // an unset group is empty
    EXPECT_EQ(by_sni(*maps, "m", "xxx"), "xxx2");  // nginx: "$12" is $1 then "2"
    EXPECT_EQ(by_sni(*maps, "m", "other"), "d");
}

TEST(Variables, NestedMapsAndValuesWithVariables) {
    // $backend is used before $tenant is defined, as nginx allows.
    auto cfg = load(R"(
        map $tenant $backend {
            acme     198.18.0.5:443;
            beta     $tenant-$server_port;
            default  $fallback;
        }
        map $ssl_preread_server_name $tenant {
            ~^(\w+)\.tenants\.example$ $1;
        }
        map $remote_addr $fallback {
            198.18.0.9 vip;
            default    shared;
        }
    )");
    auto maps = build(*cfg);
    const Expression e = compile("$backend", maps.get());
    const ClientHelloInfo acme = hello("acme.tenants.example"), beta = hello("beta.tenants.example"),
                          none = hello("www.example");
    SessionVars v;
    v.server_port = 8443;
    v.remote_addr = (198u << 24) | (18u << 16) | 9;
    v.preread = &acme;
    EXPECT_EQ(eval(e, v), "198.18.0.5:443");
    v.preread = &beta;
    EXPECT_EQ(eval(e, v), "beta-8443");
    v.preread = &none;
    EXPECT_EQ(eval(e, v), "vip");
    v.remote_addr = (198u << 24) | (18u << 16) | 10;
    EXPECT_EQ(eval(e, v), "shared");
}

TEST(Variables, NothingIsCachedVolatileOrNot) {
    auto cfg = load(R"(
        map $remote_port $plain { 1 one; default other; }
        map $remote_port $vol { volatile; 1 one; default other; }
    )");
    auto maps = build(*cfg);
    for (const char* name : {"$plain", "$vol"}) {
        const Expression e = compile(name, maps.get());
        SessionVars v;
        v.remote_port = 1;
        EXPECT_EQ(eval(e, v), "one") << name;
        v.remote_port = 2;
        EXPECT_EQ(eval(e, v), "other") << name;
    }
}

TEST(Variables, ExpressionsMixTextAndVariables) {
    const ClientHelloInfo h = hello("sni.example", "h2,http/1.1", "TLSv1.2");
    SessionVars v;
    v.remote_addr = (198u << 24) | (18u << 16) | (0u << 8) | 9;
    v.remote_port = 40000;
    v.server_addr = (198u << 24) | (18u << 16) | 2;
    v.server_port = 443;
    v.preread = &h;
    v.ssl_server_name = "term.example";

    EXPECT_EQ(eval(compile("plain text"), v), "plain text");
    EXPECT_TRUE(compile("plain text").is_constant());
    EXPECT_EQ(eval(compile("$ssl_preread_server_name:443"), v), "sni.example:443");
    EXPECT_EQ(eval(compile("${remote_addr}text"), v), "198.18.0.9text");
    EXPECT_EQ(eval(compile("$remote_addr:$remote_port"), v), "198.18.0.9:40000");
    EXPECT_EQ(eval(compile("$server_addr:$server_port"), v), "198.18.0.2:443");
    EXPECT_EQ(eval(compile("$binary_remote_addr"), v), std::string("\xc6\x12\x00\x09", 4));
    EXPECT_EQ(eval(compile("[$ssl_preread_alpn_protocols|$ssl_preread_protocol]"), v), "[h2,http/1.1|TLSv1.2]");
    EXPECT_EQ(eval(compile("$ssl_server_name"), v), "term.example");
    EXPECT_EQ(eval(compile("$protocol"), v), "TCP");
    EXPECT_EQ(eval(compile("a-$remote_port-"), v), "a-40000-");
    EXPECT_EQ(eval(compile("$remote_port$remote_port"), v), "4000040000");
    EXPECT_EQ(eval(compile(""), v), "");

    const std::string pp = "[$proxy_protocol_addr:$proxy_protocol_port>$proxy_protocol_server_addr:"
                           "$proxy_protocol_server_port]";
    EXPECT_EQ(eval(compile(pp), v), "[:>:]");
    v.has_proxy_protocol = true;
    v.proxy_protocol_addr = "2001:db8::1";
    v.proxy_protocol_port = 5555;
    v.proxy_protocol_server_addr = "203.0.113.1";
    v.proxy_protocol_server_port = 443;
    EXPECT_EQ(eval(compile(pp), v), "[2001:db8::1:5555>203.0.113.1:443]");

    v.remote_addr = 0;
    v.remote_port = 0;
    EXPECT_EQ(eval(compile("$remote_addr:$remote_port"), v), "0.0.0.0:0");
    v.remote_addr = 0xffffffff;
    v.remote_port = 65535;
    EXPECT_EQ(eval(compile("$remote_addr:$remote_port"), v), "255.255.255.255:65535");
}

TEST(Variables, CompileRefusesWhatItCannotEvaluate) {
    auto bad = [](std::string_view value, const Maps* maps = nullptr) {
        auto e = Expression::compile(value, maps);
        return e.ok() ? std::string("compiled") : e.error();
    };
    EXPECT_NE(bad("$upstream_addr").find("\"$upstream_addr\" is not a variable"), std::string::npos);
    EXPECT_NE(bad("x$").find("at the end"), std::string::npos);
    EXPECT_NE(bad("${abc").find("closing bracket"), std::string::npos);
    EXPECT_NE(bad("${a-b}").find("closing bracket"), std::string::npos);
    EXPECT_NE(bad("$-").find("invalid variable name"), std::string::npos);
    EXPECT_NE(bad("$1").find("regex capture"), std::string::npos);
    EXPECT_NE(bad("$backend_name").find("not a variable"), std::string::npos);  // no maps given
}

TEST(Variables, MapsThatCannotBeEvaluatedAreRefusedWhenUsed) {
    auto cfg = load(R"(
        map $ssl_protocol $terminated { TLSv1.3 new; default old; }
        map $terminated $uses_it { default x; }
        map $loop_b $loop_a { default $loop_b; }
        map $loop_a $loop_b { default $loop_a; }
        map $ssl_preread_server_name $capture_elsewhere { a.example $1; }
        map $ssl_preread_server_name $fine { default ok; }
    )");
    auto maps = build(*cfg);  // unused problems do not stop the build
    ASSERT_TRUE(maps);
    auto why = [&](const char* value) {
        auto e = Expression::compile(value, maps.get());
        return e.ok() ? std::string("compiled") : e.error();
    };
    EXPECT_NE(why("$terminated").find("\"$ssl_protocol\" is not a variable"), std::string::npos);
    EXPECT_NE(why("$uses_it").find("\"$ssl_protocol\""), std::string::npos);
    EXPECT_NE(why("$loop_a").find("again"), std::string::npos);
    EXPECT_NE(why("$loop_b").find("again"), std::string::npos);
    EXPECT_NE(why("$capture_elsewhere").find("regex capture"), std::string::npos);
    EXPECT_EQ(why("$fine"), "compiled");
    EXPECT_EQ(maps->find("nope"), -1);
    // Evaluated anyway, a cycle ends at Maps::kMaxDepth with nothing.
    char buf[64];
    EXPECT_EQ(maps->evaluate(maps->find("loop_a"), SessionVars{}, buf, sizeof buf), 0u);
}

TEST(Variables, TruncatedToTheBufferWithTheWholeLength) {
    auto cfg = load(R"(
        map $remote_port $inner { default "inner-value"; }
        map $remote_port $outer { default "<$inner>"; }
    )");
    auto maps = build(*cfg);
    const Expression e = compile("$remote_port/$outer/end", maps.get());
    SessionVars v;
    v.remote_port = 12345;
    const std::string whole = "12345/<inner-value>/end";
    EXPECT_EQ(eval(e, v), whole);
    for (size_t cap = 0; cap <= whole.size() + 1; ++cap) {
        std::string buf(whole.size() + 8, '#');
        const size_t n = e.evaluate(v, buf.data(), cap);
        EXPECT_EQ(n, whole.size()) << cap;
        const size_t kept = std::min(cap, whole.size());
        EXPECT_EQ(buf.substr(0, kept), whole.substr(0, kept)) << cap;
        EXPECT_EQ(buf.substr(kept), std::string(buf.size() - kept, '#')) << cap;  // nothing past CAP
    }
    EXPECT_EQ(e.evaluate(v, nullptr, 0), whole.size());
}

TEST(Variables, SourceLongerThanTheLimitGetsTheDefault) {
    const std::string five_times = "$ssl_preread_server_name$ssl_preread_server_name$ssl_preread_server_name"
                                   "$ssl_preread_server_name$ssl_preread_server_name";
    auto cfg = load("map " + five_times + " $m { ~^a regex; default d; }");
    auto maps = build(*cfg);
    const std::string name(255, 'a');  // five times: over Maps::kMaxSource
    static_assert(5 * 255 > Maps::kMaxSource);
    EXPECT_EQ(by_sni(*maps, "m", name), "d");
    EXPECT_EQ(by_sni(*maps, "m", std::string(200, 'a')), "regex");  // 1000 bytes
}

}  // namespace
}  // namespace terminus::dataplane::proxy
