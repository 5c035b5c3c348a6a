// The syntax tree of an nginx-style configuration, and the lexer and parser
// that build it. Private to config/.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace terminus::config::detail {

class Diagnostics {
  public:
    void error(const Location& loc, std::string message);
    void warning(const Location& loc, std::string message);
    bool has_errors() const { return errors_ > 0; }
    std::vector<Diagnostic>& list() { return list_; }
    // Sorted by file order of appearance, then line and column; stable.
    std::vector<Diagnostic> take_sorted();

  private:
    std::vector<Diagnostic> list_;
    size_t errors_ = 0;
};

// One token: a directive name or an argument, with escapes applied.
struct Word {
    std::string text;
    Location loc;
    bool quoted = false;
    Location end;  // just past the word (past its closing quote)
};

struct Node {
    Word name;
    std::vector<Word> args;
    bool block = false;
    std::vector<Node> children;
    // Set on the first node spliced in from an included file.
    std::string included_by;

    const Location& loc() const { return name.loc; }
};

// nginx's ngx_conf_read_token(), one statement at a time.
class Lexer {
  public:
    enum class Kind { kDirective, kBlockStart, kBlockEnd, kEof };
    struct Statement {
        Kind kind = Kind::kEof;
        std::vector<Word> words;
        Location loc;  // where the terminator (";", "{", "}", end) is
        // The words were ended by "}" or the end of the file, not by ";".
        bool unterminated = false;
        // A lexical error inside the statement: already reported, do not
        // validate it.
        bool damaged = false;
    };

    Lexer(std::string_view text, std::string file, Diagnostics& diags);
    Statement next();

  private:
    Location here() const { return Location{file_, line_, col_}; }
    static std::string unescape(std::string_view raw);

    std::string_view text_;
    std::string file_;
    Diagnostics& diags_;
    size_t pos_ = 0;
    uint32_t line_ = 1;
    uint32_t col_ = 1;
};

struct ParseOptions {
    bool follow_includes = true;
    // Tells a directive name from other words, so that a missing ";" is
    // reported where it is missing. Null: no such diagnosis.
    bool (*is_directive)(std::string_view name) = nullptr;
};

constexpr int kMaxBlockDepth = 32;
constexpr int kMaxIncludeDepth = 16;

// Parses FILE (or TEXT named NAME) and splices in what "include" names, with
// globs resolved relative to the including file. Errors go to DIAGS; the
// tree holds everything that could be parsed.
std::vector<Node> parse_file(const std::string& path, Diagnostics& diags,
                             const ParseOptions& options);
std::vector<Node> parse_text(std::string_view text, const std::string& name,
                             Diagnostics& diags, const ParseOptions& options);

// A word as it would be written back: quoted when it has to be.
std::string quote_word(std::string_view text);

}  // namespace terminus::config::detail
