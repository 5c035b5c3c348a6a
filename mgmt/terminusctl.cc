// terminusctl: the operator's CLI. "stats" reads terminusd's statistics
// segment; "reload", "check" and "status" ask terminusd over its control
// socket (mgmt { control }; dataplane/control.h).
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "mgmt/control_client.h"
#include "mgmt/json.h"
#include "mgmt/stats.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/terminus/terminus.conf";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: terminusctl stats [--name NAME] [--json | --prometheus] [--per-core]\n"
                 "                         [--watch [SECONDS]]\n"
                 "       terminusctl reload [-c FILE | --socket PATH] [--json]\n"
                 "       terminusctl check [-c FILE | --socket PATH] [--json] [CHECKED_FILE]\n"
                 "       terminusctl status [-c FILE | --socket PATH] [--json]\n"
                 "  --name NAME   the terminusd instance (terminusd -n NAME; default \"default\")\n"
                 "  --json        one JSON object, for scripts\n"
                 "  --prometheus  Prometheus text exposition\n"
                 "  --per-core    a column per core\n"
                 "  --watch [S]   refresh every S seconds (default 1) with rates\n"
                 "  -c FILE       the configuration whose mgmt { control } names the socket\n"
                 "                (default %s)\n"
                 "  --socket PATH the control socket itself\n"
                 "reload: terminusd reads its configuration file again; new connections get the\n"
                 "  new generation, established ones keep theirs; a refused file changes nothing.\n"
                 "check: what a reload of CHECKED_FILE (default: terminusd's file) would say,\n"
                 "  certificates and keys loaded, nothing applied.\n"
                 "status: the configuration generations terminusd holds.\n"
                 "commands still to come: upstreams, sessions, certs, tickets rotate\n",
                 kDefaultConfig);
}

// reload, check, status: one request on the control socket.
int control(const std::string& cmd, int argc, char** argv) {
    std::string file = kDefaultConfig, socket, checked;
    bool json = false, file_given = false;
    for (int i = 0; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-c" && i + 1 < argc) {
            file = argv[++i];
            file_given = true;
        } else if (a == "--socket" && i + 1 < argc) {
            socket = argv[++i];
        } else if (a == "--json") {
            json = true;
        } else if (cmd == "check" && a[0] != '-' && checked.empty()) {
            checked = a;
        } else {
            std::fprintf(stderr, "terminusctl %s: unknown option \"%s\"\n", cmd.c_str(), a.c_str());
            usage(stderr);
            return 2;
        }
    }
    if (socket.empty()) {
        std::string why;
        socket = terminus::mgmt::control_socket_of(file, why);
        if (!why.empty() && file_given) std::fprintf(stderr, "terminusctl: %s\n", why.c_str());
    }
    std::string request = cmd;
    if (!checked.empty()) {
        char real[4096];
        request += " " + std::string(realpath(checked.c_str(), real) ? real : checked.c_str());
    }
    auto answer = terminus::mgmt::control_request(socket, request);
    if (!answer) {
        std::fprintf(stderr, "terminusctl: %s\n", answer.error().c_str());
        return 1;
    }
    auto j = terminus::mgmt::parse_json(*answer);
    if (!j) {
        std::fprintf(stderr, "terminusctl: terminusd answered something unreadable (%s): %s\n", j.error().c_str(),
                     answer->c_str());
        return 1;
    }
    const bool ok = (*j)["ok"].truthy();
    if (json) {
        std::fputs(answer->c_str(), stdout);
        return ok ? 0 : 1;
    }
    if (cmd == "status") {
        std::printf("generation %.0f of %s on %.0f cores\n", (*j)["generation"].number, (*j)["config"].str.c_str(),
                    (*j)["cores"].number);
        std::printf("%-10s %-8s %9s %9s\n", "GENERATION", "STATE", "INSTALLED", "RELEASED");
        for (const auto& g : (*j)["generations"].items) {
            std::printf("%-10.0f %-8s %9.0f %9.0f\n", g["number"].number, g["state"].str.c_str(),
                        g["installed"].number, g["released"].number);
        }
        return ok ? 0 : 1;
    }
    for (const auto& e : (*j)["errors"].items) std::fprintf(stderr, "%s\n", e.str.c_str());
    for (const auto& w : (*j)["warnings"].items) std::fprintf(stderr, "%s\n", w.str.c_str());
    std::fprintf(ok ? stdout : stderr, "terminusctl %s: %s\n", cmd.c_str(), (*j)["message"].str.c_str());
    return ok ? 0 : 1;
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
    if (cmd == "reload" || cmd == "check" || cmd == "status") return control(cmd, argc - 2, argv + 2);
    if (cmd == "upstreams" || cmd == "sessions" || cmd == "certs" || cmd == "tickets") {
        std::fprintf(stderr, "terminusctl %s: not implemented yet\n", cmd.c_str());
        return 2;
    }
    std::fprintf(stderr, "terminusctl: unknown command \"%s\"\n", cmd.c_str());
    usage(stderr);
    return 2;
}
