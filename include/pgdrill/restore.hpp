// Restoring a backup with PostgreSQL's own tools, and telling an honest restore from a broken one.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <filesystem>
#include <fstream>
#include <optional>  // stream reader for compressed backups
#include <iterator>
#include <random>
#include <map>
#include <regex>
#include <set>
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
#include <pgdrill/roles.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/snapshot.hpp>
#include <pgdrill/stream.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

/// Called with the dump id of each TABLE DATA entry `pg_restore -j` reports finished (its COPY
/// committed) while the restore goes on, from the thread that reads the tool's stderr.
using table_data_finished = std::function<void(int dump_id)>;

/// What a restore did.
struct restore_result {
  bool ok = false;
  std::string tool;          ///< "psql" or "pg_restore"
  std::string command_line;  ///< argv as run (never a secret: connection details travel in PG* env)
  int jobs = 1;
  bool named_items = false;  ///< pg_restore ran with --verbose and named the tables it loaded
  double seconds = 0;
  std::string outcome;       ///< "exited with status 1", "timed out after 600s"
  std::vector<restore_problem> problems;   ///< what failed it, the first cause first
  std::vector<tolerated_error> tolerated;  ///< known-harmless errors of a healthy dump
  std::vector<std::string> adjustments;    ///< what the drill changed in a script to run it, e.g. tablespace paths
  std::set<std::string> referenced_roles;  ///< roles the backup's SQL refers to (read when the restore succeeded)
  std::string stderr_tail;

  /// The drill's environment, not the backup, stopped the restore (could not verify).
  bool environment_fault() const { return !ok && !problems.empty() && problems.front().environment; }

  /// One line for the report: the first problem, or how the tool ended.
  std::string summary() const {
    if (ok) return tool + " restored the backup in " + std::to_string(seconds).substr(0, 5) + "s";
    if (!problems.empty())
      return problems.front().kind + ": " + problems.front().line +
             (problems.size() > 1 ? " (and " + std::to_string(problems.size() - 1) + " more)" : "") +
             (problems.front().hint.empty() ? "" : "; " + problems.front().hint);
    return tool + " " + outcome;
  }
};

namespace detail {

// How far the restore tool (the process `leader` and its workers) has read into `path` (a file,
// or the files under a directory archive), from /proc/PID/fdinfo: progress for tools that read
// the backup themselves. A process that exits mid-read counts as 0; this never throws.
inline std::uint64_t bytes_read_by_tree(pid_t leader, const std::filesystem::path& path) {
  std::error_code ignored;
  std::string target = std::filesystem::canonical(path, ignored).string();
  std::uint64_t total = 0;
  for (const auto& pid : process_tree(leader)) {
    std::filesystem::path process = "/proc/" + pid;
    for (const auto& fd : std::filesystem::directory_iterator(process / "fd", ignored)) {
      auto link = std::filesystem::read_symlink(fd.path(), ignored).string();
      if (ignored || link.compare(0, target.size(), target) != 0) continue;
      std::istringstream info(proc_text(process / "fdinfo" / fd.path().filename()));
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
  std::string handed_over;  ///< how a backup the tools' account cannot open reached them, for the restore's detail
};

// Decompresses into `scratch` when -j needs a file (tools in a container, which cannot see
// `scratch`, read the stream serially instead); throws corrupt_backup when that copy cannot be
// made from the damaged stream. An archive the tools' account cannot open goes on stdin, or,
// where pg_restore needs it by name (a directory archive, -j), as a copy in `scratch`.
inline restore_input choose_input(const backup_info& backup, const format_traits& format, const restore_spec& spec,
                                  const pg_binaries& tools, const std::filesystem::path& scratch) {
  const bool archive = std::string(format.restore_tool) == "pg_restore";
  // Plain SQL always streams through the drill, which reads its ends and adapts cluster dumps.
  restore_input input{backup.path, backup.compressed != compression::none || !archive, 1, ""};
  int cores = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  // pg_restore runs tar archives, single transactions and archives read from stdin serially only.
  if (archive && format.parallel_restore && !spec.single_transaction) input.jobs = spec.jobs > 0 ? spec.jobs : cores;
  if (input.via_stdin && tools.container) input.jobs = 1;
  if (!input.via_stdin && !tools_can_open(tools, backup.path)) {
    const std::string account = tools.account() ? tools.account()->name : "the tools' account";
    if (backup.format != backup_format::directory && input.jobs == 1) {
      input.via_stdin = true;
      input.handed_over = "pg_restore read the backup on stdin from the drill: " + account + " cannot open it";
    } else {
      input.path = scratch / "backup-copy";
      copy_for_tools(backup.path, input.path);
      input.handed_over = "pg_restore read a private copy of the backup in the drill's scratch directory: " + account +
                          " cannot open it, and pg_restore opens it by name";
    }
  }
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
    if (!input.via_stdin) {
      cmd.args.push_back(input.path.string());
      cmd.reads.push_back(input.path);
    }
  } else {
    // Like pg_restore, psql goes on after an error; every error is then judged with its
    // SQLSTATE (VERBOSITY=verbose) and the statement that failed (--echo-errors).
    cmd.args = {"-X", "-q", "--echo-errors", "-v", "VERBOSITY=verbose", "--dbname", target.dbname};
    if (spec.single_transaction) cmd.args.push_back("--single-transaction");
  }
  target.apply_to(cmd);
  return cmd;
}

// The plain script as psql gets it: unchanged, except that the tablespaces a pg_dumpall cluster
// dump creates before its first \connect get no LOCATION of their own (a directory of the source
// machine) but live in the throwaway server's data directory (allow_in_place_tablespaces).
class plain_script_filter {
 public:
  plain_script_filter(backup_reader& reader, plain_script_end& ends, role_reference_scanner& roles,
                      std::vector<std::string>& adjustments)
      : reader_(reader), ends_(ends), roles_(roles), adjustments_(adjustments) {}

  std::size_t read(char* buffer, std::size_t capacity) {
    while (output_.empty() && !passing_through_) fill();
    if (output_.empty()) return source(buffer, capacity);
    std::size_t count = std::min(capacity, output_.size());
    std::copy_n(output_.data(), count, buffer);
    output_.erase(0, count);
    return count;
  }

 private:
  std::size_t source(char* buffer, std::size_t capacity) {
    std::size_t got = reader_.read(buffer, capacity);
    ends_.see(buffer, got);
    roles_.feed(buffer, got);
    if (got == 0) roles_.finish();
    return got;
  }
  // Reads on until a line of the globals section is complete, or the section is over.
  void fill() {
    std::string block(64U << 10, '\0');
    std::size_t got = source(block.data(), block.size());
    pending_.append(block.data(), got);
    if (!checked_) {
      if (pending_.size() < 64 && got > 0) return;
      checked_ = true;
      passing_through_ = pending_.find("-- PostgreSQL database cluster dump\n") >= 64;
    }
    std::size_t start = 0;
    for (std::size_t newline; !passing_through_ && (newline = pending_.find('\n', start)) != std::string::npos; start = newline + 1)
      output_ += adapt(pending_.substr(start, newline - start)) + "\n";
    pending_.erase(0, start);
    if (passing_through_ || got == 0) {
      output_ += pending_;
      pending_.clear();
      passing_through_ = true;
    }
  }
  std::string adapt(const std::string& line) {
    static const std::regex tablespace(R"(^(CREATE TABLESPACE .* )LOCATION '(?:[^']|'')*';$)");
    if (line.rfind("\\connect ", 0) == 0) passing_through_ = true;  // the databases begin: nothing more to adapt
    std::smatch match;
    if (passing_through_ || !std::regex_match(line, match, tablespace)) return line;
    adjustments_.push_back("tablespace created in the server's data directory: " + line);
    return "SET allow_in_place_tablespaces = on;\n" + match[1].str() + "LOCATION '';";
  }

  backup_reader& reader_;
  plain_script_end& ends_;
  role_reference_scanner& roles_;
  std::vector<std::string>& adjustments_;
  std::string pending_, output_;
  bool checked_ = false, passing_through_ = false;
};

// psql learned \restrict in 13.22, 14.19, 15.14, 16.10 and 17.6 (August 2025).
inline bool psql_can_restrict(const std::string& version) {
  int major = std::atoi(version.c_str()), minor = 0;
  if (auto dot = version.find('.'); dot != std::string::npos) minor = std::atoi(version.c_str() + dot + 1);
  static const std::map<int, int> first_minor{{13, 22}, {14, 19}, {15, 14}, {16, 10}, {17, 6}};
  if (major >= 18) return true;
  auto found = first_minor.find(major);
  return found != first_minor.end() && minor >= found->second;
}

// The database of a `\connect` line in the forms pg_dump and pg_dumpall write, nothing else on
// the line: `\connect NAME` for a name of [A-Za-z0-9_.] (double-quoted or not), and
// `\connect -reuse-previous=on "dbname='NAME'"` for any other name (appendPsqlMetaConnect, which
// writes `\encoding SQL_ASCII` before it: that line runs too).
// Nothing for every other form: a user, host or port argument, another conninfo keyword, a
// second meta-command or a backquote on the line.
inline std::optional<std::string> bare_connect_target(const std::string& line) {
  static const std::regex plain(R"re(^\\(?:c|connect)[ \t]+("?)([A-Za-z0-9_.]+)\1[ \t]*$)re");
  static const std::regex reusing(R"re(^\\(?:c|connect)[ \t]+-reuse-previous=on[ \t]+"((?:[^"]|"")*)"[ \t]*$)re");
  static const std::regex only_dbname(R"re(^dbname=(?:([^\s'\\]+)|'((?:[^'\\]|\\.)*)')$)re");
  std::smatch match;
  if (std::regex_match(line, match, plain)) return match[2].str();
  if (!std::regex_match(line, match, reusing)) return std::nullopt;
  std::string conninfo = std::regex_replace(match[1].str(), std::regex("\"\""), "\"");
  std::smatch value;
  if (conninfo.find('`') != std::string::npos || !std::regex_match(conninfo, value, only_dbname)) return std::nullopt;
  if (value[1].matched) return value[1].str();
  return std::regex_replace(value[2].str(), std::regex(R"(\\(.))"), "$1");
}

// A plain script as psql runs it: restricted from its first line (\restrict with a key the script
// cannot know), so no meta-command in a backup runs (\!, \o |, \copy ... program, \i, \connect,
// ...); psql refuses each and the drill fails it. The script's own \restrict and \unrestrict lines
// (pg_dump writes them since 17.6, 16.10, 15.14, ...) are dropped. Its bare \connect lines
// (bare_connect_target), which a --create or cluster dump needs to reach the databases it created,
// and the `\encoding NAME` pg_dump writes before one, run unrestricted when `connect_allowed` (the
// server is the drill's own); every other \connect is refused by psql and listed in
// refused_connects().
class restricted_script {
 public:
  restricted_script(std::function<std::size_t(char*, std::size_t)> source, std::string key, bool connect_allowed)
      : source_(std::move(source)), key_(std::move(key)), connect_allowed_(connect_allowed) {
    output_ = "\\restrict " + key_ + "\n";
  }

  /// The \connect lines the script held that psql was made to refuse, as written.
  const std::vector<std::string>& refused_connects() const noexcept { return refused_; }

  std::size_t read(char* buffer, std::size_t capacity) {
    while (output_.empty() && !ended_) fill();
    std::size_t count = std::min(capacity, output_.size());
    std::copy_n(output_.data(), count, buffer);
    output_.erase(0, count);
    return count;
  }

 private:
  void fill() {
    std::string block(256U << 10, '\0');
    std::size_t got = source_(block.data(), block.size());
    if (got == 0) {
      ended_ = true;
      if (!meta_line_.empty()) output_ += adapt(meta_line_);
      return;
    }
    for (std::size_t at = 0; at < got;) {
      if (in_meta_line_ || (at_line_start_ && block[at] == '\\')) {  // a meta-command line: held until it is whole
        in_meta_line_ = true;
        auto end = block.find('\n', at);
        meta_line_.append(block, at, (end == std::string::npos || end >= got ? got : end) - at);
        if (end == std::string::npos || end >= got) return;
        output_ += adapt(meta_line_) + "\n";
        meta_line_.clear();
        in_meta_line_ = false;
        at_line_start_ = true;
        at = end + 1;
        continue;
      }
      auto end = block.find('\n', at);
      std::size_t stop = end == std::string::npos || end >= got ? got : end + 1;
      output_.append(block, at, stop - at);
      at_line_start_ = stop > at && block[stop - 1] == '\n';
      at = stop;
    }
  }
  std::string adapt(const std::string& line) {
    static const std::regex own_restrict(R"(^\\(un)?restrict\s+\S+\s*$)");
    static const std::regex connect(R"(^\\(c|connect)(\s.*)?$)");
    static const std::regex encoding(R"(^\\encoding [A-Za-z0-9_]+[ \t]*$)");  // before a \connect to an odd name
    if (std::regex_match(line, own_restrict)) return "";
    if (connect_allowed_ && std::regex_match(line, encoding)) return unrestricted(line);
    if (!std::regex_match(line, connect)) return line;  // psql refuses it, and says so
    if (connect_allowed_ && bare_connect_target(line)) return unrestricted(line);
    refused_.push_back(line);
    return line;
  }

  std::string unrestricted(const std::string& line) const { return "\\unrestrict " + key_ + "\n" + line + "\n\\restrict " + key_; }

  std::function<std::size_t(char*, std::size_t)> source_;
  std::string key_, output_, meta_line_;
  std::vector<std::string> refused_;
  bool connect_allowed_;
  bool at_line_start_ = true, in_meta_line_ = false, ended_ = false;
};

// pg_restore --verbose's progress lines: read for the TABLE DATA entries it finishes, and kept out
// of the error reader and of the stderr tail, so a failure's detail shows its errors, not progress.
// Every other line goes on to both as it would without --verbose.
class verbose_progress {
 public:
  verbose_progress(tool_error_reader& errors, table_data_finished on_finished)
      : errors_(errors), on_finished_(std::move(on_finished)) {}

  void feed(std::string_view chunk) {
    partial_.append(chunk);
    for (std::size_t newline; (newline = partial_.find('\n')) != std::string::npos;) {
      read_line(partial_.substr(0, newline + 1));
      partial_.erase(0, newline + 1);
    }
  }
  /// The tail of stderr without the progress lines; call once the tool is done, before the
  /// error reader finishes.
  std::string tail() {
    if (!partial_.empty()) read_line(std::exchange(partial_, {}));
    return tail_;
  }

 private:
  void read_line(const std::string& line) {
    static const std::regex finished(R"(^pg_restore: finished item (\d+) TABLE DATA [^\n]*\n?$)");
    static const std::regex progress(
        R"(^pg_restore: (?:connecting to database for restore|processing item |processing data for table |launching item |finished item |creating |executing |entering |finished main parallel loop|processing missed item |implied data-only restore))");
    std::smatch match;
    if (std::regex_match(line, match, finished)) notify(on_finished_, std::atoi(match[1].str().c_str()));
    if (std::regex_search(line, progress)) return;
    errors_.feed(line);
    append_bounded(tail_, line, run_options{}.stderr_tail, true);
  }

  tool_error_reader& errors_;
  table_data_finished on_finished_;
  std::string partial_, tail_;
};

// What is left of the restore's time limit after any decompression (at least 1 ms: 0 means none).
inline std::chrono::milliseconds remaining(std::chrono::seconds limit, std::chrono::steady_clock::time_point started) {
  if (limit.count() == 0) return std::chrono::milliseconds(0);
  auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  return std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(limit) - spent);
}

}  // namespace detail

namespace detail {

// The verdict on a finished tool run: its errors judged (the tolerated ones set aside), then what
// its exit and a plain script's missing closing line say beyond them.
inline void judge_run(restore_result& result, const run_result& finished, tool_error_reader& errors, bool tolerate,
                      bool unprivileged, const plain_script_end* plain_ends) {
  std::size_t ignored = errors.ignored_by_pg_restore();
  auto judged = judge_errors(errors.finish(), tolerate, unprivileged);
  result.tolerated = std::move(judged.tolerated);
  result.problems = std::move(judged.problems);
  auto& problems = result.problems;
  if (finished.timed_out) {
    problems.insert(problems.begin(), {"timeout", "restore " + finished.describe(), "", false, ""});
  } else if (finished.status.signal != 0) {
    problems.insert(problems.begin(), {"restore tool killed", result.tool + " was " + finished.describe(), "", true,
                                       "something outside the drill stopped the tool (the OOM killer?): see the system log"});
  } else if (plain_ends && finished.status.code == 2 &&
             std::none_of(problems.begin(), problems.end(), [](const restore_problem& problem) {
               return problem.environment || problem.kind == "connect to a database the backup does not create";
             })) {
    problems.insert(problems.begin(), {"server stopped or unreachable", "psql lost its connection to the server", "", true,
                                       "the drill's server stopped during the restore: see its log"});
  } else if (auto cut = plain_ends ? plain_ends->cut_short() : ""; finished.status.success() && !cut.empty()) {
    problems.insert(problems.begin(), {"truncated or corrupt archive", cut, "", false, ""});
  }
  // pg_restore exits 1 after errors it went past: fine when those were exactly the tolerated ones.
  bool only_tolerated = !plain_ends && finished.status.code == 1 && ignored > 0 && ignored == result.tolerated.size();
  result.ok = !finished.timed_out && (finished.status.success() || only_tolerated) && problems.empty();
}

// A backup fed to the restore tool's stdin: decompressed, and for plain SQL read through
// plain_script_filter and, where psql can, restricted (restricted_script).
class backup_on_stdin {
 public:
  backup_on_stdin(const std::filesystem::path& file, bool plain, const pg_binaries& tools, bool own_server, plain_script_end& ends,
                  role_reference_scanner& roles, std::vector<std::string>& adjustments)
      : reader_(file) {
    if (!plain) return;
    script_.emplace(reader_, ends, roles, adjustments);
    if (psql_can_restrict(tools.version))
      restricted_.emplace([this](char* buffer, std::size_t capacity) { return script_->read(buffer, capacity); }, random_secret(),
                          own_server);
    else
      adjustments.push_back("psql " + tools.version + " predates \\restrict: meta-commands in the script could not be "
                            "blocked (use PostgreSQL tools released in August 2025 or later)");
  }
  backup_on_stdin(const backup_on_stdin&) = delete;
  backup_on_stdin& operator=(const backup_on_stdin&) = delete;

  std::size_t read(char* buffer, std::size_t capacity) {
    return restricted_ ? restricted_->read(buffer, capacity) : script_ ? script_->read(buffer, capacity) : reader_.read(buffer, capacity);
  }
  std::uint64_t file_bytes_read() const { return reader_.file_bytes_read(); }
  /// The \connect lines psql's \restrict refused (none when it did not restrict).
  std::vector<std::string> refused_connects() const { return restricted_ ? restricted_->refused_connects() : std::vector<std::string>{}; }

 private:
  backup_reader reader_;
  std::optional<plain_script_filter> script_;
  std::optional<restricted_script> restricted_;
};

// \connect lines the restricted script refused fail the restore: pg_dump writes only a bare one.
inline void judge_refused_connects(restore_result& result, const std::vector<std::string>& refused, bool own_server) {
  if (refused.empty()) return;
  result.ok = false;
  result.problems.insert(result.problems.begin(),
                         {"psql meta-command refused", "refused: " + printable(refused.front()) +
                              (refused.size() > 1 ? " (and " + std::to_string(refused.size() - 1) + " more \\connect lines)" : ""),
                          "", false,
                          own_server ? "pg_dump writes only a bare \\connect DBNAME; one with a user, host, port, conninfo or "
                                       "another command did not run"
                                     : "a shared server's drill restores into its scratch database only: no \\connect runs"});
}

}  // namespace detail

/// Restore one backup file into the database `target`: plain SQL streamed into `psql`, archives
/// through `pg_restore` (-j for custom and directory). Both go on after an error, like a person
/// restoring would; every error is then judged (restore_errors.hpp): known-harmless errors of a
/// healthy dump are tolerated and listed, anything else fails the restore, as the backup's fault
/// or the environment's. Compressed backups are decompressed in-process into the tool's stdin;
/// only a compressed custom archive restored with -j (which needs a seekable file) is
/// decompressed into `scratch` first, and an archive the tools' account cannot open is copied there
/// when pg_restore needs it by name: `scratch` must be a directory that account may enter
/// (scratch_for_tools). Plain SQL without its closing line was cut short, and runs
/// restricted (restricted_script): its \connect lines only on the drill's `own_server`. Throws
/// could_not_verify when the tool cannot run at all. With `on_table_data`, a parallel pg_restore
/// runs with --verbose and names each TABLE DATA entry it has committed, as it goes.
inline restore_result restore_backup(const backup_info& backup, const endpoint& target, const pg_binaries& tools,
                                     const restore_spec& spec, const std::filesystem::path& scratch,
                                     const restore_progress& progress = {}, bool own_server = true,
                                     const table_data_finished& on_table_data = {}) {
  restore_result result;
  const auto& format = traits_of(backup.format);
  if (!*format.restore_tool) throw could_not_verify("cannot restore " + backup.path.string() + ": format " + format.name);
  const bool plain = std::string(format.restore_tool) == "psql";
  const auto started = std::chrono::steady_clock::now();
  result.tool = format.restore_tool;
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  auto damaged = [&](const corrupt_backup& failure, const char* outcome) {
    result.problems.insert(result.problems.begin(), {"truncated or corrupt archive", failure.what(), "", false, ""});
    result.outcome = outcome;
    result.seconds = seconds();
    return result;
  };
  detail::restore_input input;
  try {
    input = detail::choose_input(backup, format, spec, tools, scratch);
  } catch (const corrupt_backup& failure) {
    return damaged(failure, "not started: the compressed archive is damaged");
  }
  result.jobs = input.jobs;
  if (!input.handed_over.empty()) result.adjustments.push_back(input.handed_over);
  auto restore_cmd = detail::restore_command(tools, format, target, spec, input);
  tool_error_reader errors;
  std::optional<detail::verbose_progress> verbose;
  if (on_table_data && !plain && input.jobs > 1) {
    restore_cmd.args.insert(restore_cmd.args.begin(), "--verbose");
    verbose.emplace(errors, on_table_data);
    result.named_items = true;
  }
  auto cmd = tools.as_client(std::move(restore_cmd));
  if (cmd.reads_any_file)
    result.adjustments.push_back(result.tool + " ran as " + cmd.user->name + " keeping only the right to read any file: " +
                                 cmd.user->name + " cannot read the connection's files");
  result.command_line = tools.runnable(cmd).display() + (input.via_stdin ? " < " + backup.path.filename().string() : "");

  run_options options;
  options.timeout = detail::remaining(spec.timeout, started);
  options.stdout_sink = [](std::string_view) {};  // psql echoes query results of the script
  options.stderr_sink = [&](std::string_view chunk) { verbose ? verbose->feed(chunk) : errors.feed(chunk); };
  detail::plain_script_end ends;
  role_reference_scanner roles;
  std::optional<detail::backup_on_stdin> fed;
  if (input.via_stdin) {
    fed.emplace(backup.path, plain, tools, own_server, ends, roles, result.adjustments);
    options.stdin_source = [&](char* buffer, std::size_t capacity) { return fed->read(buffer, capacity); };
  }
  if (progress) {
    auto report = [&](std::uint64_t done) { detail::notify(progress, std::min<std::uint64_t>(done, backup.size), backup.size, seconds()); };
    options.on_tick = [&, report](pid_t pid) {  // `report` by value: it lives only in this block
      report(fed ? fed->file_bytes_read() : detail::bytes_read_by_tree(pid, input.path));
    };
    report(0);
  }
  run_result finished;
  try {
    finished = tools.run(cmd, options);
  } catch (const corrupt_backup& failure) {
    return damaged(failure, "stopped: the compressed backup is damaged");
  }
  result.stderr_tail = verbose ? verbose->tail() : finished.err_tail;
  detail::judge_run(result, finished, errors, !spec.single_transaction, !own_server, plain ? &ends : nullptr);
  if (fed) detail::judge_refused_connects(result, fed->refused_connects(), own_server);
  result.seconds = seconds();
  result.outcome = finished.describe();
  if (result.ok) {
    if (!plain) detail::read_archive(backup, tools, {"--schema-only", "--file", "-"}, [&](std::string_view sql) { roles.feed(sql.data(), sql.size()); });
    roles.finish();
    result.referenced_roles = roles.roles();
  }
  if (progress && result.ok) detail::notify(progress, backup.size, backup.size, result.seconds);
  return result;
}

namespace detail {

// Natural order of file names: runs of digits compare as numbers (V2__a.sql before V10__b.sql).
inline bool natural_less(const std::string& left, const std::string& right) {
  std::size_t i = 0, j = 0;
  while (i < left.size() && j < right.size()) {
    if (std::isdigit(static_cast<unsigned char>(left[i])) && std::isdigit(static_cast<unsigned char>(right[j]))) {
      std::size_t end_i = left.find_first_not_of("0123456789", i), end_j = right.find_first_not_of("0123456789", j);
      auto number_i = left.substr(i, end_i - i), number_j = right.substr(j, end_j - j);
      number_i.erase(0, std::min(number_i.find_first_not_of('0'), number_i.size() - 1));
      number_j.erase(0, std::min(number_j.find_first_not_of('0'), number_j.size() - 1));
      if (number_i.size() != number_j.size()) return number_i.size() < number_j.size();
      if (number_i != number_j) return number_i < number_j;
      i = end_i == std::string::npos ? left.size() : end_i;
      j = end_j == std::string::npos ? right.size() : end_j;
    } else if (left[i] != right[j]) {
      return left[i] < right[j];
    } else {
      ++i, ++j;
    }
  }
  return left.size() - i < right.size() - j;
}

// The .sql files of a migrations directory, in the order they apply.
inline std::vector<std::filesystem::path> migration_files(const std::filesystem::path& directory) {
  std::error_code failure;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(directory, failure))
    if (entry.is_regular_file() && entry.path().extension() == ".sql") files.push_back(entry.path());
  if (failure || files.empty()) throw could_not_verify("the migrations directory " + directory.string() + " holds no .sql file");
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return natural_less(a.filename().string(), b.filename().string()); });
  return files;
}

// The schema a JSON snapshot is loaded into, from the scenario's dump, migrations or SQL. A
// schema that does not apply leaves the snapshot unjudged: the problem is the environment's.
inline std::optional<restore_problem> apply_snapshot_schema(const endpoint& target, const pg_binaries& tools, const restore_spec& spec,
                                                            const std::filesystem::path& scratch) {
  const auto& schema = spec.schema;
  auto not_applied = [](const std::string& line) {
    return restore_problem{"schema did not apply", line, "", true, "the snapshot was not judged: fix the scenario's restore.schema"};
  };
  if (!schema.sql.empty()) {
    try {
      pqxx::connection connection(target.conninfo());
      pqxx::nontransaction(connection).exec(schema.sql);
    } catch (const std::exception& failure) {
      return not_applied(std::string("the schema SQL failed: ") + failure.what());
    }
    return std::nullopt;
  }
  auto files = schema.dump.empty() ? migration_files(schema.migrations) : std::vector<std::filesystem::path>{schema.dump};
  for (const auto& file : files) {
    auto source = inspect_file(file);
    if (source.format == backup_format::unknown || source.format == backup_format::json_snapshot)
      return not_applied(file.string() + " is no schema dump or SQL file");
    auto applied = restore_backup(source, target, tools, spec, scratch);
    if (!applied.ok) return not_applied(file.filename().string() + ": " + applied.summary());
  }
  return std::nullopt;
}

}  // namespace detail

/// A JSON snapshot restored: the schema the scenario names (restore.schema), then the rows
/// loaded with COPY (snapshot.hpp); `loaded` keeps what the load found for the checks. Throws
/// could_not_verify when the scenario names no schema.
inline restore_result restore_snapshot(const backup_info& backup, const endpoint& target, const pg_binaries& tools,
                                       const restore_spec& spec, const std::filesystem::path& scratch,
                                       const restore_progress& progress, std::optional<snapshot_load>& loaded) {
  if (!spec.schema.given())
    throw could_not_verify("a JSON snapshot holds rows only: name the schema they load into in the scenario's restore section "
                           "(\"schema\": {\"dump\": FILE} for a schema-only pg_dump, {\"migrations\": DIRECTORY} or {\"sql\": TEXT})");
  restore_result result;
  result.tool = "COPY";
  result.command_line = "COPY from " + backup.path.filename().string() + " (JSON snapshot), schema from " +
                        (!spec.schema.dump.empty() ? spec.schema.dump.string() : !spec.schema.migrations.empty() ? spec.schema.migrations.string() : "SQL text");
  const auto started = std::chrono::steady_clock::now();
  if (auto problem = detail::apply_snapshot_schema(target, tools, spec, scratch)) {
    result.problems.push_back(*problem);
    result.outcome = "the schema did not apply";
  } else {
    auto load = load_snapshot(backup.path, target, [&](std::uint64_t done, double seconds) { detail::notify(progress, done, backup.size, seconds); });
    result.ok = load.ok;
    result.problems = load.problems;
    long long rows = 0;
    for (const auto& table : load.tables) rows += table.rows;
    result.outcome = (load.ok ? "loaded " : "stopped after ") + std::to_string(rows) + " rows of " + std::to_string(load.tables.size()) + " tables";
    loaded = std::move(load);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

/// Roles, extensions and `sql_before` the scenario asks for, in the target, before any file is
/// restored. Appends the roles it created to `created` as it goes (a shared server gets them
/// dropped again at teardown, even when a later statement fails).
inline void prepare_target(server& target_server, const endpoint& target, const restore_spec& spec) {
  pqxx::connection server_connection(target_server.admin().conninfo());
  pqxx::nontransaction server_tx(server_connection);
  for (const auto& role : spec.roles)
    if (server_tx.exec("SELECT 1 FROM pg_roles WHERE rolname = " + server_tx.quote(role)).empty()) target_server.create_role(role);
  pqxx::connection connection(target.conninfo());
  pqxx::nontransaction tx(connection);
  for (const auto& extension : spec.extensions) tx.exec("CREATE EXTENSION IF NOT EXISTS " + detail::quote_ident(extension));
  if (!spec.sql_before.empty()) tx.exec(spec.sql_before);
}

/// What restoring a whole backup set did.
struct restore_set_result {
  bool ok = false;
  bool environment_fault = false;  ///< on failure: the environment, not the backup, stopped it
  std::string tool;      ///< of the last file restored
  int jobs = 0;
  bool named_items = false;  ///< the restore named the tables it loaded to `on_table_data`
  double seconds = 0;    ///< preparation, every file and sql_after
  std::string message;   ///< one line: what was restored, or the first failure
  std::string detail;    ///< on failure: the command and the tool's stderr tail
  std::vector<tolerated_error> tolerated;  ///< known-harmless errors, every file's
  std::vector<std::string> adjustments;    ///< what the drill changed in a script to run it
  std::string database;  ///< for a backup that creates its own databases: the one to check
  std::set<std::string> referenced_roles;  ///< every restored file's
  std::optional<snapshot_load> snapshot;   ///< of a JSON snapshot: what its load found
};

namespace detail {

// What the plain scripts of a set create beyond one database: server-wide objects (a pg_dumpall
// script's roles and tablespaces, or databases) and databases of their own to \connect to.
struct beyond_one_database {
  bool server_objects = false;
  bool databases = false;
};

inline beyond_one_database what_the_scripts_create(const std::vector<backup_info>& backups) {
  beyond_one_database found;
  for (const auto& backup : backups) {
    if (backup.format != backup_format::plain) continue;  // pg_restore creates no database unless asked (-C)
    auto header = read_plain_header(backup.path);
    found.server_objects = found.server_objects || header.cluster || header.creates_databases;
    found.databases = found.databases || header.creates_databases;
  }
  return found;
}

inline std::vector<std::string> database_names(server& target_server) {
  pqxx::connection connection(target_server.admin().conninfo());
  std::vector<std::string> names;
  for (const auto& row : pqxx::nontransaction(connection).exec("SELECT datname FROM pg_catalog.pg_database ORDER BY 1"))
    names.push_back(row[0].as<std::string>());
  return names;
}

// The database the checks examine after a backup that created its own: the scenario's
// `database`, else the only one it created, else `postgres` (whose contents a cluster dump
// restores in place). Empty, with `problem` set, when the named one is not there.
inline std::string database_to_check(const std::vector<std::string>& before, const std::vector<std::string>& after,
                                     const std::string& wanted, std::string& problem) {
  std::vector<std::string> created;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(created));
  if (!wanted.empty()) {
    if (std::find(after.begin(), after.end(), wanted) != after.end()) return wanted;
    problem = "the backup created no database '" + wanted + "' (it created: " + (created.empty() ? "none" : join(created)) + ")";
    return "";
  }
  if (created.size() > 1)
    throw could_not_verify("the backup created the databases " + join(created) +
                           ": name the one the checks examine with \"database\" in the scenario's restore section");
  return created.empty() ? "postgres" : created.front();
}

}  // namespace detail

/// The one restore every entry point uses: prepare the target (roles, extensions, sql_before),
/// restore each backup in order with `tools`, then run `sql_after`. Stops at the first file that
/// fails; throws could_not_verify when a tool cannot run at all, and for a backup that creates
/// databases of its own (pg_dump --create, pg_dumpall) on a shared server, which it would alter.
/// Scratch files live under `temp_root` and are gone when it returns. `on_table_data` hears of
/// each table a parallel pg_restore has loaded, but only where nothing after it can change the
/// table's rows: a set of one archive and no `sql_before` (whose triggers could fire on loads of
/// other tables) or `sql_after`.
inline restore_set_result restore_set(server& target_server, const endpoint& target, const pg_binaries& tools,
                                      const std::vector<backup_info>& backups, const restore_spec& spec,
                                      const std::filesystem::path& temp_root, const restore_progress& progress = {},
                                      const table_data_finished& on_table_data = {}) {
  const bool loads_are_final = backups.size() == 1 && spec.sql_before.empty() && spec.sql_after.empty();
  restore_set_result result;
  auto started = std::chrono::steady_clock::now();
  const auto creates = detail::what_the_scripts_create(backups);
  const bool own_databases = creates.databases;
  if (creates.server_objects && target_server.shared())
    throw could_not_verify("the backup creates databases, roles or tablespaces of its own (pg_dumpall, pg_dump --create): the "
                           "existing provider restores only into its scratch database and never alters a shared server; "
                           "drill it with the local or container provider");
  if (!own_databases && !spec.database.empty())
    throw could_not_verify("the scenario names the database '" + spec.database + "' to check, but the backup creates no database");
  auto before = own_databases ? detail::database_names(target_server) : std::vector<std::string>{};
  auto scratch = scratch_for_tools(tools, temp_root);  // decompressed or private copies of archives
  prepare_target(target_server, target, spec);
  for (const auto& backup : backups) {
    auto restored = backup.format == backup_format::json_snapshot
                        ? restore_snapshot(backup, target, tools, spec, scratch.path(), progress, result.snapshot)
                        : restore_backup(backup, target, tools, spec, scratch.path(), progress, !target_server.shared(),
                                         loads_are_final ? on_table_data : table_data_finished{});
    result.tool = restored.tool;
    result.jobs = restored.jobs;
    result.named_items = restored.named_items;
    result.message = restored.summary();
    result.tolerated.insert(result.tolerated.end(), restored.tolerated.begin(), restored.tolerated.end());
    result.adjustments.insert(result.adjustments.end(), restored.adjustments.begin(), restored.adjustments.end());
    result.referenced_roles.insert(restored.referenced_roles.begin(), restored.referenced_roles.end());
    if (!restored.ok) {
      if (backups.size() > 1) result.message = backup.path.filename().string() + ": " + result.message;
      result.environment_fault = restored.environment_fault();
      result.detail = restored.command_line + "\n" + restored.stderr_tail;
      return result;
    }
  }
  if (own_databases) {
    std::string problem;
    result.database = detail::database_to_check(before, detail::database_names(target_server), spec.database, problem);
    if (!problem.empty()) {
      result.message = problem;
      return result;
    }
  }
  if (!spec.sql_after.empty()) {
    pqxx::connection connection(result.database.empty() ? target.conninfo() : target.with_database(result.database).conninfo());
    pqxx::nontransaction(connection).exec(spec.sql_after);
  }
  result.ok = true;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (backups.size() > 1)
    result.message = "restored " + std::to_string(backups.size()) + " files in order in " + detail::seconds_text(result.seconds);
  if (result.snapshot) result.message += ": " + std::to_string(result.snapshot->tables.size()) + " tables of the JSON snapshot loaded";
  if (!result.database.empty()) result.message += "; it created its own databases: checking '" + result.database + "'";
  if (!result.tolerated.empty())
    result.message += "; " + std::to_string(result.tolerated.size()) + " harmless error(s) tolerated (see the detail)";
  return result;
}

}  // namespace pgdrill
