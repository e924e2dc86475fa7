// The pgdrill runner: parses the command line and calls the library; only main() maps outcomes
// to exit codes.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>
#include <string>

#include <CLI/CLI.hpp>

#include <pgdrill/pgdrill.hpp>

namespace {

constexpr const char* exit_codes_help = R"(Exit codes:
  0  every check ran and passed
  1  the backup failed the drill: restore error, or a check failed
  2  could not verify: the drill itself could not run (binaries, server, backup missing)
  3  usage or scenario error
  4  another drill holds the lock for this scenario)";

struct run_arguments {
  std::string scenario_file;
  std::string junit, json, history;
  std::string pg_bin;
  std::string temp_dir;
  bool no_cache = false;
  bool quiet = false;
  std::string log_format = "text";
  std::string provider, target, engine, image;
};

pgdrill::exit_code run_drill_command(const run_arguments& args) {
  pgdrill::scenario plan = pgdrill::load_scenario(args.scenario_file);
  pgdrill::drill_options options;
  if (!args.pg_bin.empty()) options.local.binaries.explicit_dir = args.pg_bin;
  if (!args.temp_dir.empty()) options.local.temp_root = args.temp_dir;
  options.local.use_cache = !args.no_cache;
  options.provider = args.provider;
  options.container.engine = args.engine;
  options.container.image_template = args.image;
  if (!args.target.empty()) options.existing = pgdrill::endpoint_from_conninfo(args.target);
  pgdrill::console_reporter console(pgdrill::console_options::detect(args.quiet, args.log_format == "json"));
  options.on_step = [&](const pgdrill::step_result& step) { console.step(step); };
  options.on_progress = [&](std::uint64_t done, std::uint64_t total, double seconds) { console.progress(done, total, seconds); };

  auto choose = [](const std::string& given, const std::optional<std::filesystem::path>& from_scenario,
                   const std::filesystem::path& fallback) {
    return !given.empty() ? std::filesystem::path(given) : from_scenario ? *from_scenario : fallback;
  };
  auto junit = choose(args.junit, plan.junit, std::filesystem::path("pgdrill-reports") / (plan.name + ".junit.xml"));
  auto json = choose(args.json, plan.json_report, {});
  auto history = choose(args.history, plan.history, {});

  auto lock = pgdrill::drill_lock::acquire(plan.file.string(), options.local.temp_root);
  console.start(plan.name, args.scenario_file);
  pgdrill::drill_result result = pgdrill::run_drill(plan, options);
  std::vector<std::string> written{junit.string()};
  pgdrill::write_junit(result, junit);
  if (!json.empty()) pgdrill::write_json_report(result, json), written.push_back(json.string());
  if (!history.empty()) pgdrill::append_history(history, pgdrill::history_entry_from(result)), written.push_back(history.string());
  console.verdict(result, written);
  return result.verdict();
}

struct with_server_arguments {
  std::vector<std::string> command_line;
  std::string pg_bin;
};

// Runs a command against a throwaway local server (PGHOST, PGPORT, PGUSER, PGDATABASE set), then
// tears the server down: how ci/demo builds a source database without a server of its own.
int with_server_command(const with_server_arguments& args) {
  pgdrill::local_options options;
  if (!args.pg_bin.empty()) options.binaries.explicit_dir = args.pg_bin;
  pgdrill::reap_leftovers(options.temp_root);
  auto server = pgdrill::local_server::start(options);
  std::cerr << "pgdrill: " << server->describe() << std::endl;
  std::filesystem::path program = args.command_line.front();
  if (program.filename() == program) {
    auto found = pgdrill::detail::find_on_path(program.string());
    if (!found) throw pgdrill::usage_error("command not found on PATH: " + program.string());
    program = *found;
  }
  pgdrill::command cmd(program, {args.command_line.begin() + 1, args.command_line.end()});
  cmd.with_env(server->admin().libpq_env()).without_env(pgdrill::endpoint::foreign_libpq_env());
  auto child = pgdrill::child::spawn(cmd, {pgdrill::stream_target::inherit(), pgdrill::stream_target::inherit(),
                                           pgdrill::stream_target::inherit()});
  auto status = child.wait();
  child.kill_and_reap();
  server->stop();
  return status.signal ? 128 + status.signal : status.code;
}

struct backups_arguments {
  std::string directory;
  std::string pattern = "*";
};

// Lists the backups in a directory, newest first, with totals.
pgdrill::exit_code backups_command(const backups_arguments& args) {
  auto found = pgdrill::list_backups(args.directory, args.pattern);
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
    std::printf("no backups matching '%s' in %s\n", args.pattern.c_str(), args.directory.c_str());
    return pgdrill::exit_code::not_verified;
  }
  std::printf("%zu backups, %s in total; newest %s (%s), oldest %s (%s); order: %s\n", found.size(),
              pgdrill::detail::bytes_text(static_cast<double>(total)).c_str(), found.front().path.filename().c_str(),
              pgdrill::detail::iso8601_utc(found.front().taken_at()).c_str(), found.back().path.filename().c_str(),
              pgdrill::detail::iso8601_utc(found.back().taken_at()).c_str(), found.front().chosen_because.c_str());
  return pgdrill::exit_code::passed;
}

// Shows what a backup is: format, compression, size, dates, versions, table of contents.
pgdrill::exit_code inspect_command(const std::string& file, const std::string& pg_bin) {
  auto backup = pgdrill::inspect_file(file);
  std::cout << "file:         " << backup.path.string() << "\n"
            << "size:         " << backup.size << " bytes (" << pgdrill::detail::bytes_text(static_cast<double>(backup.size))
            << ")\n"
            << "format:       " << pgdrill::to_string(backup.format) << "\n"
            << "compression:  " << pgdrill::to_string(backup.compressed) << "\n"
            << "taken at:     " << pgdrill::detail::iso8601_utc(backup.taken_at())
            << (backup.name_time ? " (from the file name)" : " (modification time)") << "\n";
  if (backup.format == pgdrill::backup_format::unknown) {
    std::cout << "verdict:      not a pg_dump backup\n";
    return pgdrill::exit_code::failed;
  }
  auto search = pgdrill::binary_search::from_environment();
  if (!pg_bin.empty()) search.explicit_dir = pg_bin;
  auto contents = pgdrill::read_contents(backup, pgdrill::find_binaries(search));
  std::cout << "dumped from:  PostgreSQL " << (contents.source_version.empty() ? "(unknown)" : contents.source_version) << "\n"
            << "dumped by:    pg_dump " << (contents.dump_version.empty() ? "(unknown)" : contents.dump_version) << "\n";
  if (backup.format != pgdrill::backup_format::plain) {
    std::cout << "toc:          " << contents.toc.size() << " entries: " << contents.toc_summary() << "\n";
    std::string tables;
    for (const auto& table : contents.tables()) tables += (tables.empty() ? "" : ", ") + table;
    std::cout << "tables:       " << (tables.empty() ? "(none)" : tables) << "\n";
  }
  return pgdrill::exit_code::passed;
}

struct verify_arguments {
  std::string path;
  std::string pattern = "*";
  std::string pg_bin;
  pgdrill::hygiene_spec hygiene;
  bool require_sha256 = false;
};

// Hygiene checks and a table-of-contents read, without any server: a fast gate.
pgdrill::exit_code verify_command(verify_arguments args) {
  if (args.require_sha256) args.hygiene.sha256_sidecar = "required";
  std::vector<pgdrill::step_result> steps;
  auto record = [&](const pgdrill::step_result& step) {
    steps.push_back(step);
    std::cout << pgdrill::console_line(step) << std::endl;
  };
  pgdrill::backup_info backup;
  if (std::filesystem::is_directory(args.path) && !std::filesystem::exists(std::filesystem::path(args.path) / "toc.dat")) {
    auto all = pgdrill::list_backups(args.path, args.pattern);
    backup = pgdrill::latest_of(all, args.path, args.pattern);
    std::cout << "pgdrill: verifying " << backup.path.string() << " (" << backup.chosen_because << ")" << std::endl;
    for (const auto& step : pgdrill::check_retention(all, args.hygiene.retention)) record(step);
  } else {
    backup = pgdrill::inspect_file(args.path);
    std::cout << "pgdrill: verifying " << backup.path.string() << std::endl;
  }
  for (const auto& step : pgdrill::check_backup_file(backup, args.hygiene)) record(step);

  pgdrill::step_result toc{"backup toc", "hygiene", pgdrill::outcome::passed, "", "", "", "", 0};
  auto started = std::chrono::steady_clock::now();
  try {
    if (backup.format == pgdrill::backup_format::unknown) throw pgdrill::corrupt_backup("not a pg_dump backup");
    auto search = pgdrill::binary_search::from_environment();
    if (!args.pg_bin.empty()) search.explicit_dir = args.pg_bin;
    auto contents = pgdrill::read_contents(backup, pgdrill::find_binaries(search));
    toc.message = backup.format == pgdrill::backup_format::plain
                      ? "plain SQL from PostgreSQL " + contents.source_version + " (no table of contents)"
                      : std::to_string(contents.toc.size()) + " entries read cleanly: " + contents.toc_summary();
  } catch (const pgdrill::error& failure) {
    toc.result = failure.code() == pgdrill::exit_code::failed ? pgdrill::outcome::failed : pgdrill::outcome::error;
    toc.message = failure.what();
  }
  toc.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  record(toc);

  bool failed = false, errored = false;
  for (const auto& step : steps) {
    failed |= step.result == pgdrill::outcome::failed;
    errored |= step.result == pgdrill::outcome::error;
  }
  auto code = failed ? pgdrill::exit_code::failed : errored ? pgdrill::exit_code::not_verified : pgdrill::exit_code::passed;
  std::cout << "verdict: " << pgdrill::describe(code) << " (exit " << static_cast<int>(code) << ")" << std::endl;
  return code;
}

struct source_arguments {
  std::string source;  // libpq conninfo or URL; empty: libpq environment / DATABASE_URL
  std::string out;
  std::string format = "custom";
  std::string name;
  std::string pg_bin;
  int parallel = 0;
  std::vector<std::string> extra;  // pg_dump arguments, or table names for checksum
};

// pg_dump plus a manifest (row counts and checksums) from the same snapshot.
pgdrill::exit_code dump_command(const source_arguments& args) {
  pgdrill::dump_options options;
  options.out_dir = args.out;
  options.format = args.format;
  options.name = args.name;
  options.parallel = args.parallel;
  options.pg_dump_args = args.extra;
  if (!args.pg_bin.empty()) options.binaries.explicit_dir = args.pg_bin;
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
  return pgdrill::exit_code::passed;
}

// A manifest of a live database, without dumping it.
pgdrill::exit_code manifest_command(const source_arguments& args) {
  auto source = pgdrill::endpoint_from_conninfo(args.source);
  pgdrill::snapshot_session session(source);
  auto data = pgdrill::take_manifest(source, session, args.parallel);
  if (args.out.empty()) {
    std::cout << data.to_json().dump(2) << std::endl;
  } else {
    pgdrill::save_manifest(data, args.out);
    std::cout << "manifest: " << args.out << " (" << data.tables.size() << " tables)" << std::endl;
  }
  return pgdrill::exit_code::passed;
}

// Checksums of named tables (all user tables when none is named), one line each.
pgdrill::exit_code checksum_command(const source_arguments& args) {
  auto source = pgdrill::endpoint_from_conninfo(args.source);
  std::vector<std::string> tables = args.extra;
  if (tables.empty()) tables = pgdrill::snapshot_session(source).tables();
  auto batch = pgdrill::checksum_tables(source, tables, {}, args.parallel);
  bool failed = false;
  for (std::size_t index = 0; index < tables.size(); ++index) {
    if (!batch.failures[index].empty()) {
      std::cerr << batch.sums[index].table << ": " << batch.failures[index] << std::endl;
      failed = true;
    } else {
      std::cout << batch.sums[index].table << " rows=" << batch.sums[index].rows << " checksum=" << batch.sums[index].digest
                << std::endl;
    }
  }
  return failed ? pgdrill::exit_code::not_verified : pgdrill::exit_code::passed;
}

// Removes what killed drills left: scratch directories (and their servers) and containers.
pgdrill::exit_code gc_command(const std::string& temp_dir, const std::string& engine_name) {
  auto reaped = pgdrill::reap_leftovers(temp_dir.empty() ? pgdrill::default_temp_root() : std::filesystem::path(temp_dir));
  try {
    auto engine = pgdrill::container_engine::find(engine_name);
    auto containers = pgdrill::reap_containers(engine);
    reaped.insert(reaped.end(), containers.begin(), containers.end());
  } catch (const pgdrill::could_not_verify&) {
    std::cout << "no container engine: only scratch directories checked" << std::endl;
  }
  for (const auto& item : reaped) std::cout << "removed " << item.what << std::endl;
  std::cout << reaped.size() << " leftovers removed" << std::endl;
  return pgdrill::exit_code::passed;
}

// Restores the user's own backup with -j 1..N on fresh throwaway servers, so they can size their
// recovery time objective from their own data.
pgdrill::exit_code bench_command(const std::string& file, int max_jobs, const std::string& pg_bin) {
  auto backup = pgdrill::inspect_file(file);
  pgdrill::local_options options;
  if (!pg_bin.empty()) options.binaries.explicit_dir = pg_bin;
  options.min_major = pgdrill::read_contents(backup, pgdrill::find_binaries(options.binaries)).source_major();
  bool parallel = backup.format == pgdrill::backup_format::custom || backup.format == pgdrill::backup_format::directory;
  if (!parallel) max_jobs = 1;  // psql and tar archives restore serially
  std::printf("%s: %s, %s\n%6s %12s %14s %12s\n", backup.path.filename().c_str(), pgdrill::to_string(backup.format),
              pgdrill::detail::bytes_text(static_cast<double>(backup.size)).c_str(), "JOBS", "RESTORE", "THROUGHPUT", "VS -j 1");
  double first = 0;
  for (int jobs = 1; jobs <= max_jobs; ++jobs) {
    auto server = pgdrill::local_server::start(options);
    pgdrill::scratch_dir scratch(options.temp_root);
    pgdrill::restore_spec spec;
    spec.jobs = jobs;
    auto restored = pgdrill::restore_backup(backup, server->restore_target(), server->binaries(), spec, scratch.path());
    if (!restored.ok) throw pgdrill::corrupt_backup("restore with -j " + std::to_string(jobs) + " failed: " + restored.summary());
    if (jobs == 1) first = restored.seconds;
    std::printf("%6d %12s %12s/s %11.2fx\n", jobs, pgdrill::detail::seconds_text(restored.seconds).c_str(),
                pgdrill::detail::bytes_text(static_cast<double>(backup.size) / restored.seconds).c_str(), first / restored.seconds);
  }
  std::printf("the restore time above is the floor of your recovery time: add fetching the backup and switching over\n");
  return pgdrill::exit_code::passed;
}

// The history as a table, oldest first.
pgdrill::exit_code history_command(const std::string& file, const std::string& scenario) {
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
  return pgdrill::exit_code::passed;
}

// Exit non-zero when the backups are not proven: a pipeline's question before it deploys.
pgdrill::exit_code gate_command(const std::string& file, const std::string& scenario, const pgdrill::gate_spec& spec) {
  auto steps = pgdrill::evaluate_gate(pgdrill::read_history(file, scenario), spec);
  bool failed = false;
  for (const auto& step : steps) {
    std::cout << pgdrill::console_line(step) << std::endl;
    failed |= step.result != pgdrill::outcome::passed;
  }
  auto code = failed ? pgdrill::exit_code::failed : pgdrill::exit_code::passed;
  std::cout << "gate: " << (failed ? "CLOSED" : "OPEN") << " (exit " << static_cast<int>(code) << ")" << std::endl;
  return code;
}

// A self-contained HTML page from a history (and the latest JSON report, for its checks).
pgdrill::exit_code report_command(const std::string& html, const std::string& history, const std::string& json,
                                  const std::string& scenario) {
  nlohmann::json latest;
  if (!json.empty()) {
    std::ifstream in(json);
    if (!in) throw pgdrill::usage_error("cannot read JSON report " + json);
    latest = nlohmann::json::parse(in, nullptr, false);
    if (latest.is_discarded()) throw pgdrill::usage_error(json + ": not valid JSON");
  }
  std::ofstream out(html);
  out << pgdrill::render_html(pgdrill::read_history(history, scenario), latest);
  if (!out.flush()) throw pgdrill::could_not_verify("cannot write " + html);
  std::cout << "report: " << html << std::endl;
  return pgdrill::exit_code::passed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pgdrill: prove PostgreSQL backups can be restored.\n"
               "Restores a backup into a throwaway PostgreSQL, runs the scenario's assertions, reports as JUnit."};
  app.footer(std::string("\nExample:\n  pgdrill run scenarios/demo.json\n\n") + exit_codes_help);
  app.require_subcommand(1);

  run_arguments run_args;
  auto* run = app.add_subcommand("run", "Run the drill a scenario file describes");
  run->footer(std::string("\nExample:\n  pgdrill run scenarios/demo.json --junit reports/demo.xml\n\n") + exit_codes_help);
  run->add_option("scenario", run_args.scenario_file, "Scenario JSON file")->required();
  run->add_option("--junit", run_args.junit,
                  "JUnit XML report path (default: the scenario's reports.junit, else pgdrill-reports/NAME.junit.xml)");
  run->add_option("--json", run_args.json, "Also write the JSON report here (default: the scenario's reports.json)");
  run->add_option("--history", run_args.history, "Append a line to this JSON-lines history (default: reports.history)")
      ->envname("PGDRILL_HISTORY");
  run->add_flag("--quiet", run_args.quiet, "Print only the verdict");
  run->add_option("--provider", run_args.provider, "local, container, existing or auto (default: the scenario's)")
      ->check(CLI::IsMember({"local", "container", "existing", "auto"}));
  run->add_option("--target", run_args.target,
                  "existing provider: libpq connection string or URL (default: PG* variables, DATABASE_URL)");
  run->add_option("--engine", run_args.engine, "container provider: docker, podman or a path")->envname("PGDRILL_CONTAINER_ENGINE");
  run->add_option("--image", run_args.image, "container provider: image, {major} replaced (default postgres:{major})")
      ->envname("PGDRILL_IMAGE");
  run->add_option("--log-format", run_args.log_format, "text (default) or json: JSON lines with UTC timestamps")
      ->check(CLI::IsMember({"text", "json"}));
  run->add_option("--pg-bin", run_args.pg_bin, "PostgreSQL bin directory to use instead of searching")
      ->envname("PGDRILL_PG_BIN");
  run->add_option("--temp-dir", run_args.temp_dir, "Where throwaway servers live (default: TMPDIR, /tmp)")
      ->envname("PGDRILL_TMPDIR");
  run->add_flag("--no-cache", run_args.no_cache, "Always initdb; do not use or fill the data-dir cache");

  with_server_arguments with_args;
  auto* with_server = app.add_subcommand(
      "with-server", "Run a command against a throwaway local server, then remove the server");
  with_server->footer("\nExample:\n  pgdrill with-server -- sh -c 'psql -f seed.sql && pg_dump -Fc -f db.dump'\n\n"
                      "The command's exit status becomes pgdrill's; 2 when the server could not start.");
  with_server->add_option("--pg-bin", with_args.pg_bin, "PostgreSQL bin directory to use instead of searching")
      ->envname("PGDRILL_PG_BIN");
  with_server->add_option("command", with_args.command_line, "Command and arguments (after --)")->required();

  backups_arguments backups_args;
  auto* backups = app.add_subcommand("backups", "List the backups in a directory, newest first, with totals");
  backups->footer("\nExample:\n  pgdrill backups /var/backups/pg --pattern 'mydb_*.dump'");
  backups->add_option("directory", backups_args.directory, "Directory holding the backups")->required();
  backups->add_option("--pattern", backups_args.pattern, "Glob the file names must match (default: *)");

  std::string inspect_file, inspect_pg_bin;
  auto* inspect = app.add_subcommand("inspect", "Show what a backup is: format, compression, versions, table of contents");
  inspect->footer("\nExample:\n  pgdrill inspect /var/backups/pg/mydb_2025-11-05_14-30-00.dump");
  inspect->add_option("file", inspect_file, "Backup file (or directory-format archive)")->required();
  inspect->add_option("--pg-bin", inspect_pg_bin, "PostgreSQL bin directory to use instead of searching")
      ->envname("PGDRILL_PG_BIN");

  verify_arguments verify_args;
  double verify_max_age = 0;
  long long verify_min_size = 1024;
  int verify_min_count = 0;
  double verify_min_oldest = 0, verify_max_gap = 0;
  auto* verify = app.add_subcommand(
      "verify", "Check a backup without restoring it: size, age, file mode, SHA-256 sidecar, table of contents;\n"
                "for a directory, also retention (count, oldest, gaps)");
  verify->footer("\nExamples:\n  pgdrill verify nightly.dump --max-age-hours 26 --private --require-sha256\n"
                 "  pgdrill verify /var/backups/pg --pattern '*.dump' --min-count 7 --max-gap-hours 26\n\n"
                 "Exit 0 when every check passed, 1 when one failed, 2 when one could not run.");
  verify->add_option("path", verify_args.path, "Backup file, or a directory (its newest backup is verified)")->required();
  verify->add_option("--pattern", verify_args.pattern, "Glob for backups in a directory (default: *)");
  verify->add_option("--min-size", verify_min_size, "Smallest acceptable size in bytes (default: 1024)");
  verify->add_option("--max-age-hours", verify_max_age, "The backup must be at most this old");
  verify->add_flag("--private", verify_args.hygiene.private_mode, "The file must not be readable by group or others");
  verify->add_flag("--require-sha256", verify_args.require_sha256,
                   "A FILE.sha256 sidecar must exist and match (it is checked whenever it exists)");
  verify->add_option("--min-count", verify_min_count, "Directory: at least this many backups");
  verify->add_option("--min-oldest-days", verify_min_oldest, "Directory: the oldest backup is at least this old");
  verify->add_option("--max-gap-hours", verify_max_gap, "Directory: no gap between consecutive backups longer than this");
  verify->add_option("--pg-bin", verify_args.pg_bin, "PostgreSQL bin directory to use instead of searching")
      ->envname("PGDRILL_PG_BIN");

  std::string validate_file;
  auto* validate = app.add_subcommand("validate", "Check a scenario file without running it");
  validate->footer("\nExample:\n  pgdrill validate scenarios/demo.json\n\nExit 0 when valid, 3 with the JSON path of the first error.");
  validate->add_option("scenario", validate_file, "Scenario JSON file")->required();

  source_arguments dump_args;
  auto* dump = app.add_subcommand(
      "dump", "Back up a database with pg_dump and write a manifest (row counts, checksums) from the same snapshot");
  dump->footer("\nExample:\n  PGPASSWORD=... pgdrill dump --source 'host=db user=app dbname=shop' --out /backups -- -Z 9\n\n"
               "Writes NAME_YYYYMMDD_HHMMSS.EXT, EXT.manifest.json and EXT.sha256. Passwords belong in PGPASSWORD or\n"
               "~/.pgpass, not in --source: command lines are visible to every user of the machine.");
  dump->add_option("--source", dump_args.source, "libpq connection string or URL (default: PG* variables, DATABASE_URL)")
      ->envname("PGDRILL_SOURCE");
  dump->add_option("--out", dump_args.out, "Directory for the backup, manifest and checksum")->required();
  dump->add_option("--format", dump_args.format, "custom (default), plain, directory or tar");
  dump->add_option("--name", dump_args.name, "File name stem (default: the database name)");
  dump->add_option("--parallel", dump_args.parallel, "Connections for checksums (default: the number of cores)");
  dump->add_option("--pg-bin", dump_args.pg_bin, "PostgreSQL bin directory to use instead of searching")->envname("PGDRILL_PG_BIN");
  dump->add_option("pg_dump_args", dump_args.extra, "Further pg_dump options, after --");

  source_arguments manifest_args;
  auto* manifest = app.add_subcommand("manifest", "Write the manifest (row counts, checksums) of a live database");
  manifest->footer("\nExample:\n  pgdrill manifest --source postgresql://app@db/shop --out shop.manifest.json");
  manifest->add_option("--source", manifest_args.source, "libpq connection string or URL (default: PG* variables, DATABASE_URL)")
      ->envname("PGDRILL_SOURCE");
  manifest->add_option("--out", manifest_args.out, "Manifest file (default: print it)");
  manifest->add_option("--parallel", manifest_args.parallel, "Connections for checksums (default: the number of cores)");

  source_arguments checksum_args;
  auto* checksum = app.add_subcommand("checksum", "Print tables' row counts and content checksums");
  checksum->footer("\nExample:\n  pgdrill checksum --source 'dbname=shop' public.orders public.customers\n\n"
                   "The checksum: XXH3-128 of each row's COPY text, summed modulo 2^128 (see README).");
  checksum->add_option("--source", checksum_args.source, "libpq connection string or URL (default: PG* variables, DATABASE_URL)")
      ->envname("PGDRILL_SOURCE");
  checksum->add_option("--parallel", checksum_args.parallel, "Connections (default: the number of cores)");
  checksum->add_option("tables", checksum_args.extra, "Tables as schema.table (default: every user table)");

  std::string bench_file, bench_pg_bin;
  int bench_jobs = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  auto* bench = app.add_subcommand("bench", "Restore your own backup with -j 1..N and print the time each takes");
  bench->footer("\nExample:\n  pgdrill bench /var/backups/pg/shop_2026-11-20.dump --max-jobs 4");
  bench->add_option("backup", bench_file, "Backup file")->required();
  bench->add_option("--max-jobs", bench_jobs, "Highest -j to try (default: the number of cores)");
  bench->add_option("--pg-bin", bench_pg_bin, "PostgreSQL bin directory to use instead of searching")->envname("PGDRILL_PG_BIN");

  std::string gc_temp_dir, gc_engine;
  auto* gc = app.add_subcommand("gc", "Remove what killed drills left behind: scratch directories, servers, containers");
  gc->footer("\nExample:\n  pgdrill gc\n\nEvery run does this first; gc does it on demand and lists what it removed.");
  gc->add_option("--temp-dir", gc_temp_dir, "Where throwaway servers live (default: TMPDIR, /tmp)")->envname("PGDRILL_TMPDIR");
  gc->add_option("--engine", gc_engine, "docker, podman or a path")->envname("PGDRILL_CONTAINER_ENGINE");

  std::string history_file, history_scenario;
  auto* history = app.add_subcommand("history", "Show a drill history file as a table");
  history->footer("\nExample:\n  pgdrill history drills.jsonl --scenario nightly");
  history->add_option("file", history_file, "History file (JSON lines, written by run --history)")->required();
  history->add_option("--scenario", history_scenario, "Only this scenario's drills");

  std::string gate_file, gate_scenario;
  pgdrill::gate_spec gate_spec;
  double gate_row_drop = 0, gate_restore_seconds = 0, gate_growth = 0;
  auto* gate = app.add_subcommand("gate", "Exit non-zero unless the history proves the backups restorable");
  gate->footer("\nExample:\n  pgdrill gate drills.jsonl --scenario nightly --max-age-days 35 --max-row-drop 0.1\n\n"
               "Exit 0 (open) when every limit holds, 1 (closed) otherwise, 2 when the history cannot be read.");
  gate->add_option("file", gate_file, "History file")->required();
  gate->add_option("--scenario", gate_scenario, "Only this scenario's drills");
  gate->add_option("--max-age-days", gate_spec.max_age_days, "The last passing drill is at most this old (default: 35)");
  gate->add_option("--max-row-drop", gate_row_drop, "No table lost more than this fraction of its rows since the drill before");
  gate->add_option("--max-restore-seconds", gate_restore_seconds, "The last restore took at most this long");
  gate->add_option("--max-restore-growth", gate_growth, "Nor more than this many times the previous restore's time");

  std::string report_html, report_history, report_json, report_scenario;
  auto* report = app.add_subcommand("report", "Write a self-contained HTML page: the latest drill and trends");
  report->footer("\nExample:\n  pgdrill report --html drills.html --history drills.jsonl --json reports/nightly.json");
  report->add_option("--html", report_html, "HTML file to write")->required();
  report->add_option("--history", report_history, "History file")->required();
  report->add_option("--json", report_json, "The latest drill's JSON report, for its checks");
  report->add_option("--scenario", report_scenario, "Only this scenario's drills");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& failure) {
    int code = app.exit(failure);
    return code == 0 ? 0 : static_cast<int>(pgdrill::exit_code::usage);
  }

  pgdrill::signals::install_handlers();
  try {
    pgdrill::exit_code code = pgdrill::exit_code::usage;
    if (*run) code = run_drill_command(run_args);
    if (*with_server) return with_server_command(with_args);
    if (*backups) code = backups_command(backups_args);
    if (*inspect) code = inspect_command(inspect_file, inspect_pg_bin);
    if (*verify) {
      verify_args.hygiene.min_size_bytes = static_cast<std::uintmax_t>(std::max(0LL, verify_min_size));
      if (verify->count("--max-age-hours")) verify_args.hygiene.max_age_hours = verify_max_age;
      if (verify->count("--min-count")) verify_args.hygiene.retention.min_count = verify_min_count;
      if (verify->count("--min-oldest-days")) verify_args.hygiene.retention.min_oldest_days = verify_min_oldest;
      if (verify->count("--max-gap-hours")) verify_args.hygiene.retention.max_gap_hours = verify_max_gap;
      code = verify_command(verify_args);
    }
    if (*gc) code = gc_command(gc_temp_dir, gc_engine);
    if (*bench) code = bench_command(bench_file, bench_jobs, bench_pg_bin);
    if (*history) code = history_command(history_file, history_scenario);
    if (*gate) {
      if (gate->count("--max-row-drop")) gate_spec.max_row_drop = gate_row_drop;
      if (gate->count("--max-restore-seconds")) gate_spec.max_restore_seconds = gate_restore_seconds;
      if (gate->count("--max-restore-growth")) gate_spec.max_restore_growth = gate_growth;
      code = gate_command(gate_file, gate_scenario, gate_spec);
    }
    if (*report) code = report_command(report_html, report_history, report_json, report_scenario);
    if (*dump) code = dump_command(dump_args);
    if (*manifest) code = manifest_command(manifest_args);
    if (*checksum) code = checksum_command(checksum_args);
    if (*validate) {
      auto plan = pgdrill::load_scenario(validate_file);
      std::cout << validate_file << ": valid scenario '" << plan.name << "' with " << plan.assertions.size()
                << " assertions" << std::endl;
      code = pgdrill::exit_code::passed;
    }
    return static_cast<int>(code);
  } catch (const pgdrill::error& failure) {
    std::cerr << "pgdrill: " << failure.what() << std::endl;
    return static_cast<int>(failure.code());
  } catch (const std::exception& failure) {
    std::cerr << "pgdrill: unexpected error: " << failure.what() << std::endl;
    return static_cast<int>(pgdrill::exit_code::not_verified);
  }
}
