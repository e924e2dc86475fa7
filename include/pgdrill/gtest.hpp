// GoogleTest support: restore a backup once per suite, assert on it, run scenarios as tests.
#pragma once

// Include in test files only (it needs GoogleTest). Three ways in:
//
//   class shop : public pgdrill::testing::restored_backup<shop> {
//    protected:
//     static void SetUpTestSuite() { restore("backups/shop_latest.dump"); }   // or restore(a_scenario)
//   };
//   TEST_F(shop, every_customer_came_back) { EXPECT_TRUE(row_count_is("customers", 1000)); }
//   TEST_F(shop, content_matches_the_manifest) { EXPECT_TRUE(checksums_match_manifest()); }
//
// Each test gets a database of its own, a copy of the restored one (clones.hpp) made ahead in the
// background, so what one test writes no other test sees; share_one_database() before restore()
// gives every test the restored database itself (no copies: for backups of many gigabytes).
//
//   PGDRILL_SCENARIO_TESTS(nightly, "scenarios/nightly.json");  // one test per check of the drill
//
// Both run the drill's own stages (drill.hpp): the same provider, roles, extensions, SQL hooks,
// server settings and hygiene as `pgdrill run`, so a scenario means the same here. The server
// is removed in TearDownTestSuite, whether tests passed, failed or threw.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/clones.hpp>
#include <pgdrill/drill.hpp>

namespace pgdrill::testing {

namespace detail {

/// A drill held open between its restore and its teardown, so tests can run in between.
class open_drill {
 public:
  open_drill(scenario plan, drill_options options) : state_(std::move(plan), std::move(options)) {
    run_restore_stages(state_);
  }
  open_drill(const open_drill&) = delete;
  open_drill& operator=(const open_drill&) = delete;
  ~open_drill() { stages::teardown(state_); }

  const drill_state& state() const { return state_; }

  /// Why the backup is not restored: each stage that failed or could not run, with its detail.
  std::string failure() const {
    std::string text;
    for (const auto& stage : state_.result.stages)
      if (stage.result == outcome::failed || stage.result == outcome::error)
        text += stage.name + ": " + stage.message + (stage.detail.empty() ? "" : "\n" + stage.detail) + "\n";
    return text;
  }

  /// Run planned checks against `database` (the restored one or a copy of it), exactly as the
  /// drill's checks stage does; checks that open connections of their own open them there too.
  std::vector<step_result> check(const check_plan& planned, const endpoint& database) const {
    auto context = state_.context();
    context.target = &database;
    return run_checks(database, planned, context);
  }

 private:
  drill_state state_;
};

inline ::testing::AssertionResult as_assertion(const step_result& step) {
  if (step.result == outcome::passed) return ::testing::AssertionSuccess() << step.name << ": " << step.message;
  auto failure = ::testing::AssertionFailure() << step.name << ": " << step.message;
  if (!step.expected.empty() && !step.actual.empty() && step.message.find(step.expected) == std::string::npos)
    failure << "\n  expected: " << step.expected << "\n    actual: " << step.actual;
  if (!step.detail.empty()) failure << "\n" << step.detail;
  return failure;
}

}  // namespace detail

/// A suite that restores one backup into a throwaway server before its first test, shares it
/// with every test, and removes it after the last. CRTP keeps each suite's server its own.
template <class Suite>
class restored_backup : public ::testing::Test {
 public:
  /// Restore as a scenario says (backup, provider, roles, extensions, SQL hooks, settings); call
  /// from the suite's SetUpTestSuite. A backup that cannot be restored fails every test of the
  /// suite with the reason, instead of crashing the test program.
  static void restore(const scenario& plan, const drill_options& options = {}) {
    drill_ = std::make_unique<detail::open_drill>(plan, options);
    connection_.reset();
    const auto& state = drill_->state();
    // A server the user named keeps the one scratch database: copies would need rights there.
    if (per_test_ && drill_->failure().empty() && !state.target_server->shared())
      clones_ = std::make_unique<clone_pool>(*state.target_server, state.target->dbname);
  }

  /// Every test uses the restored database itself instead of a copy of its own: call before
  /// restore(). For backups too large to copy per test; tests then see each other's writes.
  static void share_one_database() { per_test_ = false; }

  /// Restore `backup` (the newest match when given a directory and glob) with `spec` on the
  /// local provider.
  static void restore(const std::filesystem::path& backup, const restore_spec& spec = {}, const local_options& options = {},
                      const std::string& pattern = "*") {
    scenario plan;
    plan.name = ::testing::UnitTest::GetInstance()->current_test_suite()
                    ? ::testing::UnitTest::GetInstance()->current_test_suite()->name()
                    : "restored_backup";
    if (is_backup_directory(backup)) {
      plan.backup.directory = backup;
      plan.backup.pattern = pattern;
    } else {
      plan.backup.file = backup;
    }
    plan.restore = spec;
    drill_options drill;
    drill.local = options;
    restore(plan, drill);
  }

  static void TearDownTestSuite() {
    connection_.reset();
    clone_.reset();
    clones_.reset();  // drops the copies
    drill_.reset();   // tears the server down
  }

 protected:
  void SetUp() override {
    if (!drill_) GTEST_FAIL() << "call restore(...) in SetUpTestSuite";
    if (auto failure = drill_->failure(); !failure.empty()) GTEST_FAIL() << "the backup could not be restored:\n" << failure;
    if (clones_) clone_.emplace(clones_->acquire());
  }
  void TearDown() override {
    connection_.reset();
    clone_.reset();  // dropped in the background
  }

  /// This test's database (a copy of the restored one, or that one when shared); connect with
  /// endpoint().conninfo() or libpq_env().
  static const pgdrill::endpoint& endpoint() { return clone_ ? clone_->target() : restored(); }
  /// The restored database itself, which each test's copy is made from: read it, never write.
  static const pgdrill::endpoint& restored() { return *drill_->state().target; }
  /// A connection to this test's database, opened on first use and kept for the test.
  static pqxx::connection& db() {
    if (!connection_) connection_ = std::make_unique<pqxx::connection>(endpoint().conninfo());
    return *connection_;
  }
  /// The manifest beside the backup, if there is one.
  static const manifest* backup_manifest() { return drill_->state().context().expected; }
  /// The drill so far: facts, stages, hygiene results.
  static const drill_result& drill() { return drill_->state().result; }

  /// Run one pgdrill assertion as the drill would, as a GoogleTest assertion result (its message
  /// shows expected and actual): EXPECT_TRUE(check(freshness_assertion{"", "orders", "created_at", 26})).
  /// Manifest-wide assertions pass when every table's check passes.
  static ::testing::AssertionResult check(const assertion& what) {
    auto results = drill_->check(plan_checks({what}, backup_manifest()), endpoint());
    if (results.size() == 1) return detail::as_assertion(results.front());
    for (const auto& step : results)
      if (step.result != outcome::passed) return detail::as_assertion(step);
    return ::testing::AssertionSuccess() << results.size() << " checks passed";
  }

  static ::testing::AssertionResult row_count_is(const std::string& table, long long expected) {
    row_count_assertion count;
    count.table = table;
    count.equals = expected;
    return check(count);
  }
  static ::testing::AssertionResult row_count_between(const std::string& table, long long min, long long max) {
    row_count_assertion count;
    count.table = table;
    count.min = min;
    count.max = max;
    return check(count);
  }
  /// Every manifest table has the manifest's row count.
  static ::testing::AssertionResult row_counts_match_manifest() {
    row_count_assertion count;
    count.from_manifest = true;
    return check(count);
  }
  /// Every manifest table's content checksum (or one table's) equals the manifest's.
  static ::testing::AssertionResult checksums_match_manifest(const std::string& table = "") {
    checksum_assertion sums;
    sums.from_manifest = true;
    sums.table = table;
    return check(sums);
  }
  static ::testing::AssertionResult tables_present(const std::vector<std::string>& tables, bool non_empty = false) {
    tables_present_assertion present;
    present.tables = tables;
    present.non_empty = non_empty;
    return check(present);
  }
  /// The query's single value compares with `expected` under `op` (=, !=, <, <=, >, >=).
  static ::testing::AssertionResult query_returns(const std::string& query, const nlohmann::json& expected,
                                                  const std::string& op = "=") {
    sql_assertion sql;
    sql.query = query;
    sql.expected = expected;
    sql.op = op;
    return check(sql);
  }
  static ::testing::AssertionResult query_returns_no_rows(const std::string& query) {
    sql_assertion sql;
    sql.query = query;
    sql.expect_no_rows = true;
    return check(sql);
  }
  static ::testing::AssertionResult sequences_are_ahead() { return check(sequences_assertion{}); }

 private:
  static inline std::unique_ptr<detail::open_drill> drill_;
  static inline bool per_test_ = true;
  static inline std::unique_ptr<clone_pool> clones_;
  static inline std::optional<database_clone> clone_;
  static inline std::unique_ptr<pqxx::connection> connection_;
};

/// One check of a scenario's drill (hygiene, restore time, or an assertion), as a test parameter.
struct scenario_check {
  std::filesystem::path scenario;
  std::string name;  ///< the check's name in every drill report
};

/// Shown by GoogleTest for a failed parameterised test, instead of the object's bytes.
inline void PrintTo(const scenario_check& check, std::ostream* out) { *out << check.name << " of " << check.scenario; }

/// The checks a drill of the scenario records, named as `pgdrill run` names them: hygiene of the
/// located backups, restore time (when the scenario sets one), then the planned assertions. No
/// server is started here; the backup is restored by the first test that runs.
inline std::vector<scenario_check> load_scenario_checks(const std::filesystem::path& file) {
  auto plan = load_scenario(file);
  std::vector<std::string> names;
  std::optional<manifest> expected;
  try {
    auto located = locate_backups(plan.backup);
    for (const auto& step : verify_backups(located, plan.hygiene)) names.push_back(step.name);
    expected = manifest_beside(located);
    if (expected && records_its_backup(*expected)) names.push_back(backup_as_recorded_check);
  } catch (const std::exception&) {  // the tests themselves report a missing backup
  }
  if (plan.restore.max_seconds) names.push_back("restore time");
  for (const auto& check : plan_scenario_checks(plan, expected ? &*expected : nullptr)) names.push_back(check.name);
  std::vector<scenario_check> checks;
  for (const auto& name : names) checks.push_back({file, name});
  return checks;
}

/// "row_count public.orders #2" -> "row_count_public_orders__2": a valid GoogleTest name.
inline std::string test_name(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return text;
}

inline std::string scenario_check_name(const ::testing::TestParamInfo<scenario_check>& info) {
  return test_name(info.param.name);
}

/// The fixture behind PGDRILL_SCENARIO_TESTS: runs each scenario's drill up to the restore once
/// (on first use), then one check per test, and tears the drill down after the suite.
class scenario_checks : public ::testing::TestWithParam<scenario_check> {
 public:
  static void TearDownTestSuite() { drills_.clear(); }

 protected:
  void run_check_of_scenario() {
    const auto& param = GetParam();
    auto& drill = drills_[param.scenario.string()];
    if (!drill) drill = std::make_unique<detail::open_drill>(load_scenario(param.scenario), drill_options{});
    const auto& recorded = drill->state().result.checks;  // hygiene and restore time, as the drill recorded them
    auto same_name = [&](const auto& item) { return item.name == param.name; };
    if (auto found = std::find_if(recorded.begin(), recorded.end(), same_name); found != recorded.end()) {
      EXPECT_TRUE(detail::as_assertion(*found));
      return;
    }
    if (auto failure = drill->failure(); !failure.empty()) GTEST_FAIL() << "the backup could not be restored:\n" << failure;
    const auto* found = drill->state().planned.find(param.name);
    ASSERT_NE(found, nullptr) << "the scenario changed since the tests were listed: no check " << param.name;
    EXPECT_TRUE(detail::as_assertion(drill->check(check_plan({*found}), *drill->state().target).front()));
  }

 private:
  static inline std::map<std::string, std::unique_ptr<detail::open_drill>> drills_;
};

}  // namespace pgdrill::testing

/// Every check of a scenario's drill as its own test: SUITE/scenario.holds/<check name>.
#define PGDRILL_SCENARIO_TESTS(suite, scenario_file)                                                       \
  class suite : public ::pgdrill::testing::scenario_checks {};                                             \
  TEST_P(suite, holds) { run_check_of_scenario(); }                                                        \
  INSTANTIATE_TEST_SUITE_P(scenario, suite,                                                                \
                           ::testing::ValuesIn(::pgdrill::testing::load_scenario_checks(scenario_file)),   \
                           ::pgdrill::testing::scenario_check_name)
