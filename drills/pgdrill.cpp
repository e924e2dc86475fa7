// The pgdrill runner: parses the command line and calls the library; only main() maps outcomes
// to exit codes.
#include <iostream>
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
  std::string junit;
  std::string pg_bin;
  std::string temp_dir;
  bool no_cache = false;
};

pgdrill::exit_code run_drill_command(const run_arguments& args) {
  pgdrill::scenario plan = pgdrill::load_scenario(args.scenario_file);
  pgdrill::drill_options options;
  if (!args.pg_bin.empty()) options.local.binaries.explicit_dir = args.pg_bin;
  if (!args.temp_dir.empty()) options.local.temp_root = args.temp_dir;
  options.local.use_cache = !args.no_cache;
  options.on_step = [](const pgdrill::step_result& step) { std::cout << pgdrill::console_line(step) << std::endl; };

  std::filesystem::path junit = !args.junit.empty() ? std::filesystem::path(args.junit)
                                : plan.junit         ? *plan.junit
                                                     : std::filesystem::path("pgdrill-reports") / (plan.name + ".junit.xml");
  std::cout << "pgdrill: drill '" << plan.name << "' (" << args.scenario_file << ")" << std::endl;
  pgdrill::drill_result result = pgdrill::run_drill(plan, options);
  pgdrill::write_junit(result, junit);
  pgdrill::print_verdict(std::cout, result);
  std::cout << "JUnit report: " << junit.string() << std::endl;
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
    return static_cast<int>(code);
  } catch (const pgdrill::error& failure) {
    std::cerr << "pgdrill: " << failure.what() << std::endl;
    return static_cast<int>(failure.code());
  } catch (const std::exception& failure) {
    std::cerr << "pgdrill: unexpected error: " << failure.what() << std::endl;
    return static_cast<int>(pgdrill::exit_code::not_verified);
  }
}
