// terminusctl: the operator's CLI. "stats" reads terminusd's statistics
// segment; the other commands arrive with terminus-mgmtd.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "mgmt/stats.h"

namespace {

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: terminusctl stats [--name NAME] [--json | --prometheus] [--per-core]\n"
                 "                         [--watch [SECONDS]]\n"
                 "  --name NAME   the terminusd instance (terminusd -n NAME; default \"default\")\n"
                 "  --json        one JSON object, for scripts\n"
                 "  --prometheus  Prometheus text exposition\n"
                 "  --per-core    a column per core\n"
                 "  --watch [S]   refresh every S seconds (default 1) with rates\n"
                 "commands still to come with terminus-mgmtd: upstreams, sessions, certs, reload, check\n");
}

int stats(int argc, char** argv) {
    std::string name = "default";
    bool json = false, prometheus = false, per_core = false;
    double watch = 0;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--name" && i + 1 < argc) {
            name = argv[++i];
        } else if (a == "--json") {
            json = true;
        } else if (a == "--prometheus") {
            prometheus = true;
        } else if (a == "--per-core") {
            per_core = true;
        } else if (a == "--watch") {
            watch = 1;
            if (i + 1 < argc && argv[i + 1][0] != '-') watch = std::atof(argv[++i]);
            if (watch <= 0) watch = 1;
        } else {
            std::fprintf(stderr, "terminusctl stats: unknown option \"%s\"\n", a.c_str());
            usage(stderr);
            return 2;
        }
    }
    auto snap = terminus::mgmt::read_stats(name);
    if (!snap) {
        std::fprintf(stderr, "terminusctl: %s\n", snap.error().c_str());
        return 1;
    }
    if (json) {
        std::fputs(terminus::mgmt::render_json(*snap).c_str(), stdout);
        return 0;
    }
    if (prometheus) {
        std::fputs(terminus::mgmt::render_prometheus(*snap).c_str(), stdout);
        return 0;
    }
    if (watch <= 0) {
        std::fputs(terminus::mgmt::render_table(*snap, per_core, nullptr, 0).c_str(), stdout);
        return 0;
    }
    terminus::mgmt::Snapshot prev = *snap;
    for (;;) {
        std::this_thread::sleep_for(std::chrono::duration<double>(watch));
        auto now = terminus::mgmt::read_stats(name);
        if (!now) {
            std::fprintf(stderr, "terminusctl: %s\n", now.error().c_str());
            return 1;
        }
        std::fputs("\033[H\033[2J", stdout);
        std::fputs(terminus::mgmt::render_table(*now, per_core, &prev, watch).c_str(), stdout);
        std::fflush(stdout);
        prev = *now;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string cmd = argv[1];
    if (cmd == "stats") return stats(argc - 2, argv + 2);
    if (cmd == "upstreams" || cmd == "sessions" || cmd == "certs" || cmd == "reload" || cmd == "check") {
        std::fprintf(stderr, "terminusctl %s: not implemented yet (it needs terminus-mgmtd)\n", cmd.c_str());
        return 2;
    }
    std::fprintf(stderr, "terminusctl: unknown command \"%s\"\n", cmd.c_str());
    usage(stderr);
    return 2;
}
