// GoogleTest support: restore a backup once per suite, assert on it, run scenarios as tests.
#pragma once

// Include in test files only (it needs GoogleTest). Three ways in:
//
//   class shop : public pgdrill::testing::restored_backup<shop> {
//    protected:
//     static void SetUpTestSuite() { restore("backups/shop_latest.dump"); }
//   };
//   TEST_F(shop, every_customer_came_back) { EXPECT_TRUE(row_count_is("customers", 1000)); }
//   TEST_F(shop, content_matches_the_manifest) { EXPECT_TRUE(checksums_match_manifest()); }
//
//   PGDRILL_SCENARIO_TESTS(nightly, "scenarios/nightly.json");  // one test per assertion
//
// The server is removed in TearDownTestSuite, whether tests passed, failed or threw.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>  // the manifest, when there is one
#include <string>
#include <vector>

#include <pgdrill/pgdrill.hpp>

namespace pgdrill::testing {

namespace detail {

// A restored backup: its server, the database and the manifest beside it. Shared by a suite.
struct restored_state {
  std::unique_ptr<local_server> host;
  endpoint target;
  std::optional<manifest> expected;
  std::string failure;  ///< why it could not be restored; empty when it was
  check_context context;
};

inline std::unique_ptr<restored_state> restore_into_new_server(const std::vector<backup_info>& backups,
                                                                const restore_spec& spec, const local_options& options) {
  auto state = std::make_unique<restored_state>();
  try {
    auto manifest_file = manifest_path_for(backups.front().path);
    if (std::filesystem::exists(manifest_file)) state->expected = load_manifest(manifest_file);
    state->context.backup_time = backups.front().taken_at();
    if (state->expected)
      if (auto created = timestamp_in_name(state->expected->created_at)) state->context.backup_time = *created;
    local_options local = options;
    auto tools = find_binaries(local.binaries);
    local.min_major = read_contents(backups.front(), tools).source_major();
    state->host = local_server::start(local);
    state->target = state->host->restore_target();
    scratch_dir scratch(local.temp_root);
    for (const auto& backup : backups) {
      auto restored = restore_backup(backup, state->target, state->host->binaries(), spec, scratch.path());
      if (!restored.ok) {
        state->failure = backup.path.string() + ": " + restored.summary() + "\n" + restored.stderr_tail;
        break;
      }
    }
  } catch (const std::exception& failure) {
    state->failure = failure.what();
  }
  if (state->expected) state->context.expected = &*state->expected;
  return state;
}

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
  /// Restore `backup` (the newest match when given a directory and glob) with `spec`; call from
  /// the suite's SetUpTestSuite. A backup that cannot be restored fails every test of the suite
  /// with the reason, instead of crashing the test program.
  static void restore(const std::filesystem::path& backup, const restore_spec& spec = {}, const local_options& options = {},
                      const std::string& pattern = "*") {
    std::vector<backup_info> backups;
    try {
      backups.push_back(std::filesystem::is_directory(backup) && !std::filesystem::exists(backup / "toc.dat")
                            ? find_latest(backup, pattern)
                            : inspect_file(backup));
    } catch (const std::exception& failure) {
      state_ = std::make_unique<detail::restored_state>();
      state_->failure = failure.what();
      return;
    }
    state_ = detail::restore_into_new_server(backups, spec, options);
  }

  static void TearDownTestSuite() { state_.reset(); }  // stops the server and deletes its directory

 protected:
  void SetUp() override {
    if (!state_) GTEST_FAIL() << "call restore(...) in SetUpTestSuite";
    if (!state_->failure.empty()) GTEST_FAIL() << "the backup could not be restored: " << state_->failure;
  }

  /// Where the backup was restored; connect with endpoint().conninfo() or libpq_env().
  static const pgdrill::endpoint& endpoint() { return state_->target; }
  /// A connection to the restored database, opened on first use and kept for the suite.
  static pqxx::connection& db() {
    if (!connection_ || connection_state_ != state_.get()) {
      connection_ = std::make_unique<pqxx::connection>(state_->target.conninfo());
      connection_state_ = state_.get();
    }
    return *connection_;
  }
  /// The manifest beside the backup, if there is one.
  static const manifest* backup_manifest() { return state_->expected ? &*state_->expected : nullptr; }

  /// Run one pgdrill assertion, as a GoogleTest assertion result (its message shows expected
  /// and actual): EXPECT_TRUE(check(freshness_assertion{"", "orders", "created_at", 26})).
  static ::testing::AssertionResult check(const assertion& what) {
    auto planned = plan_checks({what}, backup_manifest());
    if (planned.size() != 1 || std::holds_alternative<checksum_assertion>(planned.front().check)) {
      auto results = run_checksums(state_->target, planned);
      for (std::size_t index = 0; index < planned.size(); ++index) {
        auto step = results.count(index) ? results.at(index) : run_check(db(), planned[index], state_->context);
        if (step.result != outcome::passed) return detail::as_assertion(step);
      }
      return ::testing::AssertionSuccess() << planned.size() << " checks passed";
    }
    return detail::as_assertion(run_check(db(), planned.front(), state_->context));
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
  static inline std::unique_ptr<detail::restored_state> state_;
  static inline std::unique_ptr<pqxx::connection> connection_;
  static inline const detail::restored_state* connection_state_ = nullptr;
};

/// One assertion of a scenario file, as a test parameter.
struct scenario_check {
  std::filesystem::path scenario;
  std::size_t index = 0;
  std::string name;
};

/// The scenario's assertions, planned as a drill would (manifest-wide ones, one per table). The
/// backup is located and its manifest read here; it is restored by the first test that runs.
inline std::vector<scenario_check> load_scenario_checks(const std::filesystem::path& file) {
  auto plan = load_scenario(file);
  std::optional<manifest> expected;
  try {
    auto backup = !plan.backup.file.empty() ? plan.backup.file
                  : !plan.backup.files.empty() ? plan.backup.files.front()
                                               : find_latest(plan.backup.directory, plan.backup.pattern).path;
    if (std::filesystem::exists(manifest_path_for(backup))) expected = load_manifest(manifest_path_for(backup));
  } catch (const std::exception&) {  // the tests themselves report a missing backup
  }
  std::vector<scenario_check> checks;
  auto planned = plan_checks(plan.assertions, expected ? &*expected : nullptr);
  for (std::size_t index = 0; index < planned.size(); ++index) checks.push_back({file, index, planned[index].name});
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

/// The fixture behind PGDRILL_SCENARIO_TESTS: restores each scenario's backup once (on first
/// use) and runs its assertions, one per test.
class scenario_checks : public ::testing::TestWithParam<scenario_check> {
 public:
  static void TearDownTestSuite() { restored_.clear(); }

 protected:
  void run_check_of_scenario() {
    const auto& param = GetParam();
    auto plan = load_scenario(param.scenario);
    auto& state = restored_[param.scenario.string()];
    if (!state) {
      std::vector<backup_info> backups;
      try {
        if (!plan.backup.files.empty())
          for (const auto& file : plan.backup.files) backups.push_back(inspect_file(file));
        else
          backups.push_back(plan.backup.file.empty() ? find_latest(plan.backup.directory, plan.backup.pattern)
                                                     : inspect_file(plan.backup.file));
        state = detail::restore_into_new_server(backups, plan.restore, local_options{});
      } catch (const std::exception& failure) {
        state = std::make_unique<detail::restored_state>();
        state->failure = failure.what();
      }
    }
    if (!state->failure.empty()) GTEST_FAIL() << "the backup could not be restored: " << state->failure;
    auto planned = plan_checks(plan.assertions, state->expected ? &*state->expected : nullptr);
    ASSERT_LT(param.index, planned.size()) << "the scenario changed since the tests were listed";
    auto checksums = run_checksums(state->target, {planned[param.index]});
    pqxx::connection connection(state->target.conninfo());
    auto step = checksums.count(0) ? checksums.at(0) : run_check(connection, planned[param.index], state->context);
    EXPECT_TRUE(detail::as_assertion(step));
  }

 private:
  static inline std::map<std::string, std::unique_ptr<detail::restored_state>> restored_;
};

}  // namespace pgdrill::testing

/// Every assertion of a scenario file as its own test: SUITE/scenario.holds/<assertion name>.
#define PGDRILL_SCENARIO_TESTS(suite, scenario_file)                                                       \
  class suite : public ::pgdrill::testing::scenario_checks {};                                             \
  TEST_P(suite, holds) { run_check_of_scenario(); }                                                        \
  INSTANTIATE_TEST_SUITE_P(scenario, suite,                                                                \
                           ::testing::ValuesIn(::pgdrill::testing::load_scenario_checks(scenario_file)),   \
                           ::pgdrill::testing::scenario_check_name)
