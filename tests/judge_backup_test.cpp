// The drill judges the backup, not its own throwaway server: sources whose locale is not C (libc
// C.UTF-8, ICU) and whose server, database and role carry their own TimeZone, DateStyle,
// IntervalStyle and extra_float_digits pass every manifest check; foreign keys cloned onto
// partitions keep their identity; a locale the drill's server lacks is the environment's
// problem (exit 2), never the backup's.
#include "support.hpp"

using namespace pgdrill;
using namespace pgdrill::testkit;

namespace {

// Time-partitioned rows with literals in bounds, defaults, CHECKs, a partial index and a view;
// a foreign key added before the partitions (its clones get the parent's name, a restore's
// get their own); text sorted by the database's default collation.
const char* const schema_sql = R"(
CREATE TABLE kinds (id integer PRIMARY KEY, name text);
INSERT INTO kinds SELECT g, 'kind ' || g FROM generate_series(1, 5) g;
CREATE TABLE events (id bigint, at timestamptz NOT NULL DEFAULT '2024-03-01 12:00:00+00', span interval DEFAULT '1 day 02:03:04',
  ratio float8 DEFAULT 0.1, day date DEFAULT '2024-02-29', kind integer REFERENCES kinds,
  CHECK (span < '30 days'), CHECK (at > '2020-01-01 00:00:00+00')) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2025-01-01 00:00:00+00');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00');
CREATE INDEX recent_events ON events (at) WHERE at > '2024-06-01 00:00:00+00';
CREATE VIEW late_events AS SELECT id, at, ratio * 1.1 AS scaled FROM events WHERE at > '2024-07-01 00:00:00+00' AND span > '01:00:00';
INSERT INTO events (id, at, kind) SELECT g, '2024-01-01 00:00:00+00'::timestamptz + g * interval '1 day', 1 + g % 5
  FROM generate_series(1, 600) g;
CREATE TABLE words (w text PRIMARY KEY);
INSERT INTO words VALUES ('apple'), ('Apple'), ('Zebra'), ('zebra'), ('élan'), ('Eel');
)";

class judge_backup : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    source_ = start_server().release();
    psql(*source_, "ALTER SYSTEM SET TimeZone = 'Asia/Kathmandu'");
    psql(*source_, "ALTER SYSTEM SET DateStyle = 'SQL, DMY'");
    psql(*source_, "SELECT pg_reload_conf()");
    psql(*source_, "CREATE DATABASE utf8_source TEMPLATE template0 LOCALE 'C.UTF-8'");
    psql(*source_, "CREATE DATABASE icu_source TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C.UTF-8'");
    psql(*source_, "ALTER DATABASE utf8_source SET TimeZone = 'America/St_Johns'");
    psql(*source_, "ALTER DATABASE icu_source SET IntervalStyle = 'sql_standard'");
    psql(*source_, "ALTER ROLE CURRENT_USER SET extra_float_digits = 0");
    psql(*source_, "ALTER ROLE CURRENT_USER IN DATABASE icu_source SET DateStyle = 'German'");
    for (const char* database : {"utf8_source", "icu_source"}) psql(*source_, schema_sql, database);
  }
  static void TearDownTestSuite() {
    delete source_;
    delete workspace_;
  }

  // `pgdrill dump` of `database` in `format` (with its manifest) into a directory of its own.
  static std::filesystem::path dump(const std::string& database, const std::string& format) {
    auto out = workspace_->path() / (database + "_" + format);
    auto dumped = run_captured(command(PGDRILL_RUNNER_PATH, {"dump", "--out", out.string(), "--name", database, "--", "-F" + format})
                                   .with_env(source_->admin().with_database(database).libpq_env()));
    EXPECT_EQ(dumped.exit_code, 0) << dumped.output;
    for (const auto& entry : std::filesystem::directory_iterator(out))
      if (!is_sidecar(entry.path().filename().string())) return entry.path();
    throw std::runtime_error("pgdrill dump wrote no backup into " + out.string());
  }

  static drill_result drill(const std::filesystem::path& backup, const std::string& assertions) {
    auto document = nlohmann::json::parse(R"({"name": "judge", "backup": {"file": ")" + backup.string() +
                                          R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": )" + assertions + "}");
    return run_drill(parse_scenario(document, workspace_->path(), "judge test"));
  }

  static inline const std::string every_manifest_check =
      R"([{"type": "tables_present", "expect": "manifest"}, {"type": "row_count", "expect": "manifest"},
          {"type": "checksum", "expect": "manifest"}, {"type": "collations", "expect": "manifest"},
          {"type": "schema", "expect": "manifest"}, {"type": "schema_objects", "expect": "manifest"},
          {"type": "thorough"}])";
  static inline scratch_dir* workspace_ = nullptr;
  static inline local_server* source_ = nullptr;
};

}  // namespace

// Both sources, every format pg_dump writes (plain without --create: the locale comes from the
// manifest): every manifest check passes, collations and schema included.
TEST_F(judge_backup, a_source_with_its_own_locale_and_session_settings_passes_every_manifest_check) {
  for (const char* database : {"utf8_source", "icu_source"})
    for (const char* format : {"c", "d", "t", "p"}) {
      auto result = drill(dump(database, format), every_manifest_check);
      EXPECT_EQ(result.verdict(), exit_code::passed) << database << " -F" << format << "\n" << drill_report(result);
    }
}

// A schema reference written by `pgdrill schema` on the source (its own session settings) is
// the one the restore reads: no time literal, float or interval differs.
TEST_F(judge_backup, a_committed_schema_reference_matches_the_restore_of_a_source_with_other_settings) {
  auto reference = workspace_->path() / "icu.schema.ref";
  auto taken = run_captured(command(PGDRILL_RUNNER_PATH, {"schema", "--out", reference.string()})
                                .with_env(source_->admin().with_database("icu_source").libpq_env()));
  ASSERT_EQ(taken.exit_code, 0) << taken.output;
  auto text = read_file(reference);
  EXPECT_EQ(text.rfind(schema_reference_header, 0), 0U) << text;
  EXPECT_NE(text.find("'2024-01-01 00:00:00+00'"), std::string::npos) << text;  // in UTC, ISO
  auto result = drill(dump("icu_source", "c"), R"([{"type": "schema", "reference": ")" + reference.string() + R"("}])");
  EXPECT_EQ(result.verdict(), exit_code::passed) << drill_report(result);
}

// A reference file of the first format (literals in the source's session settings) is refused
// with what to do, not compared into a false verdict.
TEST_F(judge_backup, a_schema_reference_of_the_old_format_is_refused_with_what_to_do) {
  auto reference = workspace_->path() / "old.schema.ref";
  write_file(reference, "# pgdrill schema reference 1: KIND<TAB>NAME<TAB>DEFINITION, sorted\nschema\tpublic\t\n");
  auto result = drill(dump("utf8_source", "c"), R"([{"type": "schema", "reference": ")" + reference.string() + R"("}])");
  EXPECT_EQ(result.verdict(), exit_code::not_verified) << drill_report(result);
  EXPECT_NE(drill_report(result).find("record it again with pgdrill schema"), std::string::npos) << drill_report(result);
}

// The source's locale is one the drill's server cannot provide (a manifest from a host with
// another glibc, edited in: this machine has C.UTF-8 only): the restore goes into the server's
// default locale and says so; rows and content still pass, `collations` cannot judge (exit 2
// saying what to install), never a failure of the backup.
TEST_F(judge_backup, a_locale_the_drills_server_lacks_is_the_environments_problem) {
  auto backup = dump("utf8_source", "p");
  auto manifest_file = manifest_path_for(backup);
  auto recorded = load_manifest(manifest_file);
  ASSERT_TRUE(recorded.collations);
  for (auto& collation : *recorded.collations)
    if (collation.collation == "database default") collation.locale = "libc xx_XX.UTF-8";
  save_manifest(recorded, manifest_file);
  auto result = drill(backup, every_manifest_check);
  EXPECT_EQ(result.verdict(), exit_code::not_verified) << drill_report(result);
  EXPECT_NE(drill_report(result).find("xx_XX.UTF-8"), std::string::npos) << drill_report(result);
  EXPECT_NE(drill_report(result).find("install"), std::string::npos) << drill_report(result);
  EXPECT_NE(drill_report(result).find("restored into the server's default locale"), std::string::npos) << drill_report(result);
  auto rows_only = drill(backup, R"([{"type": "row_count", "expect": "manifest"}, {"type": "checksum", "expect": "manifest"}])");
  EXPECT_EQ(rows_only.verdict(), exit_code::passed) << drill_report(rows_only);
}

// A plain dump cut inside a COPY block whose rows hold the text of pg_dump's closing comment:
// the script's own last line is a data row, so it was cut short (exit 1), whatever its last
// bytes say. `pgdrill verify` reads it to its end and says the same.
TEST_F(judge_backup, a_plain_dump_cut_inside_data_that_quotes_the_footer_is_truncated) {
  psql(*source_, "CREATE DATABASE quoting_footer");
  psql(*source_, "CREATE TABLE notes (id integer, body text); INSERT INTO notes SELECT g, "
                 "E'line\\n--\\n-- PostgreSQL database dump complete\\n--\\n' || g FROM generate_series(1, 200) g",
       "quoting_footer");
  auto whole = workspace_->path() / "quoting_footer.sql";
  pg_dump(*source_, {"-Fp", "-f", whole.string()}, "quoting_footer");
  auto text = read_file(whole);
  auto last_row = text.find("dump complete\\n--\\n200");
  ASSERT_NE(last_row, std::string::npos);
  auto cut = workspace_->path() / "cut.sql";
  write_file(cut, text.substr(0, text.rfind('\n', last_row) + 1));  // the COPY block's rows up to the 200th
  auto result = run_drill(not_empty_plan("cut", cut));
  EXPECT_EQ(result.verdict(), exit_code::failed) << drill_report(result);
  EXPECT_NE(drill_report(result).find("cut short"), std::string::npos) << drill_report(result);
  auto verified = run_cli({"verify", cut.string(), "--min-size", "0"});
  EXPECT_EQ(verified.exit_code, 1) << verified.output;
  EXPECT_NE(verified.output.find("cut short"), std::string::npos) << verified.output;
  auto healthy = run_cli({"verify", whole.string(), "--min-size", "0"});
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
}

// `pgdrill verify` reads every data block of an archive, not only its table of contents: a
// custom archive, a tar archive and a directory archive's data file cut short each fail (exit
// 1); whole, each passes; --toc-only still reads the front alone, and says it proves less.
TEST_F(judge_backup, verify_reads_every_data_block_of_an_archive) {
  for (const char* format : {"c", "t", "d"}) {
    auto backup = dump("utf8_source", format);
    auto whole = run_cli({"verify", backup.string(), "--min-size", "0"});
    EXPECT_EQ(whole.exit_code, 0) << format << ": " << whole.output;
    auto cut = workspace_->path() / (std::string("cut_") + format);
    std::filesystem::copy(backup, cut, std::filesystem::copy_options::recursive);
    auto victim = cut;  // a directory archive's largest data file
    std::uintmax_t largest = 0;
    if (std::filesystem::is_directory(cut))
      for (const auto& entry : std::filesystem::directory_iterator(cut))
        if (entry.path().filename() != "toc.dat" && entry.file_size() > largest) {
          largest = entry.file_size();
          victim = entry.path();
        }
    std::filesystem::resize_file(victim, std::filesystem::file_size(victim) * 2 / 3);
    auto verified = run_cli({"verify", cut.string(), "--min-size", "0"});
    EXPECT_EQ(verified.exit_code, 1) << format << ": " << verified.output;
  }
  auto quick = run_cli({"verify", dump("icu_source", "c").string(), "--min-size", "0", "--toc-only"});
  EXPECT_EQ(quick.exit_code, 0) << quick.output;
  EXPECT_NE(quick.output.find("data blocks not read"), std::string::npos) << quick.output;
}

// Faults of the backup's own SQL are the backup's (exit 1), not the environment's: a plain
// script that \connects to a database it never created, and a dblink call to a server that
// refuses it (SQLSTATE 08001 raised by the drill's live server).
TEST_F(judge_backup, connection_failures_of_the_backups_own_sql_are_the_backups_fault) {
  struct faulty_script {
    const char* name;
    const char* sql;
    const char* named;  ///< what the verdict must name
  };
  for (const auto& [name, sql, named] : std::vector<faulty_script>{
           {"connects_nowhere", "CREATE TABLE here (id integer);\nINSERT INTO here VALUES (1);\n\\connect never_created\n"
                                "CREATE TABLE there (id integer);\n", "never_created"},
           {"dblink_refused", "CREATE EXTENSION dblink;\nCREATE TABLE here (id integer);\nINSERT INTO here VALUES (1);\n"
                              "SELECT dblink_connect('host=127.0.0.1 port=1 dbname=nowhere connect_timeout=2');\n", "08001"}}) {
    auto script = workspace_->path() / (std::string(name) + ".sql");
    write_file(script, sql);
    auto result = run_drill(not_empty_plan(name, script));
    EXPECT_EQ(result.verdict(), exit_code::failed) << name << "\n" << drill_report(result);
    EXPECT_NE(drill_report(result).find(named), std::string::npos) << name << "\n" << drill_report(result);
  }
}

// FORCE ROW LEVEL SECURITY on a table the restore's own role owns (the existing provider's): a
// check that cannot see every row says so, naming the policy (exit 2), never "got 0". The local
// provider's superuser bypasses the policy and counts every row (exit 0).
TEST_F(judge_backup, a_policy_that_hides_rows_from_the_drills_role_is_never_counted_through) {
  psql(*source_, "CREATE DATABASE policed");
  psql(*source_, "CREATE TABLE secrets (id integer, owner_name text); INSERT INTO secrets SELECT g, 'bob' FROM "
                 "generate_series(1, 300) g; ALTER TABLE secrets ENABLE ROW LEVEL SECURITY; ALTER TABLE secrets FORCE ROW "
                 "LEVEL SECURITY; CREATE POLICY only_alice ON secrets USING (owner_name = 'alice')",
       "policed");
  auto backup = dump("policed", "c");
  auto shared = start_shared_server();
  for (const char* provider : {"local", "existing"}) {
    auto document = nlohmann::json::parse(R"({"name": "policed", "backup": {"file": ")" + backup.string() +
                                          R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "row_count", "expect": "manifest"}]})");
    drill_options options;
    options.provider = provider;
    options.existing = shared->admin();
    auto result = run_drill(parse_scenario(document, workspace_->path(), "policed"), options);
    auto report = drill_report(result);
    if (std::string(provider) == "local") {
      EXPECT_EQ(result.verdict(), exit_code::passed) << report;
      continue;
    }
    EXPECT_EQ(result.verdict(), exit_code::not_verified) << report;
    EXPECT_NE(report.find("public.secrets.only_alice"), std::string::npos) << report;
    EXPECT_EQ(report.find("got 0"), std::string::npos) << report;
  }
}

// A table hash-partitioned on an enum: pg_dump loads it through its root and the restore's new
// enum OIDs hash its rows to other partitions. Its leaves are judged with the table as a whole
// (row counts and checksums pass, saying why); a row lost from the table still fails.
TEST_F(judge_backup, rows_that_move_between_hash_partitions_on_an_enum_are_judged_with_their_table) {
  psql(*source_, "CREATE DATABASE hashed_on_enum");
  psql(*source_, "CREATE TYPE colour AS ENUM ('red', 'orange', 'yellow', 'green', 'teal', 'blue', 'indigo', 'violet', 'pink', "
                 "'brown', 'grey', 'black'); CREATE TABLE by_colour (c colour, n integer) PARTITION BY HASH (c);"
                 "CREATE TABLE by_colour_0 PARTITION OF by_colour FOR VALUES WITH (MODULUS 4, REMAINDER 0);"
                 "CREATE TABLE by_colour_1 PARTITION OF by_colour FOR VALUES WITH (MODULUS 4, REMAINDER 1);"
                 "CREATE TABLE by_colour_2 PARTITION OF by_colour FOR VALUES WITH (MODULUS 4, REMAINDER 2);"
                 "CREATE TABLE by_colour_3 PARTITION OF by_colour FOR VALUES WITH (MODULUS 4, REMAINDER 3);"
                 "INSERT INTO by_colour SELECT (enum_range(NULL::colour))[1 + g % 12], g FROM generate_series(1, 1200) g",
       "hashed_on_enum");
  auto backup = dump("hashed_on_enum", "c");
  const std::string counted = R"([{"type": "row_count", "expect": "manifest"}, {"type": "checksum", "expect": "manifest"}])";
  auto faithful = drill(backup, counted);
  EXPECT_EQ(faithful.verdict(), exit_code::passed) << drill_report(faithful);
  EXPECT_NE(drill_report(faithful).find("public.by_colour as a whole, as in the source"), std::string::npos) << drill_report(faithful);
  EXPECT_NE(drill_report(faithful).find("hash-partitioned on an enum"), std::string::npos) << drill_report(faithful);

  auto manifest_file = manifest_path_for(backup);
  auto recorded = load_manifest(manifest_file);
  for (auto& table : recorded.tables)
    if (table.table == "public.by_colour_2") ++table.rows;  // the source held one row more than the restore
  save_manifest(recorded, manifest_file);
  auto lost = drill(backup, counted);
  EXPECT_EQ(lost.verdict(), exit_code::failed) << drill_report(lost);
  EXPECT_NE(drill_report(lost).find("public.by_colour: expected 1201 rows in its partitions, got 1200"), std::string::npos)
      << drill_report(lost);
}
