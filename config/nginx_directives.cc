// nginx directives that Terminus does not have. An operator who brings an
// nginx configuration learns that a directive is nginx's and why Terminus
// refuses it, instead of reading "unknown directive".
#include <string_view>

#include "config/schema.h"

namespace terminus::config::detail {

namespace {

constexpr const char* kHttp =
    "it belongs to nginx's HTTP modules, and Terminus proxies TCP streams: put the server in "
    "stream {} (TLS termination, passthrough and re-encryption all work there)";
constexpr const char* kProcess =
    "terminusd is one DPDK process started by its service manager; remove it";
constexpr const char* kStream =
    "nginx's stream modules have it, but Terminus does not implement it; remove it";
constexpr const char* kMail = "Terminus proxies TCP streams, not mail; remove it";
constexpr const char* kPlus = "it is NGINX Plus's and Terminus does not implement it; remove it";

struct NginxOnly {
    std::string_view name;
    const char* reason;
};

constexpr NginxOnly kNginxOnly[] = {
    // main and events
    {"worker_processes", "size the dataplane with \"lcores\" in dataplane {}"},
    {"worker_cpu_affinity", "the lcores in dataplane {} are pinned already"},
    {"worker_connections", "set \"max_connections\" in dataplane {}"},
    {"worker_rlimit_nofile", "the dataplane uses no file descriptors per connection; remove it"},
    {"events", "the dataplane polls its NICs with DPDK and has no event loop to tune; remove "
               "events {}"},
    {"use", "the dataplane polls its NICs with DPDK and has no event method; remove it"},
    {"multi_accept", "every lcore accepts its own connections; remove it"},
    {"accept_mutex", "every lcore accepts its own connections; remove it"},
    {"accept_mutex_delay", "every lcore accepts its own connections; remove it"},
    {"debug_connection", kProcess},
    {"user", kProcess},
    {"group", kProcess},
    {"pid", kProcess},
    {"daemon", kProcess},
    {"master_process", kProcess},
    {"env", kProcess},
    {"load_module", "Terminus has no dynamic modules; remove it"},
    {"lock_file", kProcess},
    {"pcre_jit", "regular expressions are compiled with PCRE2's JIT already; remove it"},
    {"thread_pool", kProcess},
    {"timer_resolution", "the dataplane reads the TSC; remove it"},
    {"working_directory", kProcess},
    {"worker_priority", kProcess},
    {"worker_shutdown_timeout", "set \"shutdown_timeout\" in dataplane {}"},
    {"worker_rlimit_core", kProcess},
    {"ssl_engine", "choose the crypto backend with \"crypto\" in dataplane {}"},
    {"quic_bpf", kProcess},
    // http
    {"http", "Terminus proxies TCP streams and has no HTTP module: put servers in stream {}"},
    {"location", kHttp},
    {"root", kHttp},
    {"alias", kHttp},
    {"index", kHttp},
    {"try_files", kHttp},
    {"add_header", kHttp},
    {"add_trailer", kHttp},
    {"proxy_set_header", kHttp},
    {"proxy_http_version", kHttp},
    {"proxy_redirect", kHttp},
    {"proxy_cache", kHttp},
    {"proxy_cache_path", kHttp},
    {"proxy_cache_valid", kHttp},
    {"proxy_cache_key", kHttp},
    {"proxy_cache_use_stale", kHttp},
    {"proxy_buffers", kHttp},
    {"proxy_buffering", kHttp},
    {"proxy_busy_buffers_size", kHttp},
    {"proxy_read_timeout", "it is nginx's HTTP proxy's; in stream {} the idle timeout is "
                           "\"proxy_timeout\""},
    {"proxy_send_timeout", "it is nginx's HTTP proxy's; in stream {} the idle timeout is "
                           "\"proxy_timeout\""},
    {"proxy_hide_header", kHttp},
    {"proxy_pass_header", kHttp},
    {"proxy_intercept_errors", kHttp},
    {"proxy_ssl_verify_client", kHttp},
    {"client_max_body_size", kHttp},
    {"client_body_timeout", kHttp},
    {"client_header_timeout", kHttp},
    {"client_body_buffer_size", kHttp},
    {"large_client_header_buffers", kHttp},
    {"keepalive_timeout", kHttp},
    {"keepalive_requests", kHttp},
    {"sendfile", kHttp},
    {"tcp_nopush", kHttp},
    {"gzip", kHttp},
    {"gzip_types", kHttp},
    {"rewrite", kHttp},
    {"if", kHttp},
    {"error_page", kHttp},
    {"default_type", kHttp},
    {"types", kHttp},
    {"charset", kHttp},
    {"expires", kHttp},
    {"auth_basic", kHttp},
    {"auth_basic_user_file", kHttp},
    {"auth_request", kHttp},
    {"limit_req", kHttp},
    {"limit_req_zone", kHttp},
    {"fastcgi_pass", kHttp},
    {"fastcgi_param", kHttp},
    {"uwsgi_pass", kHttp},
    {"scgi_pass", kHttp},
    {"grpc_pass", kHttp},
    {"http2", kHttp},
    {"http3", kHttp},
    {"server_tokens", kHttp},
    {"log_not_found", kHttp},
    {"autoindex", kHttp},
    {"real_ip_header", kHttp},
    {"ssl_buffer_size", kHttp},
    {"ssl_session_ticket_key_file", kHttp},
    {"ssl_ocsp", kStream},
    {"ssl_ocsp_cache", kStream},
    {"ssl_ocsp_responder", kStream},
    {"ssl_stapling_responder",
     "Terminus staples from \"ssl_stapling_file\" and does not query OCSP responders"},
    {"ssl_certificate_cache", kStream},
    {"ssl_key_log", kStream},
    {"proxy_ssl_key_log", kStream},
    {"proxy_ssl_certificate_cache", kStream},
    {"keepalive", "upstream keep-alive pools are nginx's HTTP upstream feature; stream "
                  "connections are proxied one to one"},
    // stream modules Terminus does not implement
    {"resolver", "upstream host names are resolved when terminusd starts and on reload; "
                 "remove it"},
    {"resolver_timeout", "upstream host names are resolved when terminusd starts and on "
                         "reload; remove it"},
    {"tcp_nodelay", "the dataplane's TCP sends as soon as data is ready; remove it"},
    {"proxy_bind", "upstream connections leave from the address of the dataplane port; remove it"},
    {"proxy_socket_keepalive", kStream},
    {"proxy_requests", "it is for UDP sessions, and Terminus proxies TCP only"},
    {"proxy_responses", "it is for UDP sessions, and Terminus proxies TCP only"},
    {"proxy_protocol_timeout", kStream},
    {"variables_hash_max_size", kStream},
    {"variables_hash_bucket_size", kStream},
    {"server_names_hash_max_size", kStream},
    {"server_names_hash_bucket_size", kStream},
    {"split_clients", kStream},
    {"geo", kStream},
    {"geoip_country", kStream},
    {"geoip_city", kStream},
    {"geoip_org", kStream},
    {"set", kStream},
    {"js_import", kStream},
    {"js_access", kStream},
    {"js_preread", kStream},
    {"js_filter", kStream},
    {"js_set", kStream},
    {"set_real_ip_from", kStream},
    {"pass", kStream},
    {"open_log_file_cache", kStream},
    {"map_hash_max_size", kStream},
    {"map_hash_bucket_size", kStream},
    // NGINX Plus
    {"sticky", kPlus},
    {"queue", kPlus},
    {"state", kPlus},
    {"ntlm", kPlus},
    {"keyval", kPlus},
    {"keyval_zone", kPlus},
    {"status_zone", kPlus},
    {"api", kPlus},
    {"mqtt", kPlus},
    {"zone_sync", kPlus},
    {"health_check_timeout", kPlus},
    // mail
    {"mail", kMail},
    {"smtp_auth", kMail},
    {"imap_capabilities", kMail},
    {"pop3_capabilities", kMail},
    {"auth_http", kMail},
    {"starttls", kMail},
};

}  // namespace

const char* nginx_only_reason(std::string_view name) {
    for (const auto& d : kNginxOnly) {
        if (d.name == name) return d.reason;
    }
    return nullptr;
}

}  // namespace terminus::config::detail
