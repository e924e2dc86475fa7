// What a drill found, as plain data: outcomes of stages and checks, typed facts, and the one
// rule that turns outcomes into an exit code.
#pragma once

#include <cstdint>
#include <exception>
#include <map>
#include <optional>  // facts a drill may not get as far as measuring
#include <string>
#include <utility>
#include <vector>

#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>

namespace pgdrill {

/// passed; failed (the backup is at fault); error (could not run); skipped (not reached).
enum class outcome { passed, failed, error, skipped };

inline const char* to_string(outcome value) {
  switch (value) {
    case outcome::passed: return "passed";
    case outcome::failed: return "failed";
    case outcome::error: return "error";
    case outcome::skipped: return "skipped";
  }
  return "error";
}

/// A planned check's identity: its name, unique within the drill's plan and the same from drill to
/// drill for the same scenario and manifest (reports, the history and CI trend views key on it).
using check_id = std::string;

/// One stage ("locate backup", "restore", ...) or one assertion ("row_count public.orders").
struct step_result {
  std::string name;        ///< stable across runs: CI trend views key on it
  std::string kind;        ///< "stage", or the assertion type
  outcome result = outcome::skipped;
  std::string message;     ///< one line: why it failed / what it did
  std::string detail;      ///< longer text (stderr tail, server log)
  std::string expected, actual;
  double seconds = 0;
  std::string table;                 ///< the table a check measured ("schema.table"), if any
  std::optional<long long> rows;     ///< the rows it counted there, if it counted any
};

/// A step with just a name, kind, outcome and message.
inline step_result make_step(std::string name, std::string kind, outcome result, std::string message) {
  step_result step;
  step.name = std::move(name);
  step.kind = std::move(kind);
  step.result = result;
  step.message = std::move(message);
  return step;
}

namespace detail {

// Reports want one-line messages: the rest of a multi-line one goes into the detail.
inline void keep_first_line(step_result& step) {
  if (auto newline = step.message.find('\n'); newline != std::string::npos) {
    step.detail = step.message;
    step.message.erase(newline);
  }
}

// A check's verdict and the message that goes with it.
inline void pass_or_fail(step_result& step, bool ok, const std::string& passed, const std::string& failed) {
  step.result = ok ? outcome::passed : outcome::failed;
  step.message = ok ? passed : failed;
}

// Failures a check lists: the first three in its message ("a; b; c; and 4 more"), every one in
// its detail, one per line.
inline void list_failures(const std::vector<std::string>& items, std::string& message, std::string& detail) {
  for (std::size_t index = 0; index < items.size() && index < 3; ++index) message += (index ? "; " : "") + items[index];
  if (items.size() > 3) message += "; and " + std::to_string(items.size() - 3) + " more";
  detail = join(items, "\n");
}

}  // namespace detail

/// How many steps ended in each outcome.
struct outcome_counts {
  int passed = 0, failed = 0, errors = 0, skipped = 0;
};

inline outcome_counts count_outcomes(const std::vector<step_result>& steps) {
  outcome_counts counts;
  for (const auto& step : steps) {
    counts.passed += step.result == outcome::passed;
    counts.failed += step.result == outcome::failed;
    counts.errors += step.result == outcome::error;
    counts.skipped += step.result == outcome::skipped;
  }
  return counts;
}

/// The backup a drill chose and what its bytes said.
struct backup_facts {
  std::vector<std::string> files;     ///< restored in this order
  std::uintmax_t size_bytes = 0;      ///< all files together
  std::string format, compression;    ///< of the first file
  std::string taken_at;               ///< ISO 8601 UTC
  std::string chosen_because;
  std::string sha256;                 ///< of the first file (empty for a directory archive)
  std::string manifest;               ///< the manifest file beside it, if any
  std::string source_version, pg_dump_version;
  std::optional<std::size_t> toc_entries;
};

struct server_facts {
  std::string provider;  ///< local, container, existing
  std::string version;   ///< e.g. "15.18"
};

struct restore_facts {
  std::string tool;  ///< psql, pg_restore
  std::string tools_version, tools_location;  ///< PostgreSQL version of the tools, and where they ran
  int jobs = 0;
  std::optional<double> seconds;  ///< absent unless the whole restore completed
  std::string database;           ///< the database checked, when the backup created its own
  std::vector<std::string> tolerated;    ///< known-harmless errors: "why: statement"
  std::vector<std::string> adjustments;  ///< what the drill changed in a script to run it
};

/// How much of the restored database the checks looked at, of how much there is.
struct coverage_facts {
  struct share {
    long long covered = 0, total = 0;
  };
  bool measured = false;  ///< false when the drill did not get to its checks
  share tables;           ///< tables whose rows a check counted or hashed
  share large_objects, sequences, materialized_views;
};

// Exit codes are decided here only: from an outcome, from a set of them (a drill's), or from
// what a command threw.

/// The exit code of one outcome: passed 0, the backup failed 1, anything else could not verify 2.
inline exit_code exit_code_of(outcome result) {
  return result == outcome::passed ? exit_code::passed : result == outcome::failed ? exit_code::failed : exit_code::not_verified;
}

/// The exit code of what a command threw: its class's (usage 3, locked 4, a damaged backup 1),
/// else 2.
inline exit_code exit_code_of(const std::exception& failure) {
  const auto* known = dynamic_cast<const error*>(&failure);
  return known ? known->code() : exit_code::not_verified;
}

/// Exit code of a set of outcomes: a failure anywhere means the backup failed; otherwise an
/// error, a check not reached, or no passing check at all means it could not be verified.
/// Never green without a passing check. Shared by drills, `verify` and `gate`.
inline exit_code verdict_of(const std::vector<step_result>& stages, const std::vector<step_result>& checks) {
  bool any_error = false, any_failed = false, any_check_passed = false;
  for (const auto& stage : stages) {
    any_failed |= stage.result == outcome::failed;
    any_error |= stage.result == outcome::error;
  }
  for (const auto& check : checks) {
    any_failed |= check.result == outcome::failed;
    any_error |= check.result == outcome::error || check.result == outcome::skipped;
    any_check_passed |= check.result == outcome::passed;
  }
  return exit_code_of(any_failed ? outcome::failed : any_error || !any_check_passed ? outcome::error : outcome::passed);
}

/// The whole drill.
struct drill_result {
  std::string scenario;
  std::string started_at;                        ///< ISO 8601 UTC
  double seconds = 0;
  std::vector<step_result> stages;               ///< in order
  std::vector<step_result> checks;               ///< hygiene, then one per assertion, in scenario order
  backup_facts backup;
  server_facts server;
  restore_facts restore;
  std::map<std::string, long long> table_rows;   ///< rows counted per table by the checks
  std::vector<std::string> schema_reference;      ///< the restored schema, when a drift check read it
  coverage_facts coverage;

  exit_code verdict() const { return verdict_of(stages, checks); }
};

/// The facts as named string properties (JUnit <properties>, the JSON report), rendered once
/// here; facts not measured are left out.
inline std::map<std::string, std::string> properties_of(const drill_result& result) {
  std::map<std::string, std::string> properties;
  auto set = [&](const std::string& name, const std::string& value) {
    if (!value.empty()) properties[name] = value;
  };
  const auto& backup = result.backup;
  set("backup.file", detail::join(backup.files));
  if (!backup.files.empty()) set("backup.size_bytes", std::to_string(backup.size_bytes));
  set("backup.format", backup.format);
  set("backup.compression", backup.compression);
  set("backup.taken_at", backup.taken_at);
  set("backup.chosen_because", backup.chosen_because);
  set("backup.sha256", backup.sha256);
  set("backup.manifest", backup.manifest);
  set("backup.source_version", backup.source_version);
  set("backup.pg_dump_version", backup.pg_dump_version);
  if (backup.toc_entries) set("backup.toc_entries", std::to_string(*backup.toc_entries));
  set("server.provider", result.server.provider);
  set("server.version", result.server.version);
  set("restore.tool", result.restore.tool);
  set("restore.tools_version", result.restore.tools_version);
  set("restore.tools_location", result.restore.tools_location);
  if (result.restore.jobs > 0) set("restore.jobs", std::to_string(result.restore.jobs));
  if (result.restore.seconds) set("restore.seconds", std::to_string(*result.restore.seconds));
  set("restore.database", result.restore.database);
  if (!result.restore.tolerated.empty()) set("restore.tolerated_errors", std::to_string(result.restore.tolerated.size()));
  if (const auto& coverage = result.coverage; coverage.measured)
    for (const auto& [name, share] : {std::pair{"tables", coverage.tables}, {"large_objects", coverage.large_objects},
                                      {"sequences", coverage.sequences}, {"materialized_views", coverage.materialized_views}})
      set(std::string("coverage.") + name, std::to_string(share.covered) + "/" + std::to_string(share.total));
  return properties;
}

inline const char* describe(exit_code code) {
  switch (code) {
    case exit_code::passed: return "PASSED";
    case exit_code::failed: return "FAILED";
    case exit_code::not_verified: return "NOT VERIFIED";
    case exit_code::usage: return "USAGE ERROR";
    case exit_code::locked: return "LOCKED";
  }
  return "NOT VERIFIED";
}

}  // namespace pgdrill
