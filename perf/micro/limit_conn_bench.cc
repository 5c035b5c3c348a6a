// limit_conn's cost per connection: one acquire (SipHash of the key, a
// bucket scan, one compare-and-swap) and one release, on one core and on
// two cores counting the same keys (the cache lines move between them).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "dataplane/proxy/limit_conn.h"

namespace {

using terminus::dataplane::proxy::LimitZone;

// A client address as $binary_remote_addr gives it: 4 bytes.
std::string key_of(uint32_t i) { return std::string(reinterpret_cast<const char*>(&i), sizeof i); }

LimitZone& zone() {
    static LimitZone z("bench", 10 << 20, terminus::tcp::SipKey{3, 4});
    return z;
}

void BM_LimitConnAcquireRelease(benchmark::State& state) {
    // state.range(0) distinct clients; on two threads, the same ones.
    std::vector<std::string> keys;
    for (uint32_t i = 0; i < static_cast<uint32_t>(state.range(0)); ++i) keys.push_back(key_of(0xc6120000u + i));
    size_t k = static_cast<size_t>(state.thread_index()) % keys.size();
    for (auto _ : state) {
        std::atomic<uint64_t>* slot = nullptr;
        const auto r = zone().acquire(keys[k], 1000, slot);
        if (r == LimitZone::Result::kCounted) LimitZone::release(slot);
        benchmark::DoNotOptimize(r);
        if (++k == keys.size()) k = 0;
    }
}
BENCHMARK(BM_LimitConnAcquireRelease)->Arg(1)->Arg(1000)->Arg(100000);
BENCHMARK(BM_LimitConnAcquireRelease)->Arg(1)->Arg(1000)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
