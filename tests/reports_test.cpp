// Reports through their real consumers: JUnit (junitparser), JSON, HTML, history and the gate;
// the console's progress bar under a pseudo-terminal; one drill at a time per scenario.
#include <thread>

#include "support.hpp"

using namespace pgdrill;
using testkit::run_cli;
using testkit::write_file;

namespace {

class reports : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    auto source = testkit::start_demo_source();
    backup_ = workspace_->path() / "demo_20260101_000000.dump";
    testkit::pg_dump(*source, {"-Fc", "-f", backup_.string()});
  }
  static void TearDownTestSuite() { delete workspace_; }

  // A scenario with one row_count assertion expecting `count` customers.
  std::filesystem::path scenario(long long count, const std::string& backup_json = "") {
    auto file = dir_.path() / "scenario.json";
    write_file(file, R"({"name": "reports", "backup": )" +
                         (backup_json.empty() ? R"({"file": ")" + backup_.string() + R"("})" : backup_json) +
                         R"(, "assertions": [{"type": "row_count", "table": "customers", "equals": )" + std::to_string(count) +
                         "}]}");
    return file;
  }

  std::string python(const std::vector<std::string>& args) {
    auto result = run(command("/usr/bin/python3", args));
    EXPECT_TRUE(result.ok()) << result.err_tail;
    return result.out;
  }

  static inline scratch_dir* workspace_ = nullptr;
  static inline std::filesystem::path backup_;
  scratch_dir dir_;
};

}  // namespace

TEST_F(reports, passing_failing_and_unverified_drills_in_junit_json_and_html) {
  struct expectation {
    long long count;
    std::string backup_json;
    int exit;
    std::string junit_line, outcome;
  };
  std::vector<expectation> cases{
      {1000, "", 0, "suite reports tests=9 failures=0 errors=0 skipped=0", "PASSED"},
      {999, "", 1, "case check/row_count public.customers failure: public.customers: expected = 999 rows, got 1000", "FAILED"},
      {1000, R"({"directory": "/nonexistent/backups"})", 2, "case stage/locate backup error: backup directory /nonexistent/backups",
       "NOT VERIFIED"}};
  auto history = dir_.path() / "history.jsonl";
  for (const auto& expected : cases) {
    auto junit = dir_.path() / "r.xml", json = dir_.path() / "r.json", html = dir_.path() / "r.html";
    auto summary_md = dir_.path() / "summary.md", metrics = dir_.path() / "drill.prom";
    auto result = run_cli({"run", scenario(expected.count, expected.backup_json).string(), "--junit", junit.string(), "--json",
                           json.string(), "--history", history.string(), "--summary-md", summary_md.string(), "--metrics",
                           metrics.string()});
    EXPECT_EQ(result.exit_code, expected.exit) << result.output;
    EXPECT_NE(testkit::read_file(summary_md).find("pgdrill reports: " + expected.outcome + " (exit " + std::to_string(expected.exit)),
              std::string::npos)
        << testkit::read_file(summary_md);
    auto prometheus = testkit::read_file(metrics);
    EXPECT_NE(prometheus.find("pgdrill_drill_exit_code{scenario=\"reports\"} " + std::to_string(expected.exit) + "\n"), std::string::npos)
        << prometheus;
    EXPECT_NE(prometheus.find("pgdrill_last_success_timestamp_seconds{scenario=\"reports\"} "), std::string::npos)
        << "the first drill passed: every later one still says when" << prometheus;
    auto summary = python({std::string(PGDRILL_SOURCE_DIR) + "/tests/junit_summary.py", junit.string()});
    EXPECT_NE(summary.find(expected.junit_line), std::string::npos) << summary;
    if (expected.exit != 0) {
      EXPECT_FALSE(summary.find("failures=0 errors=0") != std::string::npos) << "never green: " << summary;
    }

    auto report = nlohmann::json::parse(testkit::read_file(json));
    EXPECT_EQ(report["pgdrill_report"], json_report_version);
    EXPECT_EQ(report["verdict"]["exit_code"], expected.exit);
    EXPECT_EQ(report["verdict"]["outcome"], expected.outcome);
    if (expected.exit == 0) {
      const auto& counted = report["checks"].at(report["checks"].size() - 3);  // not_empty and roles come last
      EXPECT_EQ(counted["expected"], "= 1000");
      EXPECT_EQ(counted["actual"], "1000");
      EXPECT_EQ(report["checks"].back()["name"], "roles");
      EXPECT_EQ(report["properties"]["backup.sha256"], sha256_file(backup_));
      EXPECT_EQ(report["properties"]["backup.source_version"], find_binaries(binary_search::from_environment()).version);
    }

    auto page = run_cli({"report", "--html", html.string(), "--history", history.string(), "--json", json.string()});
    EXPECT_EQ(page.exit_code, 0) << page.output;
    // The page parses as HTML (Python's parser) and carries the latest outcome and the charts.
    auto parsed = python({"-c", "import html.parser,sys\n"
                                "class P(html.parser.HTMLParser):\n"
                                "  tags=[]\n"
                                "  def handle_starttag(s,t,a): s.tags.append(t)\n"
                                "p=P(); p.feed(open(sys.argv[1]).read()); print(' '.join(sorted(set(p.tags))))",
                          html.string()});
    EXPECT_NE(parsed.find("svg"), std::string::npos) << parsed;
    EXPECT_NE(parsed.find("polyline"), std::string::npos) << parsed;
    auto text = testkit::read_file(html);
    EXPECT_NE(text.find(expected.outcome), std::string::npos);
    EXPECT_EQ(text.find("http://"), text.find("http://www.w3.org/2000/svg")) << "no fetches: only the SVG namespace";
    EXPECT_EQ(text.find("https://"), std::string::npos);
  }
  auto listing = run_cli({"history", history.string()});
  EXPECT_NE(listing.output.find("3 drills, 1 passed"), std::string::npos) << listing.output;
}

TEST_F(reports, progress_bar_on_a_terminal_only) {
  auto file = scenario(1000);
  auto junit = dir_.path() / "r.xml";
  // util-linux's script gives the runner a pseudo-terminal.
  auto pty = run(command("/usr/bin/script", {"-qec", std::string(PGDRILL_RUNNER_PATH) + " run " + file.string() + " --junit " +
                                                      junit.string(), "/dev/null"}));
  EXPECT_NE(pty.out.find("restoring ["), std::string::npos) << pty.out;
  EXPECT_NE(pty.out.find("\033[32mPASS"), std::string::npos) << "colour on a terminal: " << pty.out;
  auto no_color = run(command("/usr/bin/script", {"-qec", "NO_COLOR=1 " + std::string(PGDRILL_RUNNER_PATH) + " run " +
                                                           file.string() + " --junit " + junit.string(), "/dev/null"}));
  EXPECT_EQ(no_color.out.find("\033[32m"), std::string::npos) << no_color.out;
  auto piped = run_cli({"run", file.string(), "--junit", junit.string()});
  EXPECT_EQ(piped.exit_code, 0);
  EXPECT_EQ(piped.output.find("restoring ["), std::string::npos) << piped.output;
  EXPECT_EQ(piped.output.find('\033'), std::string::npos) << "no escape codes when piped";
}

TEST_F(reports, quiet_and_json_logs) {
  auto file = scenario(1000);
  auto quiet = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string(), "--quiet"});
  EXPECT_EQ(quiet.output.rfind("verdict: PASSED", 0), 0U) << quiet.output;
  auto logs = run_cli({"run", file.string(), "--junit", (dir_.path() / "r.xml").string(), "--log-format", "json"});
  std::istringstream lines(logs.output);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    auto entry = nlohmann::json::parse(line);
    EXPECT_EQ(entry["ts"].get<std::string>().back(), 'Z') << line;
    EXPECT_TRUE(entry.contains("event")) << line;
  }
  EXPECT_GE(count, 8);
}

TEST_F(reports, gate_passes_and_fails_prepared_histories) {
  auto line = [](const std::string& at, int exit, double restore, long long rows) {
    history_entry entry;
    entry.at = at;
    entry.scenario = "nightly";
    entry.exit_code = exit;
    entry.outcome = exit == 0 ? "PASSED" : "FAILED";
    entry.restore_seconds = restore;
    entry.tables = {{"public.orders", rows}};
    return entry;
  };
  auto now = std::time(nullptr);
  auto days_ago = [&](int days) { return detail::iso8601_utc(now - days * 86400); };
  auto write = [&](const std::vector<history_entry>& entries) {
    auto file = dir_.path() / ("h" + std::to_string(entries.size()) + detail::random_suffix() + ".jsonl");
    for (const auto& entry : entries) append_history(file, entry);
    return file.string();
  };
  auto healthy = write({line(days_ago(40), 0, 100, 1000), line(days_ago(10), 0, 110, 1050)});
  auto result = run_cli({"gate", healthy, "--max-age-days", "35", "--max-row-drop", "0.1", "--max-restore-growth", "1.5"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("gate: OPEN"), std::string::npos);

  auto stale = write({line(days_ago(40), 0, 100, 1000), line(days_ago(2), 1, 100, 1000)});
  result = run_cli({"gate", stale, "--max-age-days", "35"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("FAIL   last passing drill"), std::string::npos) << result.output;

  auto shrinking = write({line(days_ago(3), 0, 100, 1000), line(days_ago(1), 0, 100, 800)});
  result = run_cli({"gate", shrinking, "--max-row-drop", "0.1"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("public.orders fell from 1000 to 800 rows (20%)"), std::string::npos) << result.output;

  auto slower = write({line(days_ago(3), 0, 100, 1000), line(days_ago(1), 0, 400, 1000)});
  result = run_cli({"gate", slower, "--max-restore-growth", "2", "--max-restore-seconds", "300"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("FAIL   restore time growth"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("FAIL   restore time "), std::string::npos) << result.output;

  auto never = write({line(days_ago(1), 1, 100, 1000)});
  EXPECT_EQ(run_cli({"gate", never}).exit_code, 1);
  write_file(dir_.path() / "broken.jsonl", "{\"pgdrill_history\": 1}\n");
  auto broken = run_cli({"gate", (dir_.path() / "broken.jsonl").string()});
  EXPECT_EQ(broken.exit_code, 3) << broken.output;
  EXPECT_NE(broken.output.find("broken.jsonl:1: at /at: missing required key"), std::string::npos) << broken.output;
}

TEST_F(reports, a_second_drill_of_the_same_scenario_exits_4) {
  auto slow = dir_.path() / "slow.sql";
  write_file(slow, "SELECT pg_sleep(30);\n");
  auto file = dir_.path() / "slow.json";
  write_file(file, R"({"name": "slow", "backup": {"file": ")" + slow.string() + R"("}, "hygiene": {"min_size_bytes": 0},
    "assertions": [{"type": "sql", "query": "SELECT 1", "expected": 1}]})");
  command first_drill(PGDRILL_RUNNER_PATH, {"run", file.string(), "--junit", (dir_.path() / "first.xml").string()});
  auto first = child::spawn(first_drill, {});
  // Wait until the first drill is restoring (its lock file names it), then start the second.
  bool restoring = false;
  for (int attempt = 0; attempt < 400 && !restoring; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& entry : std::filesystem::directory_iterator(default_temp_root()))
      if (entry.path().filename().string().rfind("pgdrill.lock.", 0) == 0 &&
          testkit::read_file(entry.path()).find("pid " + std::to_string(first.pid())) != std::string::npos)
        restoring = true;
  }
  ASSERT_TRUE(restoring);
  auto second = run_cli({"run", file.string(), "--junit", (dir_.path() / "second.xml").string()});
  EXPECT_EQ(second.exit_code, 4) << second.output;
  EXPECT_NE(second.output.find("another drill of " + file.string() + " is running (pid " + std::to_string(first.pid())),
            std::string::npos)
      << second.output;
  first.signal_group(SIGTERM);  // the first drill tears down on SIGTERM
  auto status = first.wait();
  EXPECT_EQ(status.code, 2) << "an interrupted drill could not verify";
}
