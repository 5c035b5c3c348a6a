// terminusctl: the operator's CLI. "stats" reads terminusd's statistics
// segment; "reload", "check" and "status" ask terminusd over its control
// socket (mgmt { control }; dataplane/control.h).
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
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
                 "       terminusctl upstreams [-c FILE | --socket PATH] [--json]\n"
                 "       terminusctl sessions [--top N] [-c FILE | --socket PATH] [--json]\n"
                 "       terminusctl certs [-c FILE | --socket PATH] [--json]\n"
                 "       terminusctl tickets [rotate] [-c FILE | --socket PATH] [--json]\n"
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
                 "upstreams: each upstream server's state, weight, connections, failures, checks.\n"
                 "sessions: sessions by stage, TCP connections by state; --top N: the N largest\n"
                 "  sessions by bytes.\n"
                 "certs: the certificates served: subject, names, key, expiry, OCSP response age.\n"
                 "tickets: the session ticket keys (names only), who rotates them, key files;\n"
                 "tickets rotate: a new random session ticket key now (the previous one decrypts).\n",
                 kDefaultConfig);
}

// reload, check, status: one request on the control socket.
int control(const std::string& cmd, int argc, char** argv) {
    std::string file = kDefaultConfig, socket, checked;
    bool json = false, file_given = false;
    unsigned top = 0;
    int i = 0;
    bool rotate = false;
    if (cmd == "tickets" && argc >= 1 && argv[0][0] != '-') {
        if (std::strcmp(argv[0], "rotate") != 0) {
            std::fprintf(stderr, "terminusctl tickets: \"%s\"? say \"tickets\" or \"tickets rotate\"\n", argv[0]);
            return 2;
        }
        rotate = true;
        i = 1;
    }
    for (; i < argc; ++i) {
        const std::string a = argv[i];
        if (cmd == "sessions" && a == "--top" && i + 1 < argc) {
            top = static_cast<unsigned>(std::atoi(argv[++i]));
        } else if (a == "-c" && i + 1 < argc) {
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
    std::string request = cmd == "tickets" && rotate ? "tickets rotate" : cmd;
    if (cmd == "sessions") request += " " + std::to_string(top);
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
    if (!ok) {
        for (const auto& e : (*j)["errors"].items) std::fprintf(stderr, "terminusctl %s: %s\n", cmd.c_str(), e.str.c_str());
        if (cmd != "reload" && cmd != "check") return 1;
    }
    if (cmd == "upstreams") {
        std::printf("%-16s %-22s %-9s %6s %6s %6s %8s %8s %-10s\n", "UPSTREAM", "SERVER", "STATE", "WEIGHT", "CONNS",
                    "FAILS", "CHECKS", "FAILED", "LAST_CHECK");
        for (const auto& u : (*j)["upstreams"].items) {
            for (const auto& s : u["servers"].items) {
                std::printf("%-16s %-22s %-9s %6.0f %6.0f %6.0f %8.0f %8.0f %-10s%s%s\n", u["name"].str.c_str(),
                            s["server"].str.c_str(), s["state"].str.c_str(), s["weight"].number, s["conns"].number,
                            s["fails"].number, s["checks"].number, s["checks_failed"].number,
                            u["health_check"].truthy() ? s["last_check"].str.c_str() : "-",
                            s["backup"].truthy() ? " backup" : "", s["down"].truthy() ? " down" : "");
            }
        }
        return 0;
    }
    if (cmd == "certs") {
        for (const auto& c : (*j)["certs"].items) {
            std::printf("%s  (server at %s)\n", c["path"].str.c_str(), c["server"].str.c_str());
            if (c["error"].type == terminus::mgmt::Json::Type::kString) {
                std::printf("  error: %s\n", c["error"].str.c_str());
                continue;
            }
            std::string names;
            for (const auto& n : c["names"].items) names += (names.empty() ? "" : ", ") + n.str;
            const auto t = static_cast<time_t>(c["not_after"].number);
            char when[32];
            std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
            std::printf("  subject  %s\n  names    %s\n  key      %s\n  expires  %s (%.0f days)\n",
                        c["subject"].str.c_str(), names.c_str(), c["key"].str.c_str(), when, c["days_left"].number);
            if (c["ocsp_age_s"].type == terminus::mgmt::Json::Type::kNumber) {
                std::printf("  ocsp     response %.1f h old\n", c["ocsp_age_s"].number / 3600);
            }
        }
        return 0;
    }
    if (cmd == "sessions") {
        std::printf("%.0f sessions (generation %.0f for new ones)\n", (*j)["active"].number,
                    (*j)["generation"].number);
        for (const auto& [k, v] : (*j)["by_stage"].fields) {
            if (v.number) std::printf("  %-20s %8.0f\n", k.c_str(), v.number);
        }
        std::printf("TCP connections by state\n");
        for (const auto& [k, v] : (*j)["tcp"].fields) {
            if (v.number) std::printf("  %-20s %8.0f\n", k.c_str(), v.number);
        }
        if (!(*j)["top"].items.empty()) {
            std::printf("%-4s %-21s %-6s %-21s %-18s %-4s %12s %12s %9s %4s\n", "CORE", "CLIENT", "PORT", "UPSTREAM",
                        "STAGE", "TLS", "TO_UPSTREAM", "TO_CLIENT", "AGE_S", "GEN");
            for (const auto& t : (*j)["top"].items) {
                std::printf("%-4.0f %-21s %-6.0f %-21s %-18s %-4s %12.0f %12.0f %9.1f %4.0f\n", t["core"].number,
                            t["client"].str.c_str(), t["port"].number, t["upstream"].str.c_str(),
                            t["stage"].str.c_str(), t["tls"].truthy() ? "yes" : "no", t["bytes_to_upstream"].number,
                            t["bytes_to_client"].number, t["age_s"].number, t["generation"].number);
            }
        }
        return 0;
    }
    if (cmd == "tickets") {
        if (rotate) std::printf("terminusctl tickets rotate: %s\n", (*j)["message"].str.c_str());
        std::printf("random keys (servers without ssl_session_ticket_key), rotated by %s every %.0f s\n",
                    (*j)["rotated_by"].str.c_str(), (*j)["rotation_s"].number);
        std::printf("  current   %s  (%.0f s old)\n  previous  %s  (decrypts only)\n", (*j)["current"].str.c_str(),
                    (*j)["rotated_s_ago"].number, (*j)["previous"].str.c_str());
        if ((*j)["pushed_s_ago"].type == terminus::mgmt::Json::Type::kNumber) {
            std::printf("  terminus-mgmtd: last push %.1f s ago, %.0f of its keys installed\n",
                        (*j)["pushed_s_ago"].number, (*j)["mgmtd_keys"].number);
        }
        for (const auto& f : (*j)["files"].items) {
            std::string files;
            for (const auto& k : f["keys"].items) files += (files.empty() ? "" : ", ") + k.str;
            std::printf("server at %s: key files %s (current %s)\n", f["server"].str.c_str(), files.c_str(),
                        f["current"].str.c_str());
        }
        return 0;
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
    if (cmd == "reload" || cmd == "check" || cmd == "status" || cmd == "upstreams" || cmd == "sessions" ||
        cmd == "certs" || cmd == "tickets") {
        return control(cmd, argc - 2, argv + 2);
    }
    std::fprintf(stderr, "terminusctl: unknown command \"%s\"\n", cmd.c_str());
    usage(stderr);
    return 2;
}
