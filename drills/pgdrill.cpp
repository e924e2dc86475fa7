// The pgdrill runner: a table of commands over the library. Each command declares its options
// and returns what runs it; main() parses, runs the chosen one and maps errors to exit codes.
#include <csignal>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include <pgdrill/pgdrill.hpp>

namespace {

using pgdrill::exit_code;

constexpr const char* exit_codes_help = R"(Exit codes:
  0  every check ran and passed
  1  the backup failed the drill: restore error, or a check failed
  2  could not verify: the drill itself could not run (binaries, server, backup missing)
  3  usage or scenario error
  4  another drill holds the lock for this scenario)";

/// What runs a command once its options are parsed: the process's exit status.
using command_body = std::function<int()>;

/// One row of the command table.
struct command_entry {
  const char* name;
  const char* summary;
  std::string example;
  std::string exit_help;  ///< what its exit codes mean, when they differ from the drill's
  std::function<command_body(CLI::App&)> declare;  ///< adds the options, returns the body
};

int code(exit_code value) { return static_cast<int>(value); }

void add_pg_bin(CLI::App& app, std::string& pg_bin) {
  app.add_option("--pg-bin", pg_bin, "PostgreSQL bin directory to use instead of searching")->envname("PGDRILL_PG_BIN");
}

pgdrill::binary_search binaries_from(const std::string& pg_bin) {
  auto search = pgdrill::binary_search::from_environment();
  if (!pg_bin.empty()) search.explicit_dir = pg_bin;
  return search;
}

// --- run ---------------------------------------------------------------------------------------

struct run_arguments {
  std::string scenario_file;
  pgdrill::report_paths reports;
  std::string pg_bin, temp_dir;
  bool no_cache = false, quiet = false, restore_as_given_role = false, unsafe_no_sandbox = false;
  std::string log_format = "text";
  std::string provider, target, engine, image;
};

int run_drill_command(const run_arguments& args) {
  pgdrill::scenario plan = pgdrill::load_scenario(args.scenario_file);
  if (!args.reports.history.empty()) plan.history = args.reports.history;  // drift checks read the history written to
  pgdrill::drill_options options;
  options.local.binaries = binaries_from(args.pg_bin);
  if (!args.temp_dir.empty()) options.local.temp_root = args.temp_dir;
  options.local.use_cache = !args.no_cache;
  if (args.unsafe_no_sandbox) options.local.unsafe_no_sandbox = true;
  options.provider = args.provider;
  options.restore_as_given_role = args.restore_as_given_role;
  options.container.engine = args.engine;
  options.container.image_template = args.image;
  if (!args.target.empty()) options.existing = pgdrill::endpoint_from_conninfo(args.target);
  pgdrill::console_reporter console(pgdrill::console_options::detect(args.quiet, args.log_format == "json"));
  options.on_step = [&](const pgdrill::step_result& step) { console.step(step); };
  options.on_progress = [&](std::uint64_t done, std::uint64_t total, double seconds) { console.progress(done, total, seconds); };
  options.on_checksum_progress = [&](std::size_t done, std::size_t total, double seconds) {
    console.checksum_progress(done, total, seconds);
  };

  // Keyed by the canonical path: a symlink to the scenario is the same drill.
  auto lock = pgdrill::drill_lock::acquire(std::filesystem::weakly_canonical(plan.file).string(), options.local.temp_root);
  console.start(plan.name, args.scenario_file);
  pgdrill::drill_result result = pgdrill::run_drill(plan, options);
  auto reports = pgdrill::write_reports(result, pgdrill::report_paths_for(plan, args.reports));
  console.verdict(result, reports.written);
  for (const auto& problem : reports.problems) std::cerr << "pgdrill: " << problem << std::endl;
  // A verdict whose reports are missing cannot be trusted by whatever reads them.
  return code(reports.problems.empty() ? result.verdict() : pgdrill::exit_code_of(pgdrill::outcome::error));
}

command_entry run_entry() {
  return {"run", "Run the drill a scenario file describes", "pgdrill run scenarios/demo.json --junit reports/demo.xml", "",
          [](CLI::App& app) -> command_body {
            auto args = std::make_shared<run_arguments>();
            app.add_option("scenario", args->scenario_file, "Scenario JSON file")->required();
            app.add_option("--junit", args->reports.junit,
                           "JUnit XML report path (default: the scenario's reports.junit, else pgdrill-reports/NAME.junit.xml)");
            app.add_option("--json", args->reports.json, "Also write the JSON report here (default: the scenario's reports.json)");
            app.add_option("--history", args->reports.history,
                           "Append a line to this JSON-lines history, which drift checks compare with (default: reports.history)")
                ->envname("PGDRILL_HISTORY");
            app.add_option("--summary-md", args->reports.summary_md,
                           "Append the verdict in Markdown here, e.g. $GITHUB_STEP_SUMMARY (default: reports.summary_md)");
            app.add_option("--metrics", args->reports.metrics,
                           "Write Prometheus text-format metrics here, for node_exporter's textfile collector (default: "
                           "reports.metrics)");
            app.add_flag("--quiet", args->quiet, "Print only what failed and the verdict");
            std::string providers;
            for (const auto& provider : pgdrill::providers()) providers += std::string("\n  ") + provider.name + ": " + provider.summary;
            app.add_option("--provider", args->provider, "Where the server comes from (default: the scenario's):" + providers)
                ->check(CLI::IsMember(pgdrill::provider_names()));
            app.add_option("--target", args->target,
                           "existing provider: libpq connection string or URL (default: PG* variables, DATABASE_URL)");
            app.add_flag("--restore-as-given-role", args->restore_as_given_role,
                         "existing provider: where the drill's own role cannot be made or log in, restore as the given role "
                         "(never a superuser) instead of exiting 2");
            app.add_flag("--unsafe-no-sandbox", args->unsafe_no_sandbox,
                         "local provider: run the server and its tools without their sandbox, as the host's unprivileged "
                         "account, which the backup's SQL then acts as (also PGDRILL_UNSAFE_NO_SANDBOX=1)");
            app.add_option("--engine", args->engine, "container provider: docker, podman or a path")->envname("PGDRILL_CONTAINER_ENGINE");
            app.add_option("--image", args->image, "container provider: image, {major} replaced (default docker.io/library/postgres:{major})")
                ->envname("PGDRILL_IMAGE");
            app.add_option("--log-format", args->log_format, "text (default) or json: JSON lines with UTC timestamps")
                ->check(CLI::IsMember({"text", "json"}));
            add_pg_bin(app, args->pg_bin);
            app.add_option("--temp-dir", args->temp_dir, "Where throwaway servers live (default: TMPDIR, /tmp)")->envname("PGDRILL_TMPDIR");
            app.add_flag("--no-cache", args->no_cache, "Always initdb; do not use or fill the data-dir cache");
            return [args] { return run_drill_command(*args); };
          }};
}

// --- with-server -------------------------------------------------------------------------------

/// The child's own status as ours: its exit code, or 128 + the signal that ended it (as shells do).
int exit_status_of_child(const pgdrill::exit_status& status) { return status.signal ? 128 + status.signal : status.code; }

// Runs a command against a throwaway local server (PGHOST, PGPORT, PGUSER, PGDATABASE set), then
// tears the server down: how ci/demo builds a source database without a server of its own. With
// a backup, restored first: PGDATABASE is the restored database, and `pgdrill clone` (through the
// socket in PGDRILL_CLONES) hands out copies of it, `ready` of them made ahead.
int with_server_command(const std::vector<std::string>& command_line, const std::string& pg_bin, const std::string& backup_file,
                        std::size_t ready) {
  pgdrill::local_options options;
  options.binaries = binaries_from(pg_bin);
  std::optional<pgdrill::backup_info> backup;
  if (!backup_file.empty()) {
    backup = pgdrill::inspect_file(backup_file);
    options.min_major = pgdrill::read_versions(*backup).needed_major();
  }
  pgdrill::reap_leftovers(options.temp_root);
  auto server = pgdrill::local_server::start(options);
  std::cerr << "pgdrill: " << server->describe() << std::endl;
  std::filesystem::path program = command_line.front();
  if (program.filename() == program) {
    auto found = pgdrill::detail::find_on_path(program.string());
    if (!found) throw pgdrill::usage_error("command not found on PATH: " + program.string());
    program = *found;
  }
  pgdrill::command cmd(program, {command_line.begin() + 1, command_line.end()});
  cmd.inheriting(pgdrill::command::inheritance::all_but_libpq);  // the user's program, pointed at the drill's server only
  auto scratch = pgdrill::scratch_for_tools(server->binaries(), options.temp_root);
  std::optional<pgdrill::clone_pool> clones;
  std::optional<pgdrill::clone_service> service;
  if (backup) {
    auto target = server->restore_target({});
    auto restored = pgdrill::restore_backup(*backup, target, server->binaries(), {}, scratch.path());
    if (!restored.ok) throw pgdrill::corrupt_backup("the backup did not restore: " + restored.summary());
    std::cerr << "pgdrill: restored " << backup->path.filename().string() << " into " << target.dbname << " ("
              << pgdrill::detail::seconds_text(restored.seconds) << ")" << std::endl;
    clones.emplace(*server, target.dbname, pgdrill::clone_options{ready});
    service.emplace(*clones, scratch.path() / "clones.sock");
    target.apply_to(cmd);
    cmd.with_env({{"PGDRILL_CLONES", service->socket().string()}});
  } else {
    server->admin().apply_to(cmd);
  }
  auto child = pgdrill::child::spawn(cmd, {pgdrill::stream_target::inherit(), pgdrill::stream_target::inherit(),
                                           pgdrill::stream_target::inherit()});
  auto status = child.wait();
  child.kill_and_reap();
  service.reset();
  clones.reset();
  server->stop();
  return exit_status_of_child(status);
}

command_entry with_server_entry() {
  return {"with-server", "Run a command against a throwaway local server (a backup restored into it), then remove the server",
          "pgdrill with-server -- sh -c 'psql -f seed.sql && pg_dump -Fc -f db.dump'\n"
          "  pgdrill with-server --restore shop.dump -- sh -c 'PGDATABASE=$(pgdrill clone) ./integration-tests'",
          "The command's exit status becomes pgdrill's (128 + N when signal N ended it); 1 when the backup does not restore;\n"
          "2 when the server could not start. With --restore, PGDATABASE is the restored database and `pgdrill clone`\n"
          "prints the name of a fresh copy of it (dropped with the server, or by `pgdrill clone --drop NAME`);\n"
          "copies cannot be made while a session is connected to the restored database.",
          [](CLI::App& app) -> command_body {
            auto command_line = std::make_shared<std::vector<std::string>>();
            auto pg_bin = std::make_shared<std::string>();
            auto backup = std::make_shared<std::string>();
            auto ready = std::make_shared<std::size_t>(2);
            add_pg_bin(app, *pg_bin);
            app.add_option("--restore", *backup, "Restore this backup first (any format pgdrill restores)");
            app.add_option("--clones-ready", *ready, "Copies of the restored database made ahead for `pgdrill clone` (default 2)")
                ->check(CLI::Range(0, 64));
            app.add_option("command", *command_line, "Command and arguments (after --)")->required();
            return [=] { return with_server_command(*command_line, *pg_bin, *backup, *ready); };
          }};
}

// Asks the enclosing `with-server --restore` for a fresh copy of its restored database.
int clone_command(const std::string& drop) {
  const char* socket = std::getenv("PGDRILL_CLONES");
  if (!socket || !*socket) throw pgdrill::usage_error("PGDRILL_CLONES is not set: run inside `pgdrill with-server --restore BACKUP`");
  auto reply = pgdrill::request_clone(socket, drop.empty() ? "acquire" : "drop " + drop);
  if (drop.empty()) std::printf("%s\n", reply.c_str());
  return code(exit_code::passed);
}

command_entry clone_entry() {
  return {"clone", "Print the name of a fresh copy of the database `with-server --restore` restored",
          "psql -d \"$(pgdrill clone)\" -c 'DELETE FROM orders'",
          "Exit 2 when no copy can be made (no enclosing with-server --restore, a session on the restored database).",
          [](CLI::App& app) -> command_body {
            auto drop = std::make_shared<std::string>();
            app.add_option("--drop", *drop, "Drop this copy now instead (copies are dropped with the server anyway)");
            return [=] { return clone_command(*drop); };
          }};
}

// --- backups, inspect, verify ------------------------------------------------------------------

// Lists the backups in a directory, newest first, with totals.
int backups_command(const std::string& directory, const std::string& pattern) {
  std::vector<std::string> skipped;
  auto found = pgdrill::list_backups(directory, pattern, &skipped);
  for (const auto& note : skipped) std::printf("%s\n", note.c_str());
  std::printf("%-44s %10s %9s  %s\n", "NAME", "SIZE", "AGE", "FORMAT");
  std::uintmax_t total = 0;
  for (const auto& backup : found) {
    total += backup.size;
    std::string format = pgdrill::to_string(backup.format);
    if (backup.compressed != pgdrill::compression::none) format += std::string(" (") + pgdrill::to_string(backup.compressed) + ")";
    std::printf("%-44s %10s %9s  %s\n", backup.path.filename().c_str(), pgdrill::detail::bytes_text(backup.size).c_str(),
                pgdrill::detail::age_text(std::difftime(std::time(nullptr), backup.taken_at())).c_str(), format.c_str());
  }
  if (found.empty()) {
    std::printf("no backups matching '%s' in %s\n", pattern.c_str(), directory.c_str());
    return code(pgdrill::exit_code_of(pgdrill::outcome::error));
  }
  std::printf("%zu backups, %s in total; newest %s (%s), oldest %s (%s); order: %s\n", found.size(),
              pgdrill::detail::bytes_text(static_cast<double>(total)).c_str(), found.front().path.filename().c_str(),
              pgdrill::detail::iso8601_utc(found.front().taken_at()).c_str(), found.back().path.filename().c_str(),
              pgdrill::detail::iso8601_utc(found.back().taken_at()).c_str(), found.front().chosen_because.c_str());
  return code(exit_code::passed);
}

command_entry backups_entry() {
  return {"backups", "List the backups in a directory, newest first, with totals",
          "pgdrill backups /var/backups/pg --pattern 'mydb_*.dump'", "", [](CLI::App& app) -> command_body {
            auto directory = std::make_shared<std::string>();
            auto pattern = std::make_shared<std::string>("*");
            app.add_option("directory", *directory, "Directory holding the backups")->required();
            app.add_option("--pattern", *pattern, "Glob the file names must match (default: *)");
            return [=] { return backups_command(*directory, *pattern); };
          }};
}

// A JSON snapshot's own manifest: schema, tables with their row counts and columns, totals.
int inspect_snapshot(const pgdrill::backup_info& backup) {
  auto manifest = pgdrill::read_snapshot_manifest(backup.path);
  long long sum = 0;
  for (const auto& table : manifest.tables) sum += table.rows.value_or(0);
  std::cout << "manifest:     format version " << (manifest.format_version.empty() ? "(none)" : manifest.format_version)
            << ", created " << (manifest.created_at.empty() ? "(not recorded)" : manifest.created_at) << "\n"
            << "schema:       " << manifest.schema << "\n"
            << "rows:         " << sum << " in " << manifest.tables.size() << " tables"
            << (manifest.total_rows ? "; totalRows " + std::to_string(*manifest.total_rows) : std::string()) << "\n";
  for (const auto& table : manifest.tables)
    std::cout << "  " << manifest.qualified(table.name) << ": " << (table.rows ? std::to_string(*table.rows) : "?") << " rows"
              << (table.columns.empty() ? "" : ", columns " + pgdrill::detail::join(table.columns)) << "\n";
  if (!manifest.excluded.empty()) std::cout << "excluded:     " << pgdrill::detail::join(manifest.excluded) << "\n";
  return code(exit_code::passed);
}

// Shows what a backup is: format, compression, size, dates, versions, table of contents.
int inspect_command(const std::string& file, const std::string& pg_bin) {
  auto backup = pgdrill::inspect_file(file);
  std::cout << "file:         " << backup.path.string() << "\n"
            << "size:         " << backup.size << " bytes (" << pgdrill::detail::bytes_text(static_cast<double>(backup.size))
            << ")\n"
            << "format:       " << pgdrill::to_string(backup.format) << "\n"
            << "compression:  " << pgdrill::to_string(backup.compressed) << "\n"
            << "taken at:     " << pgdrill::detail::iso8601_utc(backup.taken_at())
            << (backup.name_time ? " (from the file name)" : " (modification time)") << "\n";
  if (backup.format == pgdrill::backup_format::unknown) {
    std::cout << "verdict:      not a PostgreSQL backup: it looks like " << backup.looks_like << "\n";
    return code(pgdrill::exit_code_of(pgdrill::outcome::failed));
  }
  if (backup.format == pgdrill::backup_format::json_snapshot) return inspect_snapshot(backup);
  auto contents = pgdrill::read_contents_here(backup, binaries_from(pg_bin));  // versions need no PostgreSQL tool
  std::cout << "dumped from:  PostgreSQL " << (contents.source_version.empty() ? "(unknown)" : contents.source_version) << "\n"
            << "dumped by:    pg_dump " << (contents.dump_version.empty() ? "(unknown)" : contents.dump_version) << "\n";
  if (auto needed = contents.needed_major()) std::cout << "restores on:  PostgreSQL " << *needed << " or newer\n";
  if (!contents.archive_version.empty()) std::cout << "archive:      format " << contents.archive_version << "\n";
  if (!contents.toc_unread.empty()) {
    std::cout << "toc:          not read on this host: " << contents.toc_unread << "\n";
    return code(exit_code::passed);
  }
  if (contents.cluster || contents.creates_databases)
    std::cout << "script:       " << (contents.cluster ? "a whole cluster's dump (pg_dumpall)" : "creates its own database (pg_dump --create)")
              << "\n";
  if (!contents.toc.empty() || backup.format != pgdrill::backup_format::plain) {
    std::cout << "toc:          " << contents.toc.size() << " entries: " << contents.toc_summary() << "\n";
    auto tables = contents.tables();
    std::cout << "tables:       " << (tables.empty() ? "(none)" : pgdrill::detail::join(tables)) << "\n";
  }
  return code(exit_code::passed);
}

command_entry inspect_entry() {
  return {"inspect", "Show what a backup is: format, compression, versions, table of contents (a JSON snapshot: its manifest)",
          "pgdrill inspect /var/backups/pg/mydb_2025-11-05_14-30-00.dump", "", [](CLI::App& app) -> command_body {
            auto file = std::make_shared<std::string>();
            auto pg_bin = std::make_shared<std::string>();
            app.add_option("file", *file, "Backup file (or directory-format archive)")->required();
            add_pg_bin(app, *pg_bin);
            return [=] { return inspect_command(*file, *pg_bin); };
          }};
}

// Reads the backup through into `read`: a JSON snapshot against its own manifest; an archive's
// table of contents and, unless `toc_only`, every data block; plain SQL to its closing line.
void read_through(const pgdrill::backup_info& backup, const std::string& pg_bin, bool toc_only, pgdrill::step_result& read) {
  if (backup.format == pgdrill::backup_format::json_snapshot) {
    long long rows = 0;
    auto problems = pgdrill::snapshot_disagreements(backup.path, rows);
    pgdrill::detail::pass_or_fail(read, problems.empty(), "JSON snapshot read through: " + std::to_string(rows) + " rows, as its manifest says",
                                  "the JSON snapshot disagrees with its own manifest: " + pgdrill::detail::join(problems, "; "));
    return;
  }
  auto contents = pgdrill::read_contents_here(backup, binaries_from(pg_bin));
  bool through = !toc_only && contents.toc_unread.empty();
  if (through) pgdrill::read_every_block(backup, pgdrill::find_binaries(binaries_from(pg_bin)));
  std::string extent = through ? ", every data block read" : toc_only ? " (--toc-only: data blocks not read)" : "";
  read.message = backup.format == pgdrill::backup_format::plain
                     ? "plain SQL from PostgreSQL " + contents.source_version +
                           (through ? ", read to its closing line" : " (--toc-only: not read through)")
                 : contents.toc_unread.empty()
                     ? std::to_string(contents.toc.size()) + " entries read cleanly" + extent + ": " + contents.toc_summary()
                     : "header read (" + contents.origin() + "); table of contents and data not read on this host: " +
                           contents.toc_unread;
}

// The backup read through without a server, as one hygiene result; what stops the read is judged
// by judge_failure (a damaged archive fails it).
pgdrill::step_result read_step(const pgdrill::backup_info& backup, const std::string& pg_bin, bool toc_only) {
  pgdrill::step_result read = pgdrill::make_step("backup read", "hygiene", pgdrill::outcome::failed,
                                                 "not a PostgreSQL backup: it looks like " + backup.looks_like);
  if (backup.format == pgdrill::backup_format::unknown) return read;
  auto started = std::chrono::steady_clock::now();
  read.result = pgdrill::outcome::passed;
  try {
    read_through(backup, pg_bin, toc_only, read);
  } catch (const std::exception& failure) {
    pgdrill::record_failure(read, failure, pgdrill::failure_site::drill, "");
  }
  read.seconds = pgdrill::detail::seconds_since(started);
  return read;
}

struct verify_arguments {
  std::string path, pattern = "*", pg_bin;
  pgdrill::hygiene_spec hygiene;
  bool require_sha256 = false, toc_only = false;
  long long min_size = 1024;
};

// Hygiene checks and the backup read through, without any server: the gate before a backup is
// trusted or uploaded.
int verify_command(verify_arguments args, const CLI::App& app) {
  if (args.require_sha256) args.hygiene.sha256_sidecar = "required";
  args.hygiene.min_size_bytes = static_cast<std::uintmax_t>(std::max(0LL, args.min_size));
  if (!app.count("--max-age-hours")) args.hygiene.max_age_hours.reset();
  if (!app.count("--min-count")) args.hygiene.retention.min_count.reset();
  if (!app.count("--min-oldest-days")) args.hygiene.retention.min_oldest_days.reset();
  if (!app.count("--max-gap-hours")) args.hygiene.retention.max_gap_hours.reset();
  pgdrill::backup_source source;
  bool is_set_directory = pgdrill::is_backup_directory(args.path);
  (is_set_directory ? source.directory : source.file) = args.path;
  source.pattern = args.pattern;
  auto located = pgdrill::locate_backups(source);
  const auto& backup = located.backups.front();
  std::cout << "pgdrill: verifying " << backup.path.string()
            << (is_set_directory ? " (" + backup.chosen_because + ")" : std::string()) << std::endl;
  for (const auto& note : located.skipped) std::cout << note << std::endl;
  auto manifest = pgdrill::manifest_beside(located);
  auto steps = pgdrill::backup_checks(located, args.hygiene, manifest ? &*manifest : nullptr);
  steps.push_back(read_step(backup, args.pg_bin, args.toc_only));
  for (const auto& step : steps) std::cout << pgdrill::console_line(step) << std::endl;
  auto verdict = pgdrill::verdict_of({}, steps);
  std::cout << "verdict: " << pgdrill::describe(verdict) << " (exit " << code(verdict) << ")" << std::endl;
  return code(verdict);
}

command_entry verify_entry() {
  return {"verify",
          "Check a backup without restoring it: size, age, file mode, SHA-256 sidecar, and every byte read\n"
          "through as a restore would (table of contents, each data block decompressed, a plain script's end);\n"
          "for a directory, also retention (count, oldest, gaps)",
          "pgdrill verify nightly.dump --max-age-hours 26 --private --require-sha256\n"
          "  pgdrill verify /var/backups/pg --pattern '*.dump' --min-count 7 --max-gap-hours 26",
          "Exit 0 when every check passed, 1 when one failed, 2 when one could not run.",
          [](CLI::App& app) -> command_body {
            auto args = std::make_shared<verify_arguments>();
            args->hygiene.max_age_hours = 0;  // option targets; reset in verify_command unless given
            args->hygiene.retention = {0, 0.0, 0.0};
            app.add_option("path", args->path, "Backup file, or a directory (its newest backup is verified)")->required();
            app.add_option("--pattern", args->pattern, "Glob for backups in a directory (default: *)");
            app.add_option("--min-size", args->min_size, "Smallest acceptable size in bytes (default: 1024)");
            app.add_option("--max-age-hours", *args->hygiene.max_age_hours, "The backup must be at most this old");
            app.add_flag("--private", args->hygiene.private_mode, "The file must not be readable by group or others");
            app.add_flag("--toc-only", args->toc_only,
                         "Read only the table of contents (quick; proves the data blocks behind it nothing)");
            app.add_flag("--require-sha256", args->require_sha256,
                         "A FILE.sha256 sidecar must exist and match (it is checked whenever it exists)");
            app.add_option("--min-count", *args->hygiene.retention.min_count, "Directory: at least this many backups");
            app.add_option("--min-oldest-days", *args->hygiene.retention.min_oldest_days,
                           "Directory: the oldest backup is at least this old");
            app.add_option("--max-gap-hours", *args->hygiene.retention.max_gap_hours,
                           "Directory: no gap between consecutive backups longer than this");
            add_pg_bin(app, args->pg_bin);
            return [args, &app] { return verify_command(*args, app); };
          }};
}

command_entry validate_entry() {
  return {"validate", "Check a scenario file without running it", "pgdrill validate scenarios/demo.json",
          "Exit 0 when valid, 3 with the JSON path of the first error.", [](CLI::App& app) -> command_body {
            auto file = std::make_shared<std::string>();
            app.add_option("scenario", *file, "Scenario JSON file")->required();
            return [file] {
              auto plan = pgdrill::load_scenario(*file);
              std::cout << *file << ": valid scenario '" << plan.name << "' with " << plan.assertions.size() << " assertions"
                        << std::endl;
              return code(exit_code::passed);
            };
          }};
}

// --- dump, manifest, checksum ------------------------------------------------------------------

struct source_arguments {
  std::string source;  // libpq conninfo or URL; empty: libpq environment / DATABASE_URL
  std::string out, format = "custom", name, pg_bin;
  int parallel = 0;
  std::vector<std::string> extra;  // pg_dump arguments, or table names for checksum
};

void add_source(CLI::App& app, source_arguments& args) {
  app.add_option("--source", args.source, "libpq connection string or URL (default: PG* variables, DATABASE_URL)")
      ->envname("PGDRILL_SOURCE");
  app.add_option("--parallel", args.parallel, "Connections for checksums (default: the number of cores)");
}

// Names each table the manifest could not read; exit 2 when there is one (the manifest still
// records every other table).
int exit_for_unreadable(const pgdrill::manifest& data) {
  auto problems = data.unreadable();
  for (const auto& problem : problems) std::cerr << "pgdrill: could not read " << problem << std::endl;
  return code(pgdrill::exit_code_of(problems.empty() ? pgdrill::outcome::passed : pgdrill::outcome::error));
}

// pg_dump plus a manifest (row counts and checksums) from the same snapshot.
int dump_command(const source_arguments& args) {
  pgdrill::dump_options options;
  options.out_dir = args.out;
  options.format = args.format;
  options.name = args.name;
  options.parallel = args.parallel;
  options.pg_dump_args = args.extra;
  options.binaries = binaries_from(args.pg_bin);
  auto source = pgdrill::endpoint_from_conninfo(args.source);
  std::cout << "pgdrill: dumping " << source.describe() << std::endl;
  auto result = pgdrill::dump_with_manifest(source, options);
  long long rows = 0;
  for (const auto& table : result.data.tables) rows += table.rows;
  std::cout << "backup:   " << result.backup.string() << " (" << pgdrill::detail::bytes_text(static_cast<double>(result.data.backup_size))
            << ")\nmanifest: " << result.manifest_file.string() << " (" << result.data.tables.size() << " tables, " << rows
            << " rows, snapshot " << result.data.snapshot << ")\n"
            << (result.data.backup_sha256.empty() ? "" : "sha256:   " + result.data.backup_sha256 + "\n")
            << "took " << pgdrill::detail::seconds_text(result.seconds) << std::endl;
  return exit_for_unreadable(result.data);
}

command_entry dump_entry() {
  return {"dump", "Back up a database with pg_dump and write a manifest (row counts, checksums) from the same snapshot",
          "PGPASSWORD=... pgdrill dump --source 'host=db user=app dbname=shop' --out /backups -- -Z 9",
          "Writes NAME_YYYYMMDD_HHMMSS.EXT, EXT.manifest.json and EXT.sha256. Passwords belong in PGPASSWORD or\n"
          "~/.pgpass, not in --source: command lines are visible to every user of the machine.",
          [](CLI::App& app) -> command_body {
            auto args = std::make_shared<source_arguments>();
            add_source(app, *args);
            app.add_option("--out", args->out, "Directory for the backup, manifest and checksum")->required();
            app.add_option("--format", args->format, "custom (default), plain, directory or tar");
            app.add_option("--name", args->name, "File name stem (default: the database name)");
            add_pg_bin(app, args->pg_bin);
            app.add_option("pg_dump_args", args->extra, "Further pg_dump options, after --");
            return [args] { return dump_command(*args); };
          }};
}

// A manifest of a live database, without dumping it.
int manifest_command(const source_arguments& args) {
  auto source = pgdrill::endpoint_from_conninfo(args.source);
  pgdrill::snapshot_session session(source);
  auto data = pgdrill::take_manifest(source, session, args.parallel);
  if (args.out.empty()) {
    std::cout << data.to_json().dump(2) << std::endl;
  } else {
    pgdrill::save_manifest(data, args.out);
    std::cout << "manifest: " << args.out << " (" << data.tables.size() << " tables)" << std::endl;
  }
  return exit_for_unreadable(data);
}

command_entry manifest_entry() {
  return {"manifest", "Write the manifest (row counts, checksums) of a live database",
          "pgdrill manifest --source postgresql://app@db/shop --out shop.manifest.json", "", [](CLI::App& app) -> command_body {
            auto args = std::make_shared<source_arguments>();
            add_source(app, *args);
            app.add_option("--out", args->out, "Manifest file (default: print it)");
            return [args] { return manifest_command(*args); };
          }};
}

// Checksums of named tables (all user tables when none is named), one line each.
int checksum_command(const source_arguments& args) {
  auto source = pgdrill::endpoint_from_conninfo(args.source);
  std::vector<std::string> tables = args.extra;
  if (tables.empty()) tables = pgdrill::snapshot_session(source).tables();
  auto batch = pgdrill::checksum_tables(source, tables, {}, args.parallel);
  bool failed = false;
  for (std::size_t index = 0; index < tables.size(); ++index) {
    if (batch.failures[index]) {
      std::cerr << batch.sums[index].table << ": " << batch.failure_text(index) << std::endl;
      failed = true;
    } else {
      std::cout << batch.sums[index].table << " rows=" << batch.sums[index].rows << " checksum=" << batch.sums[index].digest
                << " columns=" << pgdrill::detail::join(batch.sums[index].columns, ",") << std::endl;
    }
  }
  return code(pgdrill::exit_code_of(failed ? pgdrill::outcome::error : pgdrill::outcome::passed));
}

command_entry checksum_entry() {
  return {"checksum", "Print tables' row counts and content checksums",
          "pgdrill checksum --source 'dbname=shop' public.orders public.customers",
          "The checksum (version 2): XXH3-128 of each row's COPY text, the columns in the order printed\n"
          "(by name), summed modulo 2^128 (see README).", [](CLI::App& app) -> command_body {
            auto args = std::make_shared<source_arguments>();
            add_source(app, *args);
            app.add_option("tables", args->extra, "Tables as schema.table (default: every user table)");
            return [args] { return checksum_command(*args); };
          }};
}

struct schema_arguments {
  std::string source, backup, out, pg_bin;
};

// A backup's schema, restored into a throwaway local server as a drill restores it.
pgdrill::backup_schema schema_of_backup(const schema_arguments& args) {
  pgdrill::scenario plan;
  plan.name = "schema";
  plan.backup.file = args.backup;
  plan.hygiene.min_size_bytes = 0;
  pgdrill::drill_options options;
  options.local.binaries = binaries_from(args.pg_bin);
  return pgdrill::schema_of_backup(plan, options);
}

// Why a backup's schema could not be read, and the exit code: 1 when a stage found the backup
// broken, else 2.
int explain_unrestored(const pgdrill::drill_result& result) {
  for (const auto& stage : result.stages)
    if (stage.result != pgdrill::outcome::passed) std::cerr << "pgdrill: " << stage.name << ": " << stage.message << std::endl;
  bool broken = std::any_of(result.stages.begin(), result.stages.end(), [](const auto& stage) { return stage.result == pgdrill::outcome::failed; });
  return code(pgdrill::exit_code_of(broken ? pgdrill::outcome::failed : pgdrill::outcome::error));
}

// The schema reference of a live database or of a backup, to commit beside a scenario
// ("type": "schema").
int schema_command(const schema_arguments& args) {
  if (!args.source.empty() && !args.backup.empty()) throw pgdrill::usage_error("give --source or --backup, not both");
  std::vector<std::string> lines;
  if (args.backup.empty()) {
    pqxx::connection connection(pgdrill::endpoint_from_conninfo(args.source).conninfo());
    lines = pgdrill::read_schema_reference(connection);
  } else {
    auto restored = schema_of_backup(args);
    if (!restored.restored) return explain_unrestored(restored.result);
    lines = restored.lines;
  }
  std::ofstream file;
  if (!args.out.empty()) file.open(args.out, std::ios::binary | std::ios::trunc);
  std::ostream& sink = args.out.empty() ? std::cout : file;
  sink << pgdrill::schema_reference_header << "\n";
  for (const auto& line : lines) sink << line << "\n";
  if (!sink.flush()) throw pgdrill::could_not_verify("cannot write the schema reference to " + (args.out.empty() ? "stdout" : args.out));
  return code(exit_code::passed);
}

command_entry schema_entry() {
  return {"schema", "Print a database's schema reference: one sorted line per table, column, index, constraint, view, ...",
          "pgdrill schema --source 'dbname=shop' --out scenarios/shop.schema.ref",
          "With --backup, the backup is restored into a throwaway local server and its schema read:\n"
          "exit 1 when it does not restore (the backup is broken), 2 when it could not be tried.",
          [](CLI::App& app) -> command_body {
            auto args = std::make_shared<schema_arguments>();
            app.add_option("--source", args->source, "libpq connection string or URL (default: PG* variables, DATABASE_URL)")
                ->envname("PGDRILL_SOURCE");
            app.add_option("--backup", args->backup, "Or: a backup file (any format pgdrill restores)");
            app.add_option("--out", args->out, "File to write (default: print it)");
            add_pg_bin(app, args->pg_bin);
            return [args] { return schema_command(*args); };
          }};
}

// --- bench, gc ---------------------------------------------------------------------------------

// Restores the user's own backup with -j 1..N on fresh throwaway servers, so they can size their
// recovery time objective from their own data.
int bench_command(const std::string& file, int max_jobs, const std::string& pg_bin) {
  auto backup = pgdrill::inspect_file(file);
  pgdrill::local_options options;
  options.binaries = binaries_from(pg_bin);
  options.min_major = pgdrill::read_versions(backup).needed_major();
  if (!pgdrill::traits_of(backup.format).parallel_restore) max_jobs = 1;  // psql and tar archives restore serially
  std::printf("%s: %s, %s\n%6s %12s %14s %12s\n", backup.path.filename().c_str(), pgdrill::to_string(backup.format),
              pgdrill::detail::bytes_text(static_cast<double>(backup.size)).c_str(), "JOBS", "RESTORE", "THROUGHPUT", "VS -j 1");
  double first = 0;
  for (int jobs = 1; jobs <= max_jobs; ++jobs) {
    auto server = pgdrill::local_server::start(options);
    auto scratch = pgdrill::scratch_for_tools(server->binaries(), options.temp_root);
    pgdrill::restore_spec spec;
    spec.jobs = jobs;
    auto restored = pgdrill::restore_backup(backup, server->restore_target({}), server->binaries(), spec, scratch.path());
    if (!restored.ok) throw pgdrill::corrupt_backup("restore with -j " + std::to_string(jobs) + " failed: " + restored.summary());
    if (jobs == 1) first = restored.seconds;
    std::printf("%6d %12s %12s/s %11.2fx\n", jobs, pgdrill::detail::seconds_text(restored.seconds).c_str(),
                pgdrill::detail::bytes_text(static_cast<double>(backup.size) / restored.seconds).c_str(), first / restored.seconds);
  }
  std::printf("the restore time above is the floor of your recovery time: add fetching the backup and switching over\n");
  return code(exit_code::passed);
}

command_entry bench_entry() {
  return {"bench", "Restore your own backup with -j 1..N and print the time each takes",
          "pgdrill bench /var/backups/pg/shop_2026-11-20.dump --max-jobs 4", "", [](CLI::App& app) -> command_body {
            auto file = std::make_shared<std::string>();
            auto pg_bin = std::make_shared<std::string>();
            auto jobs = std::make_shared<int>(static_cast<int>(std::max(1U, std::thread::hardware_concurrency())));
            app.add_option("backup", *file, "Backup file")->required();
            app.add_option("--max-jobs", *jobs, "Highest -j to try (default: the number of cores)");
            add_pg_bin(app, *pg_bin);
            return [=] { return bench_command(*file, *jobs, *pg_bin); };
          }};
}

// Removes what killed drills left: scratch directories (and their servers), containers, and with
// --server the scratch databases and roles on a shared server.
int gc_command(const std::string& temp_dir, const std::string& engine_name, const std::string& shared_server) {
  auto reaped = pgdrill::reap_leftovers(temp_dir.empty() ? pgdrill::default_temp_root() : std::filesystem::path(temp_dir));
  if (!shared_server.empty()) {
    auto on_server = pgdrill::existing_server::reap_leftovers(pgdrill::endpoint_from_conninfo(shared_server));
    reaped.insert(reaped.end(), on_server.begin(), on_server.end());
  }
  try {
    auto engine = pgdrill::container_engine::find(engine_name);
    auto containers = pgdrill::reap_containers(engine);
    reaped.insert(reaped.end(), containers.begin(), containers.end());
  } catch (const pgdrill::could_not_verify&) {
    std::cout << "no container engine: only scratch directories checked" << std::endl;
  }
  for (const auto& item : reaped) std::cout << "removed " << item.what << std::endl;
  std::cout << reaped.size() << " leftovers removed" << std::endl;
  return code(exit_code::passed);
}

command_entry gc_entry() {
  return {"gc", "Remove what killed drills left behind: scratch directories, servers, containers", "pgdrill gc",
          "Every run does this first (an existing-provider drill also on its server); gc does it on demand and lists what it "
          "removed. Only what provably belonged to a drill of this machine that ended is removed.", [](CLI::App& app) -> command_body {
            auto temp_dir = std::make_shared<std::string>();
            auto engine = std::make_shared<std::string>();
            auto shared_server = std::make_shared<std::string>();
            app.add_option("--temp-dir", *temp_dir, "Where throwaway servers live (default: TMPDIR, /tmp)")->envname("PGDRILL_TMPDIR");
            app.add_option("--engine", *engine, "docker, podman or a path")->envname("PGDRILL_CONTAINER_ENGINE");
            app.add_option("--server", *shared_server,
                           "A shared server (libpq connection string or URL) whose scratch databases and roles of killed drills to drop");
            return [=] { return gc_command(*temp_dir, *engine, *shared_server); };
          }};
}

// --- history, gate, report ---------------------------------------------------------------------

// The history as a table, oldest first.
int history_command(const std::string& file, const std::string& scenario) {
  auto entries = pgdrill::read_history(file, scenario);
  std::printf("%-22s %-20s %-13s %10s %11s  %s\n", "WHEN", "SCENARIO", "OUTCOME", "RESTORE", "BACKUP", "ROWS");
  for (const auto& entry : entries) {
    long long rows = 0;
    for (const auto& [table, count] : entry.tables) rows += count;
    std::printf("%-22s %-20s %-13s %10s %11s  %lld\n", entry.at.c_str(), entry.scenario.c_str(), entry.outcome.c_str(),
                entry.restore_seconds ? pgdrill::detail::seconds_text(*entry.restore_seconds).c_str() : "-",
                pgdrill::detail::bytes_text(static_cast<double>(entry.backup_size)).c_str(), rows);
  }
  int passed = static_cast<int>(std::count_if(entries.begin(), entries.end(), [](const auto& e) { return e.passed(); }));
  std::printf("%zu drills, %d passed\n", entries.size(), passed);
  return code(exit_code::passed);
}

command_entry history_entry() {
  return {"history", "Show a drill history file as a table", "pgdrill history drills.jsonl --scenario nightly", "",
          [](CLI::App& app) -> command_body {
            auto file = std::make_shared<std::string>();
            auto scenario = std::make_shared<std::string>();
            app.add_option("file", *file, "History file (JSON lines, written by run --history)")->required();
            app.add_option("--scenario", *scenario, "Only this scenario's drills");
            return [=] { return history_command(*file, *scenario); };
          }};
}

struct gate_arguments {
  std::string file, scenario;
  pgdrill::gate_spec spec;
  double row_drop = 0, restore_seconds = 0, growth = 0;
};

// Exit non-zero when the backups are not proven: a pipeline's question before it deploys.
int gate_command(gate_arguments args, const CLI::App& app) {
  if (app.count("--max-row-drop")) args.spec.max_row_drop = args.row_drop;
  if (app.count("--max-restore-seconds")) args.spec.max_restore_seconds = args.restore_seconds;
  if (app.count("--max-restore-growth")) args.spec.max_restore_growth = args.growth;
  auto steps = pgdrill::evaluate_gate(pgdrill::read_history(args.file, args.scenario), args.spec);
  for (const auto& step : steps) std::cout << pgdrill::console_line(step) << std::endl;
  auto verdict = pgdrill::verdict_of({}, steps);
  std::cout << "gate: " << (verdict == exit_code::passed ? "OPEN" : "CLOSED") << " (exit " << code(verdict) << ")" << std::endl;
  return code(verdict);
}

command_entry gate_entry() {
  return {"gate", "Exit non-zero unless the history proves the backups restorable",
          "pgdrill gate drills.jsonl --scenario nightly --max-age-days 35 --max-row-drop 0.1",
          "Exit 0 (open) when every limit holds, 1 (closed) otherwise, 2 when the history cannot be read.",
          [](CLI::App& app) -> command_body {
            auto args = std::make_shared<gate_arguments>();
            app.add_option("file", args->file, "History file")->required();
            app.add_option("--scenario", args->scenario, "Only this scenario's drills");
            app.add_option("--max-age-days", args->spec.max_age_days, "The last passing drill is at most this old (default: 35)");
            app.add_option("--max-row-drop", args->row_drop,
                           "No table lost more than this fraction of its rows since the drill before");
            app.add_option("--max-restore-seconds", args->restore_seconds, "The last restore took at most this long");
            app.add_option("--max-restore-growth", args->growth, "Nor more than this many times the previous restore's time");
            return [args, &app] { return gate_command(*args, app); };
          }};
}

// A self-contained HTML page from a history (and the latest JSON report, for its checks).
int report_command(const std::string& html, const std::string& history, const std::string& json, const std::string& scenario) {
  nlohmann::json latest;
  if (!json.empty()) {
    std::ifstream in(json);
    if (!in) throw pgdrill::usage_error("cannot read JSON report " + json);
    latest = nlohmann::json::parse(in, nullptr, false);
    if (latest.is_discarded()) throw pgdrill::usage_error(json + ": not valid JSON");
  }
  // The page is about one scenario: the one asked for, else the latest drill's.
  std::string shown = scenario.empty() && latest.is_object() ? latest.value("scenario", "") : scenario;
  std::ofstream out(html);
  out << pgdrill::render_html(pgdrill::read_history(history, shown), latest);
  if (!out.flush()) throw pgdrill::could_not_verify("cannot write " + html);
  std::cout << "report: " << html << std::endl;
  return code(exit_code::passed);
}

command_entry report_entry() {
  return {"report", "Write a self-contained HTML page: the latest drill and trends",
          "pgdrill report --html drills.html --history drills.jsonl --json reports/nightly.json", "",
          [](CLI::App& app) -> command_body {
            auto html = std::make_shared<std::string>(), history = std::make_shared<std::string>();
            auto json = std::make_shared<std::string>(), scenario = std::make_shared<std::string>();
            app.add_option("--html", *html, "HTML file to write")->required();
            app.add_option("--history", *history, "History file")->required();
            app.add_option("--json", *json, "The latest drill's JSON report, for its checks");
            app.add_option("--scenario", *scenario, "Only this scenario's drills (default: the --json report's scenario)");
            return [=] { return report_command(*html, *history, *json, *scenario); };
          }};
}

/// Every command, in the order `pgdrill --help` lists them.
std::vector<command_entry> commands() {
  return {run_entry(),     with_server_entry(), clone_entry(), backups_entry(),  inspect_entry(), verify_entry(),
          validate_entry(), dump_entry(),       manifest_entry(), checksum_entry(), schema_entry(), bench_entry(),
          gc_entry(),      history_entry(),     gate_entry(),     report_entry()};
}

/// Runs a command body; what it throws becomes the exit code its class stands for.
int run_guarded(const command_body& body) {
  try {
    return body();
  } catch (const std::exception& failure) {
    bool ours = dynamic_cast<const pgdrill::error*>(&failure) != nullptr;
    std::cerr << "pgdrill: " << (ours ? "" : "unexpected error: ") << failure.what() << std::endl;
    return code(pgdrill::exit_code_of(failure));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pgdrill: prove PostgreSQL backups can be restored.\n"
               "Restores a backup into a throwaway PostgreSQL, runs the scenario's assertions, reports as JUnit."};
  app.footer(std::string("\nExample:\n  pgdrill run scenarios/demo.json\n\n") + exit_codes_help);
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("pgdrill ") + PGDRILL_VERSION);
  std::vector<std::pair<CLI::App*, command_body>> bodies;
  for (const auto& entry : commands()) {
    auto* sub = app.add_subcommand(entry.name, entry.summary);
    sub->set_version_flag("--version", std::string("pgdrill ") + PGDRILL_VERSION);
    sub->footer("\nExample:\n  " + entry.example + "\n\n" + (entry.exit_help.empty() ? exit_codes_help : entry.exit_help));
    bodies.emplace_back(sub, entry.declare(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& failure) {
    int status = app.exit(failure);
    return status == 0 ? 0 : code(exit_code::usage);
  }
  // A closed stdout (`pgdrill run ... | head -1`) must not kill the drill before its reports are
  // written: writes then fail quietly (children get SIGPIPE back as they start).
  ::signal(SIGPIPE, SIG_IGN);
  pgdrill::signals::install_handlers();
  for (const auto& [sub, body] : bodies)
    if (*sub) return run_guarded(body);
  return code(exit_code::usage);
}
