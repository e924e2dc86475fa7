// report.hpp and reports.hpp without a server: JUnit and JSON rendering of a drill, and report
// writing that never loses one report to another's failure.
#include <pugixml.hpp>

#include "support.hpp"

using namespace pgdrill;

namespace {

drill_result sample_drill() {
  drill_result result;
  result.scenario = "nightly";
  result.started_at = "2026-11-22T02:00:00Z";
  result.seconds = 12.5;
  result.stages = {make_step("locate backup", "stage", outcome::passed, "found"),
                   make_step("restore", "stage", outcome::passed, "restored")};
  auto failed = make_step("row_count public.orders", "row_count", outcome::failed, "public.orders: expected = 5 rows, got 4");
  failed.expected = "= 5";
  failed.actual = "4";
  result.checks = {make_step("backup size", "hygiene", outcome::passed, "2048 bytes"), failed,
                   make_step("sequences", "sequences", outcome::skipped, "not reached: restore failed")};
  result.backup.files = {"/backups/nightly.dump"};
  result.backup.sha256 = std::string(64, 'a');
  result.restore.seconds = 3.25;
  return result;
}

pugi::xml_document junit_of(const drill_result& result) {
  scratch_dir dir;
  write_junit(result, dir.path() / "r.xml");
  pugi::xml_document document;
  EXPECT_TRUE(document.load_file((dir.path() / "r.xml").c_str()));
  return document;
}

}  // namespace

TEST(junit, one_case_per_stage_and_check_with_failures_errors_and_skips) {
  auto document = junit_of(sample_drill());
  auto suite = document.child("testsuites").child("testsuite");
  EXPECT_STREQ(suite.attribute("name").value(), "nightly");
  EXPECT_EQ(suite.attribute("tests").as_int(), 5);
  EXPECT_EQ(suite.attribute("failures").as_int(), 1);
  EXPECT_EQ(suite.attribute("skipped").as_int(), 1);
  auto failure = suite.find_child_by_attribute("testcase", "name", "row_count public.orders").child("failure");
  EXPECT_STREQ(failure.attribute("message").value(), "public.orders: expected = 5 rows, got 4");
  EXPECT_NE(std::string(failure.text().get()).find("expected: = 5\nactual: 4"), std::string::npos);
  auto skipped = suite.find_child_by_attribute("testcase", "name", "sequences").child("skipped");
  EXPECT_STREQ(skipped.attribute("message").value(), "not reached: restore failed");
  EXPECT_STREQ(suite.child("properties").find_child_by_attribute("property", "name", "restore.seconds").attribute("value").value(),
               "3.250000");
}

TEST(junit, a_drill_that_verified_nothing_carries_an_error) {
  drill_result result;
  result.scenario = "empty";
  result.stages = {make_step("locate backup", "stage", outcome::passed, "")};
  auto suite = junit_of(result).child("testsuites").child("testsuite");
  EXPECT_EQ(suite.attribute("errors").as_int(), 1);
  EXPECT_TRUE(suite.find_child_by_attribute("testcase", "name", "verdict").child("error"));
}

TEST(json_report, versioned_with_verdict_properties_and_steps) {
  auto report = to_json(sample_drill());
  EXPECT_EQ(report["pgdrill_report"], json_report_version);
  EXPECT_EQ(report["verdict"]["exit_code"], 1);
  EXPECT_EQ(report["verdict"]["outcome"], "FAILED");
  EXPECT_EQ(report["properties"]["backup.sha256"], std::string(64, 'a'));
  EXPECT_EQ(report["checks"][1]["expected"], "= 5");
  EXPECT_EQ(report["checks"].size(), 3U);
}

TEST(console, lines_and_verdict) {
  EXPECT_EQ(console_line(make_step("restore", "stage", outcome::failed, "why")).substr(0, 9), "  FAIL   ");
  std::ostringstream text;
  print_verdict(text, sample_drill());
  EXPECT_NE(text.str().find("verdict: FAILED (exit 1) - checks: 1 passed, 1 failed, 0 errors, 1 skipped"), std::string::npos);
}

TEST(reports, paths_from_the_command_line_then_the_scenario_then_defaults) {
  scenario plan;
  plan.name = "nightly";
  plan.json_report = "/scenario/report.json";
  plan.metrics = "/scenario/nightly.prom";
  report_paths given;
  given.history = "/given/history.jsonl";
  given.summary_md = "/given/summary.md";
  auto paths = report_paths_for(plan, given);
  EXPECT_EQ(paths.junit, std::filesystem::path("pgdrill-reports/nightly.junit.xml"));
  EXPECT_EQ(paths.json, "/scenario/report.json");
  EXPECT_EQ(paths.history, "/given/history.jsonl");
  EXPECT_EQ(paths.summary_md, "/given/summary.md");
  EXPECT_EQ(paths.metrics, "/scenario/nightly.prom");
}

TEST(reports, an_unwritable_report_loses_none_of_the_others) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "file", "a file, so nothing can be created below it");
  report_paths paths;
  paths.junit = dir.path() / "file" / "junit.xml";
  paths.json = dir.path() / "report.json";
  paths.history = dir.path() / "history.jsonl";
  auto written = write_reports(sample_drill(), paths);
  EXPECT_EQ(written.written, (std::vector<std::string>{paths.json.string(), paths.history.string()}));
  ASSERT_EQ(written.problems.size(), 1U);
  EXPECT_NE(written.problems.front().find("junit.xml"), std::string::npos);
  EXPECT_EQ(read_history(paths.history).size(), 1U);
}

// Off a terminal, progress is a line every 30 s of each phase (a short one prints none); on a
// terminal, a bar redrawn in place, cleared before the next step line.
TEST(console_progress, checksums_show_tables_done_like_a_restore_shows_bytes) {
  std::ostringstream out, err;
  console_options options;
  options.progress = true;
  console_reporter log(options, out, err);
  log.progress(100, 1000, 10);
  log.progress(900, 1000, 95);  // a long restore: one line
  log.checksum_progress(1, 4, 5);  // the checksums start their own 30 s
  log.checksum_progress(2, 4, 31);
  log.checksum_progress(3, 4, 40);
  EXPECT_EQ(err.str(), "  restoring  90.0% 900 B / 1000 B at 9 B/s, about 10.56s left\n"
                       "  checksums 2 of 4 tables, 31.00s, about 31.00s left\n");
  options.live = true;
  std::ostringstream live_err;
  console_reporter bar(options, out, live_err);
  bar.checksum_progress(1, 4, 2);
  EXPECT_EQ(live_err.str().rfind("\r  checksums [#######.......................] 1 of 4 tables, 2.00s", 0), 0U) << live_err.str();
  bar.step(make_step("checksum public.t", "checksum", outcome::passed, "ok"));
  EXPECT_NE(live_err.str().find("\r\033[K"), std::string::npos);
}

TEST(ticker, ticks_until_destroyed) {
  std::atomic<int> ticks{0};
  {
    detail::ticker tick([&] { ++ticks; }, std::chrono::milliseconds(5));
    while (ticks < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int after = ticks;
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(ticks, after);
  detail::ticker none({}, std::chrono::milliseconds(1));  // no callback: no thread
}

// A LATIN1 server's error ("é" as the single byte 0xE9) and a control byte reached the reports
// raw: the JSON report threw (exit 2, an empty file) and the JUnit file was not XML. Every
// report now carries them as U+FFFD.
TEST(reports, bytes_that_are_not_utf8_are_replaced_in_every_format) {
  auto result = sample_drill();
  result.checks[1].message = "public.orders: \xE9" "chec \x01 de la restauration";
  result.checks[1].detail = "ERREUR:  la relation \xAB orders \xBB n'existe pas";
  scratch_dir dir;
  write_json_report(result, dir.path() / "r.json");
  auto parsed = nlohmann::json::parse(testkit::read_file(dir.path() / "r.json"));
  EXPECT_EQ(parsed["checks"][1]["message"], "public.orders: \xEF\xBF\xBD" "chec \x01 de la restauration");  // JSON escapes it
  auto failure = junit_of(result).child("testsuites").child("testsuite").find_child_by_attribute("testcase", "name",
                                                                                                   "row_count public.orders");
  EXPECT_STREQ(failure.child("failure").attribute("message").value(), "public.orders: \xEF\xBF\xBD" "chec \xEF\xBF\xBD de la restauration");
  EXPECT_NE(std::string(failure.child("failure").text().get()).find("\xEF\xBF\xBD orders \xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(detail::printable("ok \xC3\xA9 \xF0\x9F\x98\x80 \t\n"), "ok \xC3\xA9 \xF0\x9F\x98\x80 \t\n");
  EXPECT_EQ(detail::printable("\xC0\xAF \xED\xA0\x80 \xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
                                                                          "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}
