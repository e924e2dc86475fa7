#include "support.hpp"

using namespace pgdrill;

namespace {

scenario parse(const std::string& text) { return parse_scenario(nlohmann::json::parse(text), "/base", "test.json"); }

// The usage_error message parse() throws, or "" when it parsed.
std::string error_of(const std::string& text) {
  try {
    parse(text);
  } catch (const usage_error& failure) {
    EXPECT_EQ(failure.code(), exit_code::usage);
    return failure.what();
  }
  return "";
}

const char* minimal_assertions = R"("assertions": [{"type": "row_count", "table": "t", "equals": 1}])";

}  // namespace

TEST(scenario, parses_a_full_scenario_with_paths_relative_to_its_file) {
  auto plan = parse(std::string(R"({"name": "nightly", "description": "d",
    "backup": {"directory": "../backups", "pattern": "*.dump"},
    "provider": "local", "server_settings": {"work_mem": "64MB", "max_connections": 20},
    "restore": {"jobs": 3, "timeout_seconds": 60, "no_owner": false, "single_transaction": true},
    "reports": {"junit": "out/r.xml"}, )") + minimal_assertions + "}");
  EXPECT_EQ(plan.name, "nightly");
  EXPECT_EQ(plan.backup.directory, "/backups");
  EXPECT_EQ(plan.backup.pattern, "*.dump");
  EXPECT_EQ(plan.restore.jobs, 3);
  EXPECT_EQ(plan.restore.timeout, std::chrono::seconds(60));
  EXPECT_FALSE(plan.restore.no_owner);
  EXPECT_TRUE(plan.restore.single_transaction);
  setting_list expected_settings{{"max_connections", "20"}, {"work_mem", "64MB"}};
  EXPECT_EQ(plan.server_settings, expected_settings);
  EXPECT_EQ(*plan.junit, "/base/out/r.xml");
  ASSERT_EQ(plan.assertions.size(), 1U);
  EXPECT_EQ(std::get<row_count_assertion>(plan.assertions[0]).equals, 1);
}

TEST(scenario, unknown_key_is_an_error_with_its_json_path) {
  auto text = error_of(std::string(R"({"name": "n", "backup": {"directory": "d", "patern": "*"}, )") +
                       minimal_assertions + "}");
  EXPECT_NE(text.find("test.json: at /backup/patern: unknown key 'patern'"), std::string::npos) << text;
  EXPECT_NE(text.find("pattern"), std::string::npos) << "lists the known keys: " << text;
}

TEST(scenario, unknown_key_inside_an_assertion_names_its_index) {
  auto text = error_of(R"({"name": "n", "backup": {"file": "f"},
    "assertions": [{"type": "row_count", "table": "t", "equals": 1}, {"type": "row_count", "table": "t", "equal": 1}]})");
  EXPECT_NE(text.find("at /assertions/1"), std::string::npos) << text;
}

TEST(scenario, wrong_type_names_path_and_types) {
  auto text = error_of(R"({"name": "n", "backup": {"file": "f"},
    "assertions": [{"type": "row_count", "table": "t", "equals": "ten"}]})");
  EXPECT_NE(text.find("at /assertions/0/equals: expected an integer, got a string"), std::string::npos) << text;
}

TEST(scenario, rejects_what_cannot_be_a_drill) {
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": []})").find("at /assertions"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(R"({"name": "n", "backup": {"file": "f", "directory": "d"}, )") + minimal_assertions + "}")
                .find("exactly one of 'file', 'directory' or 'files'"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(R"({"backup": {"file": "f"}, )") + minimal_assertions + "}").find("at /name: missing"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(R"({"name": "n", "provider": "cloud", "backup": {"file": "f"}, )") + minimal_assertions + "}")
                .find("'cloud' is not one of"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "row_count", "table": "t"}]})")
                .find("at least one of: equals, min, max"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "rows", "table": "t"}]})")
                .find("at /assertions/0/type: 'rows' is not one of"),
            std::string::npos);
}

TEST(scenario, missing_file_and_bad_json_are_usage_errors) {
  EXPECT_THROW(load_scenario("/nonexistent/scenario.json"), usage_error);
  scratch_dir dir;
  testkit::write_file(dir.path() / "bad.json", "{ not json");
  try {
    load_scenario(dir.path() / "bad.json");
    FAIL() << "expected usage_error";
  } catch (const usage_error& failure) {
    EXPECT_NE(std::string(failure.what()).find("not valid JSON"), std::string::npos);
  }
}

TEST(scenario, shipped_example_scenarios_parse) {
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(PGDRILL_SOURCE_DIR) / "scenarios")) {
    if (entry.path().extension() != ".json" || entry.path().filename().string().find("schema") != std::string::npos)
      continue;
    EXPECT_NO_THROW(load_scenario(entry.path())) << entry.path();
  }
}
