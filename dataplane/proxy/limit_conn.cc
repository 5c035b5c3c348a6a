#include "dataplane/proxy/limit_conn.h"

#include <sys/random.h>

#include <cstdlib>
#include <new>

namespace terminus::dataplane::proxy {

LimitZone::LimitZone(std::string name, uint64_t size, const tcp::SipKey& key)
    : name_(std::move(name)), size_(size), key_(key) {
    n_buckets_ = size / (kBucket * sizeof(uint64_t));
    if (n_buckets_ == 0) n_buckets_ = 1;
    const size_t bytes = n_buckets_ * kBucket * sizeof(uint64_t);
    void* mem = std::aligned_alloc(64, bytes);
    if (!mem) throw std::bad_alloc();
    words_ = static_cast<std::atomic<uint64_t>*>(mem);
    for (uint64_t i = 0; i < n_buckets_ * kBucket; ++i) new (&words_[i]) std::atomic<uint64_t>(0);
}

LimitZone::~LimitZone() { std::free(words_); }

std::atomic<uint64_t>* LimitZone::bucket_of(uint64_t hash) const {
    return words_ + (hash % n_buckets_) * kBucket;
}

uint64_t LimitZone::fingerprint(uint64_t hash) {
    // The high 40 bits (the bucket came from the low ones); never 0, which
    // marks a free slot.
    const uint64_t fp = hash >> kCountBits;
    return fp ? fp : 1;
}

LimitZone::Result LimitZone::acquire(std::string_view key, uint32_t limit, std::atomic<uint64_t>*& slot) {
    const uint64_t hash = tcp::siphash24(key_, key.data(), key.size());
    const uint64_t fp = fingerprint(hash);
    std::atomic<uint64_t>* b = bucket_of(hash);
    for (;;) {
        // The key's slot, if it has one: one more, below the limit.
        bool retry = false;
        for (unsigned i = 0; i < kBucket; ++i) {
            uint64_t w = b[i].load();
            while ((w >> kCountBits) == fp && (w & kCountMask) != 0) {
                if ((w & kCountMask) >= limit) return Result::kLimited;
                if (b[i].compare_exchange_weak(w, w + 1)) {
                    slot = &b[i];
                    return Result::kCounted;
                }
            }
            // It emptied (or changed hands) under us: look again.
            if ((w >> kCountBits) == fp) retry = true;
        }
        if (retry) continue;
        // A new key: the lowest free slot.
        unsigned f = kBucket;
        for (unsigned i = 0; i < kBucket && f == kBucket; ++i) {
            uint64_t expected = 0;
            if (b[i].compare_exchange_strong(expected, (fp << kCountBits) | 1)) f = i;
        }
        if (f == kBucket) return Result::kFull;
        // Another core may have added the same key at a lower slot
        // meanwhile: that one stands, ours goes.
        bool lower = false;
        for (unsigned j = 0; j < f && !lower; ++j) {
            const uint64_t w = b[j].load();
            lower = (w >> kCountBits) == fp && (w & kCountMask) != 0;
        }
        if (!lower) {
            slot = &b[f];
            return Result::kCounted;
        }
        release(&b[f]);
    }
}

void LimitZone::release(std::atomic<uint64_t>* slot) {
    uint64_t w = slot->load();
    for (;;) {
        const uint64_t next = (w & kCountMask) <= 1 ? 0 : w - 1;
        if (slot->compare_exchange_weak(w, next)) return;
    }
}

uint32_t LimitZone::count(std::string_view key) const {
    const uint64_t hash = tcp::siphash24(key_, key.data(), key.size());
    const uint64_t fp = fingerprint(hash);
    const std::atomic<uint64_t>* b = bucket_of(hash);
    uint32_t n = 0;
    for (unsigned i = 0; i < kBucket; ++i) {
        const uint64_t w = b[i].load();
        if ((w >> kCountBits) == fp) n += static_cast<uint32_t>(w & kCountMask);
    }
    return n;
}

LimitZones::LimitZones() {
    if (getrandom(&key_, sizeof key_, 0) != static_cast<ssize_t>(sizeof key_)) {
        // No entropy at all: still a working table, only predictable.
        key_ = tcp::SipKey{0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full};
    }
}

std::shared_ptr<LimitZone> LimitZones::get(const std::string& name, uint64_t size) {
    auto it = zones_.find(name);
    if (it != zones_.end()) {
        if (auto z = it->second.lock(); z && z->size() == size) return z;
    }
    auto z = std::make_shared<LimitZone>(name, size, key_);
    zones_[name] = z;
    return z;
}

}  // namespace terminus::dataplane::proxy
