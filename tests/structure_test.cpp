// The structure of a restore, not only its rows: a schema reference taken on the source names
// every object a backup lost or changed; amcheck finds a corrupted index in the restored
// cluster; constraints restored NOT VALID are checked row by row; an empty restore never
// passes. Each on real dumps of tests/fixtures/nasty.sql (plus a NOT VALID foreign key and an
// enum of its own), made by pg_dump from a real server.
#include "support.hpp"

using namespace pgdrill;
using namespace pgdrill::testkit;

namespace {

// The base database and one copy per change, each dumped in custom format, and the base's
// schema reference taken by `pgdrill schema`.
class structure : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    source_ = start_server().release();
    psql(*source_, "CREATE DATABASE base");
    auto psql_tool = find_binaries(binary_search::from_environment()).tool("psql").string();
    auto loaded = run_captured(command(psql_tool, {"-X", "-q", "-v", "ON_ERROR_STOP=1", "-f",
                                                   std::string(PGDRILL_SOURCE_DIR) + "/tests/fixtures/nasty.sql", "-c", extras})
                                   .with_env(source_->admin().with_database("base").libpq_env()));
    ASSERT_EQ(loaded.exit_code, 0) << loaded.output;
    auto taken = run_captured(command(PGDRILL_RUNNER_PATH, {"schema", "--out", reference().string()})
                                  .with_env(source_->admin().with_database("base").libpq_env()));
    ASSERT_EQ(taken.exit_code, 0) << taken.output;
  }
  static void TearDownTestSuite() {
    delete source_;
    delete workspace_;
  }

  // A copy of the base with `change` applied, dumped; its path.
  static std::filesystem::path dump_changed(const std::string& name, const std::string& change) {
    psql(*source_, "CREATE DATABASE " + name + " TEMPLATE base");
    if (!change.empty()) psql(*source_, change, name);
    auto file = workspace_->path() / (name + ".dump");
    pg_dump(*source_, {"-Fc", "-f", file.string()}, name);
    return file;
  }
  static std::filesystem::path reference() { return workspace_->path() / "base.schema.ref"; }

  // `pgdrill dump` of `database` (the backup with its manifest) into a directory of its own; the backup.
  static std::filesystem::path dump_by_runner(const std::string& database, const std::vector<std::string>& pg_dump_args = {}) {
    auto out = workspace_->path() / ("manifested_" + database);
    std::vector<std::string> args{"dump", "--out", out.string(), "--name", database, "--"};
    args.insert(args.end(), pg_dump_args.begin(), pg_dump_args.end());
    auto dumped = run_captured(command(PGDRILL_RUNNER_PATH, args).with_env(source_->admin().with_database(database).libpq_env()));
    EXPECT_EQ(dumped.exit_code, 0) << dumped.output;
    for (const auto& entry : std::filesystem::directory_iterator(out))
      if (entry.path().extension() == ".dump") return entry.path();
    throw std::runtime_error("pgdrill dump wrote no backup into " + out.string());
  }

  static drill_result drill(const std::filesystem::path& backup, const std::string& assertions, const std::string& restore = "{}",
                            const std::string& reports = "{}") {
    auto document = nlohmann::json::parse(R"({"name": "structure", "backup": {"file": ")" + backup.string() +
                                          R"("}, "hygiene": {"min_size_bytes": 0}, "restore": )" + restore + R"(, "assertions": )" +
                                          assertions + R"(, "reports": )" + reports + "}");
    return run_drill(parse_scenario(document, workspace_->path(), "structure test"));
  }
  static const step_result& check_named(const drill_result& result, const std::string& name) {
    for (const auto& step : result.checks)
      if (step.name == name) return step;
    throw std::runtime_error("no check " + name + " in\n" + drill_report(result));
  }

  static inline const std::string extras =
      "CREATE TYPE level AS ENUM ('low', 'mid', 'high'); CREATE TABLE tasks (id integer PRIMARY KEY, lvl level, owner_id integer);"
      "INSERT INTO tasks SELECT g, 'mid', g FROM generate_series(1, 20) g;"
      "CREATE TABLE owners (id integer PRIMARY KEY); INSERT INTO owners SELECT generate_series(1, 20);";
  static inline scratch_dir* workspace_ = nullptr;
  static inline local_server* source_ = nullptr;
};

}  // namespace

TEST_F(structure, the_unchanged_backup_matches_its_reference_and_passes_every_integrity_check) {
  auto result = drill(dump_changed("unchanged", ""),
                      R"([{"type": "schema", "reference": ")" + reference().string() + R"("}, {"type": "thorough"}])");
  EXPECT_EQ(result.verdict(), exit_code::passed) << drill_report(result);
  EXPECT_EQ(check_named(result, "schema").message, "the schema matches base.schema.ref");
  EXPECT_NE(check_named(result, "amcheck").message.find("B-tree indexes"), std::string::npos);
  EXPECT_EQ(check_named(result, "constraints_valid").message, "checked 0 NOT VALID constraints");
  EXPECT_NE(check_named(result, "read_all").message.find("rows"), std::string::npos);
}

// Each change to the source since the reference was taken fails the schema check naming it.
TEST_F(structure, every_change_since_the_reference_is_named) {
  struct change {
    std::string name, sql, expected;
  };
  const std::vector<change> changes{
      {"dropped_column", "ALTER TABLE tasks DROP COLUMN owner_id", "missing column public.tasks.owner_id: integer"},
      {"changed_type", "ALTER TABLE tasks ALTER COLUMN owner_id TYPE bigint",
       "changed column public.tasks.owner_id: integer -> now: bigint"},
      {"dropped_index", "DROP INDEX prices_net", "missing index public.prices_net"},
      {"changed_view", "CREATE OR REPLACE VIEW dog_view AS SELECT id, name FROM dogs WHERE id > 10",
       "changed view public.dog_view: SELECT dogs.id, dogs.name FROM public.dogs; -> now: SELECT dogs.id, dogs.name FROM public.dogs WHERE"},
      {"dropped_trigger", "DROP TRIGGER prices_touch ON prices", "missing trigger public.prices.prices_touch"},
      {"dropped_policy", "DROP POLICY awkward_all ON awkward", "missing policy public.awkward.awkward_all"},
      {"enum_label_removed",
       "ALTER TABLE tasks ALTER COLUMN lvl TYPE text; DROP TYPE level; CREATE TYPE level AS ENUM ('low', 'high');"
       "ALTER TABLE tasks ALTER COLUMN lvl TYPE level USING NULL",
       "changed type public.level: enum ('low', 'mid', 'high') -> now: enum ('low', 'high')"},
  };
  for (const auto& [name, sql, expected] : changes) {
    auto result = drill(dump_changed(name, sql), R"([{"type": "schema", "reference": ")" + reference().string() + R"("}])");
    EXPECT_EQ(result.verdict(), exit_code::failed) << name << "\n" << drill_report(result);
    const auto& schema = check_named(result, "schema");
    EXPECT_NE(schema.message.find("the schema differs from base.schema.ref"), std::string::npos) << name << ": " << schema.message;
    EXPECT_NE(schema.detail.find(expected), std::string::npos) << name << ":\n" << schema.detail;
  }
}

TEST_F(structure, a_not_valid_foreign_key_with_orphans_is_caught_with_its_rows) {
  auto backup = dump_changed("orphans", "INSERT INTO tasks VALUES (99, 'low', 999); ALTER TABLE tasks ADD CONSTRAINT tasks_owner "
                                        "FOREIGN KEY (owner_id) REFERENCES owners NOT VALID");
  auto result = drill(backup, R"([{"type": "constraints_valid"}])");
  EXPECT_EQ(result.verdict(), exit_code::failed) << drill_report(result);
  EXPECT_EQ(check_named(result, "constraints_valid").message, "public.tasks.tasks_owner: 1 rows break it, e.g. (99,low,999)");
}

// After the restore the index loses entries (rows inserted while the catalog says it is not
// ready, as a lost write leaves it; done by the scenario's own sql_after as the server's
// superuser): amcheck's heapallindexed finds the rows it lacks and names it. (Overwriting the
// index file does not work here: its pages stay in shared buffers, and the drill's server cannot
// be restarted between restore and checks.)
TEST_F(structure, amcheck_finds_an_index_that_lost_entries) {
  std::string corrupt =
      R"({"sql_after": "UPDATE pg_index SET indisready = false WHERE indexrelid = 'public.prices_net'::regclass; INSERT INTO prices (id, net) VALUES (1000, 1.00), (1001, 2.00); UPDATE pg_index SET indisready = true WHERE indexrelid = 'public.prices_net'::regclass"})";
  auto result = drill(dump_changed("corrupted", ""), R"([{"type": "amcheck"}])", corrupt);
  EXPECT_EQ(result.verdict(), exit_code::failed) << drill_report(result);
  EXPECT_EQ(check_named(result, "amcheck").message.rfind("public.prices_net: ", 0), 0U) << check_named(result, "amcheck").message;
  EXPECT_NE(check_named(result, "amcheck").message.find("lacks matching index tuple"), std::string::npos)
      << check_named(result, "amcheck").message;
}

TEST_F(structure, an_empty_restore_never_passes_unless_the_scenario_says_so) {
  psql(*source_, "CREATE DATABASE empty");
  auto backup = workspace_->path() / "empty.dump";
  pg_dump(*source_, {"-Fc", "-f", backup.string()}, "empty");
  auto result = drill(backup, R"([{"type": "sql", "query": "SELECT 1", "expected": 1}])");
  EXPECT_EQ(result.verdict(), exit_code::failed) << drill_report(result);
  EXPECT_NE(check_named(result, "not_empty").message.find("holds no table"), std::string::npos);
  auto allowed = drill(backup, R"([{"type": "sql", "query": "SELECT 1", "expected": 1}, {"type": "not_empty", "allow_empty": true}])");
  EXPECT_EQ(allowed.verdict(), exit_code::passed) << drill_report(allowed);
}

// A month of drills: the first passing drill is the baseline; a later backup whose source lost
// half of a table's rows and a column passes its manifest-free checks but fails the drift
// checks, naming the table with both counts and the column; the history line of each drill
// keeps its row counts and schema for the next.
TEST_F(structure, drift_against_the_last_passing_drill_names_lost_rows_and_schema_changes) {
  scratch_dir dir;
  auto history = dir.path() / "drills.jsonl";
  const std::string drift = R"([{"type": "drift", "max_row_drop": 0.2, "schema": "fail"}])";
  const std::string reports = R"({"history": ")" + history.string() + R"("})";
  auto first = drill(dump_changed("drift_first", ""), drift, "{}", reports);
  EXPECT_EQ(first.verdict(), exit_code::passed) << drill_report(first);
  EXPECT_NE(check_named(first, "drift rows").message.find("this drill is the baseline"), std::string::npos);
  EXPECT_EQ(first.table_rows.at("public.tasks"), 20);
  EXPECT_FALSE(first.schema_reference.empty());
  append_history(history, history_entry_from(first));

  auto same = drill(dump_changed("drift_same", ""), drift, "{}", reports);
  EXPECT_EQ(same.verdict(), exit_code::passed) << drill_report(same);
  EXPECT_NE(check_named(same, "drift rows").message.find("within 20% of the drill of " + first.started_at), std::string::npos)
      << check_named(same, "drift rows").message;
  EXPECT_EQ(check_named(same, "drift schema").message, "the schema matches the drill of " + first.started_at);

  auto halved = drill(dump_changed("drift_halved", "DELETE FROM tasks WHERE id > 10; ALTER TABLE owners ADD COLUMN name text"),
                      drift, "{}", reports);
  EXPECT_EQ(halved.verdict(), exit_code::failed) << drill_report(halved);
  const auto& rows = check_named(halved, "drift rows");
  EXPECT_EQ(rows.result, outcome::failed);
  EXPECT_NE(rows.message.find("public.tasks: 20 -> 10 rows (-50%)"), std::string::npos) << rows.message;
  const auto& schema = check_named(halved, "drift schema");
  EXPECT_EQ(schema.result, outcome::failed);
  EXPECT_NE(schema.detail.find("unexpected column public.owners.name: text"), std::string::npos) << schema.detail;
  append_history(history, history_entry_from(halved));
  EXPECT_EQ(last_passing_drill(history, "structure")->at, first.started_at) << "a failed drill is never the baseline";
}

// Without a history there is nothing to compare with: the drift checks cannot judge (exit 2).
TEST_F(structure, drift_without_a_history_cannot_judge) {
  auto result = drill(dump_changed("drift_nohistory", ""), R"([{"type": "drift", "max_row_drop": 0.2}])");
  EXPECT_EQ(result.verdict(), exit_code::not_verified) << drill_report(result);
  EXPECT_NE(check_named(result, "drift rows").message.find("needs a history"), std::string::npos);
}

// A manifest records the collations the data depends on; the restore must sort text as the
// source did. Unchanged: passes. A manifest taken on a server whose ICU was another version, or
// whose default locale was another (edited into the manifest: this machine has one ICU and one
// glibc): fails naming the collation and both values.
TEST_F(structure, collations_of_the_restore_are_those_the_manifest_recorded) {
  psql(*source_, "CREATE DATABASE collated TEMPLATE base");
  psql(*source_, "CREATE TABLE words (w text COLLATE \"en-x-icu\" PRIMARY KEY); INSERT INTO words VALUES ('a'), ('B')", "collated");
  auto backup = dump_by_runner("collated");
  auto manifest_file = manifest_path_for(backup);
  auto recorded = load_manifest(manifest_file);
  ASSERT_TRUE(recorded.collations);
  const std::string icu = "pg_catalog.\"en-x-icu\"";
  auto unchanged = drill(backup, R"([{"type": "collations", "expect": "manifest"}, {"type": "schema", "expect": "manifest"}])");
  EXPECT_EQ(unchanged.verdict(), exit_code::passed) << drill_report(unchanged);
  EXPECT_EQ(check_named(unchanged, "schema").message, "the schema matches the manifest");

  for (auto& collation : *recorded.collations) {
    if (collation.collation == icu) collation.version = "140.1";
    if (collation.collation == "database default") collation.locale = "libc en_US.UTF-8";
  }
  save_manifest(recorded, manifest_file);
  auto elsewhere = drill(backup, R"([{"type": "collations", "expect": "manifest"}])");
  EXPECT_EQ(elsewhere.verdict(), exit_code::failed) << drill_report(elsewhere);
  const auto& check = check_named(elsewhere, "collations");
  EXPECT_NE(check.message.find("the restore sorts text otherwise than the source"), std::string::npos) << check.message;
  EXPECT_NE(check.detail.find(icu + " (icu en): version 140.1 in the source, "), std::string::npos) << check.detail;
  EXPECT_NE(check.detail.find("database default: libc en_US.UTF-8 in the source, libc "), std::string::npos) << check.detail;
}

// The manifest records the schema in the dump's snapshot: a dump that leaves a table out (-T)
// fails `"schema": "expect": "manifest"` naming the table, its columns and its index, with no
// reference file to maintain.
TEST_F(structure, the_schema_recorded_by_the_manifest_names_what_the_dump_left_out) {
  auto result = drill(dump_by_runner("base", {"-T", "tasks"}), R"([{"type": "schema", "expect": "manifest"}])");
  EXPECT_EQ(result.verdict(), exit_code::failed) << drill_report(result);
  const auto& schema = check_named(result, "schema");
  EXPECT_NE(schema.message.find("the schema differs from the manifest"), std::string::npos) << schema.message;
  EXPECT_NE(schema.detail.find("missing table public.tasks"), std::string::npos) << schema.detail;
  EXPECT_NE(schema.detail.find("missing column public.tasks.owner_id: integer"), std::string::npos) << schema.detail;
}

// `pgdrill schema --backup` restores the backup into a throwaway server and writes its reference:
// the same as the source's; a truncated backup does not restore and is exit 1, naming the stage.
TEST_F(structure, the_schema_of_a_backup_is_its_sources_and_a_broken_one_says_why) {
  auto backup = dump_changed("schema_of_backup", "");
  auto written = workspace_->path() / "from_backup.schema.ref";
  auto taken = run_captured(command(PGDRILL_RUNNER_PATH, {"schema", "--backup", backup.string(), "--out", written.string()}));
  ASSERT_EQ(taken.exit_code, 0) << taken.output;
  EXPECT_EQ(read_schema_reference_file(written), read_schema_reference_file(reference()));
  auto truncated = workspace_->path() / "truncated.dump";
  std::filesystem::copy_file(backup, truncated);
  std::filesystem::resize_file(truncated, std::filesystem::file_size(backup) / 2);
  auto broken = run_captured(command(PGDRILL_RUNNER_PATH, {"schema", "--backup", truncated.string()}));
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_NE(broken.output.find("pgdrill: restore: "), std::string::npos) << broken.output;
}

// Integrity probes run over parallel connections: a probe that fails is a finding on its object,
// the others still run, and findings come sorted whatever worker found them.
TEST_F(structure, integrity_probes_run_in_parallel_and_one_failure_stops_none) {
  std::vector<detail::probe_task> probes;
  for (const char* object : {"d", "b", "a", "c"})
    probes.push_back({object, std::string(object) == "b" || std::string(object) == "d" ? "SELECT 1 / 0" : "SELECT 1", {}});
  int ran = 0;
  probes.push_back({"e", "SELECT 2", [&](const pqxx::result& rows, std::vector<integrity_finding>&) { ran = rows[0][0].as<int>(); }});
  auto findings = detail::run_probes(source_->admin(), probes, 2);
  ASSERT_EQ(findings.size(), 2U);
  EXPECT_EQ(findings[0].object, "b");
  EXPECT_EQ(findings[1].object, "d");
  EXPECT_NE(findings[0].problem.find("division by zero"), std::string::npos) << findings[0].problem;
  EXPECT_EQ(ran, 2);
}

// A check that counts a partitioned parent (its rows are its partitions') puts it in the history
// line; the next drill's drift rows must count it the same way, not call it gone.
TEST_F(structure, drift_counts_a_partitioned_parent_a_check_counted_before) {
  scratch_dir dir;
  auto history = dir.path() / "drills.jsonl";
  const std::string assertions = R"([{"type": "row_count", "table": "public.events", "min": 1}, {"type": "drift", "max_row_drop": 0.2}])";
  const std::string reports = R"({"history": ")" + history.string() + R"("})";
  auto backup = dump_changed("drift_partitioned", "");
  auto first = drill(backup, assertions, "{}", reports);
  ASSERT_EQ(first.verdict(), exit_code::passed) << drill_report(first);
  ASSERT_TRUE(first.table_rows.count("public.events"));
  append_history(history, history_entry_from(first));
  auto second = drill(backup, assertions, "{}", reports);
  EXPECT_EQ(second.verdict(), exit_code::passed) << drill_report(second);
  EXPECT_EQ(check_named(second, "drift rows").result, outcome::passed) << check_named(second, "drift rows").message;
}
