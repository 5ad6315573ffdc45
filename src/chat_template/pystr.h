// Python str semantics on UTF-8 strings: code-point indexing and the str methods templates use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace infera::jinja::pystr {

std::u32string decode(const std::string& s);  // invalid bytes map to U+FFFD
std::string encode(const std::u32string& s);
void append_utf8(std::string& out, char32_t c);

bool is_space(char32_t c);      // str.isspace
bool is_printable(char32_t c);  // str.isprintable (approximation outside common ranges)
char32_t to_upper(char32_t c);  // simple case mapping (ASCII, Latin-1, Greek, Cyrillic)
char32_t to_lower(char32_t c);
bool is_cased(char32_t c);
bool is_line_break(char32_t c);  // str.splitlines boundaries

std::string upper(const std::string& s);
std::string lower(const std::string& s);
std::string title(const std::string& s);       // str.title
std::string capitalize(const std::string& s);  // str.capitalize
// chars == nullptr strips whitespace.
std::string strip(const std::string& s, const std::string* chars, bool left, bool right);
std::vector<std::string> split(const std::string& s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> rsplit(const std::string& s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> splitlines(const std::string& s, bool keepends = false);
std::string replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count);
int64_t count(const std::string& s, const std::string& sub);
int64_t find(const std::string& s, const std::string& sub, bool reverse);  // code-point index or -1
size_t length(const std::string& s);
bool all_of(const std::string& s, bool (*pred)(char32_t));
std::string repr(const std::string& s);

}  // namespace infera::jinja::pystr
