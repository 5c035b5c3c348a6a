// terminusd: the Terminus dataplane. In this version it validates and
// prints configurations (-t, -T); the DPDK dataplane lands with issue #4.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "config/config.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/terminus/terminus.conf";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: terminusd [-t | -T] [-q] [-c FILE]\n"
                 "  -c FILE  configuration file (default %s)\n"
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
    int opt;
    while ((opt = getopt(argc, argv, "tTqc:vh")) != -1) {
        switch (opt) {
            case 't': test = true; break;
            case 'T': dump = true; break;
            case 'q': quiet = true; break;
            case 'c': path = optarg; break;
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
    std::fprintf(stderr,
                 "terminusd: the configuration is valid, but this build has no dataplane yet "
                 "(issue #4); only -t and -T work\n");
    return 2;
}
