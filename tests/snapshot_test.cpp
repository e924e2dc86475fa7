// JSON table snapshots drilled end to end through the runner: a schema from migrations, a
// schema-only dump or SQL text, rows of every awkward kind loaded with COPY, and each way a
// snapshot can be broken failing the drill with the table named.
#include <algorithm>
#include <fstream>

#include "support.hpp"

using namespace pgdrill;
using testkit::run_cli;
using testkit::write_file;

namespace {

// The application's schema: an identity key, a self-reference, a table with an odd name holding
// arrays, json, jsonb, numeric, bytea and a generated column, and an audit trigger whose
// audit_logs table the snapshots leave out.
const char* const tables_sql = R"(
CREATE TABLE owners (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, email text UNIQUE,
                     joined timestamptz, manager_id integer REFERENCES owners (id));
)";
const char* const items_sql = R"(
CREATE TABLE "Odd ""Items""" (id bigint PRIMARY KEY, owner_id integer NOT NULL REFERENCES owners (id), tags text[],
                              attrs jsonb, doc json, price numeric(30, 10), photo bytea, active boolean, made date,
                              first_tag text GENERATED ALWAYS AS (upper(tags[1])) STORED);
CREATE TABLE audit_logs (id serial PRIMARY KEY, note text);
)";
// Needs the items table: applied after items_sql (V2 before V10, which a plain sort gets wrong).
// The seed row is the migration's; the snapshot's rows replace it.
const char* const audit_sql = R"(
CREATE INDEX items_made ON "Odd ""Items""" (made);
INSERT INTO owners (name) VALUES ('seed row of a migration');
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO audit_logs (note) VALUES (TG_TABLE_NAME); RETURN NEW; END$$;
CREATE TRIGGER owners_audit AFTER INSERT ON owners FOR EACH ROW EXECUTE FUNCTION audit();
)";

// A snapshot as an application writes it: the items before the owners they reference, a
// manager listed after the owner who names him, bytea as \x hex, base64 and a Node.js Buffer.
std::string good_snapshot() {
  return R"({
  "manifest": {"version": "1.0", "schema": "public", "createdAt": "2026-05-06T02:00:00.000Z",
    "tables": {"owners": {"rowCount": 2, "columns": ["id", "name", "email", "joined", "manager_id"]},
               "Odd \"Items\"": {"rowCount": 3, "columns": ["id", "owner_id", "tags", "attrs", "doc", "price", "photo", "active",
                                                         "made", "first_tag"]}},
    "totalRows": 5, "excludedTables": ["audit_logs", "backup_logs"]},
  "data": {
    "Odd \"Items\"": [
      {"id": 1, "owner_id": 1, "tags": ["alpha", "ü"], "attrs": {"k": [1, {"x": null}]}, "doc": {"a": 1},
       "price": 12345678901234567890.1234567891, "photo": "\\xdeadbeef", "active": true, "made": "2026-05-06", "first_tag": "ALPHA"},
      {"id": 2, "owner_id": 2, "tags": null, "attrs": null, "doc": null, "price": null, "photo": "3q2+7w==", "active": false, "made": null},
      {"id": 3, "owner_id": 2, "tags": [], "attrs": [1, 2], "doc": "text", "price": 0.1,
       "photo": {"type": "Buffer", "data": [222, 173, 190, 239]}, "active": null, "made": "2026-01-31"}],
    "owners": [
      {"id": 1, "name": "Ann", "email": "ann@example.com", "joined": "2026-05-06T02:00:00.000Z", "manager_id": 2},
      {"id": 2, "name": "Bört \"Bo\" 😀 \\ tab\t", "email": null, "joined": "2026-05-01T00:00:00+02:00", "manager_id": null}]
  }
})";
}

// `text` with its one occurrence of `from` replaced: a failure case made from the good snapshot.
std::string changed(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << from << " occurs twice";
  return text.replace(at, from.size(), to);
}

class snapshot_drill : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    workspace_ = new scratch_dir();
    auto migrations = workspace_->path() / "migrations";
    write_file(migrations / "V1__owners.sql", tables_sql);
    write_file(migrations / "V2__items.sql", items_sql);
    write_file(migrations / "V10__audit.sql", audit_sql);
    auto source = testkit::start_server();  // the schema-only dump, from a real pg_dump
    testkit::psql(*source, std::string(tables_sql) + items_sql + audit_sql);
    testkit::pg_dump(*source, {"--schema-only", "-Fc", "-f", (workspace_->path() / "schema.dump").string()});
  }
  static void TearDownTestSuite() {
    delete workspace_;
    workspace_ = nullptr;
  }

  static std::filesystem::path migrations() { return workspace_->path() / "migrations"; }

  // The checks a user of such snapshots would write: the snapshot against its manifest, and
  // what the load made of each kind of value.
  static nlohmann::json assertions() {
    const std::string items = R"("Odd ""Items""")";
    auto sql = [](const std::string& name, const std::string& query, nlohmann::json expected) {
      return nlohmann::json{{"type", "sql"}, {"name", name}, {"query", query}, {"expected", expected}};
    };
    return nlohmann::json::array(
        {{{"type", "snapshot"}, {"include", {"owners"}}, {"exclude", {"audit_logs", "backup_logs"}}},
         {{"type", "row_count"}, {"expect", "manifest"}},
         {{"type", "tables_present"}, {"expect", "manifest"}},
         sql("bytea in all three spellings", "SELECT count(*) FROM " + items + " WHERE photo = '\\xdeadbeef'::bytea", 3),
         sql("numeric exactly as written", "SELECT price::text FROM " + items + " WHERE id = 1", "12345678901234567890.1234567891"),
         sql("arrays, jsonb, json, dates, generated", "SELECT concat_ws('|', tags[2], attrs->'k'->>0, doc->>'a', first_tag, made) FROM " +
                                                          items + " WHERE id = 1", "ü|1|1|ALPHA|2026-05-06"),
         sql("nulls stay null", "SELECT count(*) FROM " + items + " WHERE id = 2 AND tags IS NULL AND attrs IS NULL AND price IS NULL", 1),
         sql("unicode and escapes", "SELECT name FROM owners WHERE id = 2", "Bört \"Bo\" 😀 \\ tab\t"),
         sql("timestamps with zones", "SELECT joined = '2026-04-30T22:00:00Z' FROM owners WHERE id = 2", true),
         sql("no audit trigger ran during the load", "SELECT count(*) FROM audit_logs", 0),
         sql("the keys hold again", "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated", 2),
         {{"type", "freshness"}, {"table", "owners"}, {"column", "joined"}, {"max_age_hours", 1000000}}});
  }

  // Writes the snapshot and a scenario restoring it with `schema`, runs the drill.
  testkit::cli_result drill(const std::string& snapshot, nlohmann::json schema, nlohmann::json checks = assertions()) {
    auto file = dir_.path() / "public_2026-05-06T02-00-00-000Z.json";
    write_file(file, snapshot);
    nlohmann::json scenario = {{"name", "snapshot"}, {"backup", {{"file", file.string()}}}, {"assertions", checks}};
    if (!schema.is_null()) scenario["restore"] = {{"schema", schema}};
    write_file(dir_.path() / "scenario.json", scenario.dump(2));
    return run_cli({"run", (dir_.path() / "scenario.json").string(), "--junit", (dir_.path() / "r.xml").string()});
  }
  testkit::cli_result drill_with_migrations(const std::string& snapshot) {
    return drill(snapshot, {{"migrations", migrations().string()}});
  }

  static inline scratch_dir* workspace_ = nullptr;
  scratch_dir dir_;
};

}  // namespace

TEST_F(snapshot_drill, passes_with_the_schema_from_migrations_a_schema_dump_or_sql) {
  auto from_migrations = drill_with_migrations(good_snapshot());
  EXPECT_EQ(from_migrations.exit_code, 0) << from_migrations.output;
  for (const char* name : {"snapshot public.owners", "snapshot public.\"Odd \"\"Items\"\"\"", "row_count public.owners",
                           "no audit trigger ran during the load", "numeric exactly as written"})
    EXPECT_NE(from_migrations.output.find(name), std::string::npos) << name << "\n" << from_migrations.output;
  auto from_dump = drill(good_snapshot(), {{"dump", (workspace_->path() / "schema.dump").string()}});
  EXPECT_EQ(from_dump.exit_code, 0) << from_dump.output;
  auto from_sql = drill(good_snapshot(), {{"sql", std::string(tables_sql) + items_sql + audit_sql}});
  EXPECT_EQ(from_sql.exit_code, 0) << from_sql.output;
}

TEST_F(snapshot_drill, a_cut_or_malformed_file_fails_naming_the_table) {
  auto snapshot = good_snapshot();
  auto cut = drill_with_migrations(snapshot.substr(0, snapshot.find("\"id\": 3")));
  EXPECT_EQ(cut.exit_code, 1) << cut.output;
  EXPECT_NE(cut.output.find("in table Odd \"Items\""), std::string::npos) << cut.output;
  auto malformed = drill_with_migrations(changed(snapshot, R"("manager_id": null}])", R"("manager_id": null}, "Ann"])"));
  EXPECT_EQ(malformed.exit_code, 1) << malformed.output;
  EXPECT_NE(malformed.output.find("row 3 of table 'owners' is not an object"), std::string::npos) << malformed.output;
}

TEST_F(snapshot_drill, a_manifest_that_disagrees_with_its_data_fails_naming_the_table) {
  auto counts = drill_with_migrations(changed(good_snapshot(), R"("rowCount": 2)", R"("rowCount": 3)"));
  EXPECT_EQ(counts.exit_code, 1) << counts.output;
  EXPECT_NE(counts.output.find("public.owners: expected = 3 rows, got 2"), std::string::npos) << counts.output;
  EXPECT_NE(counts.output.find("the manifest says 3 rows, the file holds 2"), std::string::npos) << counts.output;
  auto total = drill_with_migrations(changed(good_snapshot(), R"("totalRows": 5)", R"("totalRows": 6)"));
  EXPECT_EQ(total.exit_code, 1) << total.output;
  EXPECT_NE(total.output.find("totalRows says 6, the tables' counts add up to 5"), std::string::npos) << total.output;
  auto columns = drill_with_migrations(changed(good_snapshot(), R"("name": "Ann",)", R"("name": "Ann", "nickname": "A",)"));
  EXPECT_EQ(columns.exit_code, 1) << columns.output;
  EXPECT_NE(columns.output.find("the file's rows carry nickname, which the table lacks"), std::string::npos) << columns.output;
  auto listed = drill_with_migrations(changed(good_snapshot(), R"("columns": ["id", "name", "email", "joined", "manager_id"])",
                                              R"("columns": ["id", "name", "email", "joined"])"));
  EXPECT_EQ(listed.exit_code, 1) << listed.output;
  EXPECT_NE(listed.output.find("the restored table's column manager_id is not in the manifest"), std::string::npos) << listed.output;
}

TEST_F(snapshot_drill, a_row_the_schema_rejects_fails_naming_the_table) {
  auto not_null = drill_with_migrations(changed(good_snapshot(), R"("name": "Ann")", R"("name": null)"));
  EXPECT_EQ(not_null.exit_code, 1) << not_null.output;
  EXPECT_NE(not_null.output.find("public.owners: null value in column \"name\""), std::string::npos) << not_null.output;
  auto bad_date = drill_with_migrations(changed(good_snapshot(), R"("made": "2026-01-31")", R"("made": "the last of January")"));
  EXPECT_EQ(bad_date.exit_code, 1) << bad_date.output;
  EXPECT_NE(bad_date.output.find("public.\"Odd \"\"Items\"\"\": invalid input syntax for type date"), std::string::npos) << bad_date.output;
  auto orphan = drill_with_migrations(changed(good_snapshot(), R"("id": 3, "owner_id": 2)", R"("id": 3, "owner_id": 99)"));
  EXPECT_EQ(orphan.exit_code, 1) << orphan.output;
  EXPECT_NE(orphan.output.find("violates foreign key constraint"), std::string::npos) << orphan.output;
  EXPECT_NE(orphan.output.find("Odd \"\"Items\"\""), std::string::npos) << orphan.output;
  auto unknown = drill_with_migrations(changed(good_snapshot(), R"("owners": [)", R"("ghosts": [], "owners": [)"));
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("public.ghosts: the snapshot holds this table, but the schema has no such table"), std::string::npos)
      << unknown.output;
}

TEST_F(snapshot_drill, tables_it_must_leave_out_or_hold_are_checked) {
  auto audited = drill_with_migrations(changed(good_snapshot(), R"("owners": [)", R"("audit_logs": [{"id": 1, "note": "x"}], "owners": [)"));
  EXPECT_EQ(audited.exit_code, 1) << audited.output;
  EXPECT_NE(audited.output.find("public.audit_logs: must be left out of the snapshot, and is in it"), std::string::npos) << audited.output;
  EXPECT_NE(audited.output.find("public.audit_logs: the manifest says it is excluded, but the file holds it"), std::string::npos)
      << audited.output;
  auto checks = assertions();
  checks[0]["include"] = {"owners", "invoices"};
  auto missing = drill(good_snapshot(), {{"migrations", migrations().string()}}, checks);
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("public.invoices: must be in the snapshot, and is not"), std::string::npos) << missing.output;
}

TEST_F(snapshot_drill, without_a_schema_that_applies_the_drill_cannot_judge) {
  auto unnamed = drill(good_snapshot(), nullptr);
  EXPECT_EQ(unnamed.exit_code, 2) << unnamed.output;
  EXPECT_NE(unnamed.output.find("a JSON snapshot holds rows only"), std::string::npos) << unnamed.output;
  auto broken = drill(good_snapshot(), {{"sql", "CREATE TABLE owners (id integer"}});
  EXPECT_EQ(broken.exit_code, 2) << broken.output;
  EXPECT_NE(broken.output.find("schema did not apply"), std::string::npos) << broken.output;
}

TEST_F(snapshot_drill, inspect_backups_and_verify_read_a_directory_of_snapshots) {
  write_file(dir_.path() / "snaps" / "public_2026-05-05T02-00-00-000Z.json", good_snapshot());
  write_file(dir_.path() / "snaps" / "public_2026-05-06T02-00-00-000Z.json", good_snapshot());
  auto newest = (dir_.path() / "snaps" / "public_2026-05-06T02-00-00-000Z.json").string();
  auto inspect = run_cli({"inspect", newest});
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  for (const char* line : {"format:       json-snapshot", "schema:       public", "rows:         5 in 2 tables; totalRows 5",
                           "public.owners: 2 rows, columns id, name, email, joined, manager_id", "excluded:     audit_logs, backup_logs",
                           "taken at:     2026-05-06T02:00:00Z (from the file name)"})
    EXPECT_NE(inspect.output.find(line), std::string::npos) << line << "\n" << inspect.output;
  auto listing = run_cli({"backups", (dir_.path() / "snaps").string()});
  EXPECT_EQ(listing.exit_code, 0) << listing.output;
  EXPECT_NE(listing.output.find("json-snapshot"), std::string::npos) << listing.output;
  EXPECT_NE(listing.output.find("newest public_2026-05-06T02-00-00-000Z.json"), std::string::npos) << listing.output;
  auto verified = run_cli({"verify", (dir_.path() / "snaps").string(), "--min-count", "2", "--max-gap-hours", "25"});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_NE(verified.output.find("JSON snapshot read through: 5 rows, as its manifest says"), std::string::npos) << verified.output;
  auto too_few = run_cli({"verify", (dir_.path() / "snaps").string(), "--min-count", "3"});
  EXPECT_EQ(too_few.exit_code, 1) << too_few.output;
  write_file(dir_.path() / "snaps" / "public_2026-05-07T02-00-00-000Z.json", changed(good_snapshot(), R"("rowCount": 3)", R"("rowCount": 4)"));
  auto disagreeing = run_cli({"verify", (dir_.path() / "snaps").string()});
  EXPECT_EQ(disagreeing.exit_code, 1) << disagreeing.output;
  EXPECT_NE(disagreeing.output.find("public.\"Odd \"\"Items\"\"\": the manifest says 4 rows, the file holds 3"), std::string::npos)
      << disagreeing.output;
}

// A large snapshot streams: the runner's peak RSS stays far below the file's size. About 256 MB
// here; PGDRILL_SNAPSHOT_MB=1024 measures the 1 GB figure the README quotes.
TEST_F(snapshot_drill, a_large_snapshot_restores_in_bounded_memory) {
  const char* wanted = std::getenv("PGDRILL_SNAPSHOT_MB");
  const long long megabytes = wanted ? std::atoll(wanted) : 256;
  auto file = dir_.path() / "events_2026-05-06.json";
  long long rows = 0;
  {
    std::ofstream out(file, std::ios::binary);
    out << R"({"manifest": {"schema": "public", "tables": {"events": {"columns": ["id", "at", "payload", "note"]}}}, "data": {"events": [)";
    const std::string note(160, 'x');
    for (long long written = 0; written < (megabytes << 20); ++rows) {
      std::string row = std::string(rows ? "," : "") + R"({"id": )" + std::to_string(rows + 1) +
                        R"(, "at": "2026-05-06T02:00:00.000Z", "payload": {"n": )" + std::to_string(rows) + R"(, "tags": ["a", "b"]}, "note": ")" +
                        note + "\"}\n";
      out << row;
      written += static_cast<long long>(row.size());
    }
    out << "]}}";
  }
  nlohmann::json scenario = {{"name", "large-snapshot"},
                             {"backup", {{"file", file.string()}}},
                             {"restore", {{"schema", {{"sql", "CREATE TABLE events (id bigint PRIMARY KEY, at timestamptz, payload jsonb, note text)"}}}}},
                             {"assertions", {{{"type", "row_count"}, {"table", "events"}, {"equals", rows}}}}};
  write_file(dir_.path() / "large.json", scenario.dump());
  command cmd(PGDRILL_RUNNER_PATH, {"run", (dir_.path() / "large.json").string(), "--junit", (dir_.path() / "r.xml").string()});
  run_options options = run_options::within(std::chrono::minutes(20));
  long peak_kib = 0;
  options.on_tick = [&](pid_t pid) {  // VmHWM: the runner's own peak, not its server's
    std::istringstream status(detail::proc_text("/proc/" + std::to_string(pid) + "/status"));
    for (std::string key; status >> key;)
      if (key == "VmHWM:") status >> peak_kib;
  };
  std::string output;
  options.stdout_sink = [&](std::string_view chunk) { output.append(chunk); };
  auto result = run(cmd, options);
  EXPECT_TRUE(result.ok()) << result.describe() << "\n" << output << result.err_tail;
  EXPECT_GT(peak_kib, 0);
  EXPECT_LT(peak_kib, 64L * 1024) << "peak RSS " << peak_kib << " KiB for a " << megabytes << " MB snapshot";
  std::printf("[ measured ] %lld MB snapshot, %lld rows: runner peak RSS %ld KiB\n", megabytes, rows, peak_kib);
}

// scenarios/json-snapshot.json as shipped, beside a generated snapshot and migrations.
TEST_F(snapshot_drill, the_example_scenario_runs_on_a_generated_snapshot) {
  std::filesystem::copy_file(std::filesystem::path(PGDRILL_SOURCE_DIR) / "scenarios" / "json-snapshot.json", dir_.path() / "example.json");
  std::filesystem::copy(migrations(), dir_.path() / "migrations");
  write_file(dir_.path() / "snapshots" / "public_2026-05-06T02-00-00-000Z.json", good_snapshot());
  auto result = run_cli({"run", (dir_.path() / "example.json").string(), "--junit", (dir_.path() / "r.xml").string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("snapshot public.owners"), std::string::npos) << result.output;
}
