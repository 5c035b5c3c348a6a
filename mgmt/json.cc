#include "mgmt/json.h"

#include <cstdlib>

namespace terminus::mgmt {

namespace {

struct Reader {
    std::string_view s;
    size_t i = 0;
    std::string error;

    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
    }
    bool fail(const std::string& what) {
        if (error.empty()) error = what + " at offset " + std::to_string(i);
        return false;
    }
    bool literal(std::string_view w) {
        if (s.substr(i, w.size()) != w) return fail("bad literal");
        i += w.size();
        return true;
    }
    bool string(std::string& out) {
        if (i >= s.size() || s[i] != '"') return fail("expected a string");
        ++i;
        while (i < s.size() && s[i] != '"') {
            char c = s[i++];
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i >= s.size()) return fail("bad escape");
            c = s[i++];
            switch (c) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': {
                    if (i + 4 > s.size()) return fail("bad \\u escape");
                    const unsigned long v = std::strtoul(std::string(s.substr(i, 4)).c_str(), nullptr, 16);
                    i += 4;
                    out += v < 0x80 ? static_cast<char>(v) : '?';
                    break;
                }
                default: out += c; break;
            }
        }
        if (i >= s.size()) return fail("unterminated string");
        ++i;
        return true;
    }
    bool value(Json& v, int depth) {
        if (depth > 32) return fail("nested too deep");
        ws();
        if (i >= s.size()) return fail("unexpected end");
        const char c = s[i];
        if (c == '{') {
            v.type = Json::Type::kObject;
            ++i;
            ws();
            if (i < s.size() && s[i] == '}') {
                ++i;
                return true;
            }
            for (;;) {
                ws();
                std::string key;
                if (!string(key)) return false;
                ws();
                if (i >= s.size() || s[i] != ':') return fail("expected ':'");
                ++i;
                if (!value(v.fields[key], depth + 1)) return false;
                ws();
                if (i < s.size() && s[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < s.size() && s[i] == '}') {
                    ++i;
                    return true;
                }
                return fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v.type = Json::Type::kArray;
            ++i;
            ws();
            if (i < s.size() && s[i] == ']') {
                ++i;
                return true;
            }
            for (;;) {
                v.items.emplace_back();
                if (!value(v.items.back(), depth + 1)) return false;
                ws();
                if (i < s.size() && s[i] == ',') {
                    ++i;
                    continue;
                }
                if (i < s.size() && s[i] == ']') {
                    ++i;
                    return true;
                }
                return fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.type = Json::Type::kString;
            return string(v.str);
        }
        if (c == 't' || c == 'f') {
            v.type = Json::Type::kBool;
            v.b = c == 't';
            return literal(c == 't' ? "true" : "false");
        }
        if (c == 'n') return literal("null");
        const std::string rest(s.substr(i, 64));
        char* end = nullptr;
        v.number = std::strtod(rest.c_str(), &end);
        if (end == rest.c_str()) return fail("unexpected character");
        v.type = Json::Type::kNumber;
        i += static_cast<size_t>(end - rest.c_str());
        return true;
    }
};

}  // namespace

const Json& Json::operator[](const std::string& name) const {
    static const Json kNull;
    auto it = fields.find(name);
    return it == fields.end() ? kNull : it->second;
}

Result<Json> parse_json(std::string_view text) {
    Reader r{text};
    Json v;
    if (!r.value(v, 0)) return make_error("invalid JSON: " + r.error);
    r.ws();
    if (r.i != text.size()) return make_error("invalid JSON: trailing bytes at offset " + std::to_string(r.i));
    return v;
}

}  // namespace terminus::mgmt
