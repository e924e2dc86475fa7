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
