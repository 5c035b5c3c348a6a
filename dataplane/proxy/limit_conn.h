// limit_conn as nginx's stream limit_conn module defines it: a zone
// (limit_conn_zone KEY zone=NAME:SIZE) counts the open connections of
// each value of KEY across every core; a server's "limit_conn NAME N"
// refuses a connection whose key already has N (status 503), before the
// access rules (nginx's preaccess phase). An empty key is not counted.
//
// The zone is a table of 64-bit words shared by the cores, changed only
// with compare-and-swap (no lock): a word is a 40-bit fingerprint of the
// key's SipHash (under a process-random key, so that clients cannot make
// their keys collide) and a 24-bit count; 0 is a free slot. A key lives in
// one bucket of eight words (one cache line), picked by the other hash
// bits. Two cores adding the same new key at once settle it by index: the
// one that took the higher slot gives it back and counts on the lower. A
// connection keeps the word it counted in, and gives it back at its end;
// a count that falls to 0 frees the slot. A bucket whose eight slots hold
// other keys refuses the connection, as nginx does when its zone is out
// of memory. Zones outlive configuration generations by name and size
// (nginx keeps a shared zone across reloads the same way).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "dataplane/tcp/siphash.h"

namespace terminus::dataplane::proxy {

class LimitZone {
  public:
    // SIZE bytes of table (8 per slot, rounded down to whole buckets of
    // eight, at least one).
    LimitZone(std::string name, uint64_t size, const tcp::SipKey& key);
    ~LimitZone();
    LimitZone(const LimitZone&) = delete;
    LimitZone& operator=(const LimitZone&) = delete;

    enum class Result : uint8_t { kCounted, kLimited, kFull };
    // Counts one connection of KEY unless it has LIMIT already (kLimited)
    // or its bucket has no free slot (kFull). kCounted: SLOT is the word
    // to give back with release().
    Result acquire(std::string_view key, uint32_t limit, std::atomic<uint64_t>*& slot);
    static void release(std::atomic<uint64_t>* slot);

    // The connections KEY has now.
    uint32_t count(std::string_view key) const;
    const std::string& name() const { return name_; }
    uint64_t size() const { return size_; }
    uint64_t slots() const { return n_buckets_ * kBucket; }

  private:
    static constexpr unsigned kBucket = 8;
    static constexpr unsigned kCountBits = 24;
    static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;
    std::atomic<uint64_t>* bucket_of(uint64_t hash) const;
    static uint64_t fingerprint(uint64_t hash);

    std::string name_;
    uint64_t size_;
    tcp::SipKey key_;
    uint64_t n_buckets_;
    std::atomic<uint64_t>* words_;
};

// The zones by name, for every generation: a reload gets the zone it had
// (same name and size), so connections counted before it still count.
class LimitZones {
  public:
    LimitZones();  // a random SipHash key
    std::shared_ptr<LimitZone> get(const std::string& name, uint64_t size);

  private:
    tcp::SipKey key_;
    std::map<std::string, std::weak_ptr<LimitZone>> zones_;
};

}  // namespace terminus::dataplane::proxy
