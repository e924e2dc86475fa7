// One scenario, one meaning: the same scenario file through `pgdrill run` and through
// PGDRILL_SCENARIO_TESTS gives the same outcome for every check, on the local and the container
// provider, for a backup that only restores with the scenario's roles, extensions, sql_before.
#include <pugixml.hpp>

#include <map>

#include "support.hpp"

using namespace pgdrill;
using testkit::run_cli;
using testkit::write_file;

namespace {

// A table owned by a role, typed by a domain from another schema, indexed with pg_trgm; dumped
// with -t, so the backup carries none of the three and the scenario must provide them.
const char* source_sql = R"(
  CREATE ROLE parity_owner;
  CREATE SCHEMA types;
  CREATE DOMAIN types.positive AS integer CHECK (VALUE > 0);
  CREATE EXTENSION pg_trgm;
  CREATE TABLE public.orders (id serial PRIMARY KEY, quantity types.positive NOT NULL, note text);
  CREATE INDEX orders_note_trgm ON public.orders USING gin (note gin_trgm_ops);
  INSERT INTO public.orders (quantity, note) SELECT g, 'note ' || g FROM generate_series(1, 500) g;
  ALTER TABLE public.orders OWNER TO parity_owner;)";

class parity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    auto source = testkit::start_server();
    testkit::psql(*source, source_sql);
    testkit::pg_dump(*source, {"-Fc", "-t", "public.orders", "-f", backup().string()});
  }
  static void TearDownTestSuite() { delete workspace_; }
  static std::filesystem::path backup() { return workspace_->path() / "parity.dump"; }

  // The scenario; `provider` is a JSON fragment ("" for local); `with_roles` false leaves out
  // what the backup needs, to show it is needed.
  std::filesystem::path scenario(const std::string& provider, bool with_roles = true) {
    auto file = dir_.path() / "parity.json";
    write_file(file, R"({"name": "parity", )" + provider + R"("backup": {"file": ")" + backup().string() + R"("},
      "server_settings": {"work_mem": "8MB"},
      "restore": {"no_owner": false, "no_privileges": false,)" +
                         (with_roles ? R"( "roles": ["parity_owner"],)" : "") + R"json( "extensions": ["pg_trgm"],
                  "sql_before": "CREATE SCHEMA types; CREATE DOMAIN types.positive AS integer CHECK (VALUE > 0)",
                  "sql_after": "CREATE TABLE after_restore AS SELECT 1 AS marker"},
      "assertions": [
        {"type": "row_count", "table": "orders", "equals": 500},
        {"type": "row_count", "name": "deliberately wrong count", "table": "orders", "equals": 501},
        {"type": "sql", "name": "owner kept", "query": "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'", "expected": "parity_owner"},
        {"type": "sql", "name": "server setting applied", "query": "SHOW work_mem", "expected": "8MB"},
        {"type": "sql", "name": "sql_after ran", "query": "SELECT marker FROM after_restore", "expected": 1},
        {"type": "extensions_present", "extensions": ["pg_trgm"]},
        {"type": "tables_present", "tables": ["orders"], "non_empty": true},
        {"type": "sequences"}]})json");
    return file;
  }

  // check name (as a GoogleTest name) -> passed, from `pgdrill run`'s JSON report.
  std::map<std::string, bool> cli_outcomes(const std::filesystem::path& file, int& exit_code) {
    auto json = dir_.path() / "report.json";
    auto ran = run_cli({"run", file.string(), "--junit", (dir_.path() / "cli.xml").string(), "--json", json.string()});
    exit_code = ran.exit_code;
    std::map<std::string, bool> outcomes;
    auto report = nlohmann::json::parse(testkit::read_file(json));
    for (const auto& check : report["checks"])
      outcomes[pgdrill::testing::test_name(check["name"])] = check["result"] == "passed";
    EXPECT_FALSE(outcomes.empty()) << ran.output;
    return outcomes;
  }

  // test name -> passed, from the PGDRILL_SCENARIO_TESTS binary's GoogleTest XML.
  std::map<std::string, bool> gtest_outcomes(const std::filesystem::path& file, int& exit_code) {
    auto xml = dir_.path() / "gtest.xml";
    command cmd(PGDRILL_PARITY_GTEST_PATH, {"--gtest_output=xml:" + xml.string()});
    cmd.with_env({{"PGDRILL_PARITY_SCENARIO", file.string()}});
    auto ran = run(cmd, run_options::within(std::chrono::minutes(10)));
    exit_code = ran.status.code;
    pugi::xml_document document;
    EXPECT_TRUE(document.load_file(xml.c_str())) << ran.out << ran.err_tail;
    std::map<std::string, bool> outcomes;
    for (const auto& test : document.select_nodes("//testcase")) {
      std::string name = test.node().attribute("name").value();
      outcomes[name.substr(name.find('/') + 1)] = !test.node().child("failure");
    }
    return outcomes;
  }

  void expect_same_outcomes(const std::string& provider) {
    auto file = scenario(provider);
    int cli_exit = -1, gtest_exit = -1;
    auto cli = cli_outcomes(file, cli_exit);
    auto gtest = gtest_outcomes(file, gtest_exit);
    EXPECT_EQ(cli_exit, 1) << "one check fails on purpose";
    EXPECT_NE(gtest_exit, 0);
    EXPECT_EQ(cli, gtest);
    EXPECT_TRUE(cli["owner_kept"] && cli["server_setting_applied"] && cli["sql_after_ran"] && cli["backup_size"])
        << "the restore used the scenario's roles, settings and hooks";
    EXPECT_FALSE(cli["deliberately_wrong_count"]);
  }

  scratch_dir dir_;
  static inline scratch_dir* workspace_ = nullptr;
};

}  // namespace

TEST_F(parity, the_backup_needs_the_scenarios_roles) {
  auto ran = run_cli({"run", scenario("", false).string(), "--junit", (dir_.path() / "no-roles.xml").string()});
  EXPECT_EQ(ran.exit_code, 1) << ran.output;
  EXPECT_NE(ran.output.find("missing role"), std::string::npos) << ran.output;
}

TEST_F(parity, run_and_scenario_tests_agree_on_the_local_provider) { expect_same_outcomes(""); }

TEST_F(parity, run_and_scenario_tests_agree_on_the_container_provider) {
  expect_same_outcomes(R"("provider": "container", "container": {"engine": "podman", "image": "localhost/pgdrill-test-postgres:{major}"}, )");
}
