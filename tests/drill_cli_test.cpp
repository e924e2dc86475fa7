// The runner end to end: real dumps of a real source database, restored by `pgdrill run`.
#include <csignal>
#include <regex>
#include <thread>

#include "support.hpp"

using namespace pgdrill;
using pgdrill::testkit::run_cli;
using pgdrill::testkit::write_file;

namespace {

class drill_cli : public ::testing::Test {
 protected:
  // One source database and its dumps for the whole suite; each test writes its own scenario.
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    auto source = testkit::start_demo_source();
    backups_ = workspace_->path() / "backups";
    std::filesystem::create_directories(backups_);
    testkit::pg_dump(*source, {"-Fc", "-f", (backups_ / "demo_20260101_000000.dump").string()});
    testkit::pg_dump(*source, {"-Fp", "-f", (backups_ / "demo_20260101_000000.sql").string()});
    testkit::pg_dump(*source, {"-Fd", "-f", (workspace_->path() / "demo.dir").string()});
  }
  static void TearDownTestSuite() {
    delete workspace_;
    workspace_ = nullptr;
  }

  // Writes a scenario next to the test's files and returns its path.
  std::filesystem::path scenario(const std::string& body) {
    auto file = dir_.path() / "scenario.json";
    write_file(file, body);
    return file;
  }
  std::string backup_key(const std::string& name) { return R"("backup": {"file": ")" + (backups_ / name).string() + R"("})"; }

  // Reads a JUnit file back with python3-junitparser, a real JUnit consumer: one line per case.
  std::string junit_summary(const std::filesystem::path& file) {
    auto result = run(command("/usr/bin/python3", {std::string(PGDRILL_SOURCE_DIR) + "/tests/junit_summary.py", file.string()}));
    EXPECT_TRUE(result.ok()) << result.err_tail;
    return result.out;
  }

  static inline scratch_dir* workspace_ = nullptr;
  static inline std::filesystem::path backups_;
  scratch_dir dir_;
};

}  // namespace

TEST_F(drill_cli, passing_drill_exits_0_with_a_junit_report) {
  auto file = scenario(R"({"name": "pass", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "public.customers", "equals": 1000},
                   {"type": "row_count", "table": "orders", "min": 5000}]})");
  auto junit = dir_.path() / "report.xml";
  auto result = run_cli({"run", file.string(), "--junit", junit.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("PASS   restore"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("verdict: PASSED (exit 0)"), std::string::npos) << result.output;
  EXPECT_EQ(junit_summary(junit),
            "suite pass tests=10 failures=0 errors=0 skipped=0\n"
            "case stage/locate backup passed\n"
            "case stage/inspect backup passed\n"
            "case stage/provision server passed\n"
            "case stage/restore passed\n"
            "case stage/teardown passed\n"
            "case check/backup size passed\n"
            "case check/row_count public.customers passed\n"
            "case check/row_count public.orders passed\n"
            "case check/not_empty passed\n"
            "case check/roles passed\n");
}

TEST_F(drill_cli, newest_backup_in_a_directory_is_chosen_and_plain_sql_restores) {
  auto file = scenario(R"({"name": "dir", "backup": {"directory": ")" + backups_.string() + R"(", "pattern": "*.sql"},
    "assertions": [{"type": "row_count", "table": "customers", "equals": 1000}]})");
  auto result = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("demo_20260101_000000.sql (plain"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("psql restored"), std::string::npos) << result.output;
}

TEST_F(drill_cli, wrong_row_count_fails_the_drill_with_exit_1) {
  auto file = scenario(R"({"name": "wrong", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "public.customers", "equals": 999}]})");
  auto junit = dir_.path() / "report.xml";
  auto result = run_cli({"run", file.string(), "--junit", junit.string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("public.customers: expected = 999 rows, got 1000"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("verdict: FAILED (exit 1)"), std::string::npos) << result.output;
  EXPECT_NE(junit_summary(junit).find("case check/row_count public.customers failure: public.customers: expected = 999 rows, got 1000"),
            std::string::npos);
}

TEST_F(drill_cli, missing_table_fails_naming_it) {
  auto file = scenario(R"({"name": "missing", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "public.invoices", "min": 1}]})");
  auto result = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("table missing from the restored database"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("invoices"), std::string::npos) << result.output;
}

TEST_F(drill_cli, unknown_scenario_key_exits_3_naming_it) {
  auto file = scenario(R"({"name": "typo", )" + backup_key("demo_20260101_000000.dump") + R"(, "asertions": []})");
  auto result = run_cli({"run", file.string()});
  EXPECT_EQ(result.exit_code, 3) << result.output;
  EXPECT_NE(result.output.find("at /asertions: unknown key 'asertions'"), std::string::npos) << result.output;
}

TEST_F(drill_cli, no_postgresql_binaries_exits_2_saying_where_it_looked) {
  auto file = scenario(R"({"name": "nobin", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "customers", "equals": 1000}]})");
  auto junit = dir_.path() / "report.xml";
  auto result = run_cli({"run", file.string(), "--pg-bin", "/nonexistent/pgsql/bin", "--junit", junit.string()});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("no PostgreSQL binaries found"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("/nonexistent/pgsql/bin"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("verdict: NOT VERIFIED (exit 2)"), std::string::npos) << result.output;
  auto summary = junit_summary(junit);
  // The backup's versions come from its bytes; the server is what cannot start.
  EXPECT_NE(summary.find("case stage/inspect backup passed"), std::string::npos) << summary;
  EXPECT_NE(summary.find("case stage/provision server error: the backup was dumped from PostgreSQL"), std::string::npos) << summary;
  EXPECT_NE(summary.find("case check/row_count public.customers skipped: not reached: provision server could not run"),
            std::string::npos)
      << summary;
}

TEST_F(drill_cli, missing_backup_exits_2) {
  auto file = scenario(R"({"name": "nobackup", "backup": {"directory": ")" + (dir_.path() / "empty").string() + R"("},
    "assertions": [{"type": "row_count", "table": "customers", "equals": 1000}]})");
  auto result = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("does not exist or is not a directory"), std::string::npos) << result.output;
}

TEST_F(drill_cli, plain_sql_with_an_error_in_the_middle_fails) {
  // psql carries on after an error by default; the drill must not.
  auto broken = dir_.path() / "broken.sql";
  write_file(broken, "CREATE TABLE before_error (id int);\nINSERT INTO no_such_table VALUES (1);\n"
                     "CREATE TABLE after_error (id int);\n");
  auto file = scenario(R"({"name": "broken", "backup": {"file": ")" + broken.string() + R"("}, "hygiene": {"min_size_bytes": 0},
    "assertions": [{"type": "row_count", "table": "before_error", "equals": 0}]})");
  auto result = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("FAIL   restore"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("SQL error"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("no_such_table"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("SKIP   row_count public.before_error"), std::string::npos) << result.output;
}

TEST_F(drill_cli, not_a_backup_fails_the_drill) {
  auto junk = dir_.path() / "junk.dump";
  write_file(junk, std::string("\x00\x01\x02\x03", 4));
  auto file = scenario(R"({"name": "junk", "backup": {"file": ")" + junk.string() + R"("},
    "assertions": [{"type": "row_count", "table": "customers", "equals": 1000}]})");
  auto result = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("is not a PostgreSQL backup: it looks like binary data"), std::string::npos) << result.output;
}

TEST_F(drill_cli, help_lists_commands_and_exit_codes) {
  auto result = run_cli({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* text : {"run", "with-server", "Exit codes:", "3  usage or scenario error"})
    EXPECT_NE(result.output.find(text), std::string::npos) << text << " in:\n" << result.output;
  auto run_help = run_cli({"run", "--help"});
  for (const char* text : {"--junit", "--pg-bin", "--temp-dir", "--no-cache", "PGDRILL_PG_BIN"})
    EXPECT_NE(run_help.output.find(text), std::string::npos) << text << " in:\n" << run_help.output;
  EXPECT_EQ(run_cli({"run"}).exit_code, 3) << "missing scenario is a usage error";
  EXPECT_EQ(run_cli({"frobnicate"}).exit_code, 3);
}

TEST_F(drill_cli, with_server_runs_a_command_against_a_throwaway_server) {
  auto result = run_cli({"with-server", "--", "psql", "-XAtc", "SELECT current_database()"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("postgres\n"), std::string::npos) << result.output;
  EXPECT_EQ(run_cli({"with-server", "--", "/bin/sh", "-c", "exit 7"}).exit_code, 7);
}

// with-server --restore hands out copies of the restored database: each its own (a write in one
// is invisible in the other and in the restored one), dropped on request and with the server.
TEST_F(drill_cli, with_server_restores_a_backup_and_hands_out_isolated_copies) {
  const std::string runner = PGDRILL_RUNNER_PATH;
  auto script = "a=$(" + runner + " clone) && b=$(" + runner + " clone) && test \"$a\" != \"$b\" && "
                "psql -XAtq -d \"$a\" -c 'TRUNCATE orders' && "
                "echo \"a=$(psql -XAt -d \"$a\" -c 'SELECT count(*) FROM orders')\" && "
                "echo \"b=$(psql -XAt -d \"$b\" -c 'SELECT count(*) FROM orders')\" && "
                "echo \"restored=$(psql -XAt -c 'SELECT count(*) FROM orders')\" && " +
                runner + " clone --drop \"$a\" && "
                "echo \"left=$(psql -XAt -d postgres -c \"SELECT count(*) FROM pg_database WHERE datname = '$a'\")\"";
  auto result = run_cli({"with-server", "--restore", (backups_ / "demo_20260101_000000.dump").string(), "--", "/bin/sh", "-c", script});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  for (const char* line : {"a=0\n", "b=5000\n", "restored=5000\n", "left=0\n"})
    EXPECT_NE(result.output.find(line), std::string::npos) << line << " in:\n" << result.output;

  auto outside = run_cli({"clone"});
  EXPECT_EQ(outside.exit_code, 3) << outside.output;
  EXPECT_NE(outside.output.find("with-server --restore"), std::string::npos) << outside.output;
  auto junk = dir_.path() / "junk.sql";
  write_file(junk, "CREATE TABLE t (id int);\nINSERT INTO nowhere VALUES (1);\n");
  auto broken = run_cli({"with-server", "--restore", junk.string(), "--", "/bin/true"});
  EXPECT_EQ(broken.exit_code, 1) << "a backup that does not restore is exit 1:\n" << broken.output;
}

TEST_F(drill_cli, backups_lists_newest_first_with_totals) {
  auto result = run_cli({"backups", backups_.string(), "--pattern", "demo_*"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("NAME"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("demo_20260101_000000.dump"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("custom"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("2 backups"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("newest demo_20260101_000000"), std::string::npos) << result.output;
  EXPECT_EQ(run_cli({"backups", backups_.string(), "--pattern", "nothing*"}).exit_code, 2);
}

TEST_F(drill_cli, inspect_shows_format_versions_and_tables) {
  auto result = run_cli({"inspect", (backups_ / "demo_20260101_000000.dump").string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  auto version = find_binaries(binary_search::from_environment()).version;
  for (const std::string& text : std::vector<std::string>{"format:       custom", "compression:  none", "dumped from:  PostgreSQL " + version,
                                 "dumped by:    pg_dump " + version, "2 TABLE", "tables:       public.customers, public.orders"})
    EXPECT_NE(result.output.find(text), std::string::npos) << text << " in:\n" << result.output;
  auto plain = run_cli({"inspect", (backups_ / "demo_20260101_000000.sql").string()});
  EXPECT_NE(plain.output.find("format:       plain"), std::string::npos) << plain.output;
}

TEST_F(drill_cli, verify_passes_a_good_backup_and_fails_a_bad_one) {
  auto good = run_cli({"verify", (backups_ / "demo_20260101_000000.dump").string()});
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("PASS   backup read"), std::string::npos) << good.output;

  auto copy = dir_.path() / "copy_2026-01-01.dump";  // old by its name
  std::filesystem::copy_file(backups_ / "demo_20260101_000000.dump", copy);
  std::filesystem::permissions(copy, std::filesystem::perms::owner_read | std::filesystem::perms::others_read);
  auto exposed = run_cli({"verify", copy.string(), "--private", "--require-sha256", "--max-age-hours", "1"});
  EXPECT_EQ(exposed.exit_code, 1) << exposed.output;
  for (const char* text : {"FAIL   backup file mode", "lets group or others read", "FAIL   backup sha256",
                           "no SHA-256 sidecar", "FAIL   backup age", "verdict: FAILED (exit 1)"})
    EXPECT_NE(exposed.output.find(text), std::string::npos) << text << " in:\n" << exposed.output;

  write_file(dir_.path() / "empty.dump", "");
  auto empty = run_cli({"verify", (dir_.path() / "empty.dump").string()});
  EXPECT_EQ(empty.exit_code, 1) << empty.output;
  EXPECT_NE(empty.output.find("under the minimum of 1024"), std::string::npos) << empty.output;
}

TEST_F(drill_cli, verify_a_directory_checks_retention) {
  auto dir = dir_.path() / "nightly";
  for (const char* day : {"01", "02", "03", "07"})
    std::filesystem::copy_file(backups_ / "demo_20260101_000000.dump", dir_.path() / ("nightly_2026-01-" + std::string(day) + ".dump"));
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path()))
    if (entry.path().filename().string().rfind("nightly_", 0) == 0) std::filesystem::rename(entry.path(), dir / entry.path().filename());
  auto gap = run_cli({"verify", dir.string(), "--min-count", "4", "--max-gap-hours", "26", "--min-oldest-days", "30"});
  EXPECT_EQ(gap.exit_code, 1) << gap.output;
  EXPECT_NE(gap.output.find("PASS   retention count"), std::string::npos) << gap.output;
  EXPECT_NE(gap.output.find("a gap of 96.0h before the backup of 2026-01-07T00:00:00Z"), std::string::npos) << gap.output;
  EXPECT_NE(gap.output.find("PASS   retention oldest"), std::string::npos) << gap.output;
  auto count = run_cli({"verify", dir.string(), "--min-count", "5"});
  EXPECT_EQ(count.exit_code, 1) << count.output;
  EXPECT_NE(count.output.find("FAIL   retention count"), std::string::npos) << count.output;
}

TEST_F(drill_cli, validate_checks_a_scenario_without_running_it) {
  auto good = run_cli({"validate", std::string(PGDRILL_SOURCE_DIR) + "/scenarios/demo.json"});
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("valid scenario 'demo'"), std::string::npos) << good.output;
  auto bad = scenario(R"({"name": "x", "backup": {"file": "f"}, "assertions": [{"type": "row_count", "table": 5, "equals": 1}]})");
  auto result = run_cli({"validate", bad.string()});
  EXPECT_EQ(result.exit_code, 3) << result.output;
  EXPECT_NE(result.output.find("at /assertions/0/table: expected a string, got an integer"), std::string::npos) << result.output;
}

TEST_F(drill_cli, a_closed_stdout_still_gets_its_junit_report_written) {
  auto file = scenario(R"({"name": "piped", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "public.customers", "equals": 1000}]})");
  auto junit = dir_.path() / "piped.xml";
  // `| head -1` closes the pipe after the first line; the drill must still finish and report.
  auto result = run(command("/bin/bash", {"-c", std::string("set -o pipefail; '") + PGDRILL_RUNNER_PATH + "' run '" + file.string() +
                                                    "' --junit '" + junit.string() + "' | head -1"}),
                    run_options::within(std::chrono::minutes(5)));
  EXPECT_TRUE(result.status.signal == 0) << result.describe();
  ASSERT_TRUE(std::filesystem::exists(junit)) << result.out << result.err_tail;
  EXPECT_NE(testkit::read_file(junit).find("failures=\"0\""), std::string::npos);
  EXPECT_NE(result.out.find("pgdrill: drill 'piped'"), std::string::npos) << result.out;
}

TEST_F(drill_cli, in_a_terminal_with_processes_coming_and_going_the_verdict_stands) {
  // The progress bar reads /proc while pg_restore works; processes that exit mid-read (here a
  // loop of short-lived ones) must never turn a good drill into "could not verify".
  auto file = scenario(R"({"name": "tty", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "public.customers", "equals": 1000}]})");
  auto churn = child::spawn(command("/bin/sh", {"-c", "while :; do /bin/true & /bin/true; done"}), {});
  for (int attempt = 0; attempt < 6; ++attempt) {
    auto typescript = dir_.path() / ("typescript-" + std::to_string(attempt));
    command drill("/usr/bin/script", {"-q", "-e", "-c",
                                      std::string("'") + PGDRILL_RUNNER_PATH + "' run '" + file.string() + "' --junit '" +
                                          (dir_.path() / "tty.xml").string() + "'",
                                      typescript.string()});
    drill.with_env({{"TERM", attempt % 2 ? "dumb" : "xterm"}});
    auto result = run(drill, run_options::within(std::chrono::minutes(5)));
    auto seen = testkit::read_file(typescript);
    EXPECT_EQ(result.status.code, 0) << seen;
    if (attempt % 2) {
      EXPECT_EQ(seen.find('\033'), std::string::npos) << "TERM=dumb gets no escape codes: " << seen;
    }
  }
  churn.kill_and_reap();
}

TEST_F(drill_cli, quiet_still_names_what_failed_and_version_answers_everywhere) {
  auto file = scenario(R"({"name": "quiet", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "public.customers", "equals": 999}]})");
  auto result = run_cli({"run", file.string(), "--junit", (dir_.path() / "q.xml").string(), "--quiet"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("FAIL   row_count public.customers"), std::string::npos) << result.output;
  EXPECT_LT(result.output.find("FAIL   row_count"), result.output.find("verdict: FAILED")) << result.output;
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--version"}, {"run", "--version"}, {"dump", "--version"}}) {
    auto version = run_cli(args);
    EXPECT_EQ(version.exit_code, 0) << version.output;
    EXPECT_EQ(version.output.rfind("pgdrill ", 0), 0U) << version.output;
  }
}

TEST_F(drill_cli, an_unwritable_junit_path_still_prints_the_verdict_and_writes_the_other_reports) {
  auto file = scenario(R"({"name": "unwritable", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "public.customers", "equals": 1000}]})");
  auto json = dir_.path() / "report.json";
  auto result = run_cli({"run", file.string(), "--junit", "/dev/null/report.xml", "--json", json.string()});
  EXPECT_EQ(result.exit_code, 2) << "a verdict whose report is missing cannot be trusted: " << result.output;
  EXPECT_NE(result.output.find("verdict: PASSED (exit 0)"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("cannot write JUnit report /dev/null/report.xml"), std::string::npos) << result.output;
  EXPECT_TRUE(std::filesystem::exists(json));
}

TEST_F(drill_cli, dump_connects_as_the_user_said_with_a_passfile_or_a_service) {
  auto source = testkit::start_demo_source();
  const std::string password = "sekret-in-passfile-only";
  testkit::psql(*source, "ALTER ROLE postgres PASSWORD '" + password + "'");
  auto hba = testkit::psql(*source, "SHOW hba_file");
  hba.erase(hba.find_last_not_of(" \n") + 1);
  write_file(hba, "local all all scram-sha-256\n");
  testkit::psql(*source, "SELECT pg_reload_conf()");  // from now on only the password lets anyone in
  auto passfile = dir_.path() / "pgpass";
  write_file(passfile, "*:*:*:postgres:" + password + "\n");
  std::filesystem::permissions(passfile, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto services = dir_.path() / "pg_service.conf";
  write_file(services, "[shop]\nhost=" + source->admin().host + "\nport=5432\nuser=postgres\ndbname=postgres\n");
  const std::string conninfo = "host=" + source->admin().host + " port=5432 user=postgres dbname=postgres";

  auto without = run_cli({"dump", "--source", conninfo, "--out", (dir_.path() / "none").string()});
  EXPECT_EQ(without.exit_code, 2) << "no password, no dump: " << without.output;
  auto with_passfile = run_cli({"dump", "--source", conninfo, "--out", (dir_.path() / "passfile").string()},
                               {{"PGPASSFILE", passfile.string()}});
  EXPECT_EQ(with_passfile.exit_code, 0) << with_passfile.output;
  auto with_service = run_cli({"dump", "--source", "service=shop", "--out", (dir_.path() / "service").string()},
                              {{"PGPASSFILE", passfile.string()}, {"PGSERVICEFILE", services.string()}});
  EXPECT_EQ(with_service.exit_code, 0) << with_service.output;
  for (const auto* output : {&without.output, &with_passfile.output, &with_service.output})
    EXPECT_EQ(output->find(password), std::string::npos) << *output;
  std::size_t dumps = 0;
  for (const auto& sub : {"passfile", "service"})
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / sub))
      dumps += entry.path().extension() == ".dump";
  EXPECT_EQ(dumps, 2U);
}

// The existing provider's DATABASE_URL with a malformed escape in its password: the drill cannot
// judge (exit 2) and no output or report holds the password.
TEST_F(drill_cli, a_malformed_database_url_leaks_its_password_nowhere) {
  auto file = scenario(R"({"name": "leak", "provider": "existing", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "customers", "equals": 1000}]})");
  auto junit = dir_.path() / "r.xml", json = dir_.path() / "r.json";
  auto result = run_cli({"run", file.string(), "--junit", junit.string(), "--json", json.string()},
                        {{"DATABASE_URL", "postgresql://app:CanaryPw%zz9@127.0.0.1:1/shop"}});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("invalid connection string"), std::string::npos) << result.output;
  for (const auto& text : {result.output, testkit::read_file(junit), testkit::read_file(json)}) {
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.find("CanaryPw"), std::string::npos) << text;
  }
}

// A password typed without its keyword (`--target "host=... CanaryPw9"`): libpq's parse error
// quotes the word, the drill's message does not.
TEST_F(drill_cli, a_target_with_a_keywordless_password_is_not_echoed) {
  auto file = scenario(R"({"name": "typo", "provider": "existing", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "row_count", "table": "customers", "equals": 1000}]})");
  auto result = run_cli({"run", file.string(), "--target", "host=127.0.0.1 port=1 passwordCanaryPw9"});
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("invalid connection string"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("CanaryPw9"), std::string::npos) << result.output;
}

// A plain "backup" is a script psql runs: `\! touch` ran a shell as the runner's user, and SQL's
// COPY ... PROGRAM read the runner's PGPASSWORD from the throwaway server's environment. Now psql
// runs it restricted (the drill fails, naming the refusal) and no child sees the user's secrets.
TEST_F(drill_cli, a_plain_script_runs_no_meta_command_and_its_server_sees_no_secret) {
  const std::vector<std::pair<std::string, std::string>> secrets{{"PGPASSWORD", "CanaryPw"},
                                                                 {"DATABASE_URL", "postgresql://app:CanaryPw@db/shop"}};
  const std::string padding = "-- " + std::string(1100, '.') + "\n";  // past the 1 KiB size check
  auto canary = dir_.path() / "CANARY";
  write_file(dir_.path() / "shell.sql", padding + "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n\\! touch " + canary.string() +
                                            "\nSELECT 1 \\g | touch " + canary.string() + "\n");
  auto shell = run_cli({"run", scenario(R"({"name": "shell", "backup": {"file": ")" + (dir_.path() / "shell.sql").string() +
                                        R"("}, "assertions": [{"type": "not_empty"}]})").string(),
                        "--junit", (dir_.path() / "r.xml").string()},
                       secrets);
  EXPECT_EQ(shell.exit_code, 1) << shell.output;
  EXPECT_NE(shell.output.find("psql meta-command refused"), std::string::npos) << shell.output;
  EXPECT_FALSE(std::filesystem::exists(canary));
  write_file(dir_.path() / "program.sql", padding + "CREATE TABLE env (line text);\nCOPY env FROM PROGRAM 'env';\n");
  auto program = run_cli({"run", scenario(R"({"name": "program", "backup": {"file": ")" + (dir_.path() / "program.sql").string() + R"("},
    "assertions": [{"type": "sql", "name": "the server's environment was read", "query": "SELECT count(*) > 0 FROM env", "expected": true},
                   {"type": "sql", "name": "and holds no secret", "query": "SELECT count(*) FROM env WHERE line LIKE '%Canary%'", "expected": 0}]})").string(),
                          "--junit", (dir_.path() / "r.xml").string()},
                         secrets);
  EXPECT_EQ(program.exit_code, 0) << program.output;
}

// A directory archive whose data file was emptied (or removed) passed verify and a drill with
// tables_present: its data files are now checked against its table of contents.
TEST_F(drill_cli, a_directory_archive_missing_or_emptying_a_data_file_fails_verify_and_the_drill) {
  auto archive = dir_.path() / "demo.dir";
  std::filesystem::copy(workspace_->path() / "demo.dir", archive);
  std::vector<std::filesystem::path> data;
  for (const auto& entry : std::filesystem::directory_iterator(archive))
    if (entry.path().filename() != "toc.dat") data.push_back(entry.path());
  ASSERT_GE(data.size(), 2U);
  std::sort(data.begin(), data.end());
  auto fine = run_cli({"verify", archive.string(), "--min-size", "0"});
  EXPECT_EQ(fine.exit_code, 0) << fine.output;
  std::filesystem::resize_file(data[0], 0);
  auto emptied = run_cli({"verify", archive.string(), "--min-size", "0"});
  EXPECT_EQ(emptied.exit_code, 1) << emptied.output;
  EXPECT_NE(emptied.output.find("its data file " + data[0].filename().string() + " is damaged"), std::string::npos) << emptied.output;
  std::filesystem::remove(data[1]);
  auto drill = run_cli({"run", scenario(R"({"name": "emptied", "backup": {"file": ")" + archive.string() + R"("},
    "assertions": [{"type": "tables_present", "tables": ["customers", "orders"]}]})").string(), "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(drill.exit_code, 1) << drill.output;
  EXPECT_NE(drill.output.find("is missing"), std::string::npos) << drill.output;
}

// On a shared server (the existing provider) a `pg_dump -C -c` script dropped and recreated a
// bystander database, losing what was written since the backup; psql followed any \connect.
TEST_F(drill_cli, a_shared_servers_other_databases_are_left_exactly_as_found) {
  auto shared = testkit::start_shared_server();
  testkit::psql(*shared, "CREATE DATABASE shop");
  testkit::psql(*shared, "CREATE TABLE orders AS SELECT 1 AS id", "shop");
  auto oid = testkit::psql(*shared, "SELECT oid FROM pg_database WHERE datname = 'shop'");
  auto create_clean = dir_.path() / "shop_create_clean.sql";
  testkit::pg_dump(*shared, {"-C", "-c", "-f", create_clean.string()}, "shop");
  testkit::psql(*shared, "INSERT INTO orders VALUES (2)", "shop");  // written after the backup
  auto sneaky = dir_.path() / "sneaky.sql";  // no pg_dump header claims it creates anything
  write_file(sneaky, "-- " + std::string(1100, '.') + "\nCREATE TABLE t (id int);\n\\connect shop\nDROP TABLE orders;\n");
  for (const auto& [backup, exit] : {std::pair{create_clean, 2}, std::pair{sneaky, 1}}) {
    auto result = run_cli({"run", scenario(R"({"name": "shared", "provider": "existing", "backup": {"file": ")" + backup.string() +
                                           R"("}, "assertions": [{"type": "not_empty"}]})").string(),
                           "--junit", (dir_.path() / "r.xml").string()},
                          shared->admin().libpq_env());
    EXPECT_EQ(result.exit_code, exit) << result.output;
    EXPECT_NE(result.output.find(exit == 2 ? "never alters a shared server" : "psql meta-command refused"), std::string::npos)
        << result.output;
  }
  EXPECT_EQ(testkit::psql(*shared, "SELECT oid FROM pg_database WHERE datname = 'shop'"), oid);
  EXPECT_EQ(testkit::psql(*shared, "SELECT count(*) FROM orders", "shop"), "2\n");
  EXPECT_EQ(testkit::psql(*shared, "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgdrill%'"), "0\n");
}

// Only a bare \connect DBNAME runs (pg_dump --create's own line, for an odd name too). A \connect
// with a user, host, port, conninfo, backquote or another command on its line moved the rest of
// the script to another server or ran a shell; now psql refuses it, the verdict names it, and
// nothing of its line runs.
TEST_F(drill_cli, only_a_bare_connect_runs_and_a_refused_one_is_named) {
  auto source = testkit::start_server();
  testkit::psql(*source, "CREATE DATABASE \"Odd db 'x'\"");
  testkit::psql(*source, "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 10) g", "Odd db 'x'");
  auto created = dir_.path() / "odd_create.sql";
  testkit::pg_dump(*source, {"-C", "-f", created.string()}, "Odd db 'x'");
  ASSERT_NE(testkit::read_file(created).find("\\connect -reuse-previous=on"), std::string::npos);
  auto passes = run_cli({"run", scenario(R"({"name": "odd", "backup": {"file": ")" + created.string() +
                                         R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "row_count", "table": "t", "equals": 10}]})")
                                    .string(),
                         "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(passes.exit_code, 0) << passes.output;

  auto canary = dir_.path() / "CANARY";
  for (const std::string& line : std::vector<std::string>{"\\connect postgres postgres /tmp 5432", "\\c \"dbname=postgres host=/tmp\"",
                                  "\\c postgres \\! touch " + canary.string(), "\\c postgres \\o " + canary.string(),
                                  "\\connect `touch " + canary.string() + "`"}) {
    auto script = dir_.path() / "connects.sql";
    write_file(script, "-- " + std::string(1100, '.') + "\nCREATE TABLE t (id int);\n" + line + "\nCREATE TABLE after_it (id int);\n");
    auto result = run_cli({"run", scenario(R"({"name": "connects", "backup": {"file": ")" + script.string() +
                                           R"("}, "assertions": [{"type": "not_empty"}]})").string(),
                           "--junit", (dir_.path() / "r.xml").string()});
    EXPECT_EQ(result.exit_code, 1) << line << "\n" << result.output;
    EXPECT_NE(result.output.find("refused: " + line), std::string::npos) << line << "\n" << result.output;
    EXPECT_FALSE(std::filesystem::exists(canary)) << line;
  }
}

// SIGINT during a running check was ignored: the drill went on and exited 0 PASSED. Now the check
// is stopped (the server's sessions end with it), the checks left do not run, the server is torn
// down and the drill exits 2.
namespace {

// A drill of `file` that gets SIGINT once its restore passed and its checks run: the exit
// status, the seconds from the signal to the exit (the runner is killed after 30 s), and the
// output. The restored server's data directory must be gone, and no process may use it.
struct interrupted_drill {
  int exit_code = 0;
  double seconds = 0;
  std::string output;
};

interrupted_drill interrupt_during_checks(const std::filesystem::path& file, const std::filesystem::path& dir) {
  auto output = dir / "output.txt";
  auto runner = child::spawn(command(PGDRILL_RUNNER_PATH, {"run", file.string(), "--junit", (dir / "r.xml").string()}),
                             {stream_target::null(), stream_target::to_file(output), stream_target::to_file(output)});
  for (int attempt = 0; attempt < 600 && testkit::read_file(output).find("PASS   restore") == std::string::npos; ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the checks are running
  auto sent = std::chrono::steady_clock::now();
  ::kill(runner.pid(), SIGINT);
  for (int attempt = 0; attempt < 300 && testkit::process_running(runner.pid()); ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (testkit::process_running(runner.pid())) ::kill(runner.pid(), SIGKILL);
  interrupted_drill drill;
  drill.exit_code = runner.wait().code;
  drill.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  drill.output = testkit::read_file(output);
  auto at = drill.output.find("local PostgreSQL ");
  EXPECT_NE(at, std::string::npos) << drill.output;
  if (at == std::string::npos) return drill;
  auto from = drill.output.find(" in ", at) + 4;
  auto data_dir = drill.output.substr(from, drill.output.find_first_of(" \n", from) - from);
  EXPECT_FALSE(std::filesystem::exists(data_dir)) << data_dir;
  for (const auto& process : std::filesystem::directory_iterator("/proc"))
    EXPECT_EQ(detail::proc_text(process.path() / "cmdline").find(data_dir), std::string::npos) << "a server of " << data_dir << " runs on";
  return drill;
}

}  // namespace

TEST_F(drill_cli, sigint_during_a_check_ends_the_drill_with_exit_2_and_nothing_left) {
  auto file = scenario(R"({"name": "sigint", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "assertions": [{"type": "sql", "name": "a long check", "query": "SELECT pg_sleep(60) IS NOT NULL", "expected": true, "timeout_seconds": 120},
                   {"type": "row_count", "table": "customers", "equals": 1000}]})");
  auto drill = interrupt_during_checks(file, dir_.path());
  EXPECT_EQ(drill.exit_code, 2) << drill.output;
  EXPECT_LT(drill.seconds, 5.0) << drill.output;
  EXPECT_NE(drill.output.find("stopped by signal 2"), std::string::npos) << drill.output;
  EXPECT_EQ(drill.output.find("verdict: PASSED"), std::string::npos) << drill.output;
}

// A checksum that waits (here on a lock a prepared transaction holds until the server stops)
// ignored SIGINT: the drill hung. Its query is now cancelled, it and the checks after it are
// "not run", and the drill ends with exit 2.
TEST_F(drill_cli, sigint_during_a_checksum_cancels_it_and_ends_the_drill_with_exit_2) {
  auto file = scenario(R"({"name": "sigint-checksum", )" + backup_key("demo_20260101_000000.dump") + R"(,
    "server_settings": {"max_prepared_transactions": 2},
    "restore": {"sql_after": "BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'hold_customers';"},
    "assertions": [{"type": "checksum", "table": "customers", "equals": "00000000000000000000000000000000"},
                   {"type": "row_count", "table": "orders", "equals": 5000}]})");
  auto drill = interrupt_during_checks(file, dir_.path());
  EXPECT_EQ(drill.exit_code, 2) << drill.output;
  EXPECT_LT(drill.seconds, 5.0) << drill.output;
  EXPECT_NE(drill.output.find("stopped by signal 2"), std::string::npos) << drill.output;
  EXPECT_TRUE(std::regex_search(drill.output, std::regex(R"(ERROR +checksum public\.customers +[0-9.]+s +not run: interrupted by signal 2)")))
      << drill.output;
  EXPECT_EQ(drill.output.find("FAIL "), std::string::npos) << "an interrupted checksum is no broken backup: " << drill.output;
}
