// Content proof on a database nobody tidied (fixtures/nasty.sql): every format of its backup
// passes a manifest drill, and each kind of damage fails naming the table.
#include <sys/stat.h>

#include <atomic>

#include "support.hpp"

using namespace pgdrill;

namespace {

class content : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    source_ = testkit::start_server().release();
    testkit::psql(*source_, testkit::read_file(std::filesystem::path(PGDRILL_SOURCE_DIR) / "tests/fixtures/nasty.sql"));
  }
  static void TearDownTestSuite() {
    delete source_;
    delete workspace_;
  }

  static dump_result dump(const std::string& format, const std::string& dir, std::vector<std::string> pg_dump_args = {}) {
    dump_options options;
    options.out_dir = workspace_->path() / dir;
    options.format = format;
    options.name = "nasty";
    options.pg_dump_args = std::move(pg_dump_args);
    return dump_with_manifest(source_->admin(), options);
  }

  static drill_result drill(const std::filesystem::path& backup, bool checksums_during_restore = true,
                            const std::function<void(scenario&)>& adjust = {}) {
    scenario plan;
    plan.name = "content";
    plan.backup.file = backup;
    plan.assertions = testkit::manifest_assertions();
    sequences_assertion sequences;
    sequences.from_manifest = true;
    plan.assertions.insert(plan.assertions.end(),
                           {sequences, large_objects_assertion{}, materialized_views_assertion{}, schema_objects_assertion{}});
    if (adjust) adjust(plan);
    drill_options options;
    options.checksums_during_restore = checksums_during_restore;
    return run_drill(plan, options);
  }

  // How many checksums a drill took while its restore went on.
  static int taken_during_restore(const drill_result& result) {
    return static_cast<int>(std::count_if(result.checks.begin(), result.checks.end(), [](const step_result& check) {
      return check.detail.find("checksummed as soon as the restore had loaded the table") != std::string::npos;
    }));
  }

  // The same checks, in the same order, with the same results, figures and messages.
  static void expect_same_checks(const drill_result& during, const drill_result& after, const std::string& what) {
    ASSERT_EQ(during.checks.size(), after.checks.size()) << what;
    for (std::size_t index = 0; index < during.checks.size(); ++index) {
      const auto &one = during.checks[index], &other = after.checks[index];
      EXPECT_EQ(one.name, other.name) << what;
      EXPECT_EQ(one.result, other.result) << what << ": " << one.name;
      EXPECT_EQ(one.actual, other.actual) << what << ": " << one.name;
      EXPECT_EQ(one.rows, other.rows) << what << ": " << one.name;
      EXPECT_EQ(one.message, other.message) << what << ": " << one.name;
    }
  }

  // Names of the checks that did not pass.
  static std::vector<std::string> failed(const drill_result& result) {
    std::vector<std::string> names;
    for (const auto& check : result.checks)
      if (check.result != outcome::passed) names.push_back(check.name + ": " + check.message);
    return names;
  }

  static inline scratch_dir* workspace_ = nullptr;
  static inline local_server* source_ = nullptr;
};

const std::vector<std::string> leaf_tables{
    "Upper Case.Mixed Name", "\"odd.schema\".\"dotted.table\"", "public.ahead_of_its_sequence", "public.animals",
    "public.awkward", "public.counters", "public.dogs", "public.events_2025_click", "public.events_2025_other",
    "public.events_2026", "public.events_default", "public.nothing_but_rows", "public.prices", "public.puppies",
    "public.shards_0", "public.shards_1", "public.uses_default"};

}  // namespace

TEST_F(content, every_format_of_the_fixture_passes_a_manifest_drill) {
  for (const char* format : {"custom", "directory", "tar", "plain"}) {
    auto dumped = dump(format, format);
    EXPECT_TRUE(dumped.data.unreadable().empty()) << format;
    std::vector<std::string> tables;
    for (const auto& table : dumped.data.tables) tables.push_back(table.table);
    EXPECT_EQ(tables, leaf_tables) << "leaves once each, partitioned parents never";
    EXPECT_EQ(dumped.data.find("public.animals")->rows, 3) << "an inheritance parent's own rows";
    EXPECT_EQ(dumped.data.find("public.nothing_but_rows")->rows, 3);
    EXPECT_EQ(dumped.data.large_objects.count, 2);
    EXPECT_EQ(dumped.data.sequences.size(), 5U) << "serial, identity, default-only, free-standing, behind";
    ASSERT_EQ(dumped.data.materialized_views.size(), 2U);
    EXPECT_TRUE(dumped.data.materialized_views[0].populated);
    EXPECT_EQ(dumped.data.materialized_views[0].rows, 70) << "dogs and puppies";
    EXPECT_FALSE(dumped.data.materialized_views[1].populated);
    EXPECT_EQ(dumped.data.schema_objects.at("views"), 1);
    EXPECT_EQ(dumped.data.schema_objects.at("triggers"), 1);
    EXPECT_EQ(dumped.data.schema_objects.at("policies"), 1);
    EXPECT_EQ(dumped.data.schema_objects.at("types"), 3) << "enum, domain, composite; no row types";
    auto result = drill(dumped.backup);
    EXPECT_EQ(result.verdict(), exit_code::passed) << format << "\n" << testkit::drill_report(result);
    EXPECT_EQ(result.table_rows.at("public.dogs"), 50);
    auto properties = properties_of(result);
    EXPECT_EQ(properties["coverage.tables"], "17/17");
    EXPECT_EQ(properties["coverage.large_objects"], "2/2");
    EXPECT_EQ(properties["coverage.sequences"], "5/5");
    EXPECT_EQ(properties["coverage.materialized_views"], "2/2");
  }
}

// Checksums taken while a parallel restore goes on judge exactly as those taken after it, on
// every format of the fixture (inheritance, partitions, generated columns, odd names) and on
// content that differs from the manifest; the partitions are left to after the restore.
TEST_F(content, checksums_during_the_restore_judge_as_those_after_it) {
  auto in_parallel = [](scenario& plan) { plan.restore.jobs = 2; };  // whatever the machine's cores
  for (const char* format : {"custom", "directory", "tar", "plain"}) {
    auto dumped = dump(format, std::string("during-") + format);
    auto during = drill(dumped.backup, true, in_parallel), after = drill(dumped.backup, false, in_parallel);
    EXPECT_EQ(during.verdict(), exit_code::passed) << format << "\n" << testkit::drill_report(during);
    expect_same_checks(during, after, format);
    EXPECT_EQ(taken_during_restore(after), 0) << format;
    bool parallel = std::string(format) == "custom" || std::string(format) == "directory";
    if (parallel) {  // 17 leaf tables, 7 of them partitions
      EXPECT_EQ(taken_during_restore(during), 10) << format << "\n" << testkit::drill_report(during);
    } else {
      EXPECT_EQ(taken_during_restore(during), 0) << format << ": tar and plain restore serially";
    }
  }
  auto dumped = dump("custom", "during-damaged");
  auto manifest_file = manifest_path_for(dumped.backup);
  auto recorded = testkit::read_file(manifest_file);
  auto wrong = load_manifest(manifest_file);
  for (auto& table : wrong.tables)
    if (table.table == "public.dogs" || table.table == "public.prices") table.digest = std::string(32, '0');
  save_manifest(wrong, manifest_file);
  auto during = drill(dumped.backup, true, in_parallel), after = drill(dumped.backup, false, in_parallel);
  testkit::write_file(manifest_file, recorded);
  EXPECT_EQ(during.verdict(), exit_code::failed);
  EXPECT_GT(taken_during_restore(during), 0);
  expect_same_checks(during, after, "content unlike the manifest");
}

// What runs after the load can change the rows (sql_after), and a drill that times the restore
// must not slow it down: then every checksum waits for the whole restore.
TEST_F(content, checksums_wait_for_the_restore_when_it_is_timed_or_followed_by_sql) {
  auto dumped = dump("custom", "during-guarded");
  auto changed = drill(dumped.backup, true, [](scenario& plan) { plan.restore.sql_after = "DELETE FROM ONLY public.dogs WHERE id % 2 = 0"; });
  EXPECT_EQ(taken_during_restore(changed), 0);
  std::vector<std::string> names = failed(changed);
  EXPECT_EQ(names.size(), 2U) << testkit::drill_report(changed);  // the row count and the checksum of dogs
  auto timed = drill(dumped.backup, true, [](scenario& plan) { plan.restore.max_seconds = 3600; });
  EXPECT_EQ(timed.verdict(), exit_code::passed) << testkit::drill_report(timed);
  EXPECT_EQ(taken_during_restore(timed), 0);
}

TEST_F(content, a_plain_pg_dump_with_pgdrill_manifest_passes_too) {
  auto dir = workspace_->path() / "pg_dump";
  std::filesystem::create_directories(dir);
  auto backup = dir / "nasty.sql";
  testkit::pg_dump(*source_, {"-Fp", "-f", backup.string()});
  snapshot_session session(source_->admin());
  save_manifest(take_manifest(source_->admin(), session), manifest_path_for(backup));
  auto result = drill(backup);
  EXPECT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);
}

TEST_F(content, dump_files_appear_whole_and_private) {
  auto dumped = dump("custom", "private");
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(workspace_->path() / "private")) {
    names.push_back(entry.path().filename().string());
    struct stat info{};
    ASSERT_EQ(::stat(entry.path().c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600U) << entry.path();
  }
  std::sort(names.begin(), names.end());
  auto file = dumped.backup.filename().string();
  EXPECT_EQ(names, (std::vector<std::string>{file, file + ".manifest.json", file + ".sha256"})) << "no partial files left";
}

// The same table checksums the same on the source and on a restore, although pg_dump restored
// the inherited column in another attribute position.
TEST_F(content, checksums_do_not_depend_on_column_order) {
  auto dumped = dump("custom", "order");
  auto restored = testkit::start_server();
  auto scratch = scratch_for_tools(restored->binaries());
  ASSERT_TRUE(restore_backup(inspect_file(dumped.backup), restored->admin(), restored->binaries(), {}, scratch.path()).ok);
  const char* order = "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'public.puppies'::regclass AND attnum > 0";
  ASSERT_NE(testkit::psql(*source_, order), testkit::psql(*restored, order)) << "the fixture must reorder the columns";
  std::atomic<std::size_t> done{0};  // workers report each table, failed or not
  auto with_a_missing_one = leaf_tables;
  with_a_missing_one.push_back("public.no_such_table");
  auto here = checksum_tables(source_->admin(), with_a_missing_one, {}, 2, "", [&] { ++done; });
  EXPECT_EQ(done, with_a_missing_one.size());
  EXPECT_NE(here.failure_text(here.failures.size() - 1), "");
  auto there = checksum_tables(restored->admin(), leaf_tables);
  for (std::size_t index = 0; index < leaf_tables.size(); ++index) {
    EXPECT_EQ(here.failure_text(index), "") << leaf_tables[index];
    EXPECT_EQ(here.sums[index].digest, there.sums[index].digest) << leaf_tables[index];
    EXPECT_EQ(here.sums[index].columns, there.sums[index].columns) << leaf_tables[index];
  }
}

// Each damaged backup: the current source dumped again, checked against the first dump's manifest.
TEST_F(content, each_kind_of_damage_fails_naming_the_table) {
  auto original = dump("custom", "original");
  auto damaged = [&](const std::string& name, const std::string& change, std::vector<std::string> pg_dump_args = {}) {
    auto dir = workspace_->path() / name;
    std::filesystem::create_directories(dir);
    auto backup = dir / "nasty.dump";
    if (!change.empty()) testkit::psql(*source_, "BEGIN; " + change + "; COMMIT;");
    pg_dump_args.insert(pg_dump_args.begin(), {"-Fc", "-f", backup.string()});
    testkit::pg_dump(*source_, pg_dump_args);
    // The first manifest, made to claim this file: the content checks alone judge the damage.
    auto recorded = nlohmann::json::parse(testkit::read_file(original.manifest_file));
    recorded["backup"] = {{"file", backup.filename().string()}, {"sha256", sha256_file(backup)},
                          {"size_bytes", std::filesystem::file_size(backup)}};
    testkit::write_file(manifest_path_for(backup), recorded.dump());
    return failed(drill(backup));
  };
  auto value = damaged("value", "UPDATE public.prices SET net = net + 1 WHERE id = 7");
  ASSERT_EQ(value.size(), 1U) << ::testing::PrintToString(value);
  EXPECT_EQ(value[0].rfind("checksum public.prices: public.prices: content differs", 0), 0U) << value[0];
  testkit::psql(*source_, "UPDATE public.prices SET net = net - 1 WHERE id = 7");

  auto child_row = damaged("child", "DELETE FROM public.puppies WHERE id = 100");
  ASSERT_EQ(child_row.size(), 2U) << ::testing::PrintToString(child_row) << ": the child, not its parents; the materialized view over it is refreshed by the restore, as pg_dump intends";
  EXPECT_EQ(child_row[0], "row_count public.puppies: public.puppies: expected = 20 rows, got 19");
  EXPECT_EQ(child_row[1].rfind("checksum public.puppies:", 0), 0U);
  testkit::psql(*source_, "INSERT INTO public.puppies (id, name, bark_volume, age_weeks, weight_kg) VALUES (100, 'pup 100', 1, 4, 0.5)");

  auto no_blobs = damaged("no-blobs", "", {"--no-blobs"});
  ASSERT_EQ(no_blobs.size(), 1U) << ::testing::PrintToString(no_blobs);
  EXPECT_EQ(no_blobs[0], "large_objects: 2 of the source's 2 large objects are missing from the restore (a dump made with --no-blobs?)");

  auto without_data = damaged("no-data", "REFRESH MATERIALIZED VIEW public.dog_names WITH NO DATA");
  ASSERT_EQ(without_data.size(), 1U) << ::testing::PrintToString(without_data);
  EXPECT_EQ(without_data[0], "materialized_views: public.dog_names was restored without data");
  testkit::psql(*source_, "REFRESH MATERIALIZED VIEW public.dog_names");

  auto index = damaged("index", "DROP INDEX public.prices_net");
  ASSERT_EQ(index.size(), 1U) << ::testing::PrintToString(index);
  EXPECT_NE(index[0].find("schema_objects: indexes: "), std::string::npos) << index[0];
  testkit::psql(*source_, "CREATE INDEX prices_net ON public.prices (net)");

  auto dropped = damaged("allow-list", "", {"-T", "public.awkward"});
  ASSERT_GE(dropped.size(), 1U);
  EXPECT_EQ(dropped[0], "tables_present: missing from the restore: public.awkward");
}

// The backup was made, then the source went on handing out values: its manifest, taken now, is
// ahead of what the backup restores, as a sequence that was set back would be.
TEST_F(content, a_sequence_set_back_fails_naming_it) {
  auto dir = workspace_->path() / "set-back";
  std::filesystem::create_directories(dir);
  auto backup = dir / "nasty.dump";
  testkit::pg_dump(*source_, {"-Fc", "-f", backup.string()});
  testkit::psql(*source_, "SELECT nextval('public.standalone') FROM generate_series(1, 10)");
  snapshot_session session(source_->admin());
  save_manifest(take_manifest(source_->admin(), session), manifest_path_for(backup));
  auto failures = failed(drill(backup));
  ASSERT_EQ(failures.size(), 1U) << ::testing::PrintToString(failures);
  EXPECT_EQ(failures[0], "sequences as in the manifest: public.standalone was restored at 40, but the source had handed out 50: "
                         "it was set back");
}

TEST_F(content, a_dump_of_an_empty_database_fails) {
  auto empty = testkit::start_server();
  dump_options options;
  options.out_dir = workspace_->path() / "empty";
  auto dumped = dump_with_manifest(empty->admin(), options);
  auto result = drill(dumped.backup);
  EXPECT_EQ(result.verdict(), exit_code::failed) << testkit::drill_report(result);
  ASSERT_FALSE(failed(result).empty());
  EXPECT_NE(failed(result)[0].find("no tables to check: the manifest lists none"), std::string::npos) << failed(result)[0];
}

TEST_F(content, a_table_the_manifest_cannot_read_is_named_and_the_rest_recorded) {
  testkit::psql(*source_, "CREATE ROLE reader LOGIN; GRANT USAGE ON SCHEMA \"odd.schema\", \"Upper Case\" TO reader; "
                          "GRANT SELECT ON ALL TABLES IN SCHEMA public, \"odd.schema\", \"Upper Case\" TO reader; "
                          "REVOKE SELECT ON public.awkward FROM reader");
  auto file = workspace_->path() / "reader.manifest.json";
  auto ran = testkit::run_cli({"manifest", "--source", "host=" + source_->admin().host + " user=reader dbname=postgres",
                               "--out", file.string()});
  testkit::psql(*source_, "REVOKE ALL ON ALL TABLES IN SCHEMA public, \"odd.schema\", \"Upper Case\" FROM reader; "
                          "REVOKE ALL ON SCHEMA \"odd.schema\", \"Upper Case\" FROM reader; DROP ROLE reader");
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("could not read public.awkward: "), std::string::npos) << ran.output;
  auto recorded = load_manifest(file);
  EXPECT_EQ(recorded.tables.size(), leaf_tables.size());
  auto unreadable_tables = std::count_if(recorded.tables.begin(), recorded.tables.end(), [](const auto& t) { return !t.error.empty(); });
  EXPECT_EQ(unreadable_tables, 1);
  EXPECT_NE(recorded.large_objects.error.find("permission denied"), std::string::npos) << "the role may not read them";
  EXPECT_EQ(recorded.sequences.at(0).error, "permission denied");
  EXPECT_EQ(recorded.materialized_views.at(0).rows, 70) << "readable ones are still recorded";
  EXPECT_EQ(recorded.find("public.dogs")->rows, 50);
  EXPECT_FALSE(recorded.find("public.awkward")->error.empty()) << "recorded with its reason";
}
