// Every pg_dump format and compression, restored for real and compared with the source; and
// damaged copies of each, which must fail the drill with a classified message.

#include <set>

#include "support.hpp"

using namespace pgdrill;

namespace {

const std::vector<std::string> fixture_tables{"public.customers", "public.orders", "public.events"};

// The fixture source's dumps and row counts. CTest runs every test in its own process, so they
// are made once per build tree: the first process builds them under an flock, the rest reuse them.
struct fixture {
  std::filesystem::path root = std::filesystem::path(PGDRILL_BINARY_DIR) / "test-fixtures" / "restore-v2";
  std::map<std::string, long long> counts;

  std::filesystem::path file(const std::string& name) const { return root / name; }

  fixture() {
    testkit::build_once(root, [this] { build(); });
    auto stored = nlohmann::json::parse(testkit::read_file(root / "counts.json"));
    for (const auto& item : stored.items()) counts[item.key()] = item.value().get<long long>();
  }

  void build() {
    auto source = testkit::start_demo_source();
    testkit::psql(*source, R"(
      CREATE TABLE events (id bigserial PRIMARY KEY, customer_id bigint REFERENCES customers (id),
                           payload jsonb, raw bytea, happened_at timestamptz);
      INSERT INTO events (customer_id, payload, raw, happened_at)
      SELECT 1 + i % 1000, jsonb_build_object('n', i, 'text', E'tab\tand ''quote'''), decode(md5(i::text), 'hex'),
             timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
      FROM generate_series(1, 3000) AS i;
      CREATE INDEX ON events (happened_at);)");
    nlohmann::json source_counts;
    for (const auto& table : fixture_tables)
      source_counts[table] = std::stoll(testkit::psql(*source, "SELECT count(*) FROM " + table));
    testkit::write_file(root / "counts.json", source_counts.dump());

    // The same bytes on every build (damage tests cut and flip at fixed offsets): no now() in the
    // data, and a fixed psql \restrict key where pg_dump writes one.
    auto fixed_key = run(command(find_binaries(binary_search::from_environment()).tool("pg_dump"), {"--help"}))
                         .out.find("--restrict-key") != std::string::npos;
    auto dump = [&](std::vector<std::string> args, const std::string& name) {
      if (fixed_key && args.front() == "-Fp") args.push_back("--restrict-key=pgdrillfixture");
      args.insert(args.end(), {"-f", file(name).string()});
      testkit::pg_dump(*source, args);
    };
    dump({"-Fp"}, "plain.sql");
    dump({"-Fc"}, "custom.dump");
    dump({"-Fc", "-Z", "9"}, "custom_z9.dump");
    dump({"-Fc", "-Z", "0"}, "custom_z0.dump");
    dump({"-Fd", "-j", "2"}, "directory.dir");
    dump({"-Ft"}, "archive.tar");
    dump({"-Fp", "-t", "customers", "-t", "orders"}, "allow_list.sql");
    dump({"-Fp", "-s"}, "schema_only.sql");
    dump({"-Fp", "-t", "customers"}, "customers_backup.sql");
    dump({"-Fp", "-t", "orders"}, "orders_backup.sql");
    dump({"-Fp", "-t", "events", "-t", "events_id_seq"}, "events_backup.sql");
    // Compressed with the real command-line compressors, as users' cron jobs do.
    for (const auto& [tool, extension] : std::vector<std::pair<std::string, std::string>>{
             {"gzip", "gz"}, {"zstd", "zst"}, {"lz4", "lz4"}, {"bzip2", "bz2"}, {"xz", "xz"}}) {
      shell(tool + " -c < " + file("plain.sql").string() + " > " + file("plain.sql." + extension).string());
      shell(tool + " -c < " + file("custom_z0.dump").string() + " > " + file("custom_z0.dump." + extension).string());
    }
  }

  static void shell(const std::string& script) {
    auto result = run(command("/bin/sh", {"-c", script}));
    if (!result.ok()) throw std::runtime_error(script + ": " + result.err_tail);
  }
};

fixture& shared_fixture() {
  static fixture instance;
  return instance;
}

scenario plan_for(std::vector<std::filesystem::path> files, const std::vector<std::string>& tables) {
  scenario plan;
  plan.name = "restore_test";
  if (files.size() == 1) plan.backup.file = files.front();
  else plan.backup.files = files;
  for (const auto& table : tables) {
    row_count_assertion count;
    count.table = table;
    count.equals = shared_fixture().counts.at(table);
    plan.assertions.push_back(count);
  }
  return plan;
}

const step_result* find_step(const drill_result& result, const std::string& name) {
  for (const auto* list : {&result.stages, &result.checks})
    for (const auto& step : *list)
      if (step.name == name) return &step;
  return nullptr;
}

// Damaged copies: cut at 60% of the size, or 64 bytes overwritten with 0xFF in the middle.
std::filesystem::path truncated_copy(const std::filesystem::path& original, const std::filesystem::path& dir) {
  auto copy = dir / ("truncated-" + original.filename().string());
  std::filesystem::copy_file(original, copy);
  std::filesystem::resize_file(copy, std::filesystem::file_size(copy) * 6 / 10);
  return copy;
}

std::filesystem::path flipped_copy(const std::filesystem::path& original, const std::filesystem::path& dir) {
  auto copy = dir / ("flipped-" + original.filename().string());
  std::filesystem::copy_file(original, copy);
  std::fstream file(copy, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(copy) / 2));
  file.write(std::string(64, '\xff').data(), 64);
  return copy;
}

}  // namespace

class every_format : public ::testing::TestWithParam<std::string> {};

TEST_P(every_format, restores_with_the_source_row_counts) {
  auto backup = shared_fixture().file(GetParam());
  auto result = run_drill(plan_for({backup}, fixture_tables));
  EXPECT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);
}

INSTANTIATE_TEST_SUITE_P(restore, every_format,
                         ::testing::Values("plain.sql", "plain.sql.gz", "plain.sql.zst", "plain.sql.lz4", "plain.sql.bz2",
                                           "plain.sql.xz", "custom.dump", "custom_z9.dump", "custom_z0.dump",
                                           "custom_z0.dump.gz", "custom_z0.dump.zst", "custom_z0.dump.lz4",
                                           "custom_z0.dump.bz2", "custom_z0.dump.xz", "directory.dir", "archive.tar"),
                         [](const auto& info) { return pgdrill::testing::test_name(info.param); });

TEST(restore, detects_the_format_inside_compression) {
  auto gz = inspect_file(shared_fixture().file("custom_z0.dump.gz"));
  EXPECT_EQ(gz.compressed, compression::gzip);
  EXPECT_EQ(gz.format, backup_format::custom);
  auto xz = inspect_file(shared_fixture().file("plain.sql.xz"));
  EXPECT_EQ(xz.compressed, compression::xz);
  EXPECT_EQ(xz.format, backup_format::plain);
  EXPECT_EQ(inspect_file(shared_fixture().file("directory.dir")).format, backup_format::directory);
  EXPECT_EQ(inspect_file(shared_fixture().file("archive.tar")).format, backup_format::tar);
}

TEST(restore, reads_versions_and_the_table_of_contents) {
  auto tools = find_binaries(binary_search::from_environment());
  for (const char* name : {"custom.dump", "custom_z0.dump.zst", "directory.dir", "archive.tar"}) {
    auto contents = read_contents(inspect_file(shared_fixture().file(name)), tools);
    EXPECT_EQ(contents.source_version, tools.version) << name;
    EXPECT_EQ(contents.dump_version, tools.version) << name;
    auto tables = contents.tables();
    EXPECT_EQ(std::set<std::string>(tables.begin(), tables.end()), std::set<std::string>(fixture_tables.begin(), fixture_tables.end()))
        << name;
  }
  auto plain = read_contents(inspect_file(shared_fixture().file("plain.sql.bz2")), tools);
  EXPECT_EQ(plain.source_version, tools.version);
}

TEST(restore, allow_list_dump_restores_only_its_tables) {
  auto result = run_drill(plan_for({shared_fixture().file("allow_list.sql")}, {"public.customers", "public.orders"}));
  EXPECT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);
  auto missing = run_drill(plan_for({shared_fixture().file("allow_list.sql")}, {"public.events"}));
  EXPECT_EQ(missing.verdict(), exit_code::failed);
  EXPECT_NE(testkit::drill_report(missing).find("events"), std::string::npos) << testkit::drill_report(missing);
}

TEST(restore, a_backup_set_restores_in_order) {
  auto& data = shared_fixture();
  auto result = run_drill(plan_for(
      {data.file("customers_backup.sql"), data.file("orders_backup.sql"), data.file("events_backup.sql")}, fixture_tables));
  EXPECT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);
  EXPECT_NE(find_step(result, "restore")->message.find("restored 3 files in order"), std::string::npos);
}

TEST(restore, schema_only_dump_restores_empty_tables) {
  auto plan = plan_for({shared_fixture().file("schema_only.sql")}, {});
  row_count_assertion empty;
  empty.table = "events";
  empty.equals = 0;
  plan.assertions.push_back(empty);
  auto result = run_drill(plan);
  EXPECT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);
}

class damaged : public ::testing::TestWithParam<std::string> {
 protected:
  scratch_dir dir_;
};

TEST_P(damaged, truncated_copy_fails_the_drill_with_a_classified_message) {
  auto result = run_drill(plan_for({truncated_copy(shared_fixture().file(GetParam()), dir_.path())}, fixture_tables));
  EXPECT_EQ(result.verdict(), exit_code::failed) << testkit::drill_report(result);
  EXPECT_NE(testkit::drill_report(result).find("truncated or corrupt archive"), std::string::npos) << testkit::drill_report(result);
}

TEST_P(damaged, copy_with_flipped_bytes_fails_the_drill) {
  auto result = run_drill(plan_for({flipped_copy(shared_fixture().file(GetParam()), dir_.path())}, fixture_tables));
  EXPECT_EQ(result.verdict(), exit_code::failed) << testkit::drill_report(result);
  auto text = testkit::drill_report(result);
  // A compressed stream damaged within its first block is caught before any server: not a backup.
  EXPECT_TRUE(text.find("truncated or corrupt archive") != std::string::npos || text.find("SQL error") != std::string::npos ||
              text.find("is not a PostgreSQL backup: decompressed, it looks like a damaged") != std::string::npos)
      << text;
}

INSTANTIATE_TEST_SUITE_P(restore, damaged,
                         ::testing::Values("plain.sql", "plain.sql.gz", "plain.sql.zst", "custom.dump", "custom_z0.dump.xz",
                                           "archive.tar"),
                         [](const auto& info) { return pgdrill::testing::test_name(info.param); });

TEST(restore, damaged_directory_archive_fails) {
  scratch_dir dir;
  auto copy = dir.path() / "directory.dir";
  std::filesystem::copy(shared_fixture().file("directory.dir"), copy, std::filesystem::copy_options::recursive);
  for (const auto& entry : std::filesystem::directory_iterator(copy))
    if (entry.path().filename() != "toc.dat")
      std::filesystem::resize_file(entry.path(), std::filesystem::file_size(entry.path()) / 2);
  auto result = run_drill(plan_for({copy}, fixture_tables));
  EXPECT_EQ(result.verdict(), exit_code::failed) << testkit::drill_report(result);
  EXPECT_NE(testkit::drill_report(result).find("truncated or corrupt archive"), std::string::npos) << testkit::drill_report(result);
}

TEST(restore, empty_file_fails_the_size_check) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "empty.sql", "");
  auto result = run_drill(plan_for({dir.path() / "empty.sql"}, {"public.customers"}));
  EXPECT_EQ(result.verdict(), exit_code::failed);
  auto size = find_step(result, "backup size");
  ASSERT_NE(size, nullptr);
  EXPECT_EQ(size->result, outcome::failed);
  EXPECT_NE(size->message.find("0 bytes, under the minimum of 1024"), std::string::npos) << size->message;
}

TEST(restore, plain_dump_from_a_newer_server_cannot_be_verified) {
  scratch_dir dir;
  auto text = testkit::read_file(shared_fixture().file("plain.sql"));
  auto at = text.find("-- Dumped from database version ");
  ASSERT_NE(at, std::string::npos);
  text.replace(at + 32, 2, "99");
  testkit::write_file(dir.path() / "newer.sql", text);
  auto result = run_drill(plan_for({dir.path() / "newer.sql"}, {"public.customers"}));
  EXPECT_EQ(result.verdict(), exit_code::not_verified) << testkit::drill_report(result);
  auto provision = find_step(result, "provision server");
  EXPECT_NE(provision->message.find("dumped from PostgreSQL 99"), std::string::npos) << provision->message;
  EXPECT_NE(provision->message.find("no PostgreSQL 99 or newer installed"), std::string::npos) << provision->message;
  EXPECT_NE(provision->detail.find(find_binaries(binary_search::from_environment()).version), std::string::npos)
      << "names what is installed: " << provision->detail;
}

TEST(restore, archive_format_newer_than_the_tools_cannot_be_verified) {
  scratch_dir dir;
  auto copy = dir.path() / "future.dump";
  std::filesystem::copy_file(shared_fixture().file("custom.dump"), copy);
  std::fstream file(copy, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(6);  // "PGDMP", major, minor: claim archive version 1.99
  file.put(static_cast<char>(99));
  file.close();
  auto result = run_drill(plan_for({copy}, {"public.customers"}));
  EXPECT_EQ(result.verdict(), exit_code::not_verified) << testkit::drill_report(result);
  auto inspect = find_step(result, "inspect backup");
  EXPECT_NE(inspect->message.find("(archive format 1.99)"), std::string::npos) << inspect->message;
  EXPECT_NE(inspect->detail.find("cannot read it. Restore it with the tools of the PostgreSQL major whose pg_dump wrote it"),
            std::string::npos) << inspect->detail;
  auto restore = find_step(result, "restore");
  EXPECT_EQ(restore->result, outcome::error) << "never the backup's fault";
  EXPECT_NE(restore->message.find("unsupported version (1.99) in file header"), std::string::npos) << restore->message;
}

TEST(restore, restore_friendly_options_roles_extensions_and_sql_hooks) {
  auto plan = plan_for({shared_fixture().file("custom.dump")}, {"public.customers"});
  plan.restore.roles = {"app_owner"};
  plan.restore.extensions = {"pg_trgm"};
  plan.restore.sql_before = "CREATE TABLE before_marker (id int)";
  plan.restore.sql_after = "CREATE TABLE after_marker AS SELECT count(*) AS n FROM customers";
  plan.restore.max_seconds = 600;
  row_count_assertion after;
  after.table = "after_marker";
  after.equals = 1;
  plan.assertions.push_back(after);
  auto result = run_drill(plan);
  EXPECT_EQ(result.verdict(), exit_code::passed) << testkit::drill_report(result);
  EXPECT_EQ(find_step(result, "restore time")->result, outcome::passed);
}

TEST(restore, restore_over_its_rto_fails) {
  auto plan = plan_for({shared_fixture().file("custom.dump")}, {"public.customers"});
  plan.restore.max_seconds = 0.000001;
  auto result = run_drill(plan);
  EXPECT_EQ(result.verdict(), exit_code::failed);
  EXPECT_NE(find_step(result, "restore time")->message.find("recovery time objective"), std::string::npos);
}

TEST(restore, restore_timeout_fails_the_drill) {
  auto plan = plan_for({shared_fixture().file("plain.sql")}, {"public.customers"});
  plan.restore.sql_before = "";
  plan.restore.timeout = std::chrono::seconds(1);
  // A plain script that sleeps past the timeout: pg_dump output plus a long pg_sleep.
  scratch_dir dir;
  testkit::write_file(dir.path() / "slow.sql", "SELECT pg_sleep(120);\n");
  plan.backup.file = dir.path() / "slow.sql";
  plan.hygiene.min_size_bytes = 0;
  auto result = run_drill(plan);
  EXPECT_EQ(result.verdict(), exit_code::failed) << testkit::drill_report(result);
  EXPECT_NE(find_step(result, "restore")->message.find("timed out after 1."), std::string::npos) << testkit::drill_report(result);
}

TEST(restore, sha256_sidecar_mismatch_fails_and_match_passes) {
  scratch_dir dir;
  auto copy = dir.path() / "custom.dump";
  std::filesystem::copy_file(shared_fixture().file("custom.dump"), copy);
  testkit::write_file(dir.path() / "custom.dump.sha256", sha256_file(copy) + "  custom.dump\n");
  auto good = run_drill(plan_for({copy}, {"public.customers"}));
  EXPECT_EQ(good.verdict(), exit_code::passed) << testkit::drill_report(good);
  EXPECT_EQ(find_step(good, "backup sha256")->result, outcome::passed);
  testkit::write_file(dir.path() / "custom.dump.sha256", std::string(64, '0') + "  custom.dump\n");
  auto bad = run_drill(plan_for({copy}, {"public.customers"}));
  EXPECT_EQ(bad.verdict(), exit_code::failed);
  EXPECT_NE(find_step(bad, "backup sha256")->message.find("does not match"), std::string::npos);
}

// Run as root, the restore tools run as an unprivileged account (the local sandbox's). A backup
// only root may read (0600 in a 0700 directory, as backups often are) still restores, in
// parallel, with no right to read any file: pg_restore reads a private copy the drill made (a
// directory archive, -j), and the restore step says so; psql reads its script from the drill; a
// readable backup is read where it is.
TEST(restore, root_only_backups_restore_with_tools_of_an_unprivileged_account) {
  if (::geteuid() != 0) GTEST_SKIP() << "the tools change account only when pgdrill runs as root";
  scratch_dir private_dir;  // 0700, root's
  auto copy = [&](const std::string& name) {
    auto target = private_dir.path() / name;
    std::filesystem::copy(shared_fixture().file(name), target, std::filesystem::copy_options::recursive);
    if (!std::filesystem::is_directory(target)) std::filesystem::permissions(target, std::filesystem::perms(0600));
    else
      for (const auto& entry : std::filesystem::directory_iterator(target)) std::filesystem::permissions(entry.path(), std::filesystem::perms(0600));
    return target;
  };
  for (const char* name : {"custom.dump", "directory.dir", "plain.sql"}) {
    auto plan = plan_for({copy(name)}, fixture_tables);
    plan.restore.jobs = 2;
    auto result = run_drill(plan);
    EXPECT_EQ(result.verdict(), exit_code::passed) << name << "\n" << testkit::drill_report(result);
    auto restore = find_step(result, "restore");
    ASSERT_NE(restore, nullptr);
    bool read_by_path = std::string(name) != "plain.sql";  // psql reads its script from the drill
    EXPECT_EQ(restore->detail.find("right to read any file"), std::string::npos) << name << "\n" << restore->detail;
    EXPECT_EQ(restore->detail.find("a private copy of the backup") != std::string::npos, read_by_path)
        << name << "\n" << restore->detail;
  }
  scratch_dir open_dir;  // 0755 with a 0644 copy: readable to the account, wherever the build tree is
  std::filesystem::permissions(open_dir.path(), std::filesystem::perms(0755));
  auto open_copy = open_dir.path() / "custom.dump";
  std::filesystem::copy(shared_fixture().file("custom.dump"), open_copy);
  std::filesystem::permissions(open_copy, std::filesystem::perms(0644));
  auto readable = run_drill(plan_for({open_copy}, fixture_tables));
  EXPECT_EQ(readable.verdict(), exit_code::passed) << testkit::drill_report(readable);
  EXPECT_EQ(find_step(readable, "restore")->detail.find("private copy"), std::string::npos)
      << "a backup the account can read is read where it is";
}

// The tools a drill runs outside a sandbox (a server the user named) are the account's processes,
// not root's: psql's own shell escape (which a backup cannot reach: the script runs restricted)
// reports the account's uid.
TEST(restore, client_tools_run_as_the_unprivileged_account) {
  if (::geteuid() != 0) GTEST_SKIP() << "the tools change account only when pgdrill runs as root";
  auto server = testkit::start_shared_server();
  auto tools = find_binaries(binary_search::from_environment());
  command whoami(tools.tool("psql"), {"-X", "-q", "-c", "\\! id -un"});
  server->admin().apply_to(whoami);
  auto answer = tools.run(whoami, run_options::within(std::chrono::minutes(1)));
  ASSERT_TRUE(answer.ok()) << answer.err_tail;
  EXPECT_EQ(answer.out, unprivileged_account()->name + "\n");
}
