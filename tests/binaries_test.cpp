#include "support.hpp"

using namespace pgdrill;

TEST(binaries, finds_the_installed_postgresql) {
  auto found = find_binaries(binary_search::from_environment());
  EXPECT_GE(found.major, 10);
  EXPECT_TRUE(std::filesystem::exists(found.tool("initdb")));
  EXPECT_EQ(major_of(found.version), found.major);
}

TEST(binaries, explicit_directory_without_tools_names_it) {
  binary_search search;
  search.explicit_dir = "/nonexistent/pg/bin";
  try {
    find_binaries(search);
    FAIL() << "expected could_not_verify";
  } catch (const could_not_verify& failure) {
    std::string text = failure.what();
    EXPECT_NE(text.find("/nonexistent/pg/bin"), std::string::npos) << text;
    EXPECT_NE(text.find("initdb"), std::string::npos) << text;
  }
}

TEST(binaries, nothing_found_lists_every_place_searched) {
  binary_search search;
  search.roots = {"/nonexistent/root-a", "/nonexistent/root-b"};
  search.use_pg_config = false;
  search.use_path = false;
  try {
    find_binaries(search);
    FAIL() << "expected could_not_verify";
  } catch (const could_not_verify& failure) {
    std::string text = failure.what();
    EXPECT_NE(text.find("/nonexistent/root-a/*/bin"), std::string::npos) << text;
    EXPECT_NE(text.find("/nonexistent/root-b/*/bin"), std::string::npos) << text;
    EXPECT_EQ(failure.code(), exit_code::not_verified);
  }
}

TEST(binaries, a_too_new_minimum_names_what_is_installed) {
  auto installed = find_binaries(binary_search::from_environment());
  try {
    find_binaries(binary_search::from_environment(), installed.major + 1);
    FAIL() << "expected could_not_verify";
  } catch (const could_not_verify& failure) {
    std::string text = failure.what();
    EXPECT_NE(text.find(std::to_string(installed.major + 1) + " or newer"), std::string::npos) << text;
    EXPECT_NE(text.find(installed.version), std::string::npos) << text;
  }
}

TEST(binaries, the_oldest_that_is_new_enough_else_the_newest) {
  std::vector<pg_binaries> newest_first{{"/pg/18/bin", 18, "18.1"}, {"/pg/17/bin", 17, "17.7"}, {"/pg/13/bin", 13, "13.23"}};
  EXPECT_EQ(choose_installation(newest_first, std::nullopt)->major, 18);
  EXPECT_EQ(choose_installation(newest_first, 13)->major, 13);
  EXPECT_EQ(choose_installation(newest_first, 14)->major, 17);
  EXPECT_EQ(choose_installation(newest_first, 18)->major, 18);
  EXPECT_FALSE(choose_installation(newest_first, 19));
  EXPECT_FALSE(choose_installation({}, std::nullopt));
}

// Debian's /usr/bin/psql is pg_wrapper, whose version changes with PGHOST: never an installation.
TEST(binaries, debians_pg_wrapper_is_no_installation) {
  std::error_code ignored;
  if (std::filesystem::canonical("/usr/bin/psql", ignored).filename() != "pg_wrapper") GTEST_SKIP() << "no pg_wrapper here";
  binary_search search;
  search.roots = {};
  search.use_pg_config = false;
  search.required = {"psql", "pg_restore"};
  for (const auto& found : find_installations(search)) EXPECT_NE(found.bin_dir, "/usr/bin");
  search.roots = {"/usr/lib/postgresql"};
  EXPECT_FALSE(find_installations(search).empty()) << "the real directories are still found";
}

TEST(binaries, parses_tool_version_lines) {
  EXPECT_EQ(detail::parse_tool_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"), "15.18");
  EXPECT_EQ(detail::parse_tool_version("pg_restore (PostgreSQL) 9.6.24\n"), "9.6.24");
  EXPECT_EQ(detail::parse_tool_version("psql (PostgreSQL) 17beta2\n"), "17beta2");
  EXPECT_FALSE(detail::parse_tool_version("not a postgres tool"));
  EXPECT_EQ(major_of("9.6.24"), 9);
}
