// Builds the syntax tree from the lexer's statements and splices included
// files into it.
#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/syntax.h"

namespace terminus::config::detail {

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxFileSize = 64 * 1024 * 1024;

bool has_glob_chars(std::string_view s) {
    return s.find_first_of("*?[") != std::string_view::npos;
}

class Parser {
  public:
    Parser(Diagnostics& diags, const ParseOptions& options) : diags_(diags), options_(options) {}

    std::vector<Node> parse_file(const std::string& path, const Location* included_at) {
        std::error_code ec;
        fs::path canonical = fs::weakly_canonical(fs::absolute(path), ec);
        const std::string key = ec ? path : canonical.string();

        if (std::find(stack_.begin(), stack_.end(), key) != stack_.end()) {
            std::string chain;
            auto it = std::find(stack_.begin(), stack_.end(), key);
            for (; it != stack_.end(); ++it) chain += "\"" + *it + "\" includes ";
            chain += "\"" + key + "\"";
            diags_.error(included_at ? *included_at : Location{path, 0, 0},
                         "include cycle: " + chain + "; remove one of these includes");
            return {};
        }
        if (stack_.size() >= static_cast<size_t>(kMaxIncludeDepth)) {
            diags_.error(included_at ? *included_at : Location{path, 0, 0},
                         "includes nested more than " + std::to_string(kMaxIncludeDepth) +
                             " deep: \"" + path + "\" is not read");
            return {};
        }

        if (stack_.empty() && main_dir_.empty()) {
            main_dir_ = fs::absolute(path, ec).parent_path().lexically_normal().string();
        }
        std::string text;
        if (!read_file(path, text, included_at)) return {};
        stack_.push_back(key);
        auto nodes = parse_text(text, path);
        stack_.pop_back();
        return nodes;
    }

    std::vector<Node> parse_text(std::string_view text, const std::string& name) {
        if (main_dir_.empty()) {
            std::error_code ec;
            main_dir_ = fs::absolute(name, ec).parent_path().lexically_normal().string();
        }
        Lexer lexer(text, name, diags_);
        return parse_block(lexer, name, 0);
    }

  private:
    bool read_file(const std::string& path, std::string& out, const Location* at) {
        const Location where = at ? *at : Location{path, 0, 0};
        struct stat st{};
        if (::stat(path.c_str(), &st) != 0) {
            diags_.error(where, "cannot open \"" + path + "\": " + std::strerror(errno));
            return false;
        }
        if (S_ISDIR(st.st_mode)) {
            diags_.error(where, "\"" + path + "\" is a directory, not a configuration file");
            return false;
        }
        if (static_cast<size_t>(st.st_size) > kMaxFileSize) {
            diags_.error(where, "\"" + path + "\" is larger than 64 MiB; is it a configuration file?");
            return false;
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            diags_.error(where, "cannot open \"" + path + "\": " + std::strerror(errno));
            return false;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        out = ss.str();
        return true;
    }

    std::vector<Node> parse_block(Lexer& lexer, const std::string& file, int depth) {
        std::vector<Node> nodes;
        for (;;) {
            Lexer::Statement st = lexer.next();
            switch (st.kind) {
                case Lexer::Kind::kEof:
                    if (depth > 0) {
                        diags_.error(st.loc, "unexpected end of file, expecting \"}\"");
                    }
                    return nodes;
                case Lexer::Kind::kBlockEnd:
                    if (depth == 0) {
                        diags_.error(st.loc, "unexpected \"}\": no block is open here");
                        continue;
                    }
                    return nodes;
                case Lexer::Kind::kDirective:
                case Lexer::Kind::kBlockStart:
                    break;
            }

            // A ";" that is missing shows as a directive name at the start
            // of a line inside the words: split the statement there.
            std::vector<std::vector<Word>> parts(1);
            for (size_t i = 0; i < st.words.size(); ++i) {
                Word& w = st.words[i];
                if (i > 0 && looks_like_next_directive(st, i)) {
                    missing_semicolon(parts.back());
                    parts.emplace_back();
                }
                parts.back().push_back(std::move(w));
            }
            if (st.unterminated) missing_semicolon(parts.back());
            if (st.damaged) {
                // Reported by the lexer; a block's contents still count.
                if (st.kind == Lexer::Kind::kBlockStart) {
                    auto children = parse_block(lexer, file, depth + 1);
                    (void)children;
                }
                continue;
            }

            for (size_t p = 0; p < parts.size(); ++p) {
                const bool last = p + 1 == parts.size();
                Node node;
                node.name = std::move(parts[p].front());
                node.args.assign(std::make_move_iterator(parts[p].begin() + 1),
                                 std::make_move_iterator(parts[p].end()));
                if (last && st.kind == Lexer::Kind::kBlockStart) {
                    node.block = true;
                    if (depth + 1 >= kMaxBlockDepth) {
                        diags_.error(node.loc(), "blocks nested more than " +
                                                     std::to_string(kMaxBlockDepth) + " deep");
                        skip_block(lexer);
                        continue;
                    }
                    node.children = parse_block(lexer, file, depth + 1);
                }
                add_node(std::move(node), file, nodes);
            }
        }
    }

    // Whether words[i] starts a directive whose ";"-terminated predecessor
    // lost its ";": a directive name first on its line. When the statement
    // did end with ";", nginx would have read the words as parameters, so
    // ask for more: a word after it on the same line, and not one of the
    // parameters that are spelled like directives ("listen ... \n
    // proxy_protocol;", "random two\n least_conn;").
    bool looks_like_next_directive(const Lexer::Statement& st, size_t i) const {
        const Word& w = st.words[i];
        if (w.quoted || !options_.is_directive || w.loc.line <= st.words[i - 1].loc.line ||
            !options_.is_directive(w.text)) {
            return false;
        }
        if (st.unterminated) return true;
        if (w.text == "proxy_protocol" || w.text == "least_conn") return false;
        return i + 1 < st.words.size() && st.words[i + 1].loc.line == w.loc.line;
    }

    void missing_semicolon(const std::vector<Word>& words) {
        std::string text;
        for (const Word& w : words) {
            if (!text.empty()) text += ' ';
            text += w.quoted ? quote_word(w.text) : w.text;
        }
        if (text.size() > 60) text = text.substr(0, 57) + "...";
        diags_.error(words.back().end, "missing \";\" after \"" + text + "\"");
    }

    void add_node(Node node, const std::string& file, std::vector<Node>& nodes) {
        if (node.name.text == "include" && !node.block && options_.follow_includes) {
            splice_include(node, file, nodes);
            return;
        }
        nodes.push_back(std::move(node));
    }

    void skip_block(Lexer& lexer) {
        int open = 1;
        while (open > 0) {
            Lexer::Statement st = lexer.next();
            if (st.kind == Lexer::Kind::kEof) return;
            if (st.kind == Lexer::Kind::kBlockStart) ++open;
            if (st.kind == Lexer::Kind::kBlockEnd) --open;
        }
    }

    void splice_include(const Node& node, const std::string& file, std::vector<Node>& out) {
        if (node.args.size() != 1) {
            diags_.error(node.loc(), "\"include\" takes one file name or glob, " +
                                         std::to_string(node.args.size()) + " given");
            return;
        }
        const Word& arg = node.args.front();
        // Relative to the including file; failing that, relative to the
        // main file's directory, where nginx resolves every include (so
        // that a Debian-style sites-enabled/x may include snippets/y).
        std::vector<std::string> files;
        const bool relative = fs::path(arg.text).is_relative();
        std::string pat = expand(fs::path(file).parent_path(), arg, files);
        if (relative && files.empty() && !main_dir_.empty() &&
            fs::path(file).parent_path() != fs::path(main_dir_)) {
            std::vector<std::string> from_main;
            expand(fs::path(main_dir_), arg, from_main);
            if (!from_main.empty()) files = std::move(from_main);
        }
        if (files.empty() && !has_glob_chars(arg.text)) files.push_back(pat);  // reports the error

        for (const std::string& f : files) {
            auto nodes = parse_file(f, &arg.loc);
            if (!nodes.empty()) {
                nodes.front().included_by = "include " + quote_word(arg.text) + " (" +
                                            arg.loc.file + ":" + std::to_string(arg.loc.line) +
                                            ")";
            }
            for (auto& n : nodes) out.push_back(std::move(n));
        }
    }

    // The files ARG names relative to DIR: glob matches (sorted, as glob()
    // and nginx order them) or the one file if it exists. Returns the path.
    std::string expand(const fs::path& dir, const Word& arg, std::vector<std::string>& out) {
        fs::path pattern(arg.text);
        if (pattern.is_relative()) pattern = dir / pattern;
        const std::string pat = pattern.lexically_normal().string();
        if (has_glob_chars(arg.text)) {
            glob_t g{};
            // Flags 0, as nginx: a directory that does not exist matches
            // nothing, which is not an error.
            int rc = ::glob(pat.c_str(), 0, nullptr, &g);
            if (rc == 0) {
                for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
            } else if (rc != GLOB_NOMATCH) {
                diags_.error(arg.loc, "cannot read the files matching \"" + pat + "\"");
            }
            globfree(&g);
        } else {
            std::error_code ec;
            if (fs::exists(pat, ec)) out.push_back(pat);
        }
        return pat;
    }

    Diagnostics& diags_;
    ParseOptions options_;
    std::string main_dir_;
    std::vector<std::string> stack_;
};

}  // namespace

std::vector<Node> parse_file(const std::string& path, Diagnostics& diags,
                             const ParseOptions& options) {
    Parser p(diags, options);
    return p.parse_file(path, nullptr);
}

std::vector<Node> parse_text(std::string_view text, const std::string& name,
                             Diagnostics& diags, const ParseOptions& options) {
    Parser p(diags, options);
    return p.parse_text(text, name);
}

}  // namespace terminus::config::detail
