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

namespace {

// A directory as a run with `tag` would have made it under `root` (name, mode, marker), with the
// marker's text changed by `edit` when given.
std::filesystem::path made_by_run(const std::filesystem::path& root, const std::string& tag,
                                  const std::function<void(std::string&)>& edit = {}) {
  auto dir = root / (std::string(scratch_prefix) + tag + "-abcdefgh");
  std::filesystem::create_directories(dir / "data");
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
  auto owner = run_owner::of_this_run();
  owner.tag = tag;
  std::string text = owner.text();
  if (edit) edit(text);
  testkit::write_file(dir / scratch_marker, text + "\n");
  return dir;
}

}  // namespace

TEST(workspace, reaper_removes_dirs_of_dead_owners_only) {
  auto root = default_temp_root() / ("reap-test-" + detail::random_suffix());
  std::filesystem::create_directories(root);
  auto dead = made_by_run(root, "999999999-12345");
  scratch_dir live(root);
  EXPECT_TRUE(std::filesystem::exists(live.path() / scratch_marker)) << "every scratch directory names its run";
  auto reaped = reap_leftovers(root);
  EXPECT_FALSE(std::filesystem::exists(dead));
  EXPECT_TRUE(std::filesystem::exists(live.path()));
  ASSERT_EQ(reaped.size(), 1U);
  EXPECT_NE(reaped[0].what.find(dead.string()), std::string::npos);
  live.remove();
  std::filesystem::remove_all(root);
}

// The sweep removes only what it provably made. It deleted a user's /tmp/pgdrill-notes-2026; now a
// directory that looks like a drill's in any way but all is left alone.
TEST(workspace, reaper_leaves_what_it_did_not_provably_make) {
  auto root = default_temp_root() / ("reap-test-" + detail::random_suffix());
  std::filesystem::create_directories(root);
  std::vector<std::filesystem::path> kept;
  kept.push_back(root / "pgdrill-notes-2026");  // a user's own directory
  testkit::write_file(kept.back() / "notes.txt", "mine");
  kept.push_back(root / (std::string(scratch_prefix) + "999999998-1-abcdefgh"));  // the name alone, no marker
  std::filesystem::create_directories(kept.back());
  std::filesystem::permissions(kept.back(), std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
  kept.push_back(made_by_run(root, "999999997-1"));  // a mode the drill never sets
  std::filesystem::permissions(kept.back(), std::filesystem::perms::owner_all | std::filesystem::perms::others_read |
                                                std::filesystem::perms::others_exec, std::filesystem::perm_options::replace);
  kept.push_back(made_by_run(root, "999999996-1", [](std::string& text) { text.replace(0, text.find(' '), "999999995-1"); }));
  kept.push_back(made_by_run(root, "999999994-1", [](std::string& text) { text = "999999994-1 host=elsewhere boot=b pidns=n"; }));
  auto target = made_by_run(root / "elsewhere", "999999993-1");  // reached through a symlink of a drill's name
  kept.push_back(target);
  std::filesystem::create_symlink(target, root / (std::string(scratch_prefix) + "999999993-1-abcdefgh"));
  if (::geteuid() == 0) {  // a marker another account wrote
    kept.push_back(made_by_run(root, "999999992-1"));
    ASSERT_EQ(::chown((kept.back() / scratch_marker).c_str(), 65534, 65534), 0);
  }
  auto reaped = reap_leftovers(root);
  EXPECT_TRUE(reaped.empty()) << reaped.front().what;
  for (const auto& dir : kept) EXPECT_TRUE(std::filesystem::exists(dir)) << dir;
  EXPECT_EQ(testkit::read_file(root / "pgdrill-notes-2026" / "notes.txt"), "mine");
  std::filesystem::remove_all(root);
}

TEST(workspace, a_run_owner_is_provably_gone_only_on_this_machine) {
  auto here = run_owner::of_this_run();
  EXPECT_EQ(here.tag, owner_tag());
  EXPECT_FALSE(here.host.empty());
  EXPECT_EQ(here.boot.size(), 36U) << here.boot;
  EXPECT_EQ(here.pid_namespace.rfind("pid:[", 0), 0U) << here.pid_namespace;
  auto read_back = run_owner::parse(here.text());
  EXPECT_EQ(read_back.text(), here.text());
  EXPECT_FALSE(read_back.provably_gone()) << "this run is alive";

  auto ended = here;
  ended.tag = std::to_string(::getpid()) + "-1";
  EXPECT_TRUE(ended.provably_gone());
  auto other_host = ended;
  other_host.host = "elsewhere";
  EXPECT_FALSE(other_host.provably_gone()) << "its pids are not ours to judge";
  auto other_namespace = ended;
  other_namespace.pid_namespace = "pid:[1]";
  EXPECT_FALSE(other_namespace.provably_gone()) << "another container of this host";
  auto before_reboot = here;
  before_reboot.boot = "an-earlier-boot";
  EXPECT_TRUE(before_reboot.provably_gone()) << "no run outlives a reboot";
  EXPECT_TRUE(run_owner::parse(ended.tag).provably_gone()) << "a bare owner tag is this machine's";
  EXPECT_FALSE(run_owner::parse(owner_tag()).provably_gone());
}

// A run killed with SIGKILL whose parent has not reaped it yet is a zombie: it has ended.
TEST(workspace, a_zombie_owner_is_gone) {
  auto sleeper = child::spawn(command("/bin/sleep", {"0.3"}), {});
  std::string tag = std::to_string(sleeper.pid()) + "-" + std::to_string(detail::process_start_time(sleeper.pid()));
  EXPECT_TRUE(owner_alive(tag));
  sleeper.wait();  // ended, not yet reaped
  ASSERT_TRUE(std::filesystem::exists("/proc/" + std::to_string(sleeper.pid())));
  EXPECT_FALSE(owner_alive(tag));
}
