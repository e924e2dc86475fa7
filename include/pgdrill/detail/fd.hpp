// File descriptors: one that closes itself, and system calls retried when a signal interrupts them.
#pragma once

#include <cerrno>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace pgdrill::detail {

/// Call `call` again while it fails with EINTR (a signal arrived): the drill's own signal handlers
/// interrupt blocking calls, which must then simply go on. Returns the last call's result.
template <class Call>
auto retry_on_eintr(Call call) -> decltype(call()) {
  decltype(call()) result;
  do result = call();
  while (result < 0 && errno == EINTR);
  return result;
}

/// An open file descriptor, closed when its owner goes. Move-only; -1 holds none.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Hands the descriptor over without closing it.
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the descriptor held (if any) and holds `fd` instead.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// A pipe's two ends, both close-on-exec; both empty when the pipe could not be made (errno says why).
struct pipe_ends {
  unique_fd read, write;
  static pipe_ends open() noexcept {
    int ends[2];
    if (::pipe2(ends, O_CLOEXEC) != 0) return {};
    return {unique_fd(ends[0]), unique_fd(ends[1])};
  }
};

}  // namespace pgdrill::detail
