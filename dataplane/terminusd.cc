// terminusd: the Terminus dataplane. Validates (-t) and prints (-T)
// configurations, and runs the DPDK poll-mode cores.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.h"
#include "dataplane/dataplane.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/terminus/terminus.conf";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: terminusd [-t | -T] [-q] [-c FILE] [-n NAME]\n"
                 "  -c FILE  configuration file (default %s)\n"
                 "  -n NAME  instance name: EAL file prefix and statistics segment\n"
                 "           (default \"default\"), for several terminusd side by side\n"
                 "  -t       test the configuration and exit\n"
                 "  -T       test the configuration, print it with includes expanded and\n"
                 "           defaults filled in, and exit\n"
                 "  -q       with -t, print errors only\n"
                 "  -v       print the version and exit\n",
                 kDefaultConfig);
}

void print_diagnostics(const std::vector<terminus::config::Diagnostic>& diags, bool quiet) {
    for (const auto& d : diags) {
        if (quiet && d.severity == terminus::config::Severity::kWarning) continue;
        std::fprintf(stderr, "%s\n", d.to_string().c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool test = false, dump = false, quiet = false;
    std::string path = kDefaultConfig;
    terminus::dataplane::RunOptions run_options;
    int opt;
    while ((opt = getopt(argc, argv, "tTqc:n:vh")) != -1) {
        switch (opt) {
            case 't': test = true; break;
            case 'T': dump = true; break;
            case 'q': quiet = true; break;
            case 'c': path = optarg; break;
            case 'n': run_options.instance = optarg; break;
            case 'v': std::printf("terminusd version " TERMINUS_VERSION "\n"); return 0;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        std::fprintf(stderr, "terminusd: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    if (dump) {
        auto r = terminus::config::dump_effective(path);
        print_diagnostics(r.diagnostics, false);
        if (!r.ok) {
            std::fprintf(stderr, "terminusd: configuration file %s test failed\n", path.c_str());
            return 1;
        }
        std::fprintf(stderr, "terminusd: configuration file %s test is successful\n", path.c_str());
        std::fwrite(r.text.data(), 1, r.text.size(), stdout);
        return 0;
    }

    auto r = terminus::config::load_file(path);
    print_diagnostics(r.diagnostics, quiet);
    if (!r.ok()) {
        std::fprintf(stderr, "terminusd: configuration file %s test failed (%zu error%s)\n",
                     path.c_str(), r.error_count(), r.error_count() == 1 ? "" : "s");
        return 1;
    }
    if (test) {
        std::fprintf(stderr, "terminusd: configuration file %s test is successful\n", path.c_str());
        return 0;
    }
    auto unsupported = terminus::dataplane::unsupported_directives(*r.config);
    if (!unsupported.empty()) {
        print_diagnostics(unsupported, false);
        std::fprintf(stderr, "terminusd: not started: %zu directive%s not implemented yet\n",
                     unsupported.size(), unsupported.size() == 1 ? " is" : "s are");
        return 1;
    }
    terminus::config::Config cfg = *r.config;
    run_options.config_path = cfg.path.empty() ? path : cfg.path;
    auto unresolved = terminus::dataplane::resolve_hosts(cfg);
    if (!unresolved.empty()) {
        print_diagnostics(unresolved, false);
        std::fprintf(stderr, "terminusd: not started: %zu host name%s not found\n", unresolved.size(),
                     unresolved.size() == 1 ? "" : "s");
        return 1;
    }
    return terminus::dataplane::run(cfg, run_options);
}
