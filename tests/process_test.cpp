#include <sys/stat.h>

#include <thread>

#include "support.hpp"

using namespace pgdrill;
using pgdrill::testkit::process_running;

TEST(process, captures_stdout_and_exit_code) {
  auto result = run(command("/bin/sh", {"-c", "echo hello; echo oops >&2; exit 3"}));
  EXPECT_EQ(result.out, "hello\n");
  EXPECT_EQ(result.err_tail, "oops\n");
  EXPECT_EQ(result.status.code, 3);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.describe(), "exited with status 3");
}

TEST(process, reports_a_killing_signal) {
  auto result = run(command("/bin/sh", {"-c", "kill -KILL $$"}));
  EXPECT_EQ(result.status.signal, SIGKILL);
  EXPECT_NE(result.describe().find("killed by signal 9"), std::string::npos);
}

TEST(process, missing_program_is_an_error_naming_it) {
  try {
    run(command("/nonexistent/bin/initdb"));
    FAIL() << "expected process_error";
  } catch (const process_error& failure) {
    EXPECT_NE(std::string(failure.what()).find("/nonexistent/bin/initdb"), std::string::npos);
    EXPECT_NE(std::string(failure.what()).find("No such file"), std::string::npos);
  }
}

TEST(process, streams_stdin_through_the_child) {
  const std::size_t total = 8U << 20;  // larger than any pipe buffer
  std::size_t fed = 0;
  run_options options;
  options.stdin_source = [&](char* buffer, std::size_t capacity) {
    std::size_t size = std::min(capacity, total - fed);
    std::fill(buffer, buffer + size, 'x');
    fed += size;
    return size;
  };
  std::size_t received = 0;
  options.stdout_sink = [&](std::string_view chunk) { received += chunk.size(); };
  auto result = run(command("/bin/cat"), options);
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(received, total);
}

TEST(process, child_that_stops_reading_does_not_kill_the_caller) {
  run_options options;
  options.stdin_source = [](char* buffer, std::size_t capacity) {
    std::fill(buffer, buffer + capacity, 'y');
    return capacity;  // endless input
  };
  auto result = run(command("/usr/bin/head", {"-c", "10"}), options);
  EXPECT_TRUE(result.ok()) << result.describe();
  EXPECT_EQ(result.out, std::string(10, 'y'));
}

TEST(process, timeout_kills_the_whole_process_group) {
  // The shell starts a grandchild and reports its pid; the timeout must take both down.
  auto result = run(command("/bin/sh", {"-c", "sleep 300 & echo $!; wait"}),
                    run_options::within(std::chrono::milliseconds(500)));
  EXPECT_TRUE(result.timed_out);
  EXPECT_FALSE(result.ok());
  pid_t grandchild = static_cast<pid_t>(std::stol(result.out));
  for (int attempt = 0; attempt < 100 && process_running(grandchild); ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(process_running(grandchild));
}

TEST(process, keeps_only_the_tail_of_stderr) {
  run_options options;
  options.stderr_tail = 100;
  auto result = run(command("/bin/sh", {"-c", "i=0; while [ $i -lt 1000 ]; do echo line $i >&2; i=$((i+1)); done"}),
                    options);
  EXPECT_EQ(result.err_tail.size(), 100U);
  EXPECT_NE(result.err_tail.find("line 999\n"), std::string::npos);
}

TEST(process, sets_and_removes_environment_variables) {
  ::setenv("PGDRILL_TEST_REMOVED", "present", 1);
  command cmd("/bin/sh", {"-c", "echo \"${PGDRILL_TEST_SET}-${PGDRILL_TEST_REMOVED:-gone}\""});
  cmd.with_env({{"PGDRILL_TEST_SET", "value"}}).without_env({"PGDRILL_TEST_REMOVED"});
  EXPECT_EQ(run(cmd).out, "value-gone\n");
  ::unsetenv("PGDRILL_TEST_REMOVED");
}

TEST(process, runs_as_another_user_when_root) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change user";
  auto account = lookup_user("nobody");
  ASSERT_TRUE(account);
  command cmd("/usr/bin/id", {"-u"});
  cmd.as_user(account);
  EXPECT_EQ(run(cmd).out, std::to_string(account->uid) + "\n");
}

TEST(process, unknown_user_lookup_is_empty) { EXPECT_FALSE(lookup_user("no-such-user-pgdrill")); }

TEST(process, interrupting_signal_stops_the_child_and_throws) {
  signals::install_handlers();
  std::thread sender([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ::kill(::getpid(), SIGTERM);
  });
  pid_t grandchild = 0;
  run_options options;
  options.stdout_sink = [&](std::string_view chunk) { grandchild = static_cast<pid_t>(std::stol(std::string(chunk))); };
  EXPECT_THROW(run(command("/bin/sh", {"-c", "sleep 300 & echo $!; wait"}), options), interrupted);
  sender.join();
  detail::received_signal = 0;  // this process goes on to other tests
  ASSERT_GT(grandchild, 0);
  for (int attempt = 0; attempt < 100 && process_running(grandchild); ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(process_running(grandchild));
}

TEST(process, child_handle_kills_on_destruction) {
  pid_t pid = 0;
  {
    auto running = child::spawn(command("/bin/sleep", {"300"}), {});
    pid = running.pid();
    EXPECT_TRUE(process_running(pid));
  }
  EXPECT_FALSE(process_running(pid));
}

// PGPASSWORD and DATABASE_URL went to every child (initdb, pg_restore --list, podman, the
// throwaway server), where SQL in a backup (COPY ... TO PROGRAM 'env') could read them. A child
// now inherits only what programs need; the user's libpq settings only where it connects to the
// user's own server; the user's own program under with-server everything but those.
TEST(process, children_inherit_no_connection_or_secret_of_the_user) {
  ::setenv("PGPASSWORD", "CanaryPw", 1);
  ::setenv("DATABASE_URL", "postgresql://app:CanaryPw@db/shop", 1);
  ::setenv("API_TOKEN", "CanaryToken", 1);
  ::setenv("PGDRILL_TEST_KEPT", "kept", 1);
  auto environment_of = [](command::inheritance what) {
    command cmd("/usr/bin/env");
    cmd.inheriting(what);
    return run(cmd).out;
  };
  auto tool = environment_of(command::inheritance::tools);
  EXPECT_EQ(tool.find("Canary"), std::string::npos) << tool;
  EXPECT_NE(tool.find("PATH="), std::string::npos);
  EXPECT_NE(tool.find("PGDRILL_TEST_KEPT=kept"), std::string::npos);
  auto user_server = environment_of(command::inheritance::tools_and_libpq);
  EXPECT_NE(user_server.find("PGPASSWORD=CanaryPw"), std::string::npos);
  EXPECT_EQ(user_server.find("DATABASE_URL"), std::string::npos);
  EXPECT_EQ(user_server.find("CanaryToken"), std::string::npos);
  auto user_program = environment_of(command::inheritance::all_but_libpq);
  EXPECT_NE(user_program.find("API_TOKEN=CanaryToken"), std::string::npos);
  EXPECT_EQ(user_program.find("CanaryPw"), std::string::npos) << user_program;
  for (const char* name : {"PGPASSWORD", "DATABASE_URL", "API_TOKEN", "PGDRILL_TEST_KEPT"}) ::unsetenv(name);
}

// Tools run as an unprivileged account when pgdrill runs as root. Whether that account can read
// what a tool opens is tried for real: modes of the file and of every directory above it.
TEST(process, readable_as_tries_the_account_for_real) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to take another account's identity";
  auto account = lookup_user("nobody");
  ASSERT_TRUE(account);
  scratch_dir dir;  // 0700, root's
  auto file = dir.path() / "backup.dump";
  testkit::write_file(file, "data");
  std::filesystem::permissions(file, std::filesystem::perms(0644));
  EXPECT_FALSE(detail::readable_as(*account, {file})) << "the directory above it is root's alone";
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  EXPECT_TRUE(detail::readable_as(*account, {file}));
  std::filesystem::permissions(file, std::filesystem::perms(0600));
  EXPECT_FALSE(detail::readable_as(*account, {file}));
  EXPECT_FALSE(detail::readable_as(*account, {dir.path()})) << "a directory counts with each file in it";
  std::filesystem::permissions(file, std::filesystem::perms(0644));
  auto fifo = dir.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_TRUE(detail::readable_as(*account, {dir.path()})) << "a FIFO is opened without blocking";
}

// An account that cannot read what the tool opens keeps one right, reading any file, and no
// other: it cannot write where root may, and its uid is the account's.
TEST(process, account_keeps_only_file_reading_when_it_needs_it) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to take another account's identity";
  auto account = lookup_user("nobody");
  ASSERT_TRUE(account);
  scratch_dir dir;
  auto secret = dir.path() / "root-only.dump";
  testkit::write_file(secret, "root's backup");
  std::filesystem::permissions(secret, std::filesystem::perms(0600));
  auto status_of = [&](const std::filesystem::path& reads) {
    command cmd("/bin/sh", {"-c", "grep -E '^(Uid|CapEff|CapPrm|CapAmb):' /proc/self/status; cat \"$0\"; touch \"$0.written\"",
                            reads.string()});
    cmd.reads = {reads};
    cmd.as_user_reading(account);
    return std::make_pair(cmd.reads_any_file, run(cmd));
  };
  auto [kept, secret_run] = status_of(secret);
  EXPECT_TRUE(kept);
  const std::string uid = std::to_string(account->uid);
  EXPECT_NE(secret_run.out.find("Uid:\t" + uid + "\t" + uid), std::string::npos) << secret_run.out;
  for (const char* set : {"CapEff", "CapPrm", "CapAmb"})
    EXPECT_NE(secret_run.out.find(std::string(set) + ":\t0000000000000004"), std::string::npos) << set << "\n" << secret_run.out;
  EXPECT_NE(secret_run.out.find("root's backup"), std::string::npos) << secret_run.out;
  EXPECT_NE(secret_run.err_tail.find("Permission denied"), std::string::npos) << "it may not write: " << secret_run.err_tail;
  EXPECT_FALSE(std::filesystem::exists(secret.string() + ".written"));

  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  std::filesystem::permissions(secret, std::filesystem::perms(0644));
  auto [kept_readable, plain_run] = status_of(secret);
  EXPECT_FALSE(kept_readable) << "a readable file needs no right beyond the account's";
  EXPECT_NE(plain_run.out.find("CapEff:\t0000000000000000"), std::string::npos) << plain_run.out;
}

TEST(file_descriptor, closes_what_it_holds_once_and_hands_it_over_on_move) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    detail::unique_fd first(raw);
    detail::unique_fd second(std::move(first));
    EXPECT_FALSE(first) << "a moved-from descriptor holds none";
    EXPECT_EQ(second.get(), raw);
    EXPECT_GE(::fcntl(raw, F_GETFD), 0) << "a move does not close";
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1) << "closed when its owner went";
  detail::unique_fd kept(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int released = kept.release();
  EXPECT_FALSE(kept);
  EXPECT_GE(::fcntl(released, F_GETFD), 0) << "release hands it over open";
  ::close(released);
}

TEST(file_descriptor, pipe_ends_carry_bytes_and_close_on_exec) {
  auto ends = detail::pipe_ends::open();
  ASSERT_TRUE(ends.read && ends.write);
  EXPECT_EQ(::fcntl(ends.read.get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(::write(ends.write.get(), "x", 1), 1);
  char got = 0;
  EXPECT_EQ(::read(ends.read.get(), &got, 1), 1);
  EXPECT_EQ(got, 'x');
}

TEST(file_descriptor, a_call_a_signal_interrupts_is_retried_and_other_failures_are_not) {
  int calls = 0;
  auto interrupted_twice = [&] {
    errno = EINTR;
    return ++calls < 3 ? -1 : 7;
  };
  EXPECT_EQ(detail::retry_on_eintr(interrupted_twice), 7);
  EXPECT_EQ(calls, 3);
  calls = 0;
  auto refused = [&] {
    ++calls;
    errno = EBADF;
    return -1;
  };
  EXPECT_EQ(detail::retry_on_eintr(refused), -1);
  EXPECT_EQ(calls, 1) << "only EINTR is retried";
}
