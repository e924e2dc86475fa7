// Manifests on real servers: taken in the dump's own snapshot, and what a drill proves with one.
#include <atomic>
#include <thread>

#include "support.hpp"

using namespace pgdrill;
using testkit::psql;

namespace {

// A source database: the demo tables plus one with a bigserial sequence.
std::unique_ptr<local_server> make_source() {
  auto source = testkit::start_demo_source();
  psql(*source, "CREATE TABLE events (id bigserial PRIMARY KEY, note text);"
                "INSERT INTO events (note) SELECT 'event ' || i FROM generate_series(1, 3000) i");
  return source;
}

dump_result dump(const server& source, const std::filesystem::path& out, std::vector<std::string> pg_dump_args = {},
                 const std::string& format = "custom") {
  dump_options options;
  options.out_dir = out;
  options.format = format;
  options.pg_dump_args = std::move(pg_dump_args);
  options.name = "source";
  return dump_with_manifest(source.admin(), options);
}

scenario manifest_plan(const std::filesystem::path& backup) {
  scenario plan;
  plan.name = "manifest_test";
  plan.backup.file = backup;
  plan.assertions = testkit::manifest_assertions();
  return plan;
}

}  // namespace

TEST(manifest, records_every_table_with_the_dump) {
  auto source = make_source();
  scratch_dir out;
  auto result = dump(*source, out.path());
  EXPECT_TRUE(std::filesystem::exists(result.backup));
  EXPECT_EQ(result.manifest_file, manifest_path_for(result.backup));
  EXPECT_EQ(result.data.backup_sha256, sha256_file(result.backup));
  EXPECT_NE(testkit::read_file(result.backup.string() + ".sha256").find(result.data.backup_sha256), std::string::npos);
  auto loaded = load_manifest(result.manifest_file);
  ASSERT_EQ(loaded.tables.size(), 3U);
  EXPECT_EQ(loaded.find("customers")->rows, 1000);
  EXPECT_EQ(loaded.find("public.events")->rows, 3000);
  EXPECT_EQ(loaded.find("public.orders")->digest, checksum_connection(source->admin()).checksum("orders").digest);
  EXPECT_EQ(loaded.server_version, source->version());
  EXPECT_NE(loaded.dump_command.find("--snapshot"), std::string::npos);
}

TEST(manifest, taken_while_another_connection_inserts_still_matches_the_dump_exactly) {
  auto source = make_source();
  std::atomic<bool> stop{false};
  std::atomic<long> inserted{0};
  std::thread writer([&] {
    pqxx::connection connection(source->admin().conninfo());
    while (!stop) {
      pqxx::nontransaction(connection).exec("INSERT INTO events (note) SELECT 'concurrent' FROM generate_series(1, 50)");
      inserted += 50;
    }
  });
  while (inserted < 500) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  scratch_dir out;
  long before = inserted;
  auto result = dump(*source, out.path());
  long during = inserted - before;
  stop = true;
  writer.join();
  EXPECT_GT(during, 0) << "rows were inserted while the dump ran";
  EXPECT_LT(result.data.find("events")->rows, std::stoll(psql(*source, "SELECT count(*) FROM events")));
  auto drill = run_drill(manifest_plan(result.backup));
  EXPECT_EQ(drill.verdict(), exit_code::passed) << testkit::drill_report(drill);
}

TEST(manifest, a_table_dropped_from_the_allow_list_fails_naming_it) {
  auto source = make_source();
  scratch_dir out;
  auto result = dump(*source, out.path(), {"-t", "customers", "-t", "events", "-t", "events_id_seq"});
  auto drill = run_drill(manifest_plan(result.backup));
  EXPECT_EQ(drill.verdict(), exit_code::failed) << testkit::drill_report(drill);
  auto text = testkit::drill_report(drill);
  EXPECT_NE(text.find("FAIL   tables_present"), std::string::npos) << text;
  EXPECT_NE(text.find("missing from the restore: public.orders"), std::string::npos) << text;
  EXPECT_NE(text.find("FAIL   row_count public.orders"), std::string::npos) << text;
  EXPECT_NE(text.find("PASS   checksum public.customers"), std::string::npos) << text;

  auto plan = manifest_plan(result.backup);  // the same, with the omission declared
  for (auto& check : plan.assertions)
    std::visit([](auto& one) {
      if constexpr (std::is_same_v<std::decay_t<decltype(one)>, tables_present_assertion> ||
                    std::is_same_v<std::decay_t<decltype(one)>, row_count_assertion> ||
                    std::is_same_v<std::decay_t<decltype(one)>, checksum_assertion>)
        one.except = {"public.orders"};
    }, check);
  auto declared = run_drill(plan);
  EXPECT_EQ(declared.verdict(), exit_code::passed) << testkit::drill_report(declared);
}

TEST(manifest, a_reset_sequence_fails_naming_it) {
  auto source = make_source();
  psql(*source, "SELECT setval('events_id_seq', 5)");
  scratch_dir out;
  auto result = dump(*source, out.path());
  auto plan = manifest_plan(result.backup);
  plan.assertions.push_back(sequences_assertion{});
  auto drill = run_drill(plan);
  EXPECT_EQ(drill.verdict(), exit_code::failed) << testkit::drill_report(drill);
  EXPECT_NE(testkit::drill_report(drill).find("events_id_seq is at 5 but events.id reaches 3000: the next insert collides"), std::string::npos)
      << testkit::drill_report(drill);
  EXPECT_NE(testkit::drill_report(drill).find("the data, as the source held it (not a restore defect)"), std::string::npos)
      << testkit::drill_report(drill);
}

TEST(manifest, a_corrupted_row_fails_the_checksum_naming_the_table) {
  auto source = make_source();
  scratch_dir out;
  auto result = dump(*source, out.path(), {}, "plain");
  auto text = testkit::read_file(result.backup);
  auto at = text.find("customer 500\t");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 12, "customer 5O0");  // same length, one letter O for a zero
  testkit::write_file(result.backup, text);
  auto plan = manifest_plan(result.backup);
  plan.hygiene.sha256_sidecar = "ignore";  // prove the checksum alone catches it
  auto drill = run_drill(plan);
  EXPECT_EQ(drill.verdict(), exit_code::failed) << testkit::drill_report(drill);
  auto lines = testkit::drill_report(drill);
  EXPECT_NE(lines.find("FAIL   checksum public.customers"), std::string::npos) << lines;
  EXPECT_NE(lines.find("public.customers: content differs"), std::string::npos) << lines;
  EXPECT_NE(lines.find("PASS   row_count public.customers"), std::string::npos) << "counts cannot see it: " << lines;
  EXPECT_NE(lines.find("PASS   checksum public.orders"), std::string::npos) << lines;

  plan.hygiene.sha256_sidecar = "if_present";  // and the sidecar sees the file changed
  auto with_sidecar = run_drill(plan);
  EXPECT_NE(testkit::drill_report(with_sidecar).find("FAIL   backup sha256"), std::string::npos) << testkit::drill_report(with_sidecar);
}

TEST(manifest, expecting_a_manifest_that_is_missing_cannot_verify) {
  auto source = make_source();
  scratch_dir out;
  auto result = dump(*source, out.path());
  std::filesystem::remove(result.manifest_file);
  auto drill = run_drill(manifest_plan(result.backup));
  EXPECT_EQ(drill.verdict(), exit_code::not_verified) << testkit::drill_report(drill);
  EXPECT_NE(testkit::drill_report(drill).find("no manifest was found beside the backup"), std::string::npos) << testkit::drill_report(drill);
}

TEST(manifest, file_round_trips_and_rejects_unknown_keys) {
  manifest data;
  data.created_at = "2026-01-01T00:00:00Z";
  data.server_version = "15.18";
  data.tables = {{"public.t", {"id", "name"}, 42, std::string(32, 'a'), ""}};
  data.collations = {{"database default", "libc C.UTF-8", ""}, {"pg_catalog.\"en-x-icu\"", "icu en", "153.120"}};
  scratch_dir dir;
  save_manifest(data, dir.path() / "m.json");
  auto loaded = load_manifest(dir.path() / "m.json");
  EXPECT_EQ(loaded.to_json(), data.to_json());
  ASSERT_TRUE(loaded.collations);
  EXPECT_EQ(loaded.collations->at(1).version, "153.120");
  auto document = data.to_json();
  document["tables"]["public.t"]["row"] = 1;
  testkit::write_file(dir.path() / "bad.json", document.dump());
  try {
    load_manifest(dir.path() / "bad.json");
    FAIL() << "expected usage_error";
  } catch (const usage_error& failure) {
    EXPECT_NE(std::string(failure.what()).find("at /tables/public.t/row: unknown key"), std::string::npos) << failure.what();
  }
  EXPECT_THROW(load_manifest(dir.path() / "absent.json"), could_not_verify);
}

TEST(manifest, a_directory_dump_gets_a_sidecar_that_a_drill_requiring_one_accepts) {
  auto source = make_source();
  scratch_dir out;
  auto result = dump(*source, out.path(), {}, "directory");
  auto sidecar = testkit::read_file(result.backup.string() + ".sha256");
  EXPECT_NE(sidecar.find("  toc.dat\n"), std::string::npos) << sidecar;
  EXPECT_EQ(std::filesystem::status(result.backup.string() + ".sha256").permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto plan = manifest_plan(result.backup);
  plan.hygiene.sha256_sidecar = "required";
  auto drilled = run_drill(plan);
  EXPECT_EQ(drilled.verdict(), exit_code::passed) << testkit::drill_report(drilled);
}

TEST(manifest, a_sql_ascii_database_with_bytes_that_are_not_utf8_is_dumped_and_hashed_as_stored) {
  auto source = testkit::start_server();
  testkit::psql(*source, "CREATE DATABASE legacy ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
  testkit::psql(*source, "CREATE TABLE notes (body text); INSERT INTO notes VALUES (E'caf\\xe9'), (E'na\\xefve'), ('plain')", "legacy");
  scratch_dir out;
  dump_options options;
  options.out_dir = out.path();
  options.name = "legacy";
  auto result = dump_with_manifest(source->admin().with_database("legacy"), options);
  EXPECT_TRUE(result.data.unreadable().empty()) << ::testing::PrintToString(result.data.unreadable());
  auto notes = result.data.find("public.notes");
  ASSERT_NE(notes, nullptr);
  EXPECT_EQ(notes->rows, 3);
  EXPECT_EQ(notes->digest, checksum_connection(source->admin().with_database("legacy")).checksum("public.notes").digest);
  // Restored into a database of its own encoding (its bytes are valid UTF8 nowhere), the backup
  // passes its manifest drill.
  EXPECT_EQ(read_contents(inspect_file(result.backup), find_binaries(binary_search::from_environment())).encoding, "SQL_ASCII");
  auto drilled = run_drill(manifest_plan(result.backup));
  EXPECT_EQ(drilled.verdict(), exit_code::passed) << testkit::drill_report(drilled);
}
