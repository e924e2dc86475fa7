// The backups people really make, drilled through the CLI: every way of running pg_dump and
// pg_dumpall on a database nobody tidied (fixtures/nasty.sql, plus a role that owns things and a
// tablespace). Healthy ones exit 0, broken ones exit 1 naming their first real cause, and faults
// of the drill's environment exit 2.
#include <sys/mount.h>

#include <thread>

#include "support.hpp"

using namespace pgdrill;

namespace {


// The dumps, made once per build tree (testkit::build_once).
struct corpus {
  std::filesystem::path root = std::filesystem::path(PGDRILL_BINARY_DIR) / "test-fixtures" / "corpus-v5";
  std::filesystem::path file(const std::string& name) const { return root / name; }

  corpus() {
    testkit::build_once(root, [this] { build(); });
  }

  void build() {
    auto source = testkit::start_server();
    testkit::psql(*source, "CREATE DATABASE shop");
    auto nasty = testkit::read_file(std::filesystem::path(PGDRILL_SOURCE_DIR) / "tests/fixtures/nasty.sql");
    auto at = nasty.find("ALTER DATABASE postgres");
    nasty.replace(at, 23, "ALTER DATABASE shop");
    testkit::psql(*source, nasty, "shop");
    // A role that owns and is granted things, and a tablespace (in place: no directory of the
    // source machine exists where a drill restores).
    testkit::psql(*source, "ALTER ROLE postgres SET allow_in_place_tablespaces = on");
    testkit::psql(*source, "CREATE TABLESPACE archive_space LOCATION ''");
    testkit::psql(*source, "CREATE ROLE app; ALTER TABLE public.dogs OWNER TO app; GRANT SELECT ON public.animals TO app;"
                           "CREATE TABLE public.archived (id int) TABLESPACE archive_space; INSERT INTO public.archived VALUES (1)",
                  "shop");
    auto dump = [&](const std::string& name, std::vector<std::string> args) {
      args.insert(args.end(), {"-f", file(name).string()});
      testkit::pg_dump(*source, args, "shop");
    };
    dump("plain.sql", {});
    testkit::psql(*source, "CREATE TABLE public.in_postgres (id int); INSERT INTO public.in_postgres VALUES (1), (2)");
    testkit::pg_dump(*source, {"--create", "-f", file("create_postgres.sql").string()}, "postgres");
    dump("create.sql", {"--create"});
    dump("clean.sql", {"--clean"});
    dump("clean_if_exists.sql", {"--clean", "--if-exists"});
    dump("create_clean.sql", {"--create", "--clean"});
    dump("only_public.sql", {"-n", "public"});
    dump("only_public.dump", {"-Fc", "-n", "public"});
    dump("without_odd_schema.sql", {"-N", "\"odd.schema\""});
    dump("two_tables.sql", {"-t", "public.dogs", "-t", "public.animals"});
    dump("without_prices.sql", {"-T", "public.prices"});
    dump("no_owner_no_privileges.sql", {"--no-owner", "--no-privileges"});
    // Grants to a role with an odd name, applied after a dump without any: plain psql restores
    // them only where the roles exist.
    testkit::write_file(file("grants_only.sql"), "GRANT SELECT ON TABLE public.dogs TO app;\n"
                                                 "GRANT SELECT ON TABLE public.animals TO \"Odd Reader\";\n");
    dump("inserts.sql", {"--inserts"});
    dump("column_inserts.sql", {"--column-inserts", "--rows-per-insert=7"});
    dump("schema_only.sql", {"--schema-only"});
    dump("data_only.sql", {"--data-only", "--disable-triggers"});
    dump("custom.dump", {"-Fc"});
    dump("custom_z0.dump", {"-Fc", "-Z", "0"});
    dump("custom_create_clean.dump", {"-Fc", "--create", "--clean"});
    dump("directory.dir", {"-Fd", "-j", "2"});
    dump("archive.tar", {"-Ft"});
    shell("gzip -c < " + file("create.sql").string() + " > " + file("create.sql.gz").string());
    shell("gzip -c < " + file("custom.dump").string() + " > " + file("custom.dump.gz").string());
    dumpall(*source, "cluster.sql", {});
    dumpall(*source, "cluster_clean.sql", {"--clean", "--if-exists"});
    dumpall(*source, "globals.sql", {"--globals-only"});
    testkit::write_file(file("error_page.dump"),
                        "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>\n");
    // A dump that lost the type one of its tables needs, taken with -n public: the harmless
    // "schema public already exists" comes first, the real cause after it.
    auto broken = testkit::read_file(file("only_public.sql"));
    auto type = broken.find("CREATE TYPE public.mood");
    broken.erase(type, broken.find(";\n", type) + 2 - type);
    testkit::write_file(file("missing_type.sql"), broken);
  }

  void dumpall(const server& source, const std::string& name, std::vector<std::string> args) {
    auto tools = find_binaries(binary_search::from_environment());
    args.insert(args.end(), {"-f", file(name).string()});
    command cmd(tools.tool("pg_dumpall"), args);
    cmd.with_env(source.admin().libpq_env());
    auto result = run(cmd, run_options::within(std::chrono::minutes(5)));
    ASSERT_TRUE(result.ok()) << "pg_dumpall " << result.describe() << ": " << result.err_tail;
  }

  static void shell(const std::string& script) {
    auto result = run(command("/bin/sh", {"-c", script}));
    ASSERT_TRUE(result.ok()) << script << ": " << result.err_tail;
  }
};

corpus& shared_corpus() {
  static corpus instance;
  return instance;
}

// One drill of the corpus: the backup files, extra scenario keys, and what the CLI must answer.
struct cell {
  std::string name;
  std::vector<std::string> files;
  std::string restore;  ///< the scenario's restore section
  int exit_code;
  std::string says;     ///< in the output
  std::string must_not_say = "";
  std::string assertions = R"([{"type": "row_count", "table": "public.dogs", "equals": 50},
                               {"type": "row_count", "table": "public.animals", "equals": 3}])";
};

void PrintTo(const cell& item, std::ostream* out) { *out << item.name; }

class backup_corpus : public ::testing::TestWithParam<cell> {
 protected:
  scratch_dir dir_;
};

testkit::cli_result drill(const scratch_dir& dir, const cell& item) {
  std::string files;
  for (const auto& name : item.files) files += (files.empty() ? "\"" : ", \"") + shared_corpus().file(name).string() + "\"";
  auto scenario = dir.path() / "scenario.json";
  testkit::write_file(scenario, R"({"name": "corpus", "provider": "local", "backup": {"files": [)" + files +
                                    R"(]}, "hygiene": {"min_size_bytes": 0}, "restore": )" + item.restore +
                                    R"(, "assertions": )" + item.assertions + "}");
  return testkit::run_cli({"run", scenario.string(), "--junit", (dir.path() / "r.xml").string()});
}

}  // namespace

TEST_P(backup_corpus, drills_with_the_right_verdict) {
  const auto& item = GetParam();
  auto result = drill(dir_, item);
  EXPECT_EQ(result.exit_code, item.exit_code) << result.output;
  EXPECT_NE(result.output.find(item.says), std::string::npos) << "expected '" << item.says << "' in:\n" << result.output;
  if (!item.must_not_say.empty()) {
    EXPECT_EQ(result.output.find(item.must_not_say), std::string::npos) << result.output;
  }
}

const std::string with_app = R"({"roles": ["app"]})";
const std::string plain_ok = "PASS   restore";

INSTANTIATE_TEST_SUITE_P(
    corpus, backup_corpus,
    ::testing::Values(
        cell{"plain", {"plain.sql"}, with_app, 0, "tolerated: the tablespace is not on the drill's server"},
        cell{"create", {"create.sql"}, with_app, 0, "it created its own databases: checking 'shop'"},
        cell{"create_gzip", {"create.sql.gz"}, with_app, 0, "checking 'shop'"},
        cell{"create_of_postgres", {"create_postgres.sql"}, "{}", 0, "tolerated: the fresh server already has database postgres", "",
             R"([{"type": "row_count", "table": "public.in_postgres", "equals": 2}])"},
        cell{"clean", {"clean.sql"}, with_app, 0, "tolerated: --clean drops what a fresh database does not have"},
        cell{"clean_if_exists", {"clean_if_exists.sql"}, with_app, 0, plain_ok},
        cell{"create_clean", {"create_clean.sql"}, with_app, 0, "checking 'shop'"},
        cell{"only_public", {"only_public.sql"}, with_app, 0, "tolerated: the fresh database already has schema public"},
        cell{"only_public_archive", {"only_public.dump"}, with_app, 0, "tolerated: the fresh database already has schema public"},
        cell{"without_a_schema", {"without_odd_schema.sql"}, with_app, 0, plain_ok},
        cell{"two_tables", {"two_tables.sql"}, with_app, 0, plain_ok},
        cell{"without_a_table", {"without_prices.sql"}, with_app, 0, plain_ok},
        cell{"no_owner_no_privileges", {"no_owner_no_privileges.sql"}, "{}", 0, plain_ok},
        cell{"inserts", {"inserts.sql"}, with_app, 0, plain_ok},
        cell{"column_inserts", {"column_inserts.sql"}, with_app, 0, plain_ok},
        cell{"schema_then_data", {"schema_only.sql", "data_only.sql"}, with_app, 0, "restored 2 files in order"},
        cell{"custom", {"custom.dump"}, with_app, 0, "PASS   roles"},
        cell{"custom_uncompressed", {"custom_z0.dump"}, with_app, 0,
             "(as with --no-tablespaces): pg_restore: error: could not set default_tablespace"},
        cell{"custom_create_clean", {"custom_create_clean.dump"}, with_app, 0, plain_ok},
        cell{"directory", {"directory.dir"}, with_app, 0, plain_ok},
        cell{"tar", {"archive.tar"}, with_app, 0, plain_ok},
        // Restored with the default --no-owner --no-privileges, app's ownership and grants are gone:
        // the roles check says so, with the scenario lines that fix it.
        cell{"roles_lost", {"custom.dump"}, "{}", 1,
             "the restore lacks roles the backup refers to: app; objects they owned and grants to them were not restored"},
        cell{"missing_roles_plain", {"no_owner_no_privileges.sql", "grants_only.sql"}, "{}", 1,
             R"("roles": ["app", "Odd Reader"])"},
        cell{"roles_lost_accepted", {"custom.dump"}, "{}", 0, "accepted by \"ignore\"", "",
             R"([{"type": "row_count", "table": "public.dogs", "equals": 50}, {"type": "roles", "ignore": ["app"]}])"},
        cell{"cluster", {"cluster.sql"}, "{}", 0, "tolerated: a cluster dump creates every role"},
        cell{"cluster_clean", {"cluster_clean.sql"}, R"({"database": "shop"})", 0, "checking 'shop'"},
        cell{"globals_then_archive", {"globals.sql", "custom.dump"}, R"({"no_owner": false, "no_privileges": false})", 0,
             "restored 2 files in order"},
        cell{"error_page", {"error_page.dump"}, "{}", 1, "is not a PostgreSQL backup: it looks like an HTML page"},
        cell{"missing_type", {"missing_type.sql"}, with_app, 1, "SQL error: ERROR:  42704: type \"public.mood\" does not exist",
             "restore: the fresh database already has schema public"},
        cell{"missing_role", {"custom.dump"}, R"({"no_owner": false})", 1, "\"roles\": [\"app\"]"},
        cell{"cluster_database_absent", {"cluster.sql"}, R"({"database": "crm"})", 1, "the backup created no database 'crm'"},
        cell{"too_many_jobs", {"custom.dump"}, R"({"jobs": 400})", 2, "too many connections"}),
    [](const ::testing::TestParamInfo<cell>& info) { return info.param.name; });

// Versions come from the archives' own bytes, as pg_restore --list reads them, in every format;
// inspect needs no PostgreSQL tool for them (here: --pg-bin names a directory without any).
TEST(archive_versions, read_in_process_agree_with_pg_restore) {
  auto tools = find_binaries(binary_search::from_environment());
  for (const char* name : {"custom.dump", "custom_z0.dump", "custom.dump.gz", "directory.dir", "archive.tar"}) {
    auto backup = inspect_file(shared_corpus().file(name));
    auto listing = run(command(tools.tool("pg_restore"), {"--list", shared_corpus().file("custom.dump").string()})).out;
    auto versions = read_versions(backup);
    auto says = [&](const std::string& label, const std::string& version) {  // the version, then a space or the line's end
      auto at = listing.find(label + version);
      return at != std::string::npos && std::string(" \n").find(listing[at + label.size() + version.size()]) != std::string::npos;
    };
    EXPECT_TRUE(says("Dumped from database version: ", versions.source_version)) << name << ": " << versions.source_version;
    EXPECT_TRUE(says("Dumped by pg_dump version: ", versions.dump_version)) << name << ": " << versions.dump_version;
    EXPECT_EQ(versions.source_version, tools.version) << name;
    EXPECT_EQ(versions.archive_version, "1.14") << name << ": PostgreSQL 12 to 15 write 1.14";
    EXPECT_EQ(read_archive_header(backup).database, "shop") << name;
  }
  auto inspected = testkit::run_cli({"inspect", shared_corpus().file("archive.tar").string(), "--pg-bin", "/nonexistent/bin"});
  EXPECT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_NE(inspected.output.find("dumped from:  PostgreSQL " + tools.version), std::string::npos) << inspected.output;
  EXPECT_NE(inspected.output.find("restores on:  PostgreSQL " + std::to_string(tools.major) + " or newer"), std::string::npos);
  EXPECT_NE(inspected.output.find("toc:          not read on this host: "), std::string::npos) << inspected.output;
  EXPECT_THROW(read_archive_header(inspect_file(shared_corpus().file("error_page.dump"))), corrupt_backup);
}

// A temp root of its own for one drill, which the drill's server (another user) can enter, so
// the test can find that drill's processes among others'; removed with everything in it.
struct own_temp_root {
  std::filesystem::path path = std::filesystem::path(PGDRILL_TEST_TMPDIR) / ("own-root-" + std::to_string(::getpid()));
  own_temp_root() {
    std::filesystem::create_directories(path);
    std::filesystem::permissions(path, std::filesystem::perms::owner_all | std::filesystem::perms::group_exec |
                                           std::filesystem::perms::others_exec);
  }
  ~own_temp_root() {
    ::umount2(path.c_str(), MNT_DETACH);  // when a test mounted something here
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// A plain script that keeps the server busy, so the test can pull the server from under it.
std::filesystem::path sleeping_script(const std::filesystem::path& dir) {
  auto file = dir / "sleeps.sql";
  testkit::write_file(file, "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.dogs (id int);\nSELECT pg_sleep(60);\n\n"
                            "--\n-- PostgreSQL database dump complete\n--\n");
  return file;
}

TEST(environment_faults, the_server_killed_mid_restore_cannot_verify) {
  scratch_dir dir;
  auto scenario = dir.path() / "scenario.json";
  testkit::write_file(scenario, R"({"name": "killed_server", "provider": "local", "backup": {"file": ")" +
                                    sleeping_script(dir.path()).string() +
                                    R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "sql", "query": "SELECT 1", "expected": 1}]})");
  own_temp_root root;
  const auto& temp = root.path;
  auto runner = child::spawn(command(PGDRILL_RUNNER_PATH, {"run", scenario.string(), "--junit", (dir.path() / "r.xml").string(),
                                                           "--temp-dir", temp.string(), "--no-cache"}),
                             {});
  // The drill's own postmaster: the only postgres (argv[0], not its sandbox's bwrap) whose argv
  // names a data directory under `temp`.
  auto postmaster = [&]() -> pid_t {
    std::error_code ignored;
    for (const auto& process : std::filesystem::directory_iterator("/proc", ignored)) {
      auto argv = detail::proc_text(process.path() / "cmdline");
      auto program = argv.substr(0, argv.find('\0'));
      if (program.size() >= 9 && program.compare(program.size() - 9, 9, "/postgres") == 0 &&
          argv.find(std::string("\0-D\0", 4) + temp.string()) != std::string::npos)
        return std::stoi(process.path().filename().string());
    }
    return 0;
  };
  // The drill's own psql (in this runner's process tree) is restoring: other tests' psql do not count.
  auto restoring = [&] {
    for (const auto& pid : detail::process_tree(runner.pid()))
      if (detail::proc_text("/proc/" + pid + "/cmdline").find(std::string("psql\0-X\0-q\0--echo-errors", 24)) != std::string::npos)
        return true;
    return false;
  };
  pid_t server = 0;
  for (int attempt = 0; attempt < 600 && !(server && restoring()); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server = postmaster();
  }
  ASSERT_NE(server, 0) << "the drill never started its server";
  std::this_thread::sleep_for(std::chrono::seconds(1));  // psql is in pg_sleep now
  ::kill(server, SIGKILL);
  auto finished = runner.wait_for(std::chrono::minutes(2));
  ASSERT_TRUE(finished) << "the drill did not end after its server died";
  EXPECT_EQ(finished->code, 2);
  auto junit = testkit::read_file(dir.path() / "r.xml");
  EXPECT_NE(junit.find("server stopped or unreachable"), std::string::npos) << junit;
}

TEST(environment_faults, a_scratch_space_too_small_for_the_restore_cannot_verify) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  scratch_dir dir;
  own_temp_root root;
  const auto& small = root.path;
  ASSERT_EQ(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=96m,mode=0755"), 0) << std::strerror(errno);
  auto big = dir.path() / "big.sql";
  // Rows short enough to stay inline and uncompressed: 300 MB that cannot fit in 96 MB.
  testkit::write_file(big, "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.big (g int, filler text);\n"
                           "INSERT INTO public.big SELECT g, repeat('x', 1500) FROM generate_series(1, 200000) g;\n"
                           "\n--\n-- PostgreSQL database dump complete\n--\n");
  auto scenario = dir.path() / "scenario.json";
  testkit::write_file(scenario, R"({"name": "disk_full", "provider": "local", "backup": {"file": ")" + big.string() +
                                    R"("}, "hygiene": {"min_size_bytes": 0}, "assertions": [{"type": "sql", "query": "SELECT 1", "expected": 1}]})");
  auto result = testkit::run_cli(
      {"run", scenario.string(), "--junit", (dir.path() / "r.xml").string(), "--temp-dir", small.string(), "--no-cache"});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(result.output.find("disk full") != std::string::npos ||
              result.output.find("server stopped or unreachable") != std::string::npos)
      << result.output;
}
