// Errors a caller can act on, and the exit codes the runner maps them to.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace pgdrill {

/// Exit codes of the runner; one meaning each, never renumbered (README, `pgdrill --help`).
enum class exit_code : int {
  passed = 0,          ///< every check ran and passed
  failed = 1,          ///< the backup failed the drill: restore error, or a check failed
  not_verified = 2,    ///< the drill itself could not run (binaries, server, backup unreadable)
  usage = 3,           ///< bad command line or scenario
  locked = 4,          ///< another drill holds the lock for this scenario
};

/// Root of everything pgdrill throws. Messages never contain a password.
class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
  virtual exit_code code() const noexcept { return exit_code::not_verified; }
};

/// The command line or a scenario file is wrong; `what()` names the JSON path where there is one.
class usage_error : public error {
 public:
  using error::error;
  exit_code code() const noexcept override { return exit_code::usage; }
};

/// A stage could not run at all (no binaries, server would not start, backup unreadable):
/// the drill cannot say anything about the backup.
class could_not_verify : public error {
 public:
  using error::error;
};

/// The backup's bytes are damaged (bad checksum, truncated, a member pg_dump never writes): the
/// backup is at fault.
class corrupt_backup : public error {
 public:
  using error::error;
  exit_code code() const noexcept override { return exit_code::failed; }
};

/// SQLSTATEs pgdrill judges by (failure.hpp).
namespace sqlstate {
inline constexpr const char* undefined_table = "42P01";
inline constexpr const char* undefined_column = "42703";
inline constexpr const char* insufficient_privilege = "42501";
}  // namespace sqlstate

/// The database refused a statement of pgdrill's own, with the SQLSTATE that says why (libpq's
/// errors; libpqxx's carry theirs in pqxx::sql_error). failure.hpp judges both by that code.
class database_error : public could_not_verify {
 public:
  database_error(const std::string& what, std::string sqlstate) : could_not_verify(what), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

/// A child process could not be started or misbehaved (missing binary, timeout).
class process_error : public could_not_verify {
 public:
  using could_not_verify::could_not_verify;
};

/// A throwaway server could not be provisioned.
class provisioning_error : public could_not_verify {
 public:
  using could_not_verify::could_not_verify;
};

/// The run was interrupted by a signal; stages unwind and clean up.
class interrupted : public could_not_verify {
 public:
  explicit interrupted(int signal_number)
      : could_not_verify("interrupted by signal " + std::to_string(signal_number)),
        signal_(signal_number) {}
  int signal_number() const noexcept { return signal_; }

 private:
  int signal_;
};

/// Another drill of the same scenario is running.
class lock_error : public error {
 public:
  using error::error;
  exit_code code() const noexcept override { return exit_code::locked; }
};

namespace detail {

/// Call an observer (console output, a progress bar): one that throws, e.g. on a closed
/// terminal, must never change a drill's outcome, so whatever it throws is dropped.
template <class Observer, class... Arguments>
void notify(const Observer& observer, Arguments&&... arguments) noexcept {
  if (!observer) return;
  try {
    observer(std::forward<Arguments>(arguments)...);
  } catch (...) {
  }
}

}  // namespace detail

}  // namespace pgdrill
