#include "support.hpp"

using namespace pgdrill;

TEST(workspace, scratch_dir_is_private_and_removed_with_its_handle) {
  std::filesystem::path path;
  {
    scratch_dir dir;
    path = dir.path();
    testkit::write_file(path / "sub" / "file", "data");
    EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all, std::filesystem::perms::owner_all);
    EXPECT_EQ(path.filename().string().rfind(std::string(scratch_prefix) + owner_tag() + "-", 0), 0U);
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(workspace, owner_tag_tells_live_from_gone) {
  EXPECT_TRUE(owner_alive(owner_tag()));
  EXPECT_FALSE(owner_alive(std::to_string(::getpid()) + "-1"));  // same pid, other start time
  EXPECT_FALSE(owner_alive("garbage"));
}

TEST(workspace, reaper_removes_dirs_of_dead_owners_only) {
  auto root = default_temp_root() / ("reap-test-" + detail::random_suffix());
  std::filesystem::create_directories(root);
  auto dead = root / (std::string(scratch_prefix) + "999999999-12345-abcdefgh");
  std::filesystem::create_directories(dead / "data");
  scratch_dir live(root);
  auto reaped = reap_leftovers(root);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(live.path()));
  ASSERT_EQ(reaped.size(), 1U);
  EXPECT_NE(reaped[0].what.find(dead.string()), std::string::npos);
  live.remove();
  std::filesystem::remove_all(root);
}
