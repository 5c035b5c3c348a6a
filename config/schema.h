// The directive table and the state the validator carries while it walks the
// syntax tree. Private to config/.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/syntax.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace terminus::config::detail {

// The blocks a directive may appear in.
enum Ctx : uint32_t {
    kMain = 1u << 0,
    kDataplane = 1u << 1,
    kStream = 1u << 2,
    kUpstream = 1u << 3,
    kServer = 1u << 4,
    kMgmt = 1u << 5,
    kMatch = 1u << 6,
};

// "server {}", "stream {} or server {}", "the top level".
std::string describe_contexts(uint32_t contexts);
const char* context_name(Ctx ctx);

struct PathAt {
    std::string path;  // absolute
    std::string written;
    Location loc;
};

// Per server{} (and per stream{} for what servers inherit): what the typed
// settings do not hold.
struct SettingsScratch {
    std::vector<PathAt> certificates;
    std::vector<PathAt> keys;
    Location password_file_loc;
    Location proxy_ssl_certificate_loc;
    Location proxy_ssl_certificate_key_loc;
    Location proxy_ssl_password_file_loc;
    Location proxy_ssl_verify_loc;  // where "proxy_ssl_verify" was written
    bool listen_written = false;      // even if refused
    bool proxy_pass_written = false;  // even if refused
};

struct Scope {
    Ctx ctx = kMain;
    ServerSettings* settings = nullptr;
    SettingsScratch* scratch = nullptr;
    Server* server = nullptr;
    Upstream* upstream = nullptr;
    Match* match = nullptr;
    std::vector<std::string_view> seen;  // directive names seen in this block
    std::vector<Location> seen_at;       // parallel to seen

    bool first_in_block(std::string_view name) const;
};

// A variable used somewhere, checked once every map is known.
struct VarUse {
    std::string name;  // without "$"
    Location loc;
    std::string directive;
};

class Builder;
using Handler = void (*)(Builder&, Scope&, const Node&);

struct DirectiveSpec {
    std::string_view name;
    uint32_t contexts;
    uint8_t min_args;
    uint8_t max_args;  // kAnyArgs: no upper bound
    bool block;
    bool repeatable;
    // nginx's default as it would be written after the name; empty when the
    // directive has none. "terminusd -T" prints it.
    std::string_view default_value;
    Handler handler;
};
constexpr uint8_t kAnyArgs = 255;

std::span<const DirectiveSpec> directive_table();
// The spec for NAME in CTX, or null; *any_context tells whether NAME exists
// in some other block.
const DirectiveSpec* find_directive(std::string_view name, Ctx ctx, uint32_t* all_contexts);

// Why an nginx directive that Terminus does not have is refused, or null
// when NAME is not an nginx directive.
const char* nginx_only_reason(std::string_view name);
// The closest known directive name, or empty.
std::string suggest_directive(std::string_view name);
// Parser options for a load, with the directive table's names.
ParseOptions parse_options(const LoadOptions& options);

class Builder {
  public:
    Builder(Config& cfg, Diagnostics& diags, const LoadOptions& options, std::string base_dir);

    void walk(const std::vector<Node>& nodes, Scope& scope);
    void finish();  // cross-references, once the whole tree is read

    // Helpers for handlers.
    void error(const Location& loc, std::string msg) { diags_.error(loc, std::move(msg)); }
    void warning(const Location& loc, std::string msg) { diags_.warning(loc, std::move(msg)); }
    std::string resolve_path(const std::string& p) const;
    void use_variables(const Word& w, const std::string& directive);
    const LoadOptions& options() const { return options_; }

    Config& cfg;
    std::vector<Node const*> server_blocks;  // in order, walked after the rest of stream{}
    ServerSettings stream_settings;
    SettingsScratch stream_scratch;
    std::vector<SettingsScratch> server_scratch;  // parallel to cfg.servers
    std::vector<VarUse> var_uses;
    std::vector<std::string> capture_variables;  // named regex captures
    bool saw_port = false;
    std::string main_name;  // the main file as it was named
    // Files already checked (by kind and path) and whether they were usable:
    // each is opened, and reported, once.
    std::map<std::string, bool> checked_files;
    // One SSL_CTX per load for checking cipher strings, curves and
    // ssl_conf_command (files.cc); made on first use.
    std::shared_ptr<ssl_ctx_st> scratch_ssl_ctx;

  private:
    void dispatch(const Node& node, Scope& scope);
    void finish_server(Server& s, SettingsScratch& scratch);
    void check_listeners();
    void check_proxy_pass(Server& s);

    Diagnostics& diags_;
    LoadOptions options_;
    std::string base_dir_;
};

// Referenced-file checks (files.cc). Each reports at LOC and returns
// whether the file is usable.
bool check_certificate_file(Builder& b, const std::string& path, const Location& loc);
bool check_key_matches(Builder& b, const PathAt& cert, const PathAt& key,
                       const std::string& password_file);
bool check_ca_file(Builder& b, const std::string& path, const Location& loc, const char* what);
bool check_crl_file(Builder& b, const std::string& path, const Location& loc);
bool check_ticket_key_file(Builder& b, const std::string& path, const Location& loc);
bool check_stapling_file(Builder& b, const std::string& path, const Location& loc);
bool check_dhparam_file(Builder& b, const std::string& path, const Location& loc);
bool check_password_file(Builder& b, const std::string& path, const Location& loc);
// OpenSSL's own view of cipher strings, TLS 1.3 suites, curves, commands.
bool check_cipher_list(Builder& b, const std::string& ciphers, const Location& loc);
bool check_ecdh_curve(Builder& b, const std::string& curves, const Location& loc);
bool check_conf_command(Builder& b, const ConfCommand& cmd, const std::string& directive);
// PCRE2 syntax of a regular expression; its named captures become
// variables (nginx: "(?<name>...)" sets $name).
bool check_regex(Builder& b, const std::string& re, bool caseless, const Location& loc);

}  // namespace terminus::config::detail
