// Tokenizer for nginx's configuration syntax. It follows nginx's
// ngx_conf_read_token() rule for rule, so that a file nginx accepts splits
// into the same words here:
//  - words are separated by blanks, ";" ends a directive, "{" opens a block,
//    "}" closes one only where a new word would start;
//  - "#" starts a comment only where a new word would start;
//  - '...' and "..." quote a word and must be followed by a blank, ";" or "{";
//  - "\" escapes the next character; in the word's text \" \' \\ become the
//    character and \t \r \n become tab, CR and LF; other escapes are kept;
//  - "${" does not open a block ("${var}" is a variable).
#include <algorithm>

#include "config/syntax.h"

namespace terminus::config::detail {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

void Diagnostics::error(const Location& loc, std::string message) {
    list_.push_back(Diagnostic{Severity::kError, loc, std::move(message)});
    ++errors_;
}

void Diagnostics::warning(const Location& loc, std::string message) {
    list_.push_back(Diagnostic{Severity::kWarning, loc, std::move(message)});
}

std::vector<Diagnostic> Diagnostics::take_sorted() {
    // Keep the order in which files were first seen; inside a file, sort by
    // position so that an operator reads the messages top to bottom.
    std::vector<std::string> files;
    for (const auto& d : list_) {
        if (std::find(files.begin(), files.end(), d.loc.file) == files.end()) {
            files.push_back(d.loc.file);
        }
    }
    auto rank = [&](const std::string& f) {
        return std::find(files.begin(), files.end(), f) - files.begin();
    };
    std::stable_sort(list_.begin(), list_.end(), [&](const Diagnostic& a, const Diagnostic& b) {
        auto ra = rank(a.loc.file), rb = rank(b.loc.file);
        if (ra != rb) return ra < rb;
        if (a.loc.line != b.loc.line) return a.loc.line < b.loc.line;
        return a.loc.column < b.loc.column;
    });
    // The same message at the same place once (a file checked for two
    // servers that inherit it).
    list_.erase(std::unique(list_.begin(), list_.end(),
                            [](const Diagnostic& a, const Diagnostic& b) {
                                return a.severity == b.severity && a.loc.file == b.loc.file &&
                                       a.loc.line == b.loc.line &&
                                       a.loc.column == b.loc.column && a.message == b.message;
                            }),
                list_.end());
    return std::move(list_);
}

Lexer::Lexer(std::string_view text, std::string file, Diagnostics& diags)
    : text_(text), file_(std::move(file)), diags_(diags) {}

std::string Lexer::unescape(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 1 < raw.size()) {
            switch (raw[i + 1]) {
                case '"':
                case '\'':
                case '\\':
                    out.push_back(raw[++i]);
                    continue;
                case 't':
                    out.push_back('\t');
                    ++i;
                    continue;
                case 'r':
                    out.push_back('\r');
                    ++i;
                    continue;
                case 'n':
                    out.push_back('\n');
                    ++i;
                    continue;
                default:
                    break;
            }
        }
        out.push_back(raw[i]);
    }
    return out;
}

Lexer::Statement Lexer::next() {
    Statement st;
    bool last_space = true;
    bool need_space = false;
    bool sharp_comment = false;
    bool quoted = false;
    bool s_quoted = false;
    bool d_quoted = false;
    bool variable = false;
    size_t start = 0;
    Location start_loc;

    auto finish_word = [&](size_t end, Location end_loc) {
        Word w;
        w.text = unescape(text_.substr(start, end - start));
        w.loc = start_loc;
        w.quoted = s_quoted || d_quoted || need_space;
        w.end = end_loc;
        st.words.push_back(std::move(w));
    };

    while (pos_ < text_.size()) {
        const char ch = text_[pos_];
        const Location ch_loc = here();
        ++pos_;
        if (ch == '\n') {
            ++line_;
            col_ = 1;
            sharp_comment = false;
        } else {
            ++col_;
        }

        if (sharp_comment) continue;
        if (quoted) {
            quoted = false;
            continue;
        }

        if (need_space) {
            if (is_blank(ch)) {
                last_space = true;
                need_space = false;
                continue;
            }
            if (ch == ';') {
                st.kind = Kind::kDirective;
                st.loc = ch_loc;
                return st;
            }
            if (ch == '{') {
                st.kind = Kind::kBlockStart;
                st.loc = ch_loc;
                return st;
            }
            diags_.error(ch_loc, std::string("unexpected \"") + ch +
                                     "\" after a quoted string: put a space, \";\" or \"{\" "
                                     "after the closing quote");
            // Recover: the character starts a new word; the statement is
            // not validated.
            st.damaged = true;
            need_space = false;
            last_space = true;
        }

        if (last_space) {
            if (is_blank(ch)) continue;
            start = pos_ - 1;
            start_loc = ch_loc;
            switch (ch) {
                case ';':
                case '{':
                    if (st.words.empty()) {
                        diags_.error(ch_loc, std::string("unexpected \"") + ch + "\"");
                        continue;  // a stray terminator: drop it
                    }
                    st.kind = ch == ';' ? Kind::kDirective : Kind::kBlockStart;
                    st.loc = ch_loc;
                    return st;
                case '}':
                    if (!st.words.empty()) {
                        // A ";" is missing: the parser says where. End the
                        // directive here and let the parser see the "}".
                        --pos_;
                        --col_;
                        st.kind = Kind::kDirective;
                        st.unterminated = true;
                        st.loc = ch_loc;
                        return st;
                    }
                    st.kind = Kind::kBlockEnd;
                    st.loc = ch_loc;
                    return st;
                case '#':
                    sharp_comment = true;
                    continue;
                case '\\':
                    quoted = true;
                    last_space = false;
                    continue;
                case '"':
                    ++start;
                    d_quoted = true;
                    last_space = false;
                    continue;
                case '\'':
                    ++start;
                    s_quoted = true;
                    last_space = false;
                    continue;
                case '$':
                    variable = true;
                    last_space = false;
                    continue;
                default:
                    last_space = false;
                    continue;
            }
        }

        // Inside a word.
        if (ch == '{' && variable) continue;
        variable = false;
        if (ch == '\\') {
            quoted = true;
            continue;
        }
        if (ch == '$') {
            variable = true;
            continue;
        }
        bool found = false;
        if (d_quoted) {
            if (ch == '"') {
                found = true;
                need_space = true;
            }
        } else if (s_quoted) {
            if (ch == '\'') {
                found = true;
                need_space = true;
            }
        } else if (is_blank(ch) || ch == ';' || ch == '{') {
            found = true;
            last_space = true;
        }
        if (!found) continue;

        Location end_loc = ch_loc;
        if (need_space) ++end_loc.column;  // past the closing quote
        finish_word(pos_ - 1, end_loc);
        d_quoted = s_quoted = false;
        if (ch == ';' || ch == '{') {
            st.kind = ch == ';' ? Kind::kDirective : Kind::kBlockStart;
            st.loc = ch_loc;
            return st;
        }
    }

    // End of input.
    if (d_quoted || s_quoted) {
        diags_.error(start_loc, std::string("unterminated ") + (d_quoted ? "\"" : "'") +
                                    "-quoted string: it runs to the end of the file");
        st.damaged = true;
    } else if (!last_space && !need_space) {
        finish_word(pos_, here());
    }
    if (!st.words.empty()) {
        // Hand what was read to the parser, which reports the missing ";".
        st.kind = Kind::kDirective;
        st.unterminated = true;
        st.loc = here();
        return st;
    }
    st.kind = Kind::kEof;
    st.loc = here();
    return st;
}

std::string quote_word(std::string_view text) {
    bool plain = !text.empty();
    for (char c : text) {
        if (is_blank(c) || c == ';' || c == '{' || c == '}' || c == '#' || c == '"' ||
            c == '\'' || c == '\\') {
            plain = false;
            break;
        }
    }
    // "${" keeps a word plain, but a bare leading "{" would not survive.
    if (plain) return std::string(text);
    std::string out = "\"";
    for (char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out.push_back(c);
        }
    }
    out += "\"";
    return out;
}

}  // namespace terminus::config::detail
