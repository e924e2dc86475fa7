// Restoring a backup with PostgreSQL's own tools, and telling an honest restore from a broken one.
#pragma once

#include <algorithm>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <pgdrill/backup.hpp>
#include <pgdrill/binaries.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/scenario.hpp>

namespace pgdrill {

/// The first error a restore tool reported, and what kind of trouble it is.
struct restore_problem {
  std::string kind;  ///< "missing role", "missing extension", "truncated or corrupt archive", ...
  std::string line;  ///< the tool's own line
};

/// What a restore did.
struct restore_result {
  bool ok = false;
  std::string tool;          ///< "psql" or "pg_restore"
  std::string command_line;  ///< argv as run (never a secret: connection details travel in PG* env)
  int jobs = 1;
  double seconds = 0;
  std::string outcome;       ///< "exited with status 1", "timed out after 600s"
  std::vector<restore_problem> problems;
  std::string stderr_tail;

  /// One line for the report: the first problem, or how the tool ended.
  std::string summary() const {
    if (ok) return tool + " restored the backup in " + std::to_string(seconds).substr(0, 5) + "s";
    if (!problems.empty())
      return problems.front().kind + ": " + problems.front().line +
             (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)" : "");
    return tool + " " + outcome;
  }
};

/// Lines of a restore tool's stderr that report errors, each classified. Notices and warnings
/// about harmless things are not errors; "errors ignored on restore" is.
inline std::vector<restore_problem> classify_restore_errors(const std::string& stderr_text) {
  struct rule {
    std::regex pattern;
    const char* kind;
  };
  static const std::vector<rule> rules{
      {std::regex(R"(role "[^"]*" does not exist)"), "missing role"},
      {std::regex(R"(extension "[^"]*" is not available|could not open extension control file|could not access file "\$libdir)"),
       "missing extension"},
      {std::regex(R"(unsupported version \([0-9.]+\) in file header)"), "archive newer than the tools"},
      {std::regex(R"(unexpected end of file|could not read input file|did not find magic string|could not uncompress|)"
                  R"(invalid compression|could not find block ID|data offset|too short|corrupt|unrecognized data block type|)"
                  R"(could not read from input file|invalid byte sequence|not a valid archive|truncated)"),
       "truncated or corrupt archive"},
      {std::regex(R"(ERROR:)"), "SQL error"}};
  static const std::regex error_line(R"((ERROR|FATAL|PANIC):|pg_restore: error:|psql: error:|errors ignored on restore)");
  std::vector<restore_problem> problems;
  std::istringstream lines(stderr_text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!std::regex_search(line, error_line)) continue;
    std::string kind = "restore tool error";
    for (const auto& candidate : rules)
      if (std::regex_search(line, candidate.pattern)) {
        kind = candidate.kind;
        break;
      }
    problems.push_back({kind, line});
  }
  return problems;
}

/// Restore `backup` into the database `target`: plain SQL through `psql -X -v ON_ERROR_STOP=1`,
/// archives through `pg_restore` (-j for custom and directory). A zero exit status with errors
/// on stderr is still a failure. Throws could_not_verify when the format cannot be restored yet.
inline restore_result restore_backup(const backup_info& backup, const endpoint& target, const pg_binaries& tools,
                                     const restore_spec& spec) {
  restore_result result;
  const bool archive = backup.format == backup_format::custom || backup.format == backup_format::directory ||
                       backup.format == backup_format::tar;
  if (backup.compressed != compression::none)
    throw could_not_verify(std::string("restoring ") + to_string(backup.compressed) +
                           "-compressed backups is not supported yet: " + backup.path.string());
  if (!archive && backup.format != backup_format::plain)
    throw could_not_verify("cannot restore " + backup.path.string() + ": format " + to_string(backup.format));

  command cmd(tools.tool(archive ? "pg_restore" : "psql"));
  if (archive) {
    int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
    result.jobs = spec.jobs > 0 ? spec.jobs : cores;
    // pg_restore runs tar archives and single transactions serially only.
    if (backup.format == backup_format::tar || spec.single_transaction) result.jobs = 1;
    cmd.args = {"--dbname", target.dbname};
    if (result.jobs > 1) cmd.args.insert(cmd.args.end(), {"--jobs", std::to_string(result.jobs)});
    if (spec.no_owner) cmd.args.push_back("--no-owner");
    if (spec.no_privileges) cmd.args.push_back("--no-privileges");
    if (spec.single_transaction) cmd.args.push_back("--single-transaction");
    cmd.args.push_back(backup.path.string());
  } else {
    cmd.args = {"-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", target.dbname, "--file", backup.path.string()};
    if (spec.single_transaction) cmd.args.push_back("--single-transaction");
  }
  cmd.with_env(target.libpq_env()).without_env(endpoint::foreign_libpq_env());
  result.tool = cmd.program.filename().string();
  result.command_line = cmd.display();

  // Classify stderr line by line as it arrives: the first errors matter most and would be gone
  // from the kept tail of a long, noisy restore.
  std::string partial_line;
  auto classify = [&](const std::string& text) {
    for (auto& problem : classify_restore_errors(text))
      if (result.problems.size() < 100) result.problems.push_back(std::move(problem));
  };
  run_options options;
  options.timeout = spec.timeout;
  options.stdout_sink = [](std::string_view) {};  // psql echoes query results of the script
  options.stderr_sink = [&](std::string_view chunk) {
    partial_line.append(chunk);
    auto last_newline = partial_line.rfind('\n');
    if (last_newline == std::string::npos) return;
    classify(partial_line.substr(0, last_newline));
    partial_line.erase(0, last_newline + 1);
  };
  auto finished = run(cmd, options);
  classify(partial_line);
  result.seconds = finished.elapsed.count();
  result.outcome = finished.describe();
  result.stderr_tail = finished.err_tail;
  if (finished.timed_out) result.problems.insert(result.problems.begin(), {"timeout", "restore " + finished.describe()});
  result.ok = finished.ok() && result.problems.empty();
  return result;
}

}  // namespace pgdrill
