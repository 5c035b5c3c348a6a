// allow/deny (nginx's ngx_stream_access_module): the rules of a server in
// the order written; the first that matches the client's address decides,
// and a client no rule matches is allowed. Checked at nginx's access
// phase: after the PROXY protocol header (whose source is the client when
// set_real_ip_from trusts its sender), before TLS and the preread.
// Private to dataplane/.
#pragma once

#include <cstdint>
#include <vector>

#include "config/config.h"

namespace terminus::dataplane::proxy {

// CLIENT in host byte order.
inline bool access_allowed(const std::vector<config::AccessRule>& rules, uint32_t client) {
    for (const auto& r : rules) {
        if (r.prefix.contains(client)) return r.allow;
    }
    return true;
}

}  // namespace terminus::dataplane::proxy
