// Tests for config/lexer.cc (nginx's ngx_conf_read_token() rules) and
// config/parser.cc (blocks and includes), through config/syntax.h.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "config/schema.h"
#include "config/syntax.h"

namespace terminus::config::detail {
namespace {

namespace fs = std::filesystem;

using Kind = Lexer::Kind;

std::string at(const Location& loc) {
    return loc.file + ":" + std::to_string(loc.line) + ":" + std::to_string(loc.column);
}

std::vector<std::string> texts(const std::vector<Word>& words) {
    std::vector<std::string> out;
    for (const Word& w : words) out.push_back(w.text);
    return out;
}

std::vector<std::string> messages(Diagnostics& diags) {
    std::vector<std::string> out;
    for (const Diagnostic& d : diags.list()) out.push_back(d.to_string());
    return out;
}

std::vector<std::string> names(const std::vector<Node>& nodes) {
    std::vector<std::string> out;
    for (const Node& n : nodes) out.push_back(n.name.text);
    return out;
}

using Strings = std::vector<std::string>;

// ---------------------------------------------------------------------------
// Lexer: words, statements, locations

TEST(Lexer, EmptyInputIsEof) {
    Diagnostics diags;
    Lexer lex("", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kEof);
    EXPECT_TRUE(st.words.empty());
    EXPECT_EQ(at(st.loc), "t.conf:1:1");
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, BlanksAndCommentsOnlyIsEof) {
    Diagnostics diags;
    Lexer lex("  \t\r\n# just a comment ; { }\n\n", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kEof);
    EXPECT_TRUE(st.words.empty());
    EXPECT_EQ(at(st.loc), "t.conf:4:1");
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, SemicolonEndsDirective) {
    Diagnostics diags;
    Lexer lex("listen 443;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"listen", "443"}));
    EXPECT_FALSE(st.unterminated);
    EXPECT_FALSE(st.damaged);
    EXPECT_EQ(at(st.loc), "t.conf:1:11");
    EXPECT_EQ(lex.next().kind, Kind::kEof);
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, WordsAreSeparatedBySpaceTabCrAndLf) {
    Diagnostics diags;
    Lexer lex("a  b\tc\r\nd\n\n  e ;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"a", "b", "c", "d", "e"}));
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, WordsCarryLineAndOneBasedColumn) {
    Diagnostics diags;
    Lexer lex("listen 443;\n  proxy_pass\tb;\n", "t.conf", diags);
    Lexer::Statement first = lex.next();
    ASSERT_EQ(first.words.size(), 2u);
    EXPECT_EQ(at(first.words[0].loc), "t.conf:1:1");
    EXPECT_EQ(at(first.words[1].loc), "t.conf:1:8");
    EXPECT_EQ(at(first.loc), "t.conf:1:11");

    Lexer::Statement second = lex.next();
    ASSERT_EQ(second.words.size(), 2u);
    EXPECT_EQ(at(second.words[0].loc), "t.conf:2:3");
    // A tab is one column, as nginx counts bytes.
    EXPECT_EQ(at(second.words[1].loc), "t.conf:2:14");
    EXPECT_EQ(at(second.loc), "t.conf:2:15");
}

TEST(Lexer, WordEndIsJustPastTheWord) {
    Diagnostics diags;
    Lexer lex("abc de;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    ASSERT_EQ(st.words.size(), 2u);
    EXPECT_EQ(at(st.words[0].end), "t.conf:1:4");
    EXPECT_EQ(at(st.words[1].end), "t.conf:1:7");
}

TEST(Lexer, CrLfLineEndingsCountOneLine) {
    Diagnostics diags;
    Lexer lex("a;\r\nb;\r\n", "t.conf", diags);
    EXPECT_EQ(at(lex.next().words.at(0).loc), "t.conf:1:1");
    EXPECT_EQ(at(lex.next().words.at(0).loc), "t.conf:2:1");
}

TEST(Lexer, OpenBraceStartsBlock) {
    Diagnostics diags;
    Lexer lex("upstream b {\n}", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kBlockStart);
    EXPECT_EQ(texts(st.words), (Strings{"upstream", "b"}));
    EXPECT_EQ(at(st.loc), "t.conf:1:12");
    Lexer::Statement end = lex.next();
    EXPECT_EQ(end.kind, Kind::kBlockEnd);
    EXPECT_TRUE(end.words.empty());
    EXPECT_EQ(at(end.loc), "t.conf:2:1");
    EXPECT_EQ(lex.next().kind, Kind::kEof);
}

TEST(Lexer, OpenBraceRightAfterWordStartsBlock) {
    Diagnostics diags;
    Lexer lex("stream{", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kBlockStart);
    EXPECT_EQ(texts(st.words), (Strings{"stream"}));
    EXPECT_EQ(at(st.loc), "t.conf:1:7");
}

TEST(Lexer, SemicolonRightAfterWordEndsDirective) {
    Diagnostics diags;
    Lexer lex("a b;c;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(texts(st.words), (Strings{"a", "b"}));
    EXPECT_EQ(texts(lex.next().words), (Strings{"c"}));
}

TEST(Lexer, ClosingBraceInsideWordIsLiteral) {
    // "}" closes a block only where a new word would start.
    Diagnostics diags;
    Lexer lex("a b}c d};", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"a", "b}c", "d}"}));
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, ClosingBraceAfterSemicolonEndsBlock) {
    Diagnostics diags;
    Lexer lex("a;}", "t.conf", diags);
    EXPECT_EQ(lex.next().kind, Kind::kDirective);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kBlockEnd);
    EXPECT_EQ(at(st.loc), "t.conf:1:3");
}

TEST(Lexer, ClosingBraceWithWordsPendingEndsAnUnterminatedDirective) {
    // nginx stops with 'unexpected "}"'; the lexer hands the words over
    // unterminated (the parser reports the missing ";") and the "}" is read
    // again as the end of the block.
    Diagnostics diags;
    Lexer lex("a b }", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_TRUE(st.unterminated);
    EXPECT_EQ(texts(st.words), (Strings{"a", "b"}));
    EXPECT_EQ(at(st.loc), "t.conf:1:5");
    Lexer::Statement end = lex.next();
    EXPECT_EQ(end.kind, Kind::kBlockEnd);
    EXPECT_EQ(at(end.loc), "t.conf:1:5");
    EXPECT_EQ(lex.next().kind, Kind::kEof);
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, EofWithWordsPendingIsAnUnterminatedDirective) {
    Diagnostics diags;
    Lexer lex("a b", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_TRUE(st.unterminated);
    EXPECT_EQ(texts(st.words), (Strings{"a", "b"}));
    EXPECT_EQ(at(st.words[1].end), "t.conf:1:4");
    EXPECT_EQ(at(st.loc), "t.conf:1:4");
    EXPECT_EQ(lex.next().kind, Kind::kEof);
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, StraySemicolonIsReportedAndDropped) {
    Diagnostics diags;
    Lexer lex("  ; a;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"a"}));
    EXPECT_EQ(messages(diags), (Strings{"t.conf:1:3: error: unexpected \";\""}));
}

TEST(Lexer, StrayOpenBraceIsReportedAndDropped) {
    Diagnostics diags;
    Lexer lex("a;\n{ b;", "t.conf", diags);
    EXPECT_EQ(texts(lex.next().words), (Strings{"a"}));
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"b"}));
    EXPECT_EQ(messages(diags), (Strings{"t.conf:2:1: error: unexpected \"{\""}));
}

// ---------------------------------------------------------------------------
// Lexer: comments

TEST(Lexer, HashAtWordStartCommentsToEndOfLine) {
    Diagnostics diags;
    Lexer lex("a # b; c {\nd;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"a", "d"}));
    EXPECT_EQ(at(st.words[1].loc), "t.conf:2:1");
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, HashRightAfterSemicolonStartsComment) {
    Diagnostics diags;
    Lexer lex("a;# b;\nc;", "t.conf", diags);
    EXPECT_EQ(texts(lex.next().words), (Strings{"a"}));
    EXPECT_EQ(texts(lex.next().words), (Strings{"c"}));
    EXPECT_EQ(lex.next().kind, Kind::kEof);
}

TEST(Lexer, HashInsideWordIsLiteral) {
    Diagnostics diags;
    Lexer lex("a b#c #d\ne;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(texts(st.words), (Strings{"a", "b#c", "e"}));
}

TEST(Lexer, CommentAtEndOfFileWithoutNewline) {
    Diagnostics diags;
    Lexer lex("a;\n# last", "t.conf", diags);
    EXPECT_EQ(texts(lex.next().words), (Strings{"a"}));
    EXPECT_EQ(lex.next().kind, Kind::kEof);
    EXPECT_TRUE(diags.list().empty());
}

// ---------------------------------------------------------------------------
// Lexer: quotes and escapes

TEST(Lexer, DoubleQuotedWordKeepsBlanksAndSpecialCharacters) {
    Diagnostics diags;
    Lexer lex("a \"b c;{}# 'd'\";", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    ASSERT_EQ(st.words.size(), 2u);
    EXPECT_EQ(st.words[1].text, "b c;{}# 'd'");
    EXPECT_TRUE(st.words[1].quoted);
    EXPECT_FALSE(st.words[0].quoted);
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, SingleQuotedWordKeepsBlanksAndSpecialCharacters) {
    Diagnostics diags;
    Lexer lex("a 'b c;{}# \"d\"';", "t.conf", diags);
    Lexer::Statement st = lex.next();
    ASSERT_EQ(st.words.size(), 2u);
    EXPECT_EQ(st.words[1].text, "b c;{}# \"d\"");
    EXPECT_TRUE(st.words[1].quoted);
}

TEST(Lexer, EmptyQuotedWord) {
    Diagnostics diags;
    Lexer lex("server_name \"\" '';", "t.conf", diags);
    Lexer::Statement st = lex.next();
    ASSERT_EQ(st.words.size(), 3u);
    EXPECT_EQ(st.words[1].text, "");
    EXPECT_TRUE(st.words[1].quoted);
    EXPECT_EQ(st.words[2].text, "");
    EXPECT_TRUE(st.words[2].quoted);
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, QuotedWordLocationIsTheOpeningQuoteAndEndIsPastTheClosingOne) {
    Diagnostics diags;
    Lexer lex("a \"bc\" d;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    ASSERT_EQ(st.words.size(), 3u);
    EXPECT_EQ(at(st.words[1].loc), "t.conf:1:3");
    EXPECT_EQ(at(st.words[1].end), "t.conf:1:7");
    EXPECT_EQ(at(st.words[2].loc), "t.conf:1:8");
}

TEST(Lexer, QuotedWordMayBeFollowedBySemicolonOrBrace) {
    Diagnostics diags;
    Lexer lex("a \"b\";c 'd'{", "t.conf", diags);
    Lexer::Statement first = lex.next();
    EXPECT_EQ(first.kind, Kind::kDirective);
    EXPECT_EQ(texts(first.words), (Strings{"a", "b"}));
    EXPECT_EQ(at(first.loc), "t.conf:1:6");
    Lexer::Statement second = lex.next();
    EXPECT_EQ(second.kind, Kind::kBlockStart);
    EXPECT_EQ(texts(second.words), (Strings{"c", "d"}));
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, QuotedWordMustBeFollowedBySpace) {
    Diagnostics diags;
    Lexer lex("a \"b\"c;\nd;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_TRUE(st.damaged);
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:1:6: error: unexpected \"c\" after a quoted string: put a space, "
                       "\";\" or \"{\" after the closing quote"}));
    // The statement after the damaged one is read normally.
    Lexer::Statement next = lex.next();
    EXPECT_EQ(texts(next.words), (Strings{"d"}));
    EXPECT_FALSE(next.damaged);
}

TEST(Lexer, SingleQuotedWordMustBeFollowedBySpace) {
    Diagnostics diags;
    Lexer lex("a 'b''c';", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_TRUE(st.damaged);
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:1:6: error: unexpected \"'\" after a quoted string: put a space, "
                       "\";\" or \"{\" after the closing quote"}));
}

TEST(Lexer, TextBeforeAnOpeningQuoteIsPartOfAPlainWord) {
    // A quote inside a word does not quote anything (nginx: only at word
    // start).
    Diagnostics diags;
    Lexer lex("a b\"c d\";", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(texts(st.words), (Strings{"a", "b\"c", "d\""}));
    EXPECT_FALSE(st.words[1].quoted);
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, EscapesInQuotedWord) {
    Diagnostics diags;
    Lexer lex(R"(a "q\"s\'b\\t\tr\rn\nx\y";)", "t.conf", diags);
    Lexer::Statement st = lex.next();
    ASSERT_EQ(st.words.size(), 2u);
    // \" \' \\ become the character, \t \r \n the control character, any
    // other escape is kept as written.
    EXPECT_EQ(st.words[1].text, "q\"s'b\\t\tr\rn\nx\\y");
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, EscapedQuoteDoesNotCloseTheString) {
    Diagnostics diags;
    Lexer lex(R"(a "b\" c" 'd\' e';)", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(texts(st.words), (Strings{"a", "b\" c", "d' e"}));
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, EscapedBackslashDoesNotEscapeTheClosingQuote) {
    Diagnostics diags;
    Lexer lex(R"(a "b\\" 'c\\' d;)", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"a", "b\\", "c\\", "d"}));
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, EscapesInPlainWord) {
    Diagnostics diags;
    // "\;" and "\ " do not end the word; like nginx, the backslash stays
    // because neither is one of the escapes that are replaced.
    Lexer lex(R"(a b\;c d\ e f\"g\n;)", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"a", "b\\;c", "d\\ e", "f\"g\n"}));
    EXPECT_FALSE(st.words[1].quoted);
}

TEST(Lexer, BackslashAtWordStartEscapesTheNextCharacter) {
    Diagnostics diags;
    Lexer lex(R"(a \"b \{;)", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"a", "\"b", "\\{"}));
    EXPECT_FALSE(st.words[1].quoted);
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, UnterminatedDoubleQuoteRunsToEndOfFile) {
    Diagnostics diags;
    Lexer lex("a;\nb \"c;\nd;\n", "t.conf", diags);
    EXPECT_EQ(texts(lex.next().words), (Strings{"a"}));
    Lexer::Statement st = lex.next();
    EXPECT_TRUE(st.damaged);
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:2:3: error: unterminated \"-quoted string: it runs to the end "
                       "of the file"}));
    EXPECT_EQ(lex.next().kind, Kind::kEof);
}

TEST(Lexer, UnterminatedSingleQuoteRunsToEndOfFile) {
    Diagnostics diags;
    Lexer lex("'abc", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_TRUE(st.damaged);
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:1:1: error: unterminated '-quoted string: it runs to the end "
                       "of the file"}));
    EXPECT_EQ(lex.next().kind, Kind::kEof);
}

// ---------------------------------------------------------------------------
// Lexer: variables

TEST(Lexer, DollarBraceDoesNotOpenBlock) {
    Diagnostics diags;
    Lexer lex("hash ${remote_addr}x;", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kDirective);
    EXPECT_EQ(texts(st.words), (Strings{"hash", "${remote_addr}x"}));
    EXPECT_TRUE(diags.list().empty());
}

TEST(Lexer, DollarBraceInsideWordDoesNotOpenBlock) {
    Diagnostics diags;
    Lexer lex("map a${b}c $d {", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kBlockStart);
    EXPECT_EQ(texts(st.words), (Strings{"map", "a${b}c", "$d"}));
}

TEST(Lexer, BraceAfterVariableNameOpensBlock) {
    // Only "{" right after "$" is part of the variable.
    Diagnostics diags;
    Lexer lex("map $a $b{", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(st.kind, Kind::kBlockStart);
    EXPECT_EQ(texts(st.words), (Strings{"map", "$a", "$b"}));
}

TEST(Lexer, DollarBraceInsideQuotes) {
    Diagnostics diags;
    Lexer lex("log_format m '${a} $b';", "t.conf", diags);
    Lexer::Statement st = lex.next();
    EXPECT_EQ(texts(st.words), (Strings{"log_format", "m", "${a} $b"}));
    EXPECT_TRUE(diags.list().empty());
}

// ---------------------------------------------------------------------------
// quote_word

TEST(QuoteWord, PlainWordIsLeftAlone) {
    EXPECT_EQ(quote_word("HIGH:!aNULL:!MD5"), "HIGH:!aNULL:!MD5");
    EXPECT_EQ(quote_word("$ssl_preread_server_name"), "$ssl_preread_server_name");
}

TEST(QuoteWord, WordsThatWouldSplitAreQuotedAndEscaped) {
    EXPECT_EQ(quote_word(""), "\"\"");
    EXPECT_EQ(quote_word("a b"), "\"a b\"");
    EXPECT_EQ(quote_word("a;b"), "\"a;b\"");
    EXPECT_EQ(quote_word("#a"), "\"#a\"");
    EXPECT_EQ(quote_word("{"), "\"{\"");
    EXPECT_EQ(quote_word("it's"), "\"it's\"");
    EXPECT_EQ(quote_word("say \"hi\"\\\t\r\n"), R"("say \"hi\"\\\t\r\n")");
}

TEST(QuoteWord, QuotedWordLexesBackToTheSameText) {
    const std::string original = "a \"b\" 'c' \\d\t${e}\r\n#;{}";
    const std::string text = "x " + quote_word(original) + ";";
    Diagnostics diags;
    Lexer lex(text, "t.conf", diags);
    Lexer::Statement st = lex.next();
    ASSERT_EQ(st.words.size(), 2u);
    EXPECT_EQ(st.words[1].text, original);
    EXPECT_TRUE(diags.list().empty());
}

// ---------------------------------------------------------------------------
// Diagnostics

TEST(Diagnostics, TakeSortedOrdersByFileFirstSeenThenPosition) {
    Diagnostics diags;
    diags.error(Location{"b.conf", 5, 1}, "b5");
    diags.warning(Location{"a.conf", 3, 9}, "a3:9");
    diags.error(Location{"b.conf", 2, 7}, "b2");
    diags.error(Location{"a.conf", 3, 2}, "a3:2");
    EXPECT_TRUE(diags.has_errors());
    std::vector<Diagnostic> sorted = diags.take_sorted();
    std::vector<std::string> got;
    for (const Diagnostic& d : sorted) got.push_back(d.to_string());
    EXPECT_EQ(got, (Strings{"b.conf:2:7: error: b2", "b.conf:5:1: error: b5",
                            "a.conf:3:2: error: a3:2", "a.conf:3:9: warning: a3:9"}));
}

TEST(Diagnostics, TakeSortedDropsRepeatedMessageAtSamePlace) {
    Diagnostics diags;
    diags.error(Location{"a.conf", 1, 1}, "same");
    diags.error(Location{"a.conf", 1, 1}, "same");
    diags.error(Location{"a.conf", 1, 1}, "other");
    EXPECT_EQ(diags.take_sorted().size(), 2u);
}

TEST(Diagnostics, WarningsAloneAreNotErrors) {
    Diagnostics diags;
    diags.warning(Location{"a.conf", 1, 1}, "w");
    EXPECT_FALSE(diags.has_errors());
}

// ---------------------------------------------------------------------------
// Parser: blocks

TEST(Parser, BuildsNestedBlocks) {
    Diagnostics diags;
    auto nodes = parse_text(
        "stream {\n"
        "    upstream b { server 198.18.0.1:8080; server 198.18.0.2:8080 backup; }\n"
        "    server { listen 443; proxy_pass b; }\n"
        "}\n"
        "mgmt {}\n",
        "t.conf", diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(names(nodes), (Strings{"stream", "mgmt"}));
    const Node& stream = nodes[0];
    EXPECT_TRUE(stream.block);
    EXPECT_TRUE(stream.args.empty());
    ASSERT_EQ(names(stream.children), (Strings{"upstream", "server"}));

    const Node& upstream = stream.children[0];
    EXPECT_TRUE(upstream.block);
    EXPECT_EQ(texts(upstream.args), (Strings{"b"}));
    ASSERT_EQ(names(upstream.children), (Strings{"server", "server"}));
    EXPECT_FALSE(upstream.children[0].block);
    EXPECT_EQ(texts(upstream.children[1].args), (Strings{"198.18.0.2:8080", "backup"}));
    EXPECT_EQ(at(upstream.children[1].loc()), "t.conf:2:42");

    const Node& server = stream.children[1];
    ASSERT_EQ(names(server.children), (Strings{"listen", "proxy_pass"}));
    EXPECT_EQ(at(server.children[1].loc()), "t.conf:3:26");

    EXPECT_TRUE(nodes[1].block);
    EXPECT_TRUE(nodes[1].children.empty());
    EXPECT_EQ(at(nodes[1].loc()), "t.conf:5:1");
}

TEST(Parser, EmptyBlockWithArguments) {
    Diagnostics diags;
    auto nodes = parse_text("upstream b {}\nc;", "t.conf", diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(names(nodes), (Strings{"upstream", "c"}));
    EXPECT_TRUE(nodes[0].block);
    EXPECT_EQ(texts(nodes[0].args), (Strings{"b"}));
    EXPECT_TRUE(nodes[0].children.empty());
}

TEST(Parser, DirectiveNodeHasNoChildren) {
    Diagnostics diags;
    auto nodes = parse_text("a 1 2;", "t.conf", diags, ParseOptions{});
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_FALSE(nodes[0].block);
    EXPECT_TRUE(nodes[0].children.empty());
    EXPECT_EQ(texts(nodes[0].args), (Strings{"1", "2"}));
    EXPECT_TRUE(nodes[0].included_by.empty());
}

TEST(Parser, EofInsideBlockIsAnError) {
    Diagnostics diags;
    auto nodes = parse_text("stream {\n    server {\n        listen 443;\n", "t.conf", diags,
                            ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:4:1: error: unexpected end of file, expecting \"}\"",
                       "t.conf:4:1: error: unexpected end of file, expecting \"}\""}));
    // What could be read is kept.
    ASSERT_EQ(names(nodes), (Strings{"stream"}));
    ASSERT_EQ(names(nodes[0].children), (Strings{"server"}));
    EXPECT_EQ(names(nodes[0].children[0].children), (Strings{"listen"}));
}

TEST(Parser, ClosingBraceAtTopLevelIsAnError) {
    Diagnostics diags;
    auto nodes = parse_text("a;\n}\nb;\n", "t.conf", diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:2:1: error: unexpected \"}\": no block is open here"}));
    EXPECT_EQ(names(nodes), (Strings{"a", "b"}));
}

TEST(Parser, ClosingBraceWithWordsPendingReportsMissingSemicolon) {
    Diagnostics diags;
    auto nodes = parse_text("stream {\n    proxy_timeout 5m }\nb;\n", "t.conf", diags,
                            ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:2:21: error: missing \";\" after \"proxy_timeout 5m\""}));
    // The "}" still closes stream{}.
    ASSERT_EQ(names(nodes), (Strings{"stream", "b"}));
    EXPECT_EQ(names(nodes[0].children), (Strings{"proxy_timeout"}));
}

TEST(Parser, EofWithWordsPendingReportsMissingSemicolon) {
    Diagnostics diags;
    auto nodes = parse_text("a;\nerror_log stderr", "t.conf", diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:2:17: error: missing \";\" after \"error_log stderr\""}));
    EXPECT_EQ(names(nodes), (Strings{"a", "error_log"}));
}

TEST(Parser, MissingSemicolonQuotesQuotedWordsAndShortensLongText) {
    Diagnostics diags;
    parse_text("log_format m 'a b'", "t.conf", diags, ParseOptions{});
    const std::string long_text = "x " + std::string(76, 'a');
    parse_text(long_text, "u.conf", diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:1:19: error: missing \";\" after \"log_format m \"a b\"\"",
                       "u.conf:1:79: error: missing \";\" after \"x " + std::string(55, 'a') +
                           "...\""}));
}

bool is_test_directive(std::string_view name) { return name == "listen" || name == "proxy_pass"; }

TEST(Parser, DirectiveNameOnNextLineSplitsAStatementMissingItsSemicolon) {
    Diagnostics diags;
    ParseOptions options;
    options.is_directive = is_test_directive;
    auto nodes = parse_text("server {\n    listen 443\n    proxy_pass b;\n}\n", "t.conf", diags,
                            options);
    EXPECT_EQ(messages(diags), (Strings{"t.conf:2:15: error: missing \";\" after \"listen 443\""}));
    ASSERT_EQ(names(nodes), (Strings{"server"}));
    ASSERT_EQ(names(nodes[0].children), (Strings{"listen", "proxy_pass"}));
    EXPECT_EQ(texts(nodes[0].children[0].args), (Strings{"443"}));
    EXPECT_EQ(texts(nodes[0].children[1].args), (Strings{"b"}));
}

TEST(Parser, DirectiveNameOnSameLineOrQuotedDoesNotSplit) {
    Diagnostics diags;
    ParseOptions options;
    options.is_directive = is_test_directive;
    auto nodes = parse_text("a listen proxy_pass\n\"listen\";", "t.conf", diags, options);
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(texts(nodes[0].args), (Strings{"listen", "proxy_pass", "listen"}));
}

TEST(Parser, DirectiveTableFindsMissingSemicolon) {
    Diagnostics diags;
    auto nodes = parse_text("server {\n    listen 443\n    proxy_pass b;\n}\n", "t.conf", diags,
                            parse_options(LoadOptions{}));
    EXPECT_EQ(messages(diags), (Strings{"t.conf:2:15: error: missing \";\" after \"listen 443\""}));
    ASSERT_EQ(names(nodes), (Strings{"server"}));
    EXPECT_EQ(names(nodes[0].children), (Strings{"listen", "proxy_pass"}));
}

// Suspected bug: an argument on a continuation line that is spelled like a
// directive splits the statement. nginx reads words up to the ";" whatever
// they are called, so this listen (a parameter per line, as people write
// long listen lines) is valid nginx; Terminus reports
// 'missing ";" after "listen 12345 ssl"' and then proxy_protocol without its
// argument. "random two\n least_conn;" in upstream{} fails the same way.
TEST(Parser, ParameterSpelledLikeDirectiveOnContinuationLineIsAnArgument) {
    Diagnostics diags;
    auto nodes = parse_text("server {\n    listen 12345 ssl\n           proxy_protocol;\n}\n",
                            "t.conf", diags, parse_options(LoadOptions{}));
    EXPECT_EQ(messages(diags), Strings{});
    ASSERT_EQ(names(nodes), (Strings{"server"}));
    ASSERT_EQ(names(nodes[0].children), (Strings{"listen"}));
    EXPECT_EQ(texts(nodes[0].children[0].args), (Strings{"12345", "ssl", "proxy_protocol"}));
}

TEST(Parser, WithoutDirectiveTableWordsOnNextLinesAreArguments) {
    Diagnostics diags;
    auto nodes = parse_text("listen 443\nproxy_pass b;", "t.conf", diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(texts(nodes[0].args), (Strings{"443", "proxy_pass", "b"}));
}

TEST(Parser, DamagedStatementIsDroppedAndParsingGoesOn) {
    Diagnostics diags;
    auto nodes = parse_text("a \"b\"c;\nd;\n", "t.conf", diags, ParseOptions{});
    EXPECT_EQ(diags.list().size(), 1u);
    EXPECT_EQ(names(nodes), (Strings{"d"}));
}

TEST(Parser, DamagedBlockIsSkippedWithItsChildren) {
    Diagnostics diags;
    auto nodes = parse_text("s \"x\"y {\n    a;\n    t { b; }\n}\nc;\n", "t.conf", diags,
                            ParseOptions{});
    EXPECT_EQ(diags.list().size(), 1u);
    EXPECT_EQ(names(nodes), (Strings{"c"}));
}

std::string nested_blocks(int depth) {
    std::string text;
    for (int i = 0; i < depth; ++i) text += "b {\n";
    text += "a;\n";
    for (int i = 0; i < depth; ++i) text += "}\n";
    return text;
}

TEST(Parser, BlocksNestedToTheLimitAreRead) {
    Diagnostics diags;
    auto nodes = parse_text(nested_blocks(kMaxBlockDepth - 1), "t.conf", diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    const Node* n = &nodes.at(0);
    for (int i = 1; i < kMaxBlockDepth - 1; ++i) n = &n->children.at(0);
    EXPECT_EQ(names(n->children), (Strings{"a"}));
}

TEST(Parser, BlocksNestedTooDeepAreReportedOnce) {
    Diagnostics diags;
    auto nodes =
        parse_text(nested_blocks(kMaxBlockDepth) + "c;\n", "t.conf", diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:32:1: error: blocks nested more than 32 deep"}));
    // The rest of the file is still read.
    EXPECT_EQ(names(nodes), (Strings{"b", "c"}));
}

TEST(Parser, IncludeIsKeptAsNodeWhenIncludesAreNotFollowed) {
    Diagnostics diags;
    ParseOptions options;
    options.follow_includes = false;
    auto nodes = parse_text("include /nonexistent/*.conf;", "t.conf", diags, options);
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(names(nodes), (Strings{"include"}));
    EXPECT_EQ(texts(nodes[0].args), (Strings{"/nonexistent/*.conf"}));
}

TEST(Parser, IncludeTakesExactlyOneArgument) {
    Diagnostics diags;
    auto nodes = parse_text("include a.conf b.conf;\ninclude;", "t.conf", diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{"t.conf:1:1: error: \"include\" takes one file name or glob, 2 given",
                       "t.conf:2:1: error: \"include\" takes one file name or glob, 0 given"}));
    EXPECT_TRUE(nodes.empty());
}

// ---------------------------------------------------------------------------
// Parser: files and includes

class ParserFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "terminus-lexer-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        // Canonical, so that paths in messages match the parser's own.
        dir_ = fs::canonical(tmpl).string();
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    // Writes DIR/NAME and returns its path.
    std::string write(const std::string& name, const std::string& text) {
        fs::path p = fs::path(dir_) / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p.string();
    }
    std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

    std::string dir_;
};

TEST_F(ParserFiles, ParsesFileWithItsPathInLocations) {
    const std::string main = write("main.conf", "stream {\n    a 1;\n}\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(names(nodes), (Strings{"stream"}));
    EXPECT_EQ(at(nodes[0].children.at(0).loc()), main + ":2:5");
}

TEST_F(ParserFiles, MissingMainFileIsAnError) {
    const std::string missing = path("missing.conf");
    Diagnostics diags;
    auto nodes = parse_file(missing, diags, ParseOptions{});
    EXPECT_TRUE(nodes.empty());
    EXPECT_EQ(messages(diags), (Strings{missing + ":0:0: error: cannot open \"" + missing +
                                        "\": No such file or directory"}));
}

TEST_F(ParserFiles, IncludedNodesAreSplicedInPlace) {
    const std::string main = write("main.conf",
                                   "stream {\n"
                                   "    a;\n"
                                   "    include upstreams.conf;\n"
                                   "    d;\n"
                                   "}\n");
    write("upstreams.conf", "b;\nupstream u {\n    c;\n}\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(names(nodes), (Strings{"stream"}));
    EXPECT_EQ(names(nodes[0].children), (Strings{"a", "b", "upstream", "d"}));
    EXPECT_EQ(names(nodes[0].children.at(2).children), (Strings{"c"}));
}

TEST_F(ParserFiles, IncludedNodesKeepTheirOwnFileInLocations) {
    const std::string main = write("main.conf", "stream {\n    include inc.conf;\n    d;\n}\n");
    const std::string inc = write("inc.conf", "\n  b;\nupstream u {\n    c;\n}\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    const std::vector<Node>& children = nodes.at(0).children;
    ASSERT_EQ(names(children), (Strings{"b", "upstream", "d"}));
    EXPECT_EQ(at(children[0].loc()), inc + ":2:3");
    EXPECT_EQ(at(children[1].loc()), inc + ":3:1");
    EXPECT_EQ(at(children[1].children.at(0).loc()), inc + ":4:5");
    EXPECT_EQ(at(children[2].loc()), main + ":3:5");
}

TEST_F(ParserFiles, FirstIncludedNodeNamesTheInclude) {
    const std::string main = write("main.conf", "a;\ninclude inc.conf;\n");
    write("inc.conf", "b;\nc;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    ASSERT_EQ(names(nodes), (Strings{"a", "b", "c"}));
    EXPECT_TRUE(nodes[0].included_by.empty());
    EXPECT_EQ(nodes[1].included_by, "include inc.conf (" + main + ":2)");
    EXPECT_TRUE(nodes[2].included_by.empty());
}

TEST_F(ParserFiles, IncludeIsRelativeToTheIncludingFile) {
    const std::string main = write("main.conf", "include sub/first.conf;\n");
    // "second.conf" is looked up next to sub/first.conf, not next to
    // main.conf, where a decoy of the same name lives.
    write("sub/first.conf", "a;\ninclude second.conf;\n");
    const std::string second = write("sub/second.conf", "b;\n");
    write("second.conf", "decoy;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(names(nodes), (Strings{"a", "b"}));
    EXPECT_EQ(nodes[1].loc().file, second);
}

TEST_F(ParserFiles, AbsoluteIncludePathIsUsedAsWritten) {
    const std::string inc = write("elsewhere/inc.conf", "b;\n");
    const std::string main = write("sub/main.conf", "include " + inc + ";\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    ASSERT_EQ(names(nodes), (Strings{"b"}));
    EXPECT_EQ(nodes[0].loc().file, inc);
}

TEST_F(ParserFiles, IncludeGlobReadsEveryMatchSorted) {
    const std::string main = write("main.conf", "stream {\n    include conf.d/*.conf;\n}\n");
    write("conf.d/b.conf", "b;\n");
    write("conf.d/c.conf", "c1;\nc2;\n");
    write("conf.d/a.conf", "a;\n");
    write("conf.d/z.txt", "not_matched;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    const std::vector<Node>& children = nodes.at(0).children;
    ASSERT_EQ(names(children), (Strings{"a", "b", "c1", "c2"}));
    EXPECT_EQ(children[0].loc().file, path("conf.d/a.conf"));
    EXPECT_EQ(children[1].loc().file, path("conf.d/b.conf"));
    EXPECT_EQ(children[2].loc().file, path("conf.d/c.conf"));
    // Each file's first node names the include.
    const std::string by = "include conf.d/*.conf (" + main + ":2)";
    EXPECT_EQ(children[0].included_by, by);
    EXPECT_EQ(children[1].included_by, by);
    EXPECT_EQ(children[2].included_by, by);
    EXPECT_TRUE(children[3].included_by.empty());
}

TEST_F(ParserFiles, IncludeGlobWithQuestionMarkAndClass) {
    const std::string main = write("main.conf", "include \"x?.conf\";\ninclude y[12].conf;\n");
    write("x1.conf", "x1;\n");
    write("x22.conf", "x22;\n");
    write("y1.conf", "y1;\n");
    write("y3.conf", "y3;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    EXPECT_EQ(names(nodes), (Strings{"x1", "y1"}));
}

TEST_F(ParserFiles, IncludeGlobWithoutMatchIsNotAnError) {
    const std::string main = write("main.conf", "a;\ninclude conf.d/*.conf;\nb;\n");
    write("conf.d/readme.txt", "not_matched;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_EQ(messages(diags), Strings{});
    EXPECT_EQ(names(nodes), (Strings{"a", "b"}));
}

// Suspected bug: parser.cc calls glob() with GLOB_ERR, so a directory that
// does not exist (or cannot be read) aborts the glob and is reported as
// "cannot read the files matching ...". nginx's ngx_open_glob() calls
// glob(pattern, 0, ...), which returns GLOB_NOMATCH here, and
// ngx_conf_include() accepts that: nginx starts.
TEST_F(ParserFiles, IncludeGlobInMissingDirectoryIsNotAnError) {
    const std::string main = write("main.conf", "a;\ninclude conf.d/*.conf;\nb;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_EQ(messages(diags), Strings{});
    EXPECT_EQ(names(nodes), (Strings{"a", "b"}));
}

TEST_F(ParserFiles, IncludeOfMissingFileIsAnErrorNamingThePath) {
    const std::string main = write("main.conf", "a;\ninclude   missing.conf;\nb;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{main + ":2:11: error: cannot open \"" + path("missing.conf") +
                       "\": No such file or directory"}));
    EXPECT_EQ(names(nodes), (Strings{"a", "b"}));
}

TEST_F(ParserFiles, IncludeOfDirectoryIsAnError) {
    const std::string main = write("main.conf", "include conf.d;\n");
    fs::create_directories(path("conf.d"));
    Diagnostics diags;
    parse_file(main, diags, ParseOptions{});
    EXPECT_EQ(messages(diags), (Strings{main + ":1:9: error: \"" + path("conf.d") +
                                        "\" is a directory, not a configuration file"}));
}

TEST_F(ParserFiles, IncludeCycleIsAnError) {
    const std::string a = write("a.conf", "x;\ninclude b.conf;\n");
    const std::string b = write("b.conf", "y;\ninclude a.conf;\n");
    Diagnostics diags;
    auto nodes = parse_file(a, diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{b + ":2:9: error: include cycle: \"" + a + "\" includes \"" + b +
                       "\" includes \"" + a + "\"; remove one of these includes"}));
    // Each file is read once.
    EXPECT_EQ(names(nodes), (Strings{"x", "y"}));
}

TEST_F(ParserFiles, FileIncludingItselfIsACycle) {
    const std::string a = write("a.conf", "include ./a.conf;\n");
    Diagnostics diags;
    parse_file(a, diags, ParseOptions{});
    ASSERT_EQ(diags.list().size(), 1u);
    EXPECT_NE(diags.list()[0].message.find("include cycle"), std::string::npos);
    EXPECT_EQ(diags.list()[0].to_string(),
              a + ":1:9: error: include cycle: \"" + a + "\" includes \"" + a +
                  "\"; remove one of these includes");
}

TEST_F(ParserFiles, CycleThroughGlobIsAnError) {
    const std::string main = write("main.conf", "include conf.d/*.conf;\n");
    write("conf.d/a.conf", "include ../main.conf;\n");
    Diagnostics diags;
    parse_file(main, diags, ParseOptions{});
    ASSERT_EQ(diags.list().size(), 1u);
    EXPECT_NE(diags.list()[0].message.find("include cycle"), std::string::npos);
}

TEST_F(ParserFiles, SameFileIncludedTwiceIsNotACycle) {
    const std::string main = write("main.conf", "include inc.conf;\ninclude inc.conf;\n");
    write("inc.conf", "a;\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    EXPECT_EQ(names(nodes), (Strings{"a", "a"}));
}

TEST_F(ParserFiles, IncludesNestedTooDeepAreRefused) {
    // f0 includes f1 includes ... f16: the 17th file is not read.
    for (int i = 0; i <= kMaxIncludeDepth; ++i) {
        write("f" + std::to_string(i) + ".conf",
              "n" + std::to_string(i) + ";\ninclude f" + std::to_string(i + 1) + ".conf;\n");
    }
    Diagnostics diags;
    auto nodes = parse_file(path("f0.conf"), diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{path("f15.conf") + ":2:9: error: includes nested more than 16 deep: \"" +
                       path("f16.conf") + "\" is not read"}));
    EXPECT_EQ(nodes.size(), static_cast<size_t>(kMaxIncludeDepth));
}

TEST_F(ParserFiles, ErrorsInIncludedFileNameThatFile) {
    const std::string main = write("main.conf", "stream {\n    include inc.conf;\n}\n");
    const std::string inc = write("inc.conf", "a;\n; b \"c\"d;\n");
    Diagnostics diags;
    parse_file(main, diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{inc + ":2:1: error: unexpected \";\"",
                       inc + ":2:8: error: unexpected \"d\" after a quoted string: put a space, "
                             "\";\" or \"{\" after the closing quote"}));
}

TEST_F(ParserFiles, IncludedFileMustCloseItsOwnBlocks) {
    // As in nginx, a block cannot open in one file and close in another.
    const std::string main = write("main.conf", "stream {\n    include inc.conf;\n}\n");
    const std::string inc = write("inc.conf", "server {\n");
    Diagnostics diags;
    auto nodes = parse_file(main, diags, ParseOptions{});
    EXPECT_EQ(messages(diags),
              (Strings{inc + ":2:1: error: unexpected end of file, expecting \"}\""}));
    ASSERT_EQ(names(nodes), (Strings{"stream"}));
    EXPECT_EQ(names(nodes[0].children), (Strings{"server"}));
}

TEST_F(ParserFiles, ParseTextResolvesIncludesAgainstItsName) {
    write("inc.conf", "b;\n");
    Diagnostics diags;
    auto nodes = parse_text("a;\ninclude inc.conf;\n", path("virtual.conf"), diags, ParseOptions{});
    EXPECT_TRUE(diags.list().empty());
    EXPECT_EQ(names(nodes), (Strings{"a", "b"}));
}

}  // namespace
}  // namespace terminus::config::detail
