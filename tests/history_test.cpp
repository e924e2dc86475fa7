// history.hpp without a server: history lines from typed facts, and the gate's decisions.
#include "support.hpp"

using namespace pgdrill;

namespace {

history_entry entry(const std::string& at, int exit_code, std::optional<double> restore, std::map<std::string, long long> tables) {
  history_entry line;
  line.at = at;
  line.scenario = "nightly";
  line.exit_code = exit_code;
  line.restore_seconds = restore;
  line.tables = std::move(tables);
  return line;
}

std::time_t at(const std::string& when) { return *timestamp_in_name(when); }

}  // namespace

TEST(history, a_line_carries_the_drills_typed_facts) {
  drill_result result;
  result.scenario = "nightly";
  result.started_at = "2026-11-22T02:00:00Z";
  result.backup.files = {"/b/nightly.dump"};
  result.backup.size_bytes = 123;
  result.restore.seconds = 4.5;
  result.table_rows = {{"public.orders", 10}, {"odd.schema.table", 3}};  // no name parsing involved
  result.checks = {make_step("custom name", "row_count", outcome::passed, "")};
  auto line = history_entry_from(result);
  EXPECT_EQ(line.backup, "/b/nightly.dump");
  EXPECT_EQ(line.backup_size, 123U);
  EXPECT_EQ(line.restore_seconds, 4.5);
  EXPECT_EQ(line.tables, result.table_rows);
  EXPECT_EQ(line.exit_code, 0);
  EXPECT_EQ(line.outcome, "PASSED");
}

// A line keeps every check and each stage that did not pass, with the reason of those that did
// not pass: the HTML page and the next drill's JUnit read them back.
TEST(history, a_line_keeps_each_check_and_why_what_did_not_pass_failed) {
  drill_result result;
  result.scenario = "nightly";
  result.started_at = "2026-11-22T02:00:00Z";
  result.stages = {make_step("locate backup", "stage", outcome::passed, "found it"),
                   make_step("restore", "stage", outcome::failed, "pg_restore: error: COPY failed"),
                   make_step("teardown", "stage", outcome::passed, "stopped")};
  result.checks = {make_step("row_count public.orders", "row_count", outcome::skipped, "not reached: restore failed"),
                   make_step("roles", "roles", outcome::passed, "every role exists")};
  scratch_dir dir;
  append_history(dir.path() / "h.jsonl", history_entry_from(result));
  auto line = read_history(dir.path() / "h.jsonl").at(0);
  ASSERT_EQ(line.steps.size(), 3U);
  EXPECT_EQ(line.steps[0].name, "restore");
  EXPECT_EQ(line.steps[0].kind, "stage");
  EXPECT_EQ(line.steps[0].result, "failed");
  EXPECT_EQ(line.steps[0].message, "pg_restore: error: COPY failed");
  EXPECT_EQ(line.steps[1].message, "not reached: restore failed");
  EXPECT_EQ(line.steps[2].name, "roles");
  EXPECT_EQ(line.steps[2].message, "") << "a passing check's message is not kept";

  testkit::write_file(dir.path() / "bad.jsonl",
                      R"({"pgdrill_history": 1, "at": "x", "scenario": "s", "exit_code": 0, "steps": [{"name": 3}]})" "\n");
  EXPECT_THROW(read_history(dir.path() / "bad.jsonl"), usage_error);
}

TEST(history, lines_round_trip_through_a_file) {
  scratch_dir dir;
  auto file = dir.path() / "h.jsonl";
  append_history(file, entry("2026-11-01T00:00:00Z", 0, 2.0, {{"public.a", 5}}));
  append_history(file, entry("2026-11-02T00:00:00Z", 2, std::nullopt, {}));
  auto lines = read_history(file);
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_EQ(lines[0].tables.at("public.a"), 5);
  EXPECT_FALSE(lines[1].restore_seconds);
  testkit::write_file(dir.path() / "bad.jsonl", "{\"not\": \"history\"}\n");
  EXPECT_THROW(read_history(dir.path() / "bad.jsonl"), usage_error);
}

TEST(gate, open_when_a_recent_drill_passed) {
  auto steps = evaluate_gate({entry("2026-11-20T00:00:00Z", 0, 2.0, {})}, {}, at("2026-11-22T00:00:00Z"));
  EXPECT_EQ(verdict_of({}, steps), exit_code::passed);
}

TEST(gate, closed_when_no_drill_passed_or_the_last_pass_is_old) {
  EXPECT_EQ(verdict_of({}, evaluate_gate({entry("2026-11-20T00:00:00Z", 1, 2.0, {})}, {}, at("2026-11-22T00:00:00Z"))),
            exit_code::failed);
  EXPECT_EQ(verdict_of({}, evaluate_gate({entry("2026-09-01T00:00:00Z", 0, 2.0, {})}, {}, at("2026-11-22T00:00:00Z"))),
            exit_code::failed);
}

TEST(gate, row_drops_and_restore_growth_name_what_changed) {
  std::vector<history_entry> entries{entry("2026-11-20T00:00:00Z", 0, 2.0, {{"public.orders", 100}}),
                                     entry("2026-11-21T00:00:00Z", 0, 5.0, {{"public.orders", 40}})};
  gate_spec spec;
  spec.max_row_drop = 0.5;
  spec.max_restore_growth = 2.0;
  auto steps = evaluate_gate(entries, spec, at("2026-11-22T00:00:00Z"));
  ASSERT_EQ(steps.size(), 3U);
  EXPECT_EQ(steps[1].result, outcome::failed);
  EXPECT_NE(steps[1].message.find("public.orders fell from 100 to 40 rows (60%)"), std::string::npos);
  EXPECT_EQ(steps[2].result, outcome::failed);
  spec.max_row_drop = 0.7;
  spec.max_restore_growth = 3.0;
  EXPECT_EQ(verdict_of({}, evaluate_gate(entries, spec, at("2026-11-22T00:00:00Z"))), exit_code::passed);
}

namespace {

// The measures of a drill against a baseline drill of 2026-11-01 that passed.
drift_measures measured_against_baseline() {
  drift_measures now;
  now.history = "/h/drills.jsonl";
  now.baseline = entry("2026-11-01T02:00:00Z", 0, 10.0, {{"public.orders", 1000}, {"public.customers", 50}});
  now.baseline->backup_size = 1000000;
  now.baseline->schema = {"column\tpublic.orders.id\tinteger not null", "index\tpublic.orders_pkey\tUNIQUE btree (id)"};
  now.rows = {{"public.orders", 1000}, {"public.customers", 50}};
  now.schema = now.baseline->schema;
  now.backup_size = 1000000;
  now.restore_seconds = 10.0;
  return now;
}

step_result judged(drift_aspect aspect, double limit, const drift_measures& now, bool warn_only = false) {
  drift_assertion check;
  check.aspect = aspect;
  check.limit = limit;
  check.warn_only = warn_only;
  step_result step;
  judge_drift(check, now, step);
  return step;
}

}  // namespace

TEST(drift, unchanged_drills_pass_every_aspect) {
  auto now = measured_against_baseline();
  for (auto aspect : {drift_aspect::rows, drift_aspect::backup_size, drift_aspect::restore_time, drift_aspect::schema}) {
    auto step = judged(aspect, aspect == drift_aspect::restore_time ? 2.0 : 0.2, now);
    EXPECT_EQ(step.result, outcome::passed) << step.message;
    EXPECT_NE(step.message.find("2026-11-01T02:00:00Z"), std::string::npos) << step.message;
  }
}

TEST(drift, a_table_that_lost_half_its_rows_fails_naming_it_and_both_counts) {
  auto now = measured_against_baseline();
  now.rows["public.orders"] = 500;
  auto step = judged(drift_aspect::rows, 0.2, now);
  EXPECT_EQ(step.result, outcome::failed);
  EXPECT_NE(step.message.find("public.orders: 1000 -> 500 rows (-50%)"), std::string::npos) << step.message;
  EXPECT_NE(step.message.find("limit 20%"), std::string::npos) << step.message;
  EXPECT_EQ(step.message.find("customers"), std::string::npos) << "an unchanged table is not named: " << step.message;
  EXPECT_EQ(judged(drift_aspect::rows, 0.6, now).result, outcome::passed) << "within a looser limit";
  now.rows.erase("public.customers");
  EXPECT_NE(judged(drift_aspect::rows, 0.6, now).message.find("public.customers: gone (had 50 rows)"), std::string::npos);
}

TEST(drift, a_shrunken_backup_and_a_slower_restore_fail_beyond_their_limits) {
  auto now = measured_against_baseline();
  now.backup_size = 400000;
  auto size = judged(drift_aspect::backup_size, 0.5, now);
  EXPECT_EQ(size.result, outcome::failed);
  EXPECT_NE(size.message.find("shrank by 60%"), std::string::npos) << size.message;
  EXPECT_EQ(judged(drift_aspect::backup_size, 0.7, now).result, outcome::passed);
  now.restore_seconds = 35.0;
  auto slower = judged(drift_aspect::restore_time, 3.0, now);
  EXPECT_EQ(slower.result, outcome::failed);
  EXPECT_NE(slower.message.find("x3.50 (limit x3.00)"), std::string::npos) << slower.message;
  EXPECT_EQ(judged(drift_aspect::restore_time, 4.0, now).result, outcome::passed);
}

TEST(drift, a_schema_change_fails_or_warns_as_asked) {
  auto now = measured_against_baseline();
  now.schema = {"column\tpublic.orders.id\tbigint not null"};
  auto step = judged(drift_aspect::schema, 0, now);
  EXPECT_EQ(step.result, outcome::failed);
  EXPECT_NE(step.message.find("missing index public.orders_pkey"), std::string::npos) << step.message;
  EXPECT_NE(step.detail.find("changed column public.orders.id: integer not null -> now: bigint not null"), std::string::npos)
      << step.detail;
  auto warned = judged(drift_aspect::schema, 0, now, true);
  EXPECT_EQ(warned.result, outcome::passed);
  EXPECT_EQ(warned.message.rfind("warning: the schema differs", 0), 0U) << warned.message;
}

TEST(drift, the_first_drill_is_the_baseline_and_a_missing_history_or_measure_cannot_judge) {
  auto now = measured_against_baseline();
  now.baseline.reset();
  auto first = judged(drift_aspect::rows, 0.2, now);
  EXPECT_EQ(first.result, outcome::passed);
  EXPECT_NE(first.message.find("this drill is the baseline"), std::string::npos) << first.message;
  now.history.clear();
  EXPECT_EQ(judged(drift_aspect::rows, 0.2, now).result, outcome::error);
  now = measured_against_baseline();
  now.problem = "cannot read history /h/drills.jsonl";
  auto unreadable = judged(drift_aspect::rows, 0.2, now);
  EXPECT_EQ(unreadable.result, outcome::error);
  EXPECT_NE(unreadable.message.find("cannot read history"), std::string::npos);
}

// The baseline is the newest passing drill of the same scenario, and its schema comes back.
TEST(drift, the_baseline_is_the_last_passing_drill_of_the_scenario) {
  scratch_dir dir;
  auto file = dir.path() / "h.jsonl";
  EXPECT_FALSE(last_passing_drill(file, "nightly")) << "no file yet: no baseline";
  auto passed = entry("2026-11-01T00:00:00Z", 0, 2.0, {{"public.a", 5}});
  passed.schema = {"table\tpublic.a\t"};
  append_history(file, passed);
  append_history(file, entry("2026-11-02T00:00:00Z", 1, 2.0, {{"public.a", 1}}));
  auto other = entry("2026-11-03T00:00:00Z", 0, 2.0, {});
  other.scenario = "weekly";
  append_history(file, other);
  auto baseline = last_passing_drill(file, "nightly");
  ASSERT_TRUE(baseline);
  EXPECT_EQ(baseline->at, "2026-11-01T00:00:00Z");
  EXPECT_EQ(baseline->schema, passed.schema);
}
