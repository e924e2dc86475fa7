// Fresh databases in milliseconds: copies of a template database on a drill's own server
// (CREATE DATABASE ... TEMPLATE), made ahead by a background thread, dropped after use.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/detail/fd.hpp>
#include <pgdrill/detail/sql.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

/// How CREATE DATABASE copies the template (PostgreSQL 15 and newer choose; older ones copy files).
enum class clone_strategy {
  /// By the template's size: WAL_LOG below 32 MB, FILE_COPY (the files copied after two
  /// checkpoints) from there. On a drill's server (bench/bench.cpp, provision/clone_*) FILE_COPY
  /// was the faster at 71 MB in every run; at 14 MB runs disagree (README, Benchmarks).
  automatic,
  file_copy,  ///< FILE_COPY: the template's files copied whole, after a checkpoint
  wal_log,    ///< WAL_LOG: block by block through the WAL, PostgreSQL 15's default
};

/// What a clone_pool keeps ready.
struct clone_options {
  std::size_t ready = 2;  ///< clones made ahead, waiting for acquire()
  clone_strategy strategy = clone_strategy::automatic;
};

namespace detail {

// The state the pool's filler thread and every handed-out clone share, so a clone released after
// its pool is gone still drops its database.
class clone_state {
 public:
  clone_state(endpoint admin, std::string template_name, int major, clone_options options)
      : admin_(std::move(admin)), template_(std::move(template_name)), major_(major), options_(options),
        prefix_("pgdrill_clone_" + random_secret(8) + "_") {}

  const endpoint& admin() const { return admin_; }

  std::size_t ready() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ready_.size();
  }

  // Blocks until a copy is ready, or throws why the copy made for this call could not be made.
  std::string take() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++wanted_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !ready_.empty() || failure_; });
    --wanted_;
    if (ready_.empty()) std::rethrow_exception(std::exchange(failure_, nullptr));
    auto name = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();  // the filler makes the next one
    return name;
  }

  // A clone's database goes: dropped by the filler, or here once the pool has stopped.
  void release(const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!stopped_) {
        doomed_.push_back(name);
        changed_.notify_all();
        return;
      }
    }
    drop_now(name);
  }

  // Drops the copy before returning, on a connection of its own.
  void drop_now(const std::string& name) const {
    pqxx::connection connection(admin_.conninfo());
    drop(connection, name);
  }

  // The filler: keeps `ready` copies (more while acquire() waits) and drops released ones. A copy
  // that cannot be made fails the acquire() waiting for it (none waiting: the next one tries
  // again); after a failure copies are made on request only, on a fresh connection, so a template
  // in use for a moment costs one test, not the rest of the suite.
  void fill() {
    std::unique_ptr<pqxx::connection> connection;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] {
        return stopping_ || !doomed_.empty() || (!failure_ && ready_.size() < (failing_ ? 0 : options_.ready) + wanted_);
      });
      if (stopping_) break;
      const bool dropping = !doomed_.empty();
      auto name = dropping ? std::move(doomed_.front()) : prefix_ + std::to_string(++made_);
      if (dropping) doomed_.pop_front();
      lock.unlock();
      try {
        if (!connection) connection = std::make_unique<pqxx::connection>(admin_.conninfo());
        dropping ? drop(*connection, name) : create(*connection, name);
        lock.lock();
        if (!dropping) {
          ready_.push_back(std::move(name));
          failing_ = false;
        }
      } catch (...) {  // a drop that fails leaves the copy to the server's teardown
        connection.reset();
        lock.lock();
        if (!dropping) {
          failing_ = true;
          if (wanted_ > 0) failure_ = std::current_exception();
        }
      }
      changed_.notify_all();
    }
    stopped_ = true;
    lock.unlock();
    stop_with(connection);
  }

  void request_stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }

 private:
  // The strategy clause for this template on this server ("" before PostgreSQL 15).
  std::string strategy_clause(pqxx::connection& connection) const {
    if (major_ < 15) return "";
    auto strategy = options_.strategy;
    if (strategy == clone_strategy::automatic) {
      auto size = pqxx::nontransaction(connection).exec("SELECT pg_database_size(" + connection.quote(template_) + ")");
      strategy = size[0][0].as<long long>() < (32LL << 20) ? clone_strategy::wal_log : clone_strategy::file_copy;
    }
    return strategy == clone_strategy::file_copy ? " STRATEGY FILE_COPY" : " STRATEGY WAL_LOG";
  }

  // The server itself waits up to 5 s for other sessions to leave the template (55006 after).
  void create(pqxx::connection& connection, const std::string& name) {
    if (!strategy_) strategy_ = strategy_clause(connection);
    std::string sql = "CREATE DATABASE " + quote_ident(name) + " TEMPLATE " + quote_ident(template_) + *strategy_;
    try {
      pqxx::nontransaction(connection).exec(sql);
    } catch (const pqxx::sql_error& failure) {
      if (failure.sqlstate() != "55006") throw;
      throw could_not_verify("cannot copy database " + template_ + ": other sessions stay connected to it (close them: a "
                             "template is copied only while nobody uses it)");
    }
  }

  void drop(pqxx::connection& connection, const std::string& name) const {
    pqxx::nontransaction(connection).exec("DROP DATABASE IF EXISTS " + quote_ident(name) +
                                           (major_ >= 13 ? " WITH (FORCE)" : ""));
  }

  // After the last acquire: the copies nobody took and those released so far are dropped.
  void stop_with(std::unique_ptr<pqxx::connection>& connection) noexcept {
    std::vector<std::string> names;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      names.assign(ready_.begin(), ready_.end());
      names.insert(names.end(), doomed_.begin(), doomed_.end());
      ready_.clear();
      doomed_.clear();
    }
    try {
      if (!connection) connection = std::make_unique<pqxx::connection>(admin_.conninfo());
      for (const auto& name : names) drop(*connection, name);
    } catch (...) {  // the server is gone, and its databases with it
    }
  }

  const endpoint admin_;
  const std::string template_;
  const int major_;
  const clone_options options_;
  const std::string prefix_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> ready_, doomed_;
  std::optional<std::string> strategy_;  // the filler's alone: chosen before its first copy
  std::size_t wanted_ = 0, made_ = 0;
  bool stopping_ = false, stopped_ = false, failing_ = false;
  std::exception_ptr failure_;
};

}  // namespace detail

/// One copy of the template, for one test: its own database, dropped when the handle goes.
class database_clone {
 public:
  database_clone(std::shared_ptr<detail::clone_state> state, std::string name)
      : state_(std::move(state)), target_(state_->admin().with_database(name)) {}
  database_clone(database_clone&&) noexcept = default;
  database_clone& operator=(database_clone&&) noexcept = default;
  database_clone(const database_clone&) = delete;
  database_clone& operator=(const database_clone&) = delete;
  ~database_clone() {
    if (!state_) return;
    try {
      state_->release(target_.dbname);
    } catch (...) {  // the server is gone: its databases went with it
    }
  }

  /// Drop the copy now, waiting until it is gone (the destructor drops it in the background).
  void drop() {
    if (auto state = std::exchange(state_, nullptr)) state->drop_now(target_.dbname);
  }

  /// Where it is: connect with target().conninfo(), or hand target().libpq_env() to a tool.
  const endpoint& target() const { return target_; }
  const std::string& name() const { return target_.dbname; }

 private:
  std::shared_ptr<detail::clone_state> state_;
  endpoint target_;
};

/// Copies of `template_name` on `owner` (a drill's own server: the template must have no other
/// session while it is copied), `options.ready` of them made ahead in the background so acquire()
/// rarely waits. Every clone, taken or not, is dropped by the time the pool and its handles are gone.
class clone_pool {
 public:
  clone_pool(const server& owner, std::string template_name, clone_options options = {})
      : state_(std::make_shared<detail::clone_state>(owner.admin(), std::move(template_name), owner.major_version(), options)),
        filler_([state = state_] { state->fill(); }) {}
  clone_pool(const clone_pool&) = delete;
  clone_pool& operator=(const clone_pool&) = delete;
  ~clone_pool() {
    state_->request_stop();
    filler_.join();
  }

  /// A fresh copy of the template; could_not_verify (or the server's error) when none can be made.
  database_clone acquire() { return database_clone(state_, state_->take()); }

  /// How many copies wait for acquire() now.
  std::size_t ready() const { return state_->ready(); }

 private:
  std::shared_ptr<detail::clone_state> state_;
  std::thread filler_;
};

namespace detail {

// A unix socket address for `path`; could_not_verify when the path is too long for one.
inline sockaddr_un socket_address(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof address.sun_path)
    throw could_not_verify("socket path too long (" + std::to_string(path.string().size()) + " bytes): " + path.string());
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  return address;
}

// Everything the peer writes until it closes its side (or `limit` bytes, or 30 s of silence).
inline std::string read_until_closed(int fd, std::size_t limit = 4096) {
  std::string text;
  char buffer[512];
  for (pollfd entry{fd, POLLIN, 0}; text.size() < limit && ::poll(&entry, 1, 30000) > 0;) {
    auto got = ::read(fd, buffer, sizeof buffer);
    if (got <= 0) break;
    text.append(buffer, static_cast<std::size_t>(got));
    if (text.find('\n') != std::string::npos) break;
  }
  return text.substr(0, text.find('\n'));
}

inline void write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    auto wrote = retry_on_eintr([&] { return ::write(fd, text.data() + done, text.size() - done); });
    if (wrote <= 0) return;  // the peer left: nothing to tell it
    done += static_cast<std::size_t>(wrote);
  }
}

}  // namespace detail

/// A clone_pool offered to other processes through a unix socket (`pgdrill with-server --restore`,
/// `pgdrill clone`). A connection sends one line: "acquire", answered with a fresh copy's database
/// name, or "drop NAME", answered "dropped"; a failure is answered "error: WHY". A copy lives until
/// dropped or until the service ends.
class clone_service {
 public:
  clone_service(clone_pool& pool, std::filesystem::path socket_path) : pool_(pool), socket_(std::move(socket_path)) {
    auto address = detail::socket_address(socket_);
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (listener_) stop_ = detail::pipe_ends::open();
    if (!listener_ || !stop_.read ||
        ::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || ::listen(listener_.get(), 16) != 0) {
      int saved = errno;
      remove_socket();
      throw could_not_verify("cannot serve copies at " + socket_.string() + ": " + std::strerror(saved));
    }
    server_ = std::thread([this] { serve(); });
  }
  clone_service(const clone_service&) = delete;
  clone_service& operator=(const clone_service&) = delete;
  ~clone_service() {
    detail::write_all(stop_.write.get(), "x");
    server_.join();
    remove_socket();
    taken_.clear();  // dropped by the pool
  }

  const std::filesystem::path& socket() const { return socket_; }

 private:
  void serve() {
    for (;;) {
      pollfd entries[2] = {{listener_.get(), POLLIN, 0}, {stop_.read.get(), POLLIN, 0}};
      if (::poll(entries, 2, -1) < 0 && errno != EINTR) return;
      if (entries[1].revents) return;
      if (!entries[0].revents) continue;
      detail::unique_fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!client) continue;
      detail::write_all(client.get(), answer(detail::read_until_closed(client.get())) + "\n");
    }
  }

  std::string answer(const std::string& request) {
    try {
      if (request == "acquire") {
        auto clone = pool_.acquire();
        auto name = clone.name();
        taken_.emplace(name, std::move(clone));
        return name;
      }
      if (auto found = request.rfind("drop ", 0) == 0 ? taken_.find(request.substr(5)) : taken_.end(); found != taken_.end()) {
        found->second.drop();
        taken_.erase(found);
        return "dropped";
      }
      return "error: unknown request '" + request + "' (acquire, or drop NAME of a copy this service gave)";
    } catch (const std::exception& failure) {
      return std::string("error: ") + failure.what();
    }
  }

  void remove_socket() noexcept {
    std::error_code ignored;
    std::filesystem::remove(socket_, ignored);
  }

  clone_pool& pool_;
  std::filesystem::path socket_;
  detail::unique_fd listener_;
  detail::pipe_ends stop_;  ///< written to stop the server thread
  std::map<std::string, database_clone> taken_;
  std::thread server_;
};

/// Ask the clone_service at `socket`: request_clone(socket) returns a fresh copy's database name;
/// request_clone(socket, "drop NAME") drops one. could_not_verify when the service cannot answer
/// or answers with an error.
inline std::string request_clone(const std::filesystem::path& socket, const std::string& request = "acquire") {
  auto address = detail::socket_address(socket);
  detail::unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    int saved = errno;
    throw could_not_verify("no copy service at " + socket.string() + ": " + std::strerror(saved) +
                           " (run inside `pgdrill with-server --restore BACKUP`)");
  }
  detail::write_all(fd.get(), request + "\n");
  auto reply = detail::read_until_closed(fd.get());
  fd.reset();
  if (reply.empty()) throw could_not_verify("the copy service at " + socket.string() + " did not answer");
  if (reply.rfind("error: ", 0) == 0) throw could_not_verify(reply.substr(7));
  return reply;
}

}  // namespace pgdrill
