// "terminusd -T": the configuration as Terminus reads it — included files
// spliced in where they are included, and every directive left at its
// default written out, marked "# default", in the block it is inherited from.
#include <algorithm>
#include <filesystem>

#include "config/schema.h"

namespace terminus::config {

namespace {

using detail::Ctx;
using detail::Node;

constexpr int kIndent = 4;

class Dumper {
  public:
    explicit Dumper(const Config& cfg) : cfg_(cfg) {}

    std::string run(const std::vector<Node>& nodes) {
        out_ = "# configuration file " + cfg_.path + ":\n";
        block(nodes, detail::kMain, 0);
        return std::move(out_);
    }

  private:
    static Ctx child_ctx(Ctx parent, const Node& n) {
        const std::string& name = n.name.text;
        if (parent == detail::kMain) {
            if (name == "dataplane") return detail::kDataplane;
            if (name == "stream") return detail::kStream;
            if (name == "mgmt") return detail::kMgmt;
        } else if (parent == detail::kStream) {
            if (name == "server") return detail::kServer;
            if (name == "upstream") return detail::kUpstream;
            if (name == "match") return detail::kMatch;
        }
        return static_cast<Ctx>(0);  // map{} and the like: no defaults
    }

    void line(int depth, const std::string& text) {
        out_.append(static_cast<size_t>(depth * kIndent), ' ');
        out_ += text;
        out_ += '\n';
    }

    static std::string words(const Node& n) {
        std::string s = detail::quote_word(n.name.text);
        for (const auto& a : n.args) s += " " + detail::quote_word(a.text);
        return s;
    }

    void block(const std::vector<Node>& nodes, Ctx ctx, int depth) {
        for (const Node& n : nodes) {
            if (!n.included_by.empty()) line(depth, "# " + n.included_by + ": " + n.loc().file);
            if (n.block) {
                line(depth, words(n) + " {");
                block(n.children, child_ctx(ctx, n), depth + 1);
                line(depth, "}");
            } else {
                line(depth, words(n) + ";");
            }
        }
        defaults(nodes, ctx, depth);
        if (ctx == detail::kMain) {
            // Blocks that were not written at all, with their defaults.
            for (const auto& blk : {std::pair{"dataplane", detail::kDataplane},
                                    std::pair{"mgmt", detail::kMgmt}}) {
                const std::string name = blk.first;
                const Ctx c = blk.second;
                bool written = std::any_of(nodes.begin(), nodes.end(),
                                           [&](const Node& n) { return n.name.text == name; });
                if (written) continue;
                line(depth, name + " {  # default");
                defaults({}, c, depth + 1);
                line(depth, "}");
            }
        }
    }

    void defaults(const std::vector<Node>& nodes, Ctx ctx, int depth) {
        if (ctx == 0) return;
        auto written = [&](std::string_view name) {
            return std::any_of(nodes.begin(), nodes.end(),
                               [&](const Node& n) { return n.name.text == name; });
        };
        if (ctx == detail::kDataplane && cfg_.dataplane.ports_defaulted) {
            const PortConfig& p = cfg_.dataplane.ports.front();
            std::string s = "port " + p.device;
            for (const auto& [k, v] : p.devargs) s += " " + k + "=" + v;
            s += " address=" + ipv4_to_string(p.address.addr) + "/" +
                 std::to_string(p.address.len);
            if (p.gateway) s += " gateway=" + ipv4_to_string(*p.gateway);
            line(depth, s + ";  # default");
        }
        std::vector<std::string_view> done;
        for (const auto& d : detail::directive_table()) {
            if (d.default_value.empty() || !(d.contexts & ctx)) continue;
            // Print where the value is inherited from: error_log at the top
            // level, stream-and-server directives in stream{}.
            if ((d.contexts & detail::kMain) && ctx != detail::kMain) continue;
            if (ctx == detail::kServer && (d.contexts & detail::kStream)) continue;
            if (written(d.name)) continue;
            if (std::find(done.begin(), done.end(), d.name) != done.end()) continue;
            done.push_back(d.name);
            line(depth, std::string(d.name) + " " + std::string(d.default_value) + ";  # default");
        }
    }

    const Config& cfg_;
    std::string out_;
};

}  // namespace

DumpResult dump_effective(const std::string& path, const LoadOptions& options) {
    DumpResult r;
    LoadResult loaded = load_file(path, options);
    r.diagnostics = loaded.diagnostics;
    if (!loaded.ok()) return r;
    // Parse once more for the tree; it parsed cleanly a moment ago.
    detail::Diagnostics diags;
    auto nodes = detail::parse_file(path, diags, detail::parse_options(options));
    Dumper d(*loaded.config);
    r.text = d.run(nodes);
    r.ok = true;
    return r;
}

}  // namespace terminus::config
