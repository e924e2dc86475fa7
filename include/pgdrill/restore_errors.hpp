// What a restore tool's stderr says went wrong, and whose fault it is. psql (run with
// VERBOSITY=verbose and --echo-errors) and pg_restore print each error over several lines: the
// error, its SQLSTATE when psql prints it, then the statement that failed. These are read back
// into records, each judged once: tolerated (a known-harmless error of a healthy dump, matched by
// its statement and SQLSTATE or message), the backup's fault, or the environment's (the drill
// could not judge the backup).
#pragma once

#include <algorithm>
#include <cstddef>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace pgdrill {

/// One error as a restore tool reported it.
struct tool_error {
  std::string line;       ///< the tool's error line, as printed
  std::string sqlstate;   ///< five characters when the tool printed it (psql), else empty
  std::string message;    ///< the error's text without prefixes and SQLSTATE
  std::string statement;  ///< the statement that failed, when the tool printed it
  bool from_server = false;  ///< an ERROR/FATAL of the server, not a message of the tool itself
  std::string severity;      ///< the server's: "ERROR", "FATAL" or "PANIC"
};

/// An error that matters, and what kind of trouble it is.
struct restore_problem {
  std::string kind;       ///< "missing role", "disk full", "truncated or corrupt archive", "SQL error", ...
  std::string line;       ///< the tool's own line
  std::string statement;  ///< the statement that failed, when known
  bool environment = false;  ///< the drill's environment is at fault, not the backup (could not verify)
  std::string hint;       ///< what to do about it, when there is something to say
};

/// An error the drill accepts from a healthy dump, and why.
struct tolerated_error {
  std::string reason;
  std::string line;
  std::string statement;
};

namespace detail {

inline bool matches(const std::string& text, const char* pattern) {
  return *pattern != '\0' && std::regex_search(text, std::regex(pattern));
}

inline bool state_in(const std::string& sqlstate, const std::vector<std::string>& states) {
  return std::find(states.begin(), states.end(), sqlstate) != states.end();
}

// Errors a healthy dump makes on a fresh database, each recognised by the statement that failed
// and its SQLSTATE (psql) or, where the tool prints none (pg_restore), the server's message.
struct tolerance_rule {
  const char* reason;
  const char* statement;  ///< regex over the whole failed statement
  std::vector<std::string> sqlstates;
  const char* message;    ///< regex over the message, for errors without SQLSTATE
};

inline const std::vector<tolerance_rule>& tolerance_rules() {
  static const std::vector<tolerance_rule> rules{
      {"the fresh database already has schema public (a dump taken with -n public creates it)",
       R"(^CREATE SCHEMA public;$)", {"42P06"}, R"(^schema "public" already exists$)"},
      {"--clean drops what a fresh database does not have",
       R"(^(DROP [A-Z ]+ |ALTER TABLE (ONLY )?\S+ DROP CONSTRAINT |ALTER TABLE (ONLY )?\S+ ALTER COLUMN \S+ DROP DEFAULT|SELECT pg_catalog\.lo_unlink\('\d+'\);$))",
       {"42P01", "42704", "3F000", "42883", "3D000", "42P13"}, R"( does not exist$)"},
      {"the tablespace is not on the drill's server: the objects go to its default tablespace (as with --no-tablespaces)",
       R"(^(SET default_tablespace = [^;]+;)?$)", {"22023"}, R"(invalid value for parameter "default_tablespace")"},
      {"a cluster dump drops every role, the one restoring it included",
       R"(^DROP ROLE (IF EXISTS )?[^;]+;$)", {"55006"}, R"(^current user cannot be dropped$)"},
      {"the fresh server already has database postgres (a pg_dump --create of it): the script restores into that one",
       R"(^CREATE DATABASE postgres WITH [^;]+;$)", {"42P04"}, R"(^database "postgres" already exists$)"},
      {"a cluster dump creates every role, those the server already has included",
       R"(^CREATE ROLE [^;]+;$)", {"42710"}, R"(^role "[^"]+" already exists$)"},
      {"on a shared server the drill restores as a role of its own, without superuser rights: objects keep that role as "
       "their owner, and other roles' ownership and grants are not applied (the local and container providers apply them)",
       R"(^(ALTER .* OWNER TO [^;]+;|GRANT [^;]+;|REVOKE [^;]+;|ALTER DEFAULT PRIVILEGES [^;]+;|SET SESSION AUTHORIZATION [^;]+;)$)",
       {"42501"}, R"(must be (member of role|able to SET ROLE|owner of)|permission denied to (set session authorization|grant role)|must have admin option)"},
  };
  return rules;
}

// What kind of problem an error that is not tolerated is, and whose fault: one row per kind,
// first match wins. `server_only`: only when the server said it (a client "out of memory" in
// pg_restore is a corrupt length field, not a full server).
struct problem_rule {
  const char* kind;
  bool environment;
  bool server_only;
  bool unprivileged_only;  ///< only when the restore ran without superuser rights (a shared server)
  std::vector<std::string> sqlstates;
  const char* message;
  const char* hint;
  /// about the drill's own connection: never the kind of a live server's ERROR, which answers a
  /// statement (one of class 08 is a connection the backup's SQL made: dblink, postgres_fdw)
  bool own_connection = false;
};

inline const std::vector<problem_rule>& problem_rules() {
  static const std::vector<problem_rule> rules{
      {"disk full", true, false, false, {"53100"}, R"(No space left on device|could not extend file|disk full)",
       "give the drill's server more disk (--temp-root, or the container engine's storage)"},
      {"server out of memory", true, true, false, {"53200"}, R"(out of (shared )?memory)",
       "give the drill's server more memory, or raise max_locks_per_transaction in server_settings"},
      {"too many connections", true, false, false, {"53300"}, R"(too many clients|remaining connection slots are reserved|Resource temporarily unavailable)",
       "lower restore.jobs or raise max_connections in server_settings"},
      {"server resources exhausted", true, true, false, {"53000", "53400", "58030"}, "", "see the server's log"},
      {"authentication failed", true, false, false, {"28P01", "28000"}, R"(password authentication failed|no password supplied)",
       "check the credentials the drill was given"},
      {"connect to a database the backup does not create", false, false, false, {"3D000"},
       R"(connection to server .* failed: FATAL:  database ".*" does not exist)",
       "the script \\connects to a database it never creates (a cut pg_dumpall script, or a --create line edited out)"},
      {"server stopped or unreachable", true, false, false, {"57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"},
       R"(server closed the connection unexpectedly|connection to server was lost|no connection to the server|)"
       R"(terminating connection|the database system is (shutting down|starting up|in recovery)|)"
       R"(connection to server .* failed|could not connect to server|SSL SYSCALL error)",
       "the drill's server stopped or could not be reached during the restore: see its log", true},
      {"missing extension", true, false, false, {},
       R"(extension "[^"]*" is not available|could not open extension control file|could not access file "\$libdir)",
       "the drill's server lacks this extension: use a server or image that has it"},
      {"archive newer than the tools", true, false, false, {}, R"(unsupported version \([0-9.]+\) in file header)",
       "restore with the tools of a newer PostgreSQL major (or the container provider)"},
      {"insufficient privilege", true, false, true, {"42501"}, R"(permission denied|must be (owner|superuser|member)|must be able to SET ROLE)",
       "on a shared server the restore runs without superuser rights (as the drill's own role, or the role you gave it), so "
       "what needs them (an untrusted extension, COPY ... PROGRAM) cannot run there: drill this backup with the local or "
       "container provider"},
      {"missing role", false, false, false, {}, R"(role ".*" does not exist)", ""},
      {"psql meta-command refused", false, false, false, {}, R"(backslash commands are restricted)",
       "the script runs psql meta-commands (\\!, \\o, \\copy ... program, \\i, \\connect, ...): the drill runs psql restricted, "
       "so none of them ran; a pg_dump script has none but its own \\connect lines"},
      {"truncated or corrupt archive", false, false, false, {},
       R"(unexpected end of file|could not read input file|did not find magic string|could not uncompress|)"
       R"(invalid compression|could not find block ID|data offset|too short|corrupt|unrecognized data block type|)"
       R"(could not read from input file|invalid byte sequence|not a valid archive|truncated|)"
       R"(could not close data file|could not open input file|out of memory)",
       ""},
  };
  return rules;
}

inline std::string role_in(const std::string& message) {
  std::smatch match;
  static const std::regex role(R"re(role "(.*)" does not exist)re");  // the server does not double inner quotes
  return std::regex_search(message, match, role) ? match[1].str() : "";
}

// A role name as a JSON string, for scenario lines to copy.
inline std::string json_string(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return quoted + "\"";
}

inline std::string missing_roles_hint(const std::vector<std::string>& roles) {
  std::string list;
  for (const auto& role : roles) list += (list.empty() ? "" : ", ") + json_string(role);
  return "the backup set does not create the roles it needs: restore a pg_dumpall --globals-only file before it, or create "
         "them for the drill with \"roles\": [" + list + "] in the scenario's restore section";
}

}  // namespace detail

/// The tolerance rule `error` falls under, or nullptr. Nothing is tolerated in a single
/// transaction: there, any error aborts everything after it.
inline const char* tolerated_because(const tool_error& error) {
  for (const auto& rule : detail::tolerance_rules()) {
    if (!std::regex_search(error.statement, std::regex(rule.statement))) continue;
    bool by_state = !error.sqlstate.empty() && detail::state_in(error.sqlstate, rule.sqlstates);
    bool by_message = error.sqlstate.empty() && detail::matches(error.message, rule.message);
    if (by_state || by_message) return rule.reason;
  }
  return nullptr;
}

/// What kind of problem `error` is, whose fault, and what to do.
inline restore_problem judge(const tool_error& error, bool unprivileged = false) {
  restore_problem problem{error.from_server ? "SQL error" : "restore tool error", error.line, error.statement, false, ""};
  for (const auto& rule : detail::problem_rules()) {
    if ((rule.server_only && !error.from_server) || (rule.unprivileged_only && !unprivileged) ||
        (rule.own_connection && error.severity == "ERROR"))
      continue;
    bool by_state = !error.sqlstate.empty() && detail::state_in(error.sqlstate, rule.sqlstates);
    if (!by_state && !detail::matches(error.line, rule.message)) continue;
    problem.kind = rule.kind;
    problem.environment = rule.environment;
    problem.hint = rule.hint;
    break;
  }
  if (problem.kind == "missing role") problem.hint = detail::missing_roles_hint({detail::role_in(error.line)});
  return problem;
}

/// Reads a restore tool's stderr, as it arrives, into tool_error records. Lines that start no
/// error (notices, LOCATION, pg_restore's progress) are skipped; a statement runs over the
/// lines after "STATEMENT:" / "Command was:" up to the next tagged or blank line.
class tool_error_reader {
 public:
  void feed(std::string_view chunk) {
    partial_.append(chunk);
    for (std::size_t newline; (newline = partial_.find('\n')) != std::string::npos;) {
      read_line(partial_.substr(0, newline));
      partial_.erase(0, newline + 1);
    }
  }
  /// The records read so far, the last one completed. Call once stderr is closed.
  std::vector<tool_error> finish() {
    if (!partial_.empty()) read_line(partial_);
    partial_.clear();
    close_record();
    return std::move(errors_);
  }
  /// The count in pg_restore's closing "errors ignored on restore: N", 0 when it printed none.
  std::size_t ignored_by_pg_restore() const { return ignored_; }

 private:
  void read_line(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    static const std::regex server_error(R"(^(?:psql:[^:]*:\d+: )?(?:(?:pg_restore|psql): error: (?:could not execute query: )?)?(ERROR|FATAL|PANIC):  (?:([0-9A-Z]{5}): )?(.*)$)");
    // pg_restore -j workers share stderr: their lines interleave ("pg_restore:pg_restore: error: ...").
    static const std::regex tool_error_line(R"(^(?:psql:[^:]*:\d+: )?(?:(?:pg_restore|psql): ?)*\s*error: (?:could not execute query: )?(.*)$)");
    static const std::regex lost(R"(^(?:psql:[^:]*:\d+: )?(server closed the connection unexpectedly|connection to server was lost|no connection to the server|backslash commands are restricted; only \\unrestrict is allowed)$)");
    // psql reading stdin prints a failed \connect without any prefix
    static const std::regex connect_failed(R"(^(?:psql:[^:]*:\d+: )?(?:error: )?\\connect: (.*)$)");
    static const std::regex statement(R"(^(?:psql:[^:]*:\d+: )?(?:STATEMENT:  |Command was: )(.*)$)");
    static const std::regex ignored(R"(^pg_restore: warning: errors ignored on restore: (\d+)$)");
    static const std::regex tagged(R"(^(?:psql:[^:]*:\d+: )?(?:[A-Z]+:  |LINE \d+: |pg_restore: |psql: |\s*\^$))");
    std::smatch match;
    if (std::regex_match(line, match, ignored)) {
      close_record();
      ignored_ = std::stoul(match[1]);
    } else if (std::regex_match(line, match, server_error)) {
      start_record(line, match[2], match[3], true, match[1]);
    } else if (std::regex_match(line, match, tool_error_line) || std::regex_match(line, match, lost) ||
               std::regex_match(line, match, connect_failed)) {
      start_record(line, "", match[1], false, "");
    } else if (std::regex_match(line, match, statement) && open_) {
      current_.statement = match[1];
      in_statement_ = true;
    } else if (in_statement_ && !line.empty() && !std::regex_search(line, tagged)) {
      current_.statement += "\n" + line;
    } else {
      in_statement_ = false;
    }
  }
  void start_record(const std::string& line, const std::string& sqlstate, const std::string& message, bool from_server,
                    const std::string& severity) {
    close_record();
    current_ = {line, sqlstate, message, "", from_server, severity};
    open_ = true;
  }
  void close_record() {
    if (open_ && errors_.size() < max_errors) errors_.push_back(current_);
    open_ = in_statement_ = false;
  }

  static constexpr std::size_t max_errors = 1000;
  std::string partial_;
  std::vector<tool_error> errors_;
  tool_error current_;
  bool open_ = false, in_statement_ = false;
  std::size_t ignored_ = 0;
};

/// The errors of a restore tool's stderr, split into what was tolerated and what matters.
struct judged_errors {
  std::vector<tolerated_error> tolerated;
  std::vector<restore_problem> problems;
};

/// Judge every error `reader` collected; with `tolerate` false (single transaction), none is
/// tolerated. `unprivileged`: the restore ran without superuser rights.
inline judged_errors judge_errors(const std::vector<tool_error>& errors, bool tolerate, bool unprivileged = false) {
  judged_errors judged;
  for (const auto& error : errors) {
    const char* reason = tolerate ? tolerated_because(error) : nullptr;
    if (reason) judged.tolerated.push_back({reason, error.line, error.statement});
    else judged.problems.push_back(judge(error, unprivileged));
  }
  // Every missing role in one hint, so one edit of the scenario fixes them all.
  std::vector<std::string> roles;
  for (const auto& problem : judged.problems)
    if (problem.kind == "missing role" && std::find(roles.begin(), roles.end(), detail::role_in(problem.line)) == roles.end())
      roles.push_back(detail::role_in(problem.line));
  for (auto& problem : judged.problems)
    if (problem.kind == "missing role") problem.hint = detail::missing_roles_hint(roles);
  return judged;
}

/// Lines of a tool's stderr that report errors, each judged (the whole text at once).
inline std::vector<restore_problem> classify_restore_errors(const std::string& stderr_text) {
  tool_error_reader reader;
  reader.feed(stderr_text);
  return judge_errors(reader.finish(), false).problems;
}

}  // namespace pgdrill
