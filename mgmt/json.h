// A small JSON reader for the control socket's answers (dataplane/
// control.h): objects, arrays, strings (\uXXXX below 0x80 and the usual
// escapes), numbers, true/false/null. Enough for terminusctl to print
// what terminusd said; not a general-purpose library.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/result.h"

namespace terminus::mgmt {

struct Json {
    enum class Type { kNull, kBool, kNumber, kString, kArray, kObject } type = Type::kNull;
    bool b = false;
    double number = 0;
    std::string str;
    std::vector<Json> items;
    std::map<std::string, Json> fields;

    // The field called NAME, or a null value.
    const Json& operator[](const std::string& name) const;
    bool truthy() const { return type == Type::kBool ? b : type != Type::kNull; }
};

Result<Json> parse_json(std::string_view text);

}  // namespace terminus::mgmt
