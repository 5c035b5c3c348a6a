// Variables and map {} for one core: values with "$name" in them
// ("$backend_name", "$ssl_preread_server_name:443", "${a}text") compiled
// once at start and evaluated per session into the caller's buffer, with
// no allocation, as nginx's complex values and ngx_stream_map_module do.
//
// Map lookups follow nginx: the source value is lowercased and looked up
// among the exact keys (which nginx lowercases too); with "hostnames", a
// trailing dot is dropped first, then "*.example.com" / ".example.com" keys
// (longest suffix first) and then "www.example.*" keys (longest prefix
// first) are tried; then the "~" and "~*" regular expressions in the order
// written, against the value as it was (an empty value matches none); then
// "default", or the empty string. Inside the value of a regex entry, $1..$9
// (and ${N}) are its captures and a named group (?<name>...) is $name.
//
// nginx caches a map's value for the rest of the session unless the map is
// "volatile". Nothing here caches: every evaluation looks the value up
// again. The variables a session has are fixed once preread has finished,
// so the answers are the same either way, and "volatile" changes nothing.
//
// Private to dataplane/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/result.h"
#include "dataplane/proxy/client_hello.h"

namespace terminus::dataplane::proxy {

// What a session's variables are made of. The views must outlive the
// evaluations that read them.
struct SessionVars {
    uint32_t remote_addr = 0;  // $remote_addr, $binary_remote_addr; host byte order
    uint16_t remote_port = 0;  // $remote_port
    uint32_t server_addr = 0;  // $server_addr; host byte order
    uint16_t server_port = 0;  // $server_port
    // ssl_preread's answer when it said kDone; null otherwise, which makes
    // every $ssl_preread_* empty (nginx: not found).
    const ClientHelloInfo* preread = nullptr;
    // $ssl_server_name: the SNI of a TLS session this server terminates.
    std::string_view ssl_server_name;
    // From a PROXY protocol header that carried addresses; without one all
    // four variables are empty. Addresses as text ("198.51.100.7",
    // "2001:db8::1"), since the header may carry IPv6.
    bool has_proxy_protocol = false;
    std::string_view proxy_protocol_addr;  // $proxy_protocol_addr
    uint16_t proxy_protocol_port = 0;      // $proxy_protocol_port
    std::string_view proxy_protocol_server_addr;
    uint16_t proxy_protocol_server_port = 0;
};

class Maps;

// A value with variables, compiled once.
class Expression {
  public:
    // Compiles VALUE with nginx's syntax: "$name" (letters, digits, "_")
    // or "${name}"; everything else is text. MAPS resolves the names of
    // map variables and must outlive the Expression; null means no maps.
    // An Expression that uses maps is evaluated on MAPS' core only.
    // Errors (the message names the variable): "$" without a name, a "{"
    // without "}", a variable that is neither a map nor one of those
    // SessionVars provides ($remote_addr, $remote_port,
    // $binary_remote_addr, $server_addr, $server_port,
    // $ssl_preread_server_name, $ssl_preread_alpn_protocols,
    // $ssl_preread_protocol, $ssl_server_name, $proxy_protocol_addr,
    // $proxy_protocol_port, $proxy_protocol_server_addr,
    // $proxy_protocol_server_port, $protocol), a regex capture ($1), or a
    // map that cannot be evaluated (Maps::problem).
    static Result<Expression> compile(std::string_view value, const Maps* maps);

    // Writes the value to OUT, at most CAP bytes, without a NUL, and
    // returns its whole length: a result above CAP means OUT holds only
    // the first CAP bytes. Does not allocate.
    size_t evaluate(const SessionVars& vars, char* out, size_t cap) const;

    // No variables: text() is the value.
    bool is_constant() const;
    // The value as written.
    const std::string& text() const { return text_; }

  private:
    friend class Maps;
    enum class Kind : uint8_t {
        kText,
        kRemoteAddr,
        kRemotePort,
        kBinaryRemoteAddr,
        kServerAddr,
        kServerPort,
        kPrereadServerName,
        kPrereadAlpnProtocols,
        kPrereadProtocol,
        kSslServerName,
        kProxyProtocolAddr,
        kProxyProtocolPort,
        kProxyProtocolServerAddr,
        kProxyProtocolServerPort,
        kProtocol,
        kMap,      // arg: the map's index in Maps
        kCapture,  // arg: the regex group
        kEmpty,    // a variable it cannot evaluate
    };
    struct Part {
        Kind kind = Kind::kText;
        uint32_t arg = 0;
        std::string text;  // kText
    };
    struct Out;
    struct Captures;
    struct CaptureNames;

    Expression() = default;
    // Never fails on variables: one it cannot evaluate is kept as empty
    // and named in unsupported_. NAMES: the named groups of the regex
    // whose entry this value belongs to, or null.
    static Result<Expression> parse(std::string_view value, const Maps* maps, const CaptureNames* names,
                                    bool captures_allowed);
    void eval(const SessionVars& vars, Out& out, const Captures* caps, unsigned depth) const;

    std::string text_;
    std::vector<Part> parts_;
    const Maps* maps_ = nullptr;
    std::string unsupported_;  // the first variable it cannot evaluate
};

// Every map {} of a configuration, for one core: each regex has its own
// match data here, so a Maps object is used by one thread only. With
// PCRE2's JIT a match allocates nothing; PCRE2's interpreter, where the
// JIT is missing, keeps the frames it allocates on its first match in that
// match data for the matches after.
class Maps {
  public:
    // Compiles every map of CFG: keys, wildcards, regexes (with PCRE2's JIT
    // where it is available) and values. Error: a regex PCRE2 refuses
    // (the configuration has already compiled each once, so only a PCRE2
    // that differs would).
    static Result<std::unique_ptr<Maps>> build(const config::Config& cfg);
    ~Maps();
    Maps(const Maps&) = delete;
    Maps& operator=(const Maps&) = delete;

    // The map that sets variable NAME (without "$"), or -1.
    int find(std::string_view name) const;
    // Why map I cannot be evaluated, or empty when it can: it uses a
    // variable SessionVars does not provide, a capture outside a regex
    // entry, or itself through other maps (nginx: "cycle while evaluating
    // variable"), or its maps nest deeper than kMaxDepth.
    const std::string& problem(int i) const;
    // Evaluates map I as Expression::evaluate does.
    size_t evaluate(int i, const SessionVars& vars, char* out, size_t cap) const;

    // A source longer than this many bytes matches no key: the default
    // applies. Each nesting level holds two buffers of it on the stack.
    static constexpr size_t kMaxSource = 1024;
    static constexpr unsigned kMaxDepth = 16;

  private:
    friend class Expression;
    struct Map;
    struct Regex;

    Maps();
    void eval(int i, const SessionVars& vars, Expression::Out& out, unsigned depth) const;
    void find_problems();

    std::vector<Map> maps_;
};

}  // namespace terminus::dataplane::proxy
