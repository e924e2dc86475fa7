// markdown.hpp and metrics.hpp without a server: the Markdown verdict for CI summaries, and the
// Prometheus metrics read back by the real text-format parser (python3-prometheus-client).
#include "support.hpp"

using namespace pgdrill;

namespace {

drill_result drill(outcome check_result, const std::string& started_at = "2026-11-22T02:00:00Z") {
  drill_result result;
  result.scenario = "nightly";
  result.started_at = started_at;
  result.seconds = 12.5;
  result.stages = {make_step("locate backup", "stage", outcome::passed, "found"), make_step("restore", "stage", outcome::passed, "")};
  auto counted = make_step("row_count public.orders", "row_count", check_result, "public.orders: expected = 5 rows, got 4");
  counted.expected = "= 5";
  counted.actual = "4";
  result.checks = {counted, make_step("roles", "roles", outcome::passed, "every role exists")};
  result.backup.files = {"/backups/nightly_2026-11-22.dump"};
  result.backup.size_bytes = 2048;
  result.backup.format = "custom";
  result.backup.taken_at = "2026-11-22T01:00:00Z";
  result.server = {"local", "15.14"};
  result.restore.seconds = 3.25;
  result.table_rows = {{"public.orders", 4}, {"odd\"schema.t\\able", 7}};
  return result;
}

// Every sample of a metrics file as "name{label=value,...} value", one per line, as parsed by
// the Prometheus client library's own text-format parser.
std::string parsed_metrics(const std::filesystem::path& file) {
  auto parsed = run(command("/usr/bin/python3", {"-c", R"(import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    assert family.type == "gauge", family
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value:g}"))",
                                                          file.string()}));
  EXPECT_TRUE(parsed.ok()) << parsed.err_tail;
  return parsed.out;
}

}  // namespace

TEST(markdown_summary, a_passing_drill_says_so_with_its_figures) {
  auto result = drill(outcome::passed);
  result.backup.source_version = "13.16";
  result.backup.pg_dump_version = "17.2";
  auto text = markdown_summary(result);
  EXPECT_EQ(text.rfind("### ✅ pgdrill nightly: PASSED (exit 0)\n", 0), 0U) << text;
  EXPECT_NE(text.find("| dumped | from PostgreSQL 13.16 by pg\\_dump 17.2 |"), std::string::npos) << text;
  result.backup.pg_dump_version.clear();
  EXPECT_NE(markdown_summary(result).find("| dumped | from PostgreSQL 13.16 |"), std::string::npos);
  EXPECT_EQ(text.find("did not pass"), std::string::npos) << text;
  EXPECT_NE(text.find("| backup | /backups/nightly\\_2026-11-22.dump (2.0 KiB, custom, taken 2026-11-22T01:00:00Z) |"), std::string::npos) << text;
  EXPECT_NE(text.find("| restored into | PostgreSQL 15.14 (local) |"), std::string::npos) << text;
  EXPECT_NE(text.find("| restore | 3.25s |"), std::string::npos) << text;
  EXPECT_NE(text.find("| checks | 2 passed, 0 failed, 0 errors, 0 not reached |"), std::string::npos) << text;
}

TEST(markdown_summary, a_failure_lists_what_did_not_pass_first_and_escapes_what_tools_said) {
  auto result = drill(outcome::failed);
  result.restore.seconds.reset();
  result.checks.push_back(make_step("sql | <script>alert(1)</script>", "sql", outcome::error, "ERROR: line one\nline *two* `x`"));
  auto text = markdown_summary(result);
  EXPECT_EQ(text.rfind("### ❌ pgdrill nightly: FAILED (exit 1)\n\n**What did not pass:**\n\n"
                       "- failed: **row\\_count public.orders**: public.orders: expected = 5 rows, got 4 (expected = 5, got 4)\n"
                       "- could not run: **sql \\| &lt;script&gt;alert(1)&lt;/script&gt;**: ERROR: line one line \\*two\\* \\`x\\`\n",
                       0),
            0U)
      << text;
  EXPECT_NE(text.find("| restore | not completed |"), std::string::npos) << text;

  result.checks.assign(30, make_step("checksum t", "checksum", outcome::failed, "differs"));
  text = markdown_summary(result, 25);
  EXPECT_NE(text.find("- and 5 more (see the JUnit or JSON report)\n"), std::string::npos) << text;
}

TEST(markdown_summary, the_file_is_appended_to_so_drills_of_one_job_share_it) {
  scratch_dir dir;
  auto file = dir.path() / "summary" / "step.md";
  write_markdown_summary(drill(outcome::passed), file);
  auto unverified = drill(outcome::skipped);
  write_markdown_summary(unverified, file);
  auto text = testkit::read_file(file);
  EXPECT_EQ(text.rfind("### ✅", 0), 0U) << text;
  EXPECT_NE(text.find("\n### ⚠️ pgdrill nightly: NOT VERIFIED (exit 2)"), std::string::npos) << text;
  EXPECT_THROW(write_markdown_summary(unverified, "/proc/no/such/summary.md"), could_not_verify);
}

TEST(metrics, a_passing_drill_parses_as_prometheus_text_with_every_figure) {
  scratch_dir dir;
  auto file = dir.path() / "nightly.prom";
  write_metrics(drill(outcome::passed), file, {});
  auto samples = parsed_metrics(file);
  for (const char* expected :
       {"pgdrill_drill_exit_code{scenario=nightly} 0\n", "pgdrill_drill_passed{scenario=nightly} 1\n",
        "pgdrill_drill_timestamp_seconds{scenario=nightly} 1.79531e+09\n",
        "pgdrill_last_success_timestamp_seconds{scenario=nightly} 1.79531e+09\n", "pgdrill_drill_duration_seconds{scenario=nightly} 12.5\n",
        "pgdrill_restore_duration_seconds{scenario=nightly} 3.25\n", "pgdrill_backup_size_bytes{scenario=nightly} 2048\n",
        "pgdrill_checks{result=passed,scenario=nightly} 2\n", "pgdrill_checks{result=failed,scenario=nightly} 0\n",
        "pgdrill_table_rows{scenario=nightly,table=public.orders} 4\n",
        "pgdrill_table_rows{scenario=nightly,table=odd\"schema.t\\able} 7\n"})
    EXPECT_NE(samples.find(expected), std::string::npos) << expected << " in\n" << samples;
  EXPECT_NE(testkit::read_file(file).find("pgdrill_drill_timestamp_seconds{scenario=\"nightly\"} 1795312800\n"), std::string::npos)
      << "exact Unix time of 2026-11-22T02:00:00Z";
  auto beside = std::count_if(std::filesystem::directory_iterator(dir.path()), {},
                              [](const auto& entry) { return entry.path().filename() != scratch_marker; });
  EXPECT_EQ(beside, 1) << "no temporary file is left beside it";
}

// The figure auditors ask for survives a failed drill: it comes from the history's last pass,
// and is absent (never 0, which would read as 1970) when no drill ever passed.
TEST(metrics, a_failed_drill_reports_the_last_pass_from_the_history_or_none) {
  scratch_dir dir;
  auto history = dir.path() / "history.jsonl", file = dir.path() / "nightly.prom";
  auto failed = drill(outcome::failed, "2026-11-23T02:00:00Z");
  write_metrics(failed, file, history);
  auto samples = parsed_metrics(file);
  EXPECT_NE(samples.find("pgdrill_drill_exit_code{scenario=nightly} 1\n"), std::string::npos) << samples;
  EXPECT_EQ(samples.find("pgdrill_last_success_timestamp_seconds"), std::string::npos) << samples;

  append_history(history, history_entry_from(drill(outcome::passed, "2026-11-20T02:00:00Z")));
  append_history(history, history_entry_from(failed));
  write_metrics(failed, file, history);
  EXPECT_NE(testkit::read_file(file).find("pgdrill_last_success_timestamp_seconds{scenario=\"nightly\"} 1795140000\n"),
            std::string::npos)
      << testkit::read_file(file);
  EXPECT_THROW(write_metrics(failed, dir.path() / "history.jsonl" / "m.prom", history), could_not_verify);
}

namespace {

history_entry past_drill(const std::string& at, int code, std::optional<double> restore, std::map<std::string, long long> tables,
                         std::vector<recorded_step> steps) {
  history_entry entry;
  entry.at = at;
  entry.scenario = "nightly";
  entry.exit_code = code;
  entry.outcome = describe(static_cast<exit_code>(code));
  entry.backup = "/backups/nightly.dump";
  entry.backup_size = 4096;
  entry.restore_seconds = restore;
  entry.tables = std::move(tables);
  entry.steps = std::move(steps);
  return entry;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

// The part of the page that draws one chart.
std::string chart(const std::string& page, const std::string& title) {
  auto start = page.find("<figcaption>" + title);
  return start == std::string::npos ? "" : page.substr(start, page.find("</figure>", start) - start);
}

}  // namespace

// A passing drill, then one whose restore failed, then one whose backup was missing: the page
// dates its axis, marks both with their reasons, draws no restore time or row count for drills
// that measured none (no fake 0 s, nothing carried over), and lists the latest failures first.
TEST(html_page, failed_and_unverified_drills_are_marked_with_dates_and_reasons) {
  std::vector<history_entry> entries{
      past_drill("2026-11-01T02:00:00Z", 0, 3.5, {{"public.orders", 100}, {"public.items", 40}},
                 {{"row_count public.orders", "row_count", "passed", ""}}),
      past_drill("2026-11-15T02:00:00Z", 1, std::nullopt, {},
                 {{"restore", "stage", "failed", "pg_restore: error: COPY failed for table \"orders\""},
                  {"row_count public.orders", "row_count", "skipped", "not reached: restore failed"}}),
      past_drill("2026-11-22T02:00:00Z", 2, std::nullopt, {},
                 {{"locate backup", "stage", "error", "no backup matching '*' in /backups"},
                  {"roles", "roles", "skipped", "not reached: locate backup could not run"},
                  {"row_count public.orders", "row_count", "skipped", "not reached: locate backup could not run"}})};
  auto page = render_html(entries);
  auto restore = chart(page, "Restore time"), rows = chart(page, "Row counts");
  EXPECT_NE(restore.find(">2026-11-01</text>"), std::string::npos) << restore;
  EXPECT_NE(restore.find(">2026-11-22</text>"), std::string::npos) << restore;
  EXPECT_EQ(occurrences(restore, "<circle"), 1U) << "only the drill that restored has a restore time";
  EXPECT_EQ(occurrences(rows, "<circle"), 2U) << "two tables, counted by the first drill only";
  EXPECT_NE(restore.find("class=\"mark failed\""), std::string::npos);
  EXPECT_NE(restore.find("2026-11-15T02:00:00Z FAILED: restore: pg_restore: error: COPY failed for table &quot;orders&quot;"),
            std::string::npos)
      << restore;
  EXPECT_NE(restore.find("class=\"mark unverified\""), std::string::npos);
  EXPECT_NE(page.find("<td class=\"unverified\">locate backup: no backup matching '*' in /backups</td>"), std::string::npos)
      << "the latest drill says why";
  auto latest = page.substr(page.find("Checks of the latest drill"));
  EXPECT_LT(latest.find("locate backup"), latest.find("roles")) << "what did not pass first";
  auto history = page.substr(page.find("<h2>History"));
  EXPECT_NE(history.find("restore: pg_restore: error: COPY failed"), std::string::npos) << history;
  EXPECT_LT(history.find("2026-11-22"), history.find("2026-11-01")) << "newest first";
}

TEST(html_page, a_history_of_many_tables_charts_the_largest_and_says_so) {
  std::map<std::string, long long> tables;
  for (int index = 0; index < 20; ++index) tables["public.t" + std::to_string(index)] = 1000 + index;
  auto page = render_html({past_drill("2026-11-01T02:00:00Z", 0, 1.0, tables, {}), past_drill("2026-11-02T02:00:00Z", 0, 1.2, tables, {})});
  auto rows = chart(page, "Row counts");
  EXPECT_NE(rows.find("Row counts (the 8 largest of 20 tables)"), std::string::npos) << rows;
  EXPECT_NE(rows.find(">public.t19</text>"), std::string::npos);
  EXPECT_EQ(rows.find(">public.t0</text>"), std::string::npos);
  EXPECT_NE(chart(page, "Restore time").find("11-02 02:00"), std::string::npos) << "a short span is labelled with hours";
  EXPECT_NE(render_html({}).find("No drills in the history yet."), std::string::npos);
}
