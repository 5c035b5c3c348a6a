// The Prometheus endpoint of terminus-mgmtd (mgmt { metrics ADDR:PORT; }):
// a small HTTP/1.1 server on the management event loop. GET /metrics
// answers the exposition RENDER makes at that moment, GET / a page that
// links to it; other paths are 404, other methods 405 (HEAD is GET
// without the body). Every connection is non-blocking and closes after
// its answer (Connection: close); a request is bounded in size and must
// arrive in time, and an answer must be taken in time, so a slow or
// stalled client holds one slot and never the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "config/result.h"
#include "mgmt/event_loop.h"

namespace terminus::mgmt {

class MetricsEndpoint {
  public:
    using Render = std::function<std::string()>;
    using Log = std::function<void(const std::string&)>;

    struct Limits {
        size_t max_request = 8192;                          // request line and headers; larger: 431
        size_t max_connections = 64;                        // more at once: 503, closed
        std::chrono::milliseconds request_timeout{5000};    // from accept to the end of the headers
        std::chrono::milliseconds response_timeout{10000};  // for the client to take the answer
    };

    // Listens on ADDR:PORT (ADDR in host byte order). The error names the
    // address and what bind(2) or listen(2) said.
    static Result<std::unique_ptr<MetricsEndpoint>> open(EventLoop& loop, uint32_t addr, uint16_t port, Render render,
                                                         Log log, Limits limits);
    static Result<std::unique_ptr<MetricsEndpoint>> open(EventLoop& loop, uint32_t addr, uint16_t port, Render render,
                                                         Log log) {
        return open(loop, addr, port, std::move(render), std::move(log), Limits{});
    }
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;
    // Closes the listening socket and every connection still open.
    ~MetricsEndpoint();

    uint32_t addr() const { return addr_; }
    uint16_t port() const { return port_; }
    std::string where() const;  // "127.0.0.1:9145"
    size_t connections() const { return conns_.size(); }
    uint64_t scrapes() const { return scrapes_; }

  private:
    struct Conn;
    MetricsEndpoint(EventLoop& loop, Render render, Log log, Limits limits);

    void on_accept();
    void on_event(int fd, short revents);
    void read_request(Conn& c);
    void answer(Conn& c);
    void respond(Conn& c, const char* status, const char* content_type, const std::string& body, bool head,
                 const char* extra_headers = "");
    void write_response(Conn& c);
    void drain(Conn& c);
    void close_conn(int fd);

    EventLoop& loop_;
    Render render_;
    Log log_;
    Limits limits_;
    int listen_fd_ = -1;
    uint32_t addr_ = 0;
    uint16_t port_ = 0;
    uint64_t scrapes_ = 0;
    EventLoop::TimerId resume_timer_ = 0;  // accepting again after EMFILE
    std::unordered_map<int, std::unique_ptr<Conn>> conns_;
};

}  // namespace terminus::mgmt
