// A dataplane TCP connection as a TLS endpoint sees it (tls::Transport):
// reads and writes go to the connection's queues at the loop's clock.
#pragma once

#include "dataplane/tcp/tcp.h"
#include "tls/tls.h"

namespace terminus::tcp {

struct TcpTransport final : tls::Transport {
    Stack* stack = nullptr;
    Connection* conn = nullptr;  // null once the connection is gone
    const uint64_t* now = nullptr;
    uint32_t read(void* dst, uint32_t len) override { return conn ? stack->read(*conn, dst, len, *now) : 0; }
    bool eof() const override { return !conn || conn->peer_closed(); }
    uint32_t write(const void* src, uint32_t len) override {
        return conn ? stack->write(*conn, src, len, *now) : 0;
    }
    uint32_t write_space() const override { return conn ? stack->send_space(*conn) : 0; }
    void cork() override {
        if (conn) stack->cork(*conn);
    }
    void flush() override {
        if (conn) stack->flush(*conn, *now);
    }
};

}  // namespace terminus::tcp
