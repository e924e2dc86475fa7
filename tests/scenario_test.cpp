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

// Restoring as the given role on a shared server is a choice the scenario states, off by default.
TEST(scenario, the_existing_providers_given_role_is_used_only_when_the_scenario_says_so) {
  EXPECT_FALSE(parse(std::string(R"({"name": "n", "backup": {"file": "f"}, )") + minimal_assertions + "}").restore_as_given_role);
  EXPECT_TRUE(parse(std::string(R"({"name": "n", "backup": {"file": "f"}, "existing": {"restore_as_given_role": true}, )") +
                    minimal_assertions + "}")
                  .restore_as_given_role);
  auto text = error_of(std::string(R"({"name": "n", "backup": {"file": "f"}, "existing": {"as_superuser": true}, )") +
                       minimal_assertions + "}");
  EXPECT_NE(text.find("at /existing/as_superuser: unknown key"), std::string::npos) << text;
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

// The JSON Schema shipped for editors agrees with the parser on the examples and on typos.
TEST(scenario, schema_accepts_the_examples_and_rejects_unknown_keys) {
  auto dir = std::filesystem::path(PGDRILL_SOURCE_DIR) / "scenarios";
  scratch_dir work;
  testkit::write_file(work.path() / "typo.json", R"({"name": "n", "backup": {"file": "f"},
    "assertions": [{"type": "row_count", "table": "t", "equal": 1}]})");
  std::vector<std::string> args{std::string(PGDRILL_SOURCE_DIR) + "/tests/schema_check.py",
                                (dir / "pgdrill-scenario.schema.json").string(), (work.path() / "typo.json").string()};
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".json" && entry.path().filename() != "pgdrill-scenario.schema.json")
      args.push_back(entry.path().string());
  auto result = run(command("/usr/bin/python3", args));
  ASSERT_TRUE(result.ok()) << result.err_tail;
  EXPECT_NE(result.out.find("invalid " + (work.path() / "typo.json").string()), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("valid " + (dir / "demo.json").string()), std::string::npos) << result.out;
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), static_cast<long>(args.size()) - 2);
  EXPECT_EQ(result.out.find("invalid " + dir.string()), std::string::npos) << "every example is valid: " << result.out;
}

TEST(scenario, parses_every_assertion_kind) {
  auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [
    {"type": "row_count", "expect": "manifest", "except": ["public.log"]},
    {"type": "tables_present", "tables": ["a", "b"], "non_empty": true},
    {"type": "checksum", "table": "a", "columns": ["id"], "equals": "0123456789abcdef0123456789abcdef"},
    {"type": "sql", "query": "SELECT 1", "op": ">=", "expected": 1, "timeout_seconds": 5},
    {"type": "sql", "query": "SELECT 1 WHERE false", "expect_no_rows": true},
    {"type": "sequences"},
    {"type": "extensions_present", "extensions": ["pgcrypto"]},
    {"type": "freshness", "table": "t", "column": "at", "max_age_hours": 26}]})");
  ASSERT_EQ(plan.assertions.size(), 8U);
  EXPECT_TRUE(std::get<row_count_assertion>(plan.assertions[0]).from_manifest);
  EXPECT_EQ(std::get<checksum_assertion>(plan.assertions[2]).columns, std::vector<std::string>{"id"});
  EXPECT_EQ(std::get<sql_assertion>(plan.assertions[3]).op, ">=");
  EXPECT_TRUE(std::get<sql_assertion>(plan.assertions[4]).expect_no_rows);
  EXPECT_EQ(std::get<freshness_assertion>(plan.assertions[7]).max_age_hours, 26);
}

TEST(scenario, rejects_contradictory_assertions) {
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "checksum", "table": "t", "equals": "xyz"}]})")
                .find("32 lowercase hex digits"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "sql", "query": "SELECT 1"}]})")
                .find("exactly one of: expected"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "row_count", "expect": "manifest", "equals": 1}]})")
                .find("takes the count from the manifest"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "row_count", "table": "t", "equals": 1, "except": ["x"]}]})")
                .find("'except' goes with"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "sql", "query": "SELECT 1", "expected": [1]}]})")
                .find("at /assertions/0/expected"),
            std::string::npos);
}

TEST(scenario, plans_manifest_assertions_one_per_table) {
  manifest expected;
  expected.tables = {{"public.a", {"id"}, 10, std::string(32, '1'), ""}, {"public.b", {"id"}, 20, std::string(32, '2'), ""},
                     {"public.log", {"id"}, 30, std::string(32, '3'), ""}};
  auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [
    {"type": "row_count", "expect": "manifest", "except": ["log"]},
    {"type": "checksum", "table": "b", "expect": "manifest"},
    {"type": "tables_present", "expect": "manifest"},
    {"type": "row_count", "table": "public.a", "equals": 10}]})");
  auto planned = plan_scenario_checks(plan, &expected);
  std::vector<std::string> names;
  for (const auto& check : planned) names.push_back(check.name);
  EXPECT_EQ(names, (std::vector<std::string>{"row_count public.a", "row_count public.b", "checksum public.b", "tables_present",
                                             "row_count public.a #2", "not_empty", "roles"}));
  EXPECT_EQ(std::get<row_count_assertion>(planned[1].check).equals, 20);
  EXPECT_EQ(std::get<checksum_assertion>(planned[2].check).equals, std::string(32, '2'));
  EXPECT_EQ(std::get<tables_present_assertion>(planned[3].check).tables.size(), 3U);
  auto without = plan_checks(plan.assertions, nullptr);
  EXPECT_NE(without[0].problem.find("no manifest"), std::string::npos);
}

// Every drill refuses an empty restore and shows the roles its restore lacked: a not_empty and
// a roles check are planned unless the scenario has them.
TEST(scenario, every_plan_has_one_not_empty_and_one_roles_check) {
  auto implicit = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "row_count", "table": "t", "equals": 1}]})");
  auto planned = plan_scenario_checks(implicit, nullptr);
  ASSERT_EQ(planned.size(), 3U);
  EXPECT_EQ(planned[1].kind, "not_empty");
  EXPECT_FALSE(std::get<not_empty_assertion>(planned[1].check).allow_empty);
  EXPECT_EQ(planned[2].kind, "roles");
  EXPECT_TRUE(std::get<roles_assertion>(planned[2].check).ignore.empty());
  auto explicit_ones = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "roles", "ignore": ["app", "*"]},
                                 {"type": "not_empty", "allow_empty": true}]})");
  planned = plan_scenario_checks(explicit_ones, nullptr);
  ASSERT_EQ(planned.size(), 2U);
  EXPECT_EQ(plan_checks(implicit.assertions, nullptr).size(), 1U) << "a single check (the GoogleTest harness's check()) is itself only";
  EXPECT_EQ(std::get<roles_assertion>(planned[0].check).ignore, (std::vector<std::string>{"app", "*"}));
  EXPECT_TRUE(std::get<not_empty_assertion>(planned[1].check).allow_empty);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "roles", "ignore": "app"}]})").find("/assertions/0/ignore"),
            std::string::npos);
}

// The CI templates users copy, and the GitHub Action, are valid YAML with the parts they rely on.
TEST(ci_templates, parse_and_carry_schedule_reports_history_and_artifacts) {
  auto source = std::string(PGDRILL_SOURCE_DIR) + "/";
  auto check = [&](const std::string& file, const std::string& python_assertions) {
    auto result = run(command("/usr/bin/python3", {"-c", "import sys, yaml\nds = list(yaml.safe_load_all(open(sys.argv[1])))\nd = ds[0]\n" +
                                                           python_assertions + "\nprint('ok')",
                                                   source + file}));
    EXPECT_EQ(result.out, "ok\n") << file << ": " << result.err_tail;
  };
  check("ci/templates/github-actions.yml",
        "on = d[True] if True in d else d['on']\nassert on['schedule'][0]['cron']\nassert 'workflow_dispatch' in on\n"
        "assert d['permissions']['checks'] == 'write'\n"
        "steps = d['jobs']['drill']['steps']\nassert any('pgdrill@' in s.get('uses', '') for s in steps)\n"
        "assert any('--provider container' in s.get('with', {}).get('run-args', '') for s in steps)\n"
        "assert any('junit' in s.get('uses', '') for s in steps)");
  check("action.yml",
        "assert d['runs']['using'] == 'composite'\nassert set(d['outputs']) >= {'verdict', 'exit-code', 'restore-seconds'}\n"
        "uses = [s.get('uses', '') for s in d['runs']['steps']]\n"
        "assert any('upload-artifact' in u for u in uses) and any('cache/save' in u for u in uses)\n"
        "upload = [s for s in d['runs']['steps'] if 'upload-artifact' in s.get('uses', '')][0]\n"
        "assert 'artifact-name' in upload['with']['name'] and upload['if'] == 'always()'");
  check("ci/templates/gitlab-ci.yml",
        "job = d['restore-drill']\nassert job['artifacts']['reports']['junit']\n"
        "assert any('schedule' in r['if'] for r in job['rules'])\n"
        "assert any('dind' in s['name'] for s in job['services']) and job['variables']['DOCKER_HOST'].startswith('tcp://docker')\n"
        "assert 'pgdrill-history/' in job['cache']['paths']");
  check("ci/templates/k8s-cronjob.yaml",
        "assert d['kind'] == 'CronJob' and d['spec']['concurrencyPolicy'] == 'Forbid'\n"
        "pod = d['spec']['jobTemplate']['spec']['template']['spec']\nassert pod['securityContext']['fsGroup'] == 999\n"
        "assert pod['securityContext']['runAsNonRoot']\n"
        "assert [v for v in pod['volumes'] if v['name'] == 'scratch'][0]['emptyDir']['sizeLimit']\n"
        "assert ds[1]['kind'] == 'PersistentVolumeClaim'");
}

// The kinds come from one list: each parses under its own name, and every name is listed.
TEST(scenario, every_assertion_kind_parses_under_its_own_name) {
  std::map<std::string, std::string> minimal{
      {"row_count", R"("table": "t", "equals": 1)"},   {"tables_present", R"("tables": ["t"])"},
      {"checksum", R"("table": "t", "equals": "00000000000000000000000000000000")"},
      {"sql", R"("query": "SELECT 1", "expected": 1)"}, {"sequences", ""},
      {"extensions_present", R"("extensions": ["x"])"}, {"freshness", R"("table": "t", "column": "c", "max_age_hours": 1)"},
      {"large_objects", R"("expect": "manifest")"}, {"materialized_views", R"("expect": "manifest")"},
      {"schema_objects", R"("expect": "manifest")"}, {"roles", R"("ignore": ["app"])"},
      {"schema", R"("reference": ")" PGDRILL_SOURCE_DIR R"(/tests/fixtures/nasty.sql")"}, {"amcheck", ""},
      {"constraints_valid", ""}, {"read_all", ""}, {"thorough", ""}, {"not_empty", R"("allow_empty": true)"},
      {"drift", R"("max_row_drop": 0.5)"}, {"collations", R"("expect": "manifest")"},
      {"snapshot", R"("exclude": ["audit_logs"])"}};
  ASSERT_EQ(assertion_kinds().size(), std::variant_size_v<assertion>);
  for (const auto& kind : assertion_kinds()) {
    ASSERT_TRUE(minimal.count(kind)) << "no example for " << kind;
    auto body = minimal[kind];
    auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": ")" + kind + "\"" +
                      (body.empty() ? "" : ", " + body) + "}]}");
    EXPECT_EQ(kind_of(plan.assertions.at(0)), kind);
    EXPECT_EQ(name_of(plan.assertions.at(0)).rfind(kind, 0), 0U) << name_of(plan.assertions.at(0));
  }
}

TEST(scenario, manifest_only_kinds_say_they_need_the_manifest) {
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "large_objects"}]})")
                .find("large_objects compares with the manifest"),
            std::string::npos);
  auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "sequences", "expect": "manifest"}]})");
  EXPECT_EQ(name_of(plan.assertions.at(0)), "sequences as in the manifest");
  manifest old_format;
  old_format.tables = {{"public.a", {"id"}, 1, std::string(32, '1'), ""}};
  EXPECT_NE(plan_checks(plan.assertions, &old_format).at(0).problem.find("records no large objects"), std::string::npos);
  EXPECT_NE(plan_checks(plan.assertions, nullptr).at(0).problem.find("no manifest"), std::string::npos);
  auto collations = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "collations", "expect": "manifest"}]})");
  EXPECT_NE(plan_checks(collations.assertions, &old_format).at(0).problem.find("records no collations"), std::string::npos);
  old_format.collations.emplace();
  EXPECT_EQ(plan_checks(collations.assertions, &old_format).at(0).problem, "");
  auto schema = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "schema", "expect": "manifest"}]})");
  EXPECT_NE(plan_checks(schema.assertions, &old_format).at(0).problem.find("records no schema reference"), std::string::npos);
  EXPECT_NE(plan_checks(schema.assertions, nullptr).at(0).problem.find("no manifest"), std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "schema"}]})").find("give either 'reference'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "schema", "reference": "x.ref",
                        "expect": "manifest"}]})")
                .find("give either 'reference'"),
            std::string::npos);
}

TEST(scenario, providers_come_from_one_table) {
  EXPECT_EQ(provider_names(), (std::vector<std::string>{"local", "container", "existing", "auto"}));
  EXPECT_EQ(provider_named("auto").kind, provider_kind::automatic);
  EXPECT_THROW(provider_named("cloud"), usage_error);
  EXPECT_EQ(parse(R"({"name": "n", "provider": "existing", "backup": {"file": "f"}, )" + std::string(minimal_assertions) + "}")
                .provider,
            "existing");
}

// Table names with dots and quotes split back the way they were written.
TEST(names, parts_with_dots_or_quotes_are_quoted_and_split_back) {
  EXPECT_EQ(detail::table_name("odd.schema", "dotted.table"), "\"odd.schema\".\"dotted.table\"");
  EXPECT_EQ(detail::table_name("Upper Case", "say \"hi\""), "Upper Case.\"say \"\"hi\"\"\"");
  EXPECT_EQ(detail::split_table("\"odd.schema\".\"dotted.table\""), std::make_pair(std::string("odd.schema"), std::string("dotted.table")));
  EXPECT_EQ(detail::split_table("Upper Case.\"say \"\"hi\"\"\""), std::make_pair(std::string("Upper Case"), std::string("say \"hi\"")));
  EXPECT_EQ(detail::split_table("orders"), std::make_pair(std::string("public"), std::string("orders")));
  EXPECT_EQ(detail::qualified_table("orders"), "public.orders");
  EXPECT_EQ(detail::quoted_table("\"odd.schema\".t"), "\"odd.schema\".\"t\"");
}

TEST(names, a_tables_content_is_its_own_rows_but_a_partitioned_tables_is_its_partitions) {
  EXPECT_EQ(detail::content_source("public.animals", 'r'), "ONLY \"public\".\"animals\"");
  EXPECT_EQ(detail::content_source("public.events", 'p'), "\"public\".\"events\"");
}

// A drift assertion is planned as one check per limit it gives, each named after its aspect.
TEST(scenario, drift_is_planned_per_aspect_and_rejects_limits_that_mean_nothing) {
  auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "drift", "max_row_drop": 0.2,
                        "max_size_drop": 0.5, "max_restore_growth": 3, "schema": "warn"}]})");
  std::vector<std::string> names;
  for (const auto& check : plan_checks(plan.assertions, nullptr)) names.push_back(check.name);
  EXPECT_EQ(names, (std::vector<std::string>{"drift rows", "drift backup size", "drift restore time", "drift schema"}));
  auto planned = plan_checks(plan.assertions, nullptr);
  EXPECT_EQ(std::get<drift_assertion>(planned[0].check).limit, 0.2);
  EXPECT_TRUE(std::get<drift_assertion>(planned[3].check).warn_only);
  auto named = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "drift", "name": "month", "schema": "fail"}]})");
  EXPECT_EQ(plan_checks(named.assertions, nullptr).at(0).name, "month schema");
  for (const auto& [body, pointer] : std::vector<std::pair<std::string, std::string>>{
           {R"("max_row_drop": 50)", "/assertions/0/max_row_drop"},
           {R"("max_restore_growth": 0.5)", "/assertions/0/max_restore_growth"},
           {R"("schema": "maybe")", "/assertions/0/schema"},
           {"", "at least one of"}})
    EXPECT_NE(error_of(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "drift")" + (body.empty() ? "" : ", " + body) +
                       "}]}")
                  .find(pointer),
              std::string::npos)
        << body;
}

// The thorough preset is the integrity kinds, and the collations where a manifest recorded them.
TEST(scenario, thorough_plans_the_integrity_kinds_and_collations_with_a_manifest) {
  auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "thorough"}]})");
  auto kinds = [](const check_plan& planned) {
    std::vector<std::string> names;
    for (const auto& check : planned) names.push_back(check.kind);
    return names;
  };
  EXPECT_EQ(kinds(plan_checks(plan.assertions, nullptr)), (std::vector<std::string>{"amcheck", "constraints_valid", "read_all"}));
  manifest recorded;
  recorded.collations.emplace();
  EXPECT_EQ(kinds(plan_checks(plan.assertions, &recorded)),
            (std::vector<std::string>{"amcheck", "constraints_valid", "read_all", "collations"}));
}

// A number past its type was read wrapped: "min": 18446744073709551615 became -1 and the check
// passed whatever the table held. Now it is a scenario error (exit 3), as are durations past what
// the clocks measure and more restore jobs than a server takes.
TEST(scenario, numbers_past_their_type_or_limit_are_errors_never_wrapped) {
  auto with_assertion = [](const std::string& assertion) {
    return R"({"name": "n", "backup": {"file": "f"}, "assertions": [)" + assertion + "]}";
  };
  EXPECT_NE(error_of(with_assertion(R"({"type": "row_count", "table": "t", "min": 18446744073709551615})"))
                .find("at /assertions/0/min: out of range: 18446744073709551615"),
            std::string::npos);
  EXPECT_NE(error_of(with_assertion(R"({"type": "row_count", "table": "t", "equals": 9223372036854775808})")).find("out of range"),
            std::string::npos);
  EXPECT_EQ(error_of(with_assertion(R"({"type": "row_count", "table": "t", "max": 9223372036854775807})")), "");
  EXPECT_NE(error_of(with_assertion(R"({"type": "sql", "query": "SELECT 1", "expected": 1, "timeout_seconds": 1e10})"))
                .find("at most 86400"),
            std::string::npos);
  auto with_restore = [](const std::string& restore) {
    return R"({"name": "n", "backup": {"file": "f"}, "restore": )" + restore + R"(, "assertions": [{"type": "not_empty"}]})";
  };
  EXPECT_NE(error_of(with_restore(R"({"timeout_seconds": 9300000000})")).find("must be 0 (no limit) to 31536000"), std::string::npos);
  EXPECT_NE(error_of(with_restore(R"({"jobs": 4294967297})")).find("at /restore/jobs: out of range"), std::string::npos);
  EXPECT_NE(error_of(with_restore(R"({"jobs": 100000})")).find("must be 0 (all cores) to 1000"), std::string::npos);
}

// The plan is a value: every check has its own id, found by it; checksums, drift aspects and the
// unexpanded manifest-wide checks are read from it, not from positions.
TEST(check_plan, ids_are_unique_and_find_their_checks) {
  manifest expected;
  expected.tables = {{"public.a", {"id"}, 10, std::string(32, 'a'), ""}, {"public.b", {"id"}, 20, std::string(32, 'b'), ""}};
  auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [
    {"type": "checksum", "expect": "manifest"},
    {"type": "row_count", "table": "public.a", "equals": 10}, {"type": "row_count", "table": "public.a", "equals": 10},
    {"type": "drift", "max_restore_growth": 2, "schema": "warn"}]})");
  auto planned = plan_scenario_checks(plan, &expected);
  std::set<check_id> ids;
  for (const auto& check : planned) EXPECT_TRUE(ids.insert(check.name).second) << check.name;
  ASSERT_NE(planned.find("row_count public.a #2"), nullptr);
  EXPECT_EQ(planned.find("row_count public.a #2")->kind, "row_count");
  EXPECT_EQ(planned.find("no such check"), nullptr);
  auto copy = planned;
  EXPECT_EQ(copy.find("row_count public.a #2"), &copy[3]) << "a copy finds its own checks";
  auto sums = planned.checksums();
  ASSERT_EQ(sums.size(), 2U);
  EXPECT_EQ(sums[1].check, "checksum public.b");
  EXPECT_EQ(sums[1].table, "public.b");
  EXPECT_EQ(std::get<checksum_assertion>(planned.find(sums[1].check)->check).equals, std::string(32, 'b'));
  EXPECT_EQ(detail::drift_aspects(planned), (std::set<drift_aspect>{drift_aspect::restore_time, drift_aspect::schema}));
  EXPECT_TRUE(detail::times_the_restore(planned)) << "no checksum may then compete with the restore";
  EXPECT_FALSE(planned.has_unexpanded());
  auto without_manifest = plan_scenario_checks(plan, nullptr);
  EXPECT_TRUE(without_manifest.has_unexpanded());
  EXPECT_TRUE(without_manifest.checksums().empty()) << "a checksum without its manifest cannot run";
}

// A plan is the same value each time it is made from the same scenario and manifest.
TEST(check_plan, planning_twice_gives_the_same_ids) {
  manifest expected;
  expected.tables = {{"public.a", {"id"}, 10, std::string(32, 'a'), ""}};
  auto plan = parse(R"({"name": "n", "backup": {"file": "f"}, "assertions": [{"type": "row_count", "expect": "manifest"},
    {"type": "thorough"}, {"type": "row_count", "table": "public.a", "equals": 10}]})");
  std::vector<check_id> first, second;
  for (const auto& check : plan_scenario_checks(plan, &expected)) first.push_back(check.name);
  for (const auto& check : plan_scenario_checks(plan, &expected)) second.push_back(check.name);
  EXPECT_EQ(first, second);
  EXPECT_EQ(first, (std::vector<check_id>{"row_count public.a", "amcheck", "constraints_valid", "read_all", "row_count public.a #2",
                                          "not_empty", "roles"}));
}
