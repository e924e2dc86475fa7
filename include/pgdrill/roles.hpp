// The roles a backup's SQL refers to: owners (`ALTER ... OWNER TO`), grantees and grantors
// (`GRANT`, `REVOKE`, `ALTER DEFAULT PRIVILEGES`), policy roles (`CREATE POLICY ... TO`), user
// mappings and `SET SESSION AUTHORIZATION`. pg_dump writes each of these statements on one line
// of its own, so the SQL is read line by line as it streams past: COPY data and dollar-quoted
// bodies are skipped (a GRANT inside a function body is not the backup's), and memory stays
// bounded whatever the line lengths.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pgdrill {

namespace detail {

// One token of a SQL line: a word, a "quoted identifier", a 'string', or one punctuation mark.
struct sql_token {
  std::string text;  ///< unquoted identifier or string contents; words as written
  char quote = 0;    ///< '"', '\'' or 0 for a word or punctuation
  int depth = 0;     ///< parentheses around it

  bool is_word(const char* word) const {
    if (quote || text.size() != std::strlen(word)) return false;
    for (std::size_t index = 0; index < text.size(); ++index)
      if (std::toupper(static_cast<unsigned char>(text[index])) != word[index]) return false;
    return true;
  }
  bool is_name() const {
    return quote == '"' || (!quote && !text.empty() && (std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_'));
  }
};

inline std::vector<sql_token> tokenize_sql_line(std::string_view line) {
  std::vector<sql_token> tokens;
  int depth = 0;
  for (std::size_t at = 0; at < line.size();) {
    char c = line[at];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++at;
    } else if (c == '"' || c == '\'') {  // a doubled quote inside stands for one
      sql_token token{"", c, depth};
      for (++at; at < line.size(); ++at) {
        if (line[at] != c) token.text += line[at];
        else if (at + 1 < line.size() && line[at + 1] == c) token.text += line[++at];
        else break;
      }
      ++at;
      tokens.push_back(std::move(token));
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '.' || (c & 0x80)) {
      std::size_t end = at;
      while (end < line.size() && (std::isalnum(static_cast<unsigned char>(line[end])) || line[end] == '_' ||
                                   line[end] == '$' || line[end] == '.' || (line[end] & 0x80)))
        ++end;
      tokens.push_back({std::string(line.substr(at, end - at)), 0, depth});
      at = end;
    } else {
      if (c == ')') --depth;
      tokens.push_back({std::string(1, c), 0, depth});
      if (c == '(') ++depth;
      ++at;
    }
  }
  return tokens;
}

// A role name as the server stores it: quoted names as written, unquoted ones folded to lower case.
inline std::string role_name(const sql_token& token) {
  if (token.quote) return token.text;
  std::string name = token.text;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

// Not roles, though they stand where role names do.
inline bool names_no_role(const sql_token& token) {
  return token.is_word("PUBLIC") || token.is_word("CURRENT_USER") || token.is_word("CURRENT_ROLE") ||
         token.is_word("SESSION_USER") || token.is_word("GROUP") || token.is_word("DEFAULT");
}

}  // namespace detail

/// Collects the roles referred to by the SQL fed to it, in pieces of any size.
class role_reference_scanner {
 public:
  /// Longest statement line read whole; longer ones (INSERTs of big rows) name no role.
  static constexpr std::size_t longest_statement = 1U << 20;

  void feed(const char* data, std::size_t size) {
    for (const char* end = data + size; data < end;) {
      const char* newline = static_cast<const char*>(std::memchr(data, '\n', static_cast<std::size_t>(end - data)));
      const char* stop = newline ? newline : end;
      keep(data, static_cast<std::size_t>(stop - data));
      data = stop;
      if (newline) {
        finish_line();
        ++data;
      }
    }
  }
  /// The last line, when the SQL does not end with a newline.
  void finish() {
    if (!line_.empty()) finish_line();
  }
  const std::set<std::string>& roles() const { return roles_; }

 private:
  void keep(const char* data, std::size_t size) {
    std::size_t limit = in_copy_ ? 2 : longest_statement;  // COPY data: only "\." matters
    if (line_.size() + size > limit) overlong_ = true;
    else line_.append(data, size);
  }
  void finish_line() {
    if (!overlong_) read_line(line_);
    line_.clear();
    overlong_ = false;
  }
  void read_line(const std::string& line) {
    if (in_copy_) {
      in_copy_ = line != "\\.";
      return;
    }
    bool was_quoted = !dollar_tag_.empty();
    track_dollar_quotes(line);
    if (was_quoted || !dollar_tag_.empty()) return;
    if (line.rfind("COPY ", 0) == 0 && line.size() > 11 && line.compare(line.size() - 11, 11, "FROM stdin;") == 0) {
      in_copy_ = true;
      return;
    }
    static const char* const starts[] = {"ALTER ", "GRANT ", "REVOKE ", "CREATE POLICY ", "CREATE USER MAPPING ", "SET SESSION AUTHORIZATION "};
    if (std::none_of(std::begin(starts), std::end(starts), [&](const char* start) { return line.rfind(start, 0) == 0; })) return;
    read_statement(detail::tokenize_sql_line(line));
  }
  // Opens or closes $tag$ quoting (function bodies): a tag opened stays open until the same tag
  // closes it. Outside one, a tag starts only where a token can (not inside a 'string' or a name).
  void track_dollar_quotes(const std::string& line) {
    auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); };
    for (std::size_t at = 0; at < line.size(); ++at) {
      if (dollar_tag_.empty() && line[at] == '\'') {
        at = line.find('\'', at + 1);  // a doubled quote ends and restarts the string: same effect
        if (at == std::string::npos) return;
        continue;
      }
      if (line[at] != '$' || (dollar_tag_.empty() && at > 0 && (name_char(line[at - 1]) || line[at - 1] == '$'))) continue;
      std::size_t end = at + 1;
      while (end < line.size() && name_char(line[end])) ++end;
      if (end >= line.size() || line[end] != '$' || (end > at + 1 && std::isdigit(static_cast<unsigned char>(line[at + 1]))))
        continue;
      std::string tag = line.substr(at, end - at + 1);
      if (dollar_tag_.empty()) dollar_tag_ = tag;
      else if (tag == dollar_tag_) dollar_tag_.clear();
      else continue;
      at = end;
    }
  }
  void read_statement(const std::vector<detail::sql_token>& tokens) {
    auto word_at = [&](std::size_t index, const char* word) { return index < tokens.size() && tokens[index].is_word(word); };
    if (word_at(0, "SET")) {  // SET SESSION AUTHORIZATION 'role'
      if (tokens.size() > 3) add(tokens[3]);
      return;
    }
    if (word_at(0, "CREATE") && word_at(1, "USER")) {  // CREATE USER MAPPING FOR role SERVER ...
      if (tokens.size() > 4) add(tokens[4]);
      return;
    }
    bool revoke = false, grant = word_at(0, "GRANT") || word_at(0, "REVOKE");
    for (std::size_t index = 0; index < tokens.size(); ++index) {
      if (tokens[index].depth != 0) continue;
      revoke = revoke || tokens[index].is_word("REVOKE");
      grant = grant || tokens[index].is_word("REVOKE") || tokens[index].is_word("GRANT");
      if ((tokens[index].is_word("FOR") && (word_at(index + 1, "ROLE") || word_at(index + 1, "USER"))) ||
          (tokens[index].is_word("GRANTED") && word_at(index + 1, "BY")))
        add_list(tokens, index + 2);
    }
    if (word_at(0, "CREATE")) return add_list(tokens, first_word(tokens, "TO", 0));  // CREATE POLICY ... TO roles
    if (!grant) {  // ALTER ... OWNER TO role
      for (std::size_t index = 0; index + 1 < tokens.size(); ++index)
        if (tokens[index].depth == 0 && tokens[index].is_word("OWNER") && tokens[index + 1].is_word("TO")) add_list(tokens, index + 2);
      return;
    }
    std::size_t target = last_word(tokens, revoke ? "FROM" : "TO");
    add_list(tokens, target);
    // GRANT role TO role (no ON): the granted roles are named too.
    if (word_at(0, "GRANT") && last_word(tokens, "ON") == tokens.size() + 1 && target <= tokens.size()) add_list(tokens, 1);
  }
  // Index just past the first / last top-level `word`, or size()+1 when there is none.
  static std::size_t first_word(const std::vector<detail::sql_token>& tokens, const char* word, std::size_t from) {
    for (std::size_t index = from; index < tokens.size(); ++index)
      if (tokens[index].depth == 0 && tokens[index].is_word(word)) return index + 1;
    return tokens.size() + 1;
  }
  static std::size_t last_word(const std::vector<detail::sql_token>& tokens, const char* word) {
    for (std::size_t index = tokens.size(); index-- > 0;)
      if (tokens[index].depth == 0 && tokens[index].is_word(word)) return index + 1;
    return tokens.size() + 1;
  }
  // name [, name]... starting at `from`.
  void add_list(const std::vector<detail::sql_token>& tokens, std::size_t from) {
    for (std::size_t index = from; index < tokens.size() && tokens[index].is_name(); index += 2) {
      add(tokens[index]);
      if (index + 1 >= tokens.size() || tokens[index + 1].text != ",") break;
    }
  }
  void add(const detail::sql_token& token) {
    if ((token.is_name() || token.quote == '\'') && !detail::names_no_role(token)) roles_.insert(detail::role_name(token));
  }

  std::string line_;
  bool overlong_ = false, in_copy_ = false;
  std::string dollar_tag_;
  std::set<std::string> roles_;
};

/// The roles of `referenced` that are not in `existing`, and not ignored ("*" ignores all).
inline std::vector<std::string> roles_missing(const std::set<std::string>& referenced, const std::set<std::string>& existing,
                                              const std::vector<std::string>& ignored = {}) {
  std::vector<std::string> missing;
  for (const auto& role : referenced)
    if (!existing.count(role) && std::find(ignored.begin(), ignored.end(), role) == ignored.end() &&
        std::find(ignored.begin(), ignored.end(), "*") == ignored.end())
      missing.push_back(role);
  return missing;
}

}  // namespace pgdrill
