#include "mgmt/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/config.h"

namespace terminus::mgmt {

std::string control_socket_of(const std::string& file, std::string& why) {
    const std::string fallback = config::MgmtConfig{}.control;
    // Only mgmt { control } is wanted: an operator who may not read the
    // private keys can still find the socket.
    config::LoadOptions opts;
    opts.check_files = false;
    auto r = config::load_file(file, opts);
    if (!r.ok()) {
        why = "cannot read " + file + " (terminusd -t -c " + file + " says why); using " + fallback;
        return fallback;
    }
    return r.config->mgmt.control;
}

Result<std::string> control_request(const std::string& path, const std::string& request, int timeout_s) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return make_error("control socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const int e = errno;
        ::close(fd);
        if (e == ENOENT || e == ECONNREFUSED) {
            return make_error("terminusd is not running with control socket " + path + " (" + std::strerror(e) +
                              ")");
        }
        return make_error("cannot connect to " + path + ": " + std::strerror(e));
    }
    timeval tv{timeout_s, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string line = request + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
        const int e = errno;
        ::close(fd);
        return make_error("cannot send to " + path + ": " + std::strerror(e));
    }
    std::string answer;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            answer.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ::close(fd);
            return make_error("no answer from terminusd within " + std::to_string(timeout_s) + " s");
        }
        break;
    }
    ::close(fd);
    if (answer.empty()) return make_error("terminusd closed the control socket without an answer");
    return answer;
}

}  // namespace terminus::mgmt
