// An in-memory byte stream as a tls::Transport, for the tests, the fuzz
// targets and the benchmarks: no TCP, no DPDK. One end sees what its
// peer sent in `in` and leaves what it writes in `out` (or, in a Pair,
// in the other end's `in`). Cork holds writes back until flush(), as
// the TCP stack holds partial segments, so that a test sees only what a
// corked writer really let go.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "tls/tls.h"

namespace terminus::testing {

class MemoryPipe : public tls::Transport {
  public:
    std::string in;   // received and not read yet
    std::string out;  // written and let go (flushed, or written uncorked)
    // Room for what was written and not taken yet (`out`, held bytes, or
    // the peer's `in`); writes past it are refused, as a full send buffer
    // refuses them.
    uint32_t capacity = 1 << 20;
    // The peer finished sending: eof() once `in` is read.
    bool closed = false;
    // Writes are accepted and dropped (a fuzzer has no use for them).
    bool discard = false;
    int flushes = 0;

    // Reads come from DATA (SIZE bytes, not copied; it must outlive the
    // reads) instead of `in`, and the stream ends with it.
    void feed(const uint8_t* data, size_t size) {
        fixed_ = data;
        fixed_left_ = size;
        fixed_mode_ = true;
    }
    // Bytes of the fed buffer not read yet.
    size_t fed_left() const { return fixed_left_; }

    // Connects this end with PEER both ways: what each writes is what the
    // other reads.
    void connect(MemoryPipe& peer) {
        peer_ = &peer;
        peer.peer_ = this;
    }
    // Our FIN: the peer reads to the end of what was sent, then eof().
    void close_write() {
        flush();
        if (peer_) peer_->closed = true;
    }
    bool corked() const { return corked_; }
    // Bytes written while corked, not let go yet.
    const std::string& held() const { return held_; }

    uint32_t read(void* dst, uint32_t len) override {
        if (fixed_mode_) {
            const uint32_t n = static_cast<uint32_t>(std::min<size_t>(fixed_left_, len));
            std::memcpy(dst, fixed_, n);
            fixed_ += n;
            fixed_left_ -= n;
            return n;
        }
        const uint32_t n = std::min<uint32_t>(len, static_cast<uint32_t>(in.size()));
        std::memcpy(dst, in.data(), n);
        in.erase(0, n);
        return n;
    }
    bool eof() const override { return fixed_mode_ ? fixed_left_ == 0 : closed && in.empty(); }
    uint32_t write(const void* src, uint32_t len) override {
        if (discard) return len;
        const uint32_t n = std::min<uint32_t>(len, write_space());
        (corked_ ? held_ : sink()).append(static_cast<const char*>(src), n);
        return n;
    }
    uint32_t write_space() const override {
        if (discard) return capacity;
        const size_t used = held_.size() + (peer_ ? peer_->in.size() : out.size());
        return capacity > used ? capacity - static_cast<uint32_t>(used) : 0;
    }
    void cork() override { corked_ = true; }
    void flush() override {
        ++flushes;
        corked_ = false;
        if (held_.empty()) return;
        sink().append(held_);
        held_.clear();
    }

  private:
    std::string& sink() { return peer_ ? peer_->in : out; }

    MemoryPipe* peer_ = nullptr;
    bool corked_ = false;
    std::string held_;
    const uint8_t* fixed_ = nullptr;
    size_t fixed_left_ = 0;
    bool fixed_mode_ = false;
};

// Two connected ends, for a client and a server of our own in one
// process (ClientEndpoint against Endpoint).
struct Pair {
    MemoryPipe client, server;
    Pair() { client.connect(server); }
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;
};

}  // namespace terminus::testing
