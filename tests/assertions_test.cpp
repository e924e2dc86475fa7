// Every assertion kind through the runner: one scenario that passes and one that fails, each
// checked for its exit code and message.
#include "support.hpp"

using namespace pgdrill;
using testkit::run_cli;

namespace {

// One backup of a source with every feature the assertions look at, shared by the suite.
class assertions : public ::testing::TestWithParam<std::tuple<std::string, std::string, std::string, std::string, int>> {
 protected:
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    auto source = testkit::start_demo_source();
    testkit::psql(*source, "CREATE EXTENSION pg_trgm; CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz);"
                           "INSERT INTO events (at) SELECT timestamptz '2026-02-11 16:00:00+00' - i * interval '1 minute'"
                           " FROM generate_series(1, 100) i");
    customers_checksum_ = checksum_connection(source->admin()).checksum("customers").digest;
    // The name's timestamp is the backup's time: 8 hours after the newest event.
    backup_ = workspace_->path() / "shop_2026-02-12_00-00-00.dump";
    testkit::pg_dump(*source, {"-Fc", "-f", backup_.string()});
    testkit::psql(*source, "SELECT setval('events_id_seq', 3)");
    reset_backup_ = workspace_->path() / "reset_2026-02-12_00-00-00.dump";
    testkit::pg_dump(*source, {"-Fc", "-f", reset_backup_.string()});
  }
  static void TearDownTestSuite() { delete workspace_; }

  testkit::cli_result drill(const std::string& assertion_json, const std::filesystem::path& backup) {
    auto file = dir_.path() / "scenario.json";
    testkit::write_file(file, R"({"name": "kinds", "backup": {"file": ")" + backup.string() + R"("}, "assertions": [)" +
                                  assertion_json + "]}");
    return run_cli({"run", file.string(), "--junit", (dir_.path() / "report.xml").string()});
  }

  static inline scratch_dir* workspace_ = nullptr;
  static inline std::filesystem::path backup_, reset_backup_;
  static inline std::string customers_checksum_;
  scratch_dir dir_;
};

std::string substitute(std::string text, const std::string& checksum) {
  auto at = text.find("CHECKSUM");
  if (at != std::string::npos) text.replace(at, 8, checksum);
  return text;
}

}  // namespace

TEST_P(assertions, passing_and_failing_scenarios) {
  auto [kind, passing, failing, message, failing_exit] = GetParam();
  auto pass = drill(substitute(passing, customers_checksum_), backup_);
  EXPECT_EQ(pass.exit_code, 0) << pass.output;
  EXPECT_NE(pass.output.find("PASS   " + kind), std::string::npos) << pass.output;
  auto fail = drill(substitute(failing, customers_checksum_), kind == "sequences" ? reset_backup_ : backup_);
  EXPECT_EQ(fail.exit_code, failing_exit) << fail.output;
  EXPECT_NE(fail.output.find(message), std::string::npos) << message << " in:\n" << fail.output;
}

INSTANTIATE_TEST_SUITE_P(
    kinds, assertions,
    ::testing::Values(
        std::make_tuple("row_count", R"({"type": "row_count", "table": "customers", "equals": 1000})",
                        R"({"type": "row_count", "table": "customers", "min": 1001})",
                        "public.customers: expected >= 1001 rows, got 1000", 1),
        std::make_tuple("tables_present", R"({"type": "tables_present", "tables": ["customers", "orders"], "non_empty": true})",
                        R"({"type": "tables_present", "tables": ["customers", "invoices"]})",
                        "missing from the restore: public.invoices", 1),
        std::make_tuple("checksum", R"({"type": "checksum", "table": "customers", "equals": "CHECKSUM"})",
                        R"({"type": "checksum", "table": "customers", "equals": "00000000000000000000000000000000"})",
                        "public.customers: content differs from the expected checksum", 1),
        std::make_tuple("orders are all there", R"({"type": "sql", "name": "orders are all there", "query": "SELECT count(*) FROM orders", "op": ">=", "expected": 5000})",
                        R"({"type": "sql", "name": "orders are all there", "query": "SELECT count(*) FROM orders", "expected": 1})",
                        "expected = 1, got 5000", 1),
        std::make_tuple("no big orders", R"({"type": "sql", "name": "no big orders", "query": "SELECT id FROM orders WHERE amount > 1000", "expect_no_rows": true})",
                        R"({"type": "sql", "name": "no big orders", "query": "SELECT id, amount FROM orders WHERE amount > 50 ORDER BY id", "expect_no_rows": true})",
                        "expected no rows, got", 1),
        std::make_tuple("read only", R"({"type": "sql", "name": "read only", "query": "SELECT 'yes'", "expected": "yes"})",
                        R"({"type": "sql", "name": "read only", "query": "DELETE FROM orders RETURNING 1", "expected": 1})",
                        "read-only transaction", 2),
        std::make_tuple("sequences", R"({"type": "sequences"})", R"({"type": "sequences"})",
                        "events_id_seq is at 3 but events.id reaches 100", 1),
        std::make_tuple("extensions_present", R"({"type": "extensions_present", "extensions": ["pg_trgm"]})",
                        R"({"type": "extensions_present", "extensions": ["pg_trgm", "postgis"]})",
                        "extensions missing from the restore: postgis", 1),
        std::make_tuple("freshness", R"({"type": "freshness", "table": "events", "column": "at", "max_age_hours": 9})",
                        R"({"type": "freshness", "table": "events", "column": "at", "max_age_hours": 1})",
                        "8.0h before the backup), more than 1.0h: the data is stale", 1)),
    [](const auto& info) { return pgdrill::testing::test_name(std::get<0>(info.param)); });
