// Restoring a backup with PostgreSQL's own tools, and telling an honest restore from a broken one.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <fstream>
#include <optional>  // stream reader for compressed backups
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/backup.hpp>
#include <pgdrill/binaries.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/stream.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

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

namespace detail {

constexpr const char* plain_dump_header = "-- PostgreSQL database dump";
constexpr const char* plain_dump_footer = "-- PostgreSQL database dump complete";

// Keeps the first and last bytes of a stream: enough to see pg_dump's opening and closing lines.
struct stream_ends {
  std::string head, tail;
  void see(const char* data, std::size_t size) {
    if (head.size() < 64) head.append(data, std::min(size, 64 - head.size()));
    tail.append(data, size);
    if (tail.size() > 256) tail.erase(0, tail.size() - 256);
  }
  // pg_dump output that lacks its closing line was cut short.
  bool truncated_plain_dump() const {
    return head.rfind("--\n" + std::string(plain_dump_header), 0) == 0 || head.rfind(plain_dump_header, 0) == 0
               ? tail.find(plain_dump_footer) == std::string::npos
               : false;
  }
};

inline stream_ends file_ends(const std::filesystem::path& file) {
  stream_ends ends;
  std::ifstream in(file, std::ios::binary | std::ios::ate);
  std::streamoff size = in.tellg();
  auto read_at = [&](std::streamoff offset, std::streamoff length) {
    std::string bytes(static_cast<std::size_t>(std::max<std::streamoff>(0, std::min(length, size - offset))), '\0');
    in.seekg(offset);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return bytes;
  };
  ends.head = read_at(0, 64);
  ends.tail = read_at(std::max<std::streamoff>(0, size - 256), 256);
  return ends;
}

// How far the processes of a group have read into `path` (a file, or files under a directory
// archive), from /proc/PID/fdinfo: progress for tools that read the backup themselves.
inline std::uint64_t bytes_read_by_group(pid_t group, const std::filesystem::path& path) {
  std::error_code ignored;
  std::string target = std::filesystem::canonical(path, ignored).string();
  std::uint64_t total = 0;
  for (const auto& process : std::filesystem::directory_iterator("/proc", ignored)) {
    std::string pid = process.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(process.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    std::string state, parent, process_group;
    if (!(fields >> state >> parent >> process_group) || process_group != std::to_string(group)) continue;
    for (const auto& fd : std::filesystem::directory_iterator(process.path() / "fd", ignored)) {
      auto link = std::filesystem::read_symlink(fd.path(), ignored).string();
      if (ignored || link.compare(0, target.size(), target) != 0) continue;
      std::ifstream info(process.path() / "fdinfo" / fd.path().filename());
      std::string key;
      std::uint64_t position = 0;
      while (info >> key)
        if (key == "pos:" && info >> position) break;
      total += position;
    }
  }
  return total;
}

}  // namespace detail

/// Progress of a restore: bytes of the backup read so far, its size, seconds since the start.
using restore_progress = std::function<void(std::uint64_t done, std::uint64_t total, double seconds)>;

namespace detail {

// What the restore tool reads: the backup itself, its decompressed stream on stdin, or (for a
// compressed archive restored with -j, which needs a seekable file) a decompressed copy.
struct restore_input {
  std::filesystem::path path;
  bool via_stdin = false;
  int jobs = 1;
};

// Decompresses into `scratch` when -j needs a file; throws corrupt_backup when that copy cannot
// be made from the damaged stream.
inline restore_input choose_input(const backup_info& backup, const format_traits& format, const restore_spec& spec,
                                  const std::filesystem::path& scratch) {
  restore_input input{backup.path, backup.compressed != compression::none, 1};
  const bool archive = std::string(format.restore_tool) == "pg_restore";
  int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  // pg_restore runs tar archives, single transactions and archives read from stdin serially only.
  if (archive && format.parallel_restore && !spec.single_transaction) input.jobs = spec.jobs > 0 ? spec.jobs : cores;
  if (!input.via_stdin || input.jobs == 1) return input;
  input.path = scratch / (backup.path.filename().string() + ".decompressed");
  backup_reader reader(backup.path);
  std::ofstream out(input.path, std::ios::binary);
  std::vector<char> block(1U << 20);
  for (std::size_t got; (got = reader.read(block.data(), block.size())) > 0;) out.write(block.data(), static_cast<std::streamsize>(got));
  if (!out.flush()) throw could_not_verify("cannot write the decompressed archive to " + input.path.string());
  input.via_stdin = false;
  return input;
}

inline command restore_command(const pg_binaries& tools, const format_traits& format, const endpoint& target,
                               const restore_spec& spec, const restore_input& input) {
  command cmd(tools.tool(format.restore_tool));
  if (std::string(format.restore_tool) == "pg_restore") {
    cmd.args = {"--dbname", target.dbname};
    if (input.jobs > 1) cmd.args.insert(cmd.args.end(), {"--jobs", std::to_string(input.jobs)});
    if (spec.no_owner) cmd.args.push_back("--no-owner");
    if (spec.no_privileges) cmd.args.push_back("--no-privileges");
    if (spec.single_transaction) cmd.args.push_back("--single-transaction");
    if (!input.via_stdin) cmd.args.push_back(input.path.string());
  } else {
    cmd.args = {"-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", target.dbname};
    if (!input.via_stdin) cmd.args.insert(cmd.args.end(), {"--file", input.path.string()});
    if (spec.single_transaction) cmd.args.push_back("--single-transaction");
  }
  cmd.with_env(target.libpq_env()).without_env(endpoint::foreign_libpq_env());
  return cmd;
}

// Classifies a tool's stderr line by line as it arrives: the first errors matter most and would
// be gone from the kept tail of a long, noisy restore.
class stderr_classifier {
 public:
  explicit stderr_classifier(std::vector<restore_problem>& problems) : problems_(problems) {}
  void feed(std::string_view chunk) {
    partial_line_.append(chunk);
    auto last_newline = partial_line_.rfind('\n');
    if (last_newline == std::string::npos) return;
    classify(partial_line_.substr(0, last_newline));
    partial_line_.erase(0, last_newline + 1);
  }
  void finish() { classify(partial_line_); }

 private:
  void classify(const std::string& text) {
    for (auto& problem : classify_restore_errors(text))
      if (problems_.size() < 100) problems_.push_back(std::move(problem));
  }
  std::vector<restore_problem>& problems_;
  std::string partial_line_;
};

// What is left of the restore's time limit after any decompression (at least 1 ms: 0 means none).
inline std::chrono::milliseconds remaining(std::chrono::seconds limit, std::chrono::steady_clock::time_point started) {
  if (limit.count() == 0) return std::chrono::milliseconds(0);
  auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(limit) - spent);
}

}  // namespace detail

/// Restore one backup file into the database `target`: plain SQL through
/// `psql -X -v ON_ERROR_STOP=1`, archives through `pg_restore` (-j for custom and directory).
/// Compressed backups are decompressed in-process and streamed into the tool's stdin; only a
/// compressed custom archive restored with -j (which needs a seekable file) is decompressed into
/// `scratch` first. A zero exit status with errors on stderr is still a failure, and so is plain
/// pg_dump output without its closing line (truncated). Throws could_not_verify when the tool
/// cannot run at all.
inline restore_result restore_backup(const backup_info& backup, const endpoint& target, const pg_binaries& tools,
                                     const restore_spec& spec, const std::filesystem::path& scratch,
                                     const restore_progress& progress = {}) {
  restore_result result;
  const auto& format = traits_of(backup.format);
  if (!*format.restore_tool) throw could_not_verify("cannot restore " + backup.path.string() + ": format " + format.name);
  const bool plain = std::string(format.restore_tool) == "psql";
  const auto started = std::chrono::steady_clock::now();
  result.tool = format.restore_tool;
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  auto damaged = [&](const corrupt_backup& failure, const char* outcome) {
    result.problems.insert(result.problems.begin(), {"truncated or corrupt archive", failure.what()});
    result.outcome = outcome;
    result.seconds = seconds();
    return result;
  };
  detail::restore_input input;
  try {
    input = detail::choose_input(backup, format, spec, scratch);
  } catch (const corrupt_backup& failure) {
    return damaged(failure, "not started: the compressed archive is damaged");
  }
  result.jobs = input.jobs;
  auto cmd = detail::restore_command(tools, format, target, spec, input);
  result.command_line = cmd.display() + (input.via_stdin ? " < (decompressed " + backup.path.filename().string() + ")" : "");

  detail::stderr_classifier classifier(result.problems);
  run_options options;
  options.timeout = detail::remaining(spec.timeout, started);
  options.stdout_sink = [](std::string_view) {};  // psql echoes query results of the script
  options.stderr_sink = [&](std::string_view chunk) { classifier.feed(chunk); };
  std::optional<backup_reader> reader;
  detail::stream_ends ends;
  if (input.via_stdin) {
    reader.emplace(backup.path);
    options.stdin_source = [&](char* buffer, std::size_t capacity) {
      std::size_t got = reader->read(buffer, capacity);
      ends.see(buffer, got);
      return got;
    };
  }
  if (progress) {
    auto report = [&](std::uint64_t done) { progress(std::min<std::uint64_t>(done, backup.size), backup.size, seconds()); };
    options.on_tick = [&, report](pid_t pid) {  // `report` by value: it lives only in this block
      report(reader ? reader->file_bytes_read() : detail::bytes_read_by_group(pid, input.path));
    };
    report(0);
  }
  run_result finished;
  try {
    finished = run(cmd, options);
  } catch (const corrupt_backup& failure) {
    return damaged(failure, "stopped: the compressed backup is damaged");
  }
  classifier.finish();
  if (plain && !input.via_stdin) ends = detail::file_ends(input.path);
  if (plain && finished.ok() && ends.truncated_plain_dump())
    result.problems.push_back({"truncated or corrupt archive", "the plain SQL dump ends without pg_dump's closing '" +
                                                                   std::string(detail::plain_dump_footer) + "' line: it was cut short"});
  result.seconds = seconds();
  result.outcome = finished.describe();
  result.stderr_tail = finished.err_tail;
  if (finished.timed_out) result.problems.insert(result.problems.begin(), {"timeout", "restore " + finished.describe()});
  result.ok = finished.ok() && result.problems.empty();
  if (progress && result.ok) progress(backup.size, backup.size, result.seconds);
  return result;
}

/// Roles, extensions and `sql_before` the scenario asks for, in the target, before any file is
/// restored. Appends the roles it created to `created` as it goes (a shared server gets them
/// dropped again at teardown, even when a later statement fails).
inline void prepare_target(server& target_server, const endpoint& target, const restore_spec& spec,
                           std::vector<std::string>& created) {
  pqxx::connection server_connection(target_server.admin().conninfo());
  pqxx::nontransaction server_tx(server_connection);
  for (const auto& role : spec.roles) {
    if (!server_tx.exec("SELECT 1 FROM pg_roles WHERE rolname = " + server_tx.quote(role)).empty()) continue;
    server_tx.exec("CREATE ROLE " + detail::quote_ident(role));
    created.push_back(role);
  }
  pqxx::connection connection(target.conninfo());
  pqxx::nontransaction tx(connection);
  for (const auto& extension : spec.extensions) tx.exec("CREATE EXTENSION IF NOT EXISTS " + detail::quote_ident(extension));
  if (!spec.sql_before.empty()) tx.exec(spec.sql_before);
}

/// What restoring a whole backup set did.
struct restore_set_result {
  bool ok = false;
  std::string tool;      ///< of the last file restored
  int jobs = 0;
  double seconds = 0;    ///< preparation, every file and sql_after
  std::string message;   ///< one line: what was restored, or the first failure
  std::string detail;    ///< on failure: the command and the tool's stderr tail
};

/// The one restore every entry point uses: prepare the target (roles, extensions, sql_before),
/// restore each backup in order with `tools`, then run `sql_after`. Stops at the first file that
/// fails; throws could_not_verify when a tool cannot run at all. Scratch files live under
/// `temp_root` and are gone when it returns.
inline restore_set_result restore_set(server& target_server, const endpoint& target, const pg_binaries& tools,
                                      const std::vector<backup_info>& backups, const restore_spec& spec,
                                      const std::filesystem::path& temp_root, std::vector<std::string>& created_roles,
                                      const restore_progress& progress = {}) {
  restore_set_result result;
  auto started = std::chrono::steady_clock::now();
  scratch_dir scratch(temp_root);  // decompressed archives, when -j needs one
  prepare_target(target_server, target, spec, created_roles);
  for (const auto& backup : backups) {
    auto restored = restore_backup(backup, target, tools, spec, scratch.path(), progress);
    result.tool = restored.tool;
    result.jobs = restored.jobs;
    result.message = restored.summary();
    if (!restored.ok) {
      if (backups.size() > 1) result.message = backup.path.filename().string() + ": " + result.message;
      result.detail = restored.command_line + "\n" + restored.stderr_tail;
      return result;
    }
  }
  if (!spec.sql_after.empty()) {
    pqxx::connection connection(target.conninfo());
    pqxx::nontransaction(connection).exec(spec.sql_after);
  }
  result.ok = true;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (backups.size() > 1)
    result.message = "restored " + std::to_string(backups.size()) + " files in order in " + detail::seconds_text(result.seconds);
  return result;
}

}  // namespace pgdrill
