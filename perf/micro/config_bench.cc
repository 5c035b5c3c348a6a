// Configuration parsing cost: how long a reload spends in config/ before it
// touches a single file. Reports time per configuration and bytes/s.
#include <benchmark/benchmark.h>

#include <string>

#include "config/config.h"

namespace {

std::string make_config(int servers) {
    std::string s = "stream {\n    upstream backend {\n";
    for (int i = 0; i < 16; ++i) {
        s += "        server 198.18.1." + std::to_string(i + 1) + ":8080 weight=2 max_fails=3 fail_timeout=10s;\n";
    }
    s += "    }\n    map $ssl_preread_server_name $name {\n        hostnames;\n        default backend;\n";
    for (int i = 0; i < servers; ++i) s += "        s" + std::to_string(i) + ".example.com backend;\n";
    s += "    }\n";
    for (int i = 0; i < servers; ++i) {
        s += "    server {\n        listen " + std::to_string(10000 + i) + ";\n"
             "        proxy_pass backend;\n        proxy_timeout 1h30m;\n"
             "        proxy_connect_timeout 5s;\n        proxy_buffer_size 32k;\n"
             "        allow 198.18.0.0/15;\n        deny all;\n    }\n";
    }
    s += "}\n";
    return s;
}

void BM_LoadConfig(benchmark::State& state) {
    const std::string text = make_config(static_cast<int>(state.range(0)));
    terminus::config::LoadOptions options;
    options.check_files = false;
    for (auto _ : state) {
        auto r = terminus::config::load_string(text, "/bench/terminus.conf", options);
        if (!r.ok()) state.SkipWithError("configuration did not validate");
        benchmark::DoNotOptimize(r);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
    state.counters["servers"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_LoadConfig)->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_ParseTime(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(terminus::config::parse_time("1d2h3m4s500ms"));
}
BENCHMARK(BM_ParseTime);

}  // namespace

BENCHMARK_MAIN();
