// Backups from PostgreSQL 13, 15, 17 and 18, each made by its own major's pg_dump (and a 13
// server dumped by pg_dump 17), in every format, drilled through `pgdrill run`:
// - with the container provider on a host with no PostgreSQL at all (a private mount namespace
//   hides /usr/lib/postgresql and Debian's wrappers): every tool runs in the image of the major
//   the backup needs, and every cell passes;
// - with the local provider and this host's own PostgreSQL (15): what 15 can restore passes,
//   the rest is exit 2 naming the versions and what to install, never exit 1.
// The backups come from real servers of each major (tests/major_backups.sh, the images of
// ci/container-test-image).
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "support.hpp"

using namespace pgdrill;
using namespace pgdrill::testkit;

namespace {

const std::vector<std::string> sources{"pg13", "pg13-by-pg_dump17", "pg15", "pg17", "pg18"};
const std::vector<std::string> formats{".dump", ".dir", ".tar", ".sql", ".sql.gz"};

std::filesystem::path backups() {
  auto root = std::filesystem::path(PGDRILL_TEST_CACHE_DIR) / "majors-v1";
  build_once(root, [&] {
    auto made = run(command("/bin/bash", {std::string(PGDRILL_SOURCE_DIR) + "/tests/major_backups.sh", root.string()}),
                    run_options::within(std::chrono::minutes(15)));
    if (!made.ok()) throw std::runtime_error("tests/major_backups.sh " + made.describe() + ": " + made.err_tail);
  });
  return root;
}

// The runner in a mount namespace where this host's PostgreSQL is hidden: no server, no
// pg_restore, no psql, no pg_config target (libpq stays: it is the runner's own library).
cli_result without_host_postgresql(const std::vector<std::string>& args) {
  std::vector<std::string> wrapped{
      "--mount", "--propagation", "private", "/bin/sh", "-c",
      "mount -t tmpfs none /usr/lib/postgresql && mount -t tmpfs none /usr/share/postgresql-common && exec \"$0\" \"$@\"",
      PGDRILL_RUNNER_PATH};
  wrapped.insert(wrapped.end(), args.begin(), args.end());
  return run_captured(command("/usr/bin/unshare", wrapped));
}

// The major each source's backups need: the newer of the source server's and pg_dump's.
int needed_major(const std::string& source) { return source == "pg13" ? 13 : source == "pg15" ? 15 : source == "pg18" ? 18 : 17; }
std::string dumped_from(const std::string& source) { return source.substr(2, 2) + "."; }
std::string dumped_by(const std::string& source) { return std::to_string(source == "pg13" ? 13 : needed_major(source)) + "."; }

class majors : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "hiding the host's PostgreSQL needs a mount namespace: run as root (CI does)";
    std::tie(source_, format_) = GetParam();
    backup_ = backups() / (source_ + format_);
  }

  std::filesystem::path scenario(const std::string& provider) {
    auto file = dir_.path() / "scenario.json";
    write_file(file, R"({"name": ")" + source_ + format_ + R"(", "backup": {"file": ")" + backup_.string() + R"("}, )" + provider + R"(
      "assertions": [{"type": "row_count", "table": "public.shards", "equals": 200},
                     {"type": "row_count", "table": "\"odd.schema\".\"dotted.table\"", "equals": 2},
                     {"type": "sql", "name": "generated column and large objects",
                      "query": "SELECT sum(gross)::text || '/' || (SELECT count(*) FROM pg_largeobject_metadata) FROM public.prices",
                      "expected": "1912.50/2"}]})");
    return file;
  }
  nlohmann::json report() { return nlohmann::json::parse(read_file(dir_.path() / "report.json")); }
  std::string property(const nlohmann::json& json, const std::string& name) {
    return json.at("properties").contains(name) ? json.at("properties").at(name).get<std::string>() : "";
  }

  std::string source_, format_;
  std::filesystem::path backup_;
  scratch_dir dir_;
};

}  // namespace

TEST_P(majors, container_provider_restores_it_on_a_host_without_postgresql) {
  auto file = scenario(R"("provider": "container", "container": {"engine": "podman", "image": "localhost/pgdrill-test-postgres:{major}"},)");
  auto ran = without_host_postgresql({"run", file.string(), "--json", (dir_.path() / "report.json").string()});
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  auto json = report();
  EXPECT_EQ(property(json, "server.provider"), "container");
  EXPECT_EQ(property(json, "server.version").substr(0, 3), std::to_string(needed_major(source_)) + ".");
  EXPECT_EQ(property(json, "backup.source_version").substr(0, 3), dumped_from(source_));
  EXPECT_EQ(property(json, "backup.pg_dump_version").substr(0, 3), dumped_by(source_));
  EXPECT_EQ(property(json, "restore.tools_version").substr(0, 3), std::to_string(needed_major(source_)) + ".");
  EXPECT_EQ(property(json, "restore.tools_location").rfind("podman container pgdrill-", 0), 0U) << property(json, "restore.tools_location");
  EXPECT_NE(property(json, "backup.toc_entries"), format_ == ".sql" || format_ == ".sql.gz" ? "x" : "0")
      << "an archive's table of contents is read by the container's tools";
}

// The backup as backups often are kept: root's only (0600 files in a 0700 directory). The
// sandboxed tools get it on stdin or as a private copy, never through a right to read any file.
TEST_P(majors, local_provider_restores_what_this_host_can_and_says_what_to_install_otherwise) {
  scratch_dir private_dir;  // 0700, root's
  auto kept = private_dir.path() / backup_.filename();
  std::filesystem::copy(backup_, kept, std::filesystem::copy_options::recursive);
  for (const auto& path : detail::with_directory_entries({kept}))
    if (!std::filesystem::is_directory(path)) std::filesystem::permissions(path, std::filesystem::perms(0600));
  backup_ = kept;
  auto file = scenario("");
  auto ran = run_cli({"run", file.string(), "--json", (dir_.path() / "report.json").string()});
  auto installed = find_binaries(binary_search::from_environment());
  if (installed.major >= needed_major(source_)) {
    EXPECT_EQ(ran.exit_code, 0) << ran.output;
    EXPECT_EQ(property(report(), "restore.tools_location"), installed.bin_dir.string());
    EXPECT_NE(ran.output.find("the backup needs PostgreSQL " + std::to_string(needed_major(source_)) + " or newer; local PostgreSQL " +
                              installed.version),
              std::string::npos)
        << ran.output;
  } else {
    EXPECT_EQ(ran.exit_code, 2) << ran.output;
    EXPECT_NE(ran.output.find("needs PostgreSQL " + std::to_string(needed_major(source_)) + " or newer"), std::string::npos) << ran.output;
    EXPECT_NE(ran.output.find("by pg_dump " + dumped_by(source_)), std::string::npos) << ran.output;
    EXPECT_NE(ran.output.find("container provider"), std::string::npos) << ran.output;
  }
}

TEST_P(majors, inspect_reads_the_versions_without_postgresql) {
  auto ran = without_host_postgresql({"inspect", backup_.string()});
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("PostgreSQL " + dumped_from(source_)), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("pg_dump " + dumped_by(source_)), std::string::npos) << ran.output;
}

INSTANTIATE_TEST_SUITE_P(backups, majors, ::testing::Combine(::testing::ValuesIn(sources), ::testing::ValuesIn(formats)),
                         [](const auto& info) {
                           std::string name = std::get<0>(info.param) + std::get<1>(info.param);
                           for (auto& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

// The namespace really hides PostgreSQL: without a container, nothing can drill there.
TEST(majors_host, the_namespace_has_no_postgresql) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a mount namespace";
  auto ran = without_host_postgresql({"with-server", "--", "true"});
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("no PostgreSQL binaries found"), std::string::npos) << ran.output;
}

// An image the user pins to an older major than the backup needs cannot judge it: exit 2 before
// the restore (a PostgreSQL 17 script on 13 fails on `SET transaction_timeout`, no fault of the
// backup's).
TEST(majors_pinned, an_image_older_than_the_backup_needs_is_exit_2_not_a_broken_backup) {
  scratch_dir dir;
  auto file = dir.path() / "scenario.json";
  write_file(file, R"({"name": "pinned", "backup": {"file": ")" + (backups() / "pg17.sql").string() +
                       R"("}, "provider": "container", "container": {"engine": "podman", "image": "localhost/pgdrill-test-postgres:13"},
      "assertions": [{"type": "row_count", "table": "public.shards", "equals": 200}]})");
  auto ran = run_cli({"run", file.string()});
  EXPECT_EQ(ran.exit_code, 2) << ran.output;
  EXPECT_NE(ran.output.find("needs PostgreSQL 17 or newer, but the server is PostgreSQL 13."), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("use a server or image of PostgreSQL 17 or newer"), std::string::npos) << ran.output;
}

// One schema reference across majors: taken on a PostgreSQL 13 server holding nasty.sql, it
// equals the reference of pg_dump 13's backup of the same database restored into this host's 15.
TEST(majors_schema, a_reference_taken_on_13_holds_for_its_backup_restored_into_15) {
  container_options options;
  options.engine = "podman";
  options.image_template = "localhost/pgdrill-test-postgres:{major}";
  options.major = 13;
  auto source = container_server::start(options);
  auto psql = find_binaries(binary_search::from_environment()).tool("psql").string();
  auto loaded = run_captured(command(psql, {"-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", std::string(PGDRILL_SOURCE_DIR) + "/tests/fixtures/nasty.sql"})
                                 .with_env(source->admin().libpq_env()));
  ASSERT_EQ(loaded.exit_code, 0) << loaded.output;
  scratch_dir dir;
  auto reference = dir.path() / "pg13.schema.ref";
  auto taken = run_captured(command(PGDRILL_RUNNER_PATH, {"schema", "--out", reference.string()}).with_env(source->admin().libpq_env()));
  ASSERT_EQ(taken.exit_code, 0) << taken.output;
  EXPECT_NE(read_file(reference).find("table\tpublic.puppies\tinherits public.dogs\n"), std::string::npos) << read_file(reference);
  auto file = dir.path() / "scenario.json";
  write_file(file, R"({"name": "schema13", "backup": {"file": ")" + (backups() / "pg13.dump").string() +
                       R"("}, "assertions": [{"type": "schema", "reference": ")" + reference.string() + R"("}]})");
  auto ran = run_cli({"run", file.string()});
  EXPECT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("the schema matches pg13.schema.ref"), std::string::npos) << ran.output;
}
