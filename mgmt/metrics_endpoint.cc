#include "mgmt/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace terminus::mgmt {

namespace {

constexpr const char* kExpositionType = "text/plain; version=0.0.4; charset=utf-8";

std::string dotted(uint32_t addr) {
    char buf[INET_ADDRSTRLEN];
    const in_addr a{htonl(addr)};
    ::inet_ntop(AF_INET, &a, buf, sizeof buf);
    return buf;
}

// The end of the request head ("\r\n\r\n", or "\n\n" from a lenient
// client, RFC 9112 2.2), or npos.
size_t head_end(const std::string& in) {
    const size_t crlf = in.find("\r\n\r\n");
    const size_t lf = in.find("\n\n");
    if (crlf == std::string::npos) return lf == std::string::npos ? lf : lf + 2;
    if (lf == std::string::npos || crlf < lf) return crlf + 4;
    return lf + 2;
}

const char* kIndexPage =
    "<!DOCTYPE html>\n"
    "<html><head><title>terminus-mgmtd</title></head>\n"
    "<body><h1>terminus-mgmtd</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

}  // namespace

enum class Stage : uint8_t { kReading, kWriting, kDraining };

struct MetricsEndpoint::Conn {
    int fd = -1;
    std::string peer;
    Stage stage = Stage::kReading;
    std::string in;
    std::string out;
    size_t sent = 0;
    EventLoop::TimerId timer = 0;
};

MetricsEndpoint::MetricsEndpoint(EventLoop& loop, Render render, Log log, Limits limits)
    : loop_(loop), render_(std::move(render)), log_(std::move(log)), limits_(limits) {}

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::open(EventLoop& loop, uint32_t addr, uint16_t port,
                                                               Render render, Log log, Limits limits) {
    const std::string where = dotted(addr) + ":" + std::to_string(port);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error("metrics " + where + ": socket: " + std::strerror(errno));
    // A restarted mgmtd binds at once, whatever its predecessor's
    // connections left in TIME-WAIT.
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(addr);
    sa.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 64) != 0) {
        const int e = errno;
        ::close(fd);
        return make_error("metrics: cannot listen on " + where + ": " + std::strerror(e));
    }
    std::unique_ptr<MetricsEndpoint> m(new MetricsEndpoint(loop, std::move(render), std::move(log), limits));
    m->listen_fd_ = fd;
    m->addr_ = addr;
    m->port_ = port;
    MetricsEndpoint* self = m.get();
    loop.watch(fd, POLLIN, [self](short) { self->on_accept(); });
    return m;
}

MetricsEndpoint::~MetricsEndpoint() {
    if (resume_timer_) loop_.cancel(resume_timer_);
    while (!conns_.empty()) close_conn(conns_.begin()->first);
    loop_.unwatch(listen_fd_);
    ::close(listen_fd_);
}

std::string MetricsEndpoint::where() const { return dotted(addr_) + ":" + std::to_string(port_); }

void MetricsEndpoint::on_accept() {
    for (;;) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            if (errno == ECONNABORTED) continue;  // that one connection
            // EMFILE and the like: the listener stays readable, so it
            // rests a moment instead of spinning the loop.
            log_("metrics " + where() + ": accept: " + std::strerror(errno) + ": not accepting for 100 ms");
            loop_.set_events(listen_fd_, 0);
            resume_timer_ = loop_.after(std::chrono::milliseconds(100), [this] {
                resume_timer_ = 0;
                loop_.set_events(listen_fd_, POLLIN);
            });
            return;
        }
        if (conns_.size() >= limits_.max_connections) {
            static const char kBusy[] =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            (void)::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            ::close(fd);
            continue;
        }
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        c->peer = dotted(ntohl(peer.sin_addr.s_addr)) + ":" + std::to_string(ntohs(peer.sin_port));
        c->timer = loop_.after(limits_.request_timeout, [this, fd] {
            auto it = conns_.find(fd);
            if (it == conns_.end()) return;
            it->second->timer = 0;
            if (it->second->stage == Stage::kReading) {
                log_("metrics: " + it->second->peer + " sent no complete request in " +
                     std::to_string(limits_.request_timeout.count()) + " ms: closed");
            }
            close_conn(fd);
        });
        loop_.watch(fd, POLLIN, [this, fd](short revents) { on_event(fd, revents); });
        conns_.emplace(fd, std::move(c));
    }
}

void MetricsEndpoint::on_event(int fd, short revents) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    switch (c.stage) {
        case Stage::kReading: read_request(c); break;
        case Stage::kWriting:
            if (revents & (POLLERR | POLLHUP)) {
                close_conn(fd);
                return;
            }
            write_response(c);
            break;
        case Stage::kDraining: drain(c); break;
    }
}

void MetricsEndpoint::read_request(Conn& c) {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
            c.in.append(buf, static_cast<size_t>(n));
            if (head_end(c.in) != std::string::npos) {
                answer(c);
                return;
            }
            if (c.in.size() > limits_.max_request) {
                respond(c, "431 Request Header Fields Too Large", "text/plain; charset=utf-8",
                        "request larger than " + std::to_string(limits_.max_request) + " bytes\n", false);
                return;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        close_conn(c.fd);  // EOF or an error before a whole request
        return;
    }
}

void MetricsEndpoint::answer(Conn& c) {
    // The request line (RFC 9112 3): METHOD SP TARGET SP HTTP/1.x.
    const size_t eol = c.in.find('\n');
    std::string line = c.in.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos ||
        line.compare(sp2 + 1, 7, "HTTP/1.") != 0 || line.size() != sp2 + 9) {
        respond(c, "400 Bad Request", "text/plain; charset=utf-8", "bad request line\n", false);
        return;
    }
    const std::string method = line.substr(0, sp1);
    std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    const bool head = method == "HEAD";
    if (method != "GET" && !head) {
        respond(c, "405 Method Not Allowed", "text/plain; charset=utf-8", "only GET and HEAD\n", false,
                "Allow: GET, HEAD\r\n");
        return;
    }
    if (path == "/metrics") {
        ++scrapes_;
        respond(c, "200 OK", kExpositionType, render_(), head);
    } else if (path == "/") {
        respond(c, "200 OK", "text/html; charset=utf-8", kIndexPage, head);
    } else {
        respond(c, "404 Not Found", "text/plain; charset=utf-8", "not found: try /metrics\n", head);
    }
}

void MetricsEndpoint::respond(Conn& c, const char* status, const char* content_type, const std::string& body, bool head,
                              const char* extra_headers) {
    c.out = std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + content_type +
            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "Connection: close\r\n\r\n";
    if (!head) c.out += body;
    c.sent = 0;
    c.stage = Stage::kWriting;
    c.in.clear();
    // From now on the client has response_timeout to take the answer.
    loop_.cancel(c.timer);
    const int fd = c.fd;
    c.timer = loop_.after(limits_.response_timeout, [this, fd] {
        auto it = conns_.find(fd);
        if (it == conns_.end()) return;
        it->second->timer = 0;
        if (it->second->stage == Stage::kWriting) {
            log_("metrics: " + it->second->peer + " did not take the answer in " +
                 std::to_string(limits_.response_timeout.count()) + " ms: closed");
        }
        close_conn(fd);
    });
    write_response(c);
}

void MetricsEndpoint::write_response(Conn& c) {
    while (c.sent < c.out.size()) {
        const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0) {
            c.sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            loop_.set_events(c.fd, POLLOUT);
            return;
        }
        if (n < 0 && errno == EINTR) continue;
        close_conn(c.fd);
        return;
    }
    // All sent: our FIN, then read what the client still sends until its
    // own, so that closing does not reset an answer it has not read yet.
    ::shutdown(c.fd, SHUT_WR);
    c.out.clear();
    c.out.shrink_to_fit();
    c.stage = Stage::kDraining;
    loop_.set_events(c.fd, POLLIN);
}

void MetricsEndpoint::drain(Conn& c) {
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        close_conn(c.fd);
        return;
    }
}

void MetricsEndpoint::close_conn(int fd) {
    auto it = conns_.find(fd);
    if (it == conns_.end()) return;
    if (it->second->timer) loop_.cancel(it->second->timer);
    loop_.unwatch(fd);
    ::close(fd);
    conns_.erase(it);
}

}  // namespace terminus::mgmt
