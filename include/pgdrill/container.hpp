// The container provider: a throwaway PostgreSQL in a docker or podman container, and the sweep
// that removes containers whose owning drill is gone.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <pqxx/pqxx>

#include <pgdrill/binaries.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/local.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

namespace detail {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// The host part of an engine URL: "docker" of tcp://docker:2376, "build-host" of
// ssh://ci@build-host; empty for a local socket (unix://, npipe://) or no URL.
inline std::string host_of_engine_url(const std::string& url) {
  for (const char* scheme : {"tcp://", "ssh://", "http://", "https://"}) {
    if (url.rfind(scheme, 0) != 0) continue;
    std::string rest = url.substr(std::string(scheme).size());
    rest = rest.substr(0, rest.find('/'));
    if (auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
    if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);  // [::1]:2375
    return rest.substr(0, rest.find(':'));
  }
  return "";
}

inline bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// The host of the engine's URL: DOCKER_HOST, else CONTAINER_HOST (podman --remote); empty when
// the engine is local.
inline std::string remote_engine_host() {
  for (const char* variable : {"DOCKER_HOST", "CONTAINER_HOST"})
    if (auto host = host_of_engine_url(env_or(variable, "")); !host.empty()) return host;
  return "";
}

}  // namespace detail

/// Where the runner reaches the ports a container publishes: PGDRILL_CONTAINER_HOST, else the
/// host of the engine's URL (DOCKER_HOST, or CONTAINER_HOST for podman --remote): with GitLab's
/// docker:dind service, DOCKER_HOST=tcp://docker:2376 makes it "docker"; else 127.0.0.1.
inline std::string container_host_from_environment() {
  if (auto host = detail::env_or("PGDRILL_CONTAINER_HOST", ""); !host.empty()) return host;
  auto remote = detail::remote_engine_host();
  return remote.empty() ? "127.0.0.1" : remote;
}

/// Whether the engine runs elsewhere (DOCKER_HOST or CONTAINER_HOST names a tcp:// or ssh://
/// daemon): a bind mount's source is then a path on the daemon's side.
inline bool container_engine_is_remote() { return !detail::remote_engine_host().empty(); }

/// Options of the container provider. The engine's own configuration (podman's
/// containers.conf, docker's daemon.json) applies as usual.
struct container_options {
  std::string engine;  ///< "docker", "podman", or a path; empty: PGDRILL_CONTAINER_ENGINE, else docker, else podman
  /// The official image, fully qualified: podman's short-name policy refuses a bare
  /// `postgres:17` where no registry is configured as unqualified-search.
  static constexpr const char* default_image = "docker.io/library/postgres:{major}";
  /// Image, with {major} replaced by the PostgreSQL major version: PGDRILL_IMAGE, else default_image.
  std::string image_template;
  int major = 0;  ///< the major the backup needs (the image tag); 0: unknown, the tag "latest"
  /// Host files and directories the tools in the container read (the backups): mounted read-only.
  std::vector<std::filesystem::path> read_only_paths;
  setting_list settings;  ///< over restore_settings()
  wait_strategy readiness{std::chrono::seconds(180), std::chrono::milliseconds(100)};
  std::string shm_size = "1g";
  /// Where the published port is reached from here; empty: container_host_from_environment().
  /// On a loopback address the port is published on the engine host's loopback only; else on
  /// all its interfaces (Docker-in-Docker: the job reaches the dind service by name).
  std::string host;

  /// The image to run for `major`: the template (else PGDRILL_IMAGE, else default_image) with
  /// {major} replaced ("latest" for 0).
  std::string image_for(int major) const {
    std::string image = image_template.empty() ? detail::env_or("PGDRILL_IMAGE", default_image) : image_template;
    if (auto at = image.find("{major}"); at != std::string::npos) image.replace(at, 7, major ? std::to_string(major) : "latest");
    return image;
  }
  /// The drill's temp root, recorded on the container so a test suite (or an operator) can tell
  /// its own containers from other drills' on the same machine.
  std::filesystem::path temp_root = default_temp_root();
};

constexpr const char* container_owner_label = "io.pgdrill.owner";
constexpr const char* container_temp_root_label = "io.pgdrill.temp_root";

/// The container engine's command-line client: found on PATH (or as given), and answering.
struct container_engine {
  std::filesystem::path program;

  /// The engine to use, or could_not_verify saying what to do.
  static container_engine find(const std::string& requested = "") {
    std::string wanted = requested.empty() ? detail::env_or("PGDRILL_CONTAINER_ENGINE", "") : requested;
    std::vector<std::string> candidates = wanted.empty() ? std::vector<std::string>{"docker", "podman"}
                                                         : std::vector<std::string>{wanted};
    std::string tried;
    for (const auto& name : candidates) {
      std::optional<std::filesystem::path> found =
          name.find('/') != std::string::npos ? std::optional<std::filesystem::path>(name) : detail::find_on_path(name);
      tried += (tried.empty() ? "" : ", ") + name;
      if (!found || !detail::is_executable(*found)) continue;
      container_engine engine{*found};
      auto info = engine.run({"info"}, std::chrono::seconds(30));
      if (info.ok()) return engine;
      tried += " (" + found->string() + " info " + info.describe() + ": " + detail::trim(info.err_tail.substr(0, 300)) + ")";
    }
    throw could_not_verify("no working container engine (tried " + tried +
                           "); install docker or podman, start its service, or use \"provider\": \"local\"");
  }

  command command_for(std::vector<std::string> args, std::vector<std::pair<std::string, std::string>> env = {}) const {
    command cmd(program, std::move(args));
    cmd.with_env(std::move(env));
    return cmd;
  }
  run_result run(std::vector<std::string> args, std::chrono::milliseconds timeout,
                 std::vector<std::pair<std::string, std::string>> env = {}) const {
    return pgdrill::run(command_for(std::move(args), std::move(env)), run_options::within(timeout));
  }

  std::string name() const { return program.filename().string(); }
};

/// Remove the containers (and their anonymous volumes) of drills whose process is gone: what a
/// drill killed with SIGKILL leaves. A remote engine's containers of drills on other machines stay. Returns what it removed.
inline std::vector<reaped_item> reap_containers(const container_engine& engine) {
  std::vector<reaped_item> reaped;
  auto listed = engine.run({"ps", "-a", "-q", "--filter", std::string("label=") + container_owner_label}, std::chrono::seconds(60));
  std::istringstream ids(listed.out);
  for (std::string id; ids >> id;) {
    auto owner = engine.run({"inspect", "--format", std::string("{{index .Config.Labels \"") + container_owner_label + "\"}}", id},
                            std::chrono::seconds(60));
    if (!owner.ok() || !run_owner::parse(detail::trim(owner.out)).provably_gone()) continue;
    if (engine.run({"rm", "-f", "-v", id}, std::chrono::minutes(2)).ok())
      reaped.push_back({engine.name() + " container " + id + " (owner " + detail::trim(owner.out) + " is gone)"});
  }
  return reaped;
}

namespace detail {

// A bind mount of a host path, read-only. A local engine mounts it through a symlink of a plain
// name (`-v` cannot carry every file name: a ':' of a timestamp, a ','); a remote engine
// resolves sources on its own side, where the symlink does not exist, so it gets the path itself
// in --mount's CSV syntax (the field quoted when a ',' or '"' in a name needs it, as docker's
// CSV reader takes it).
inline std::vector<std::string> read_only_mount(const std::filesystem::path& path, const std::filesystem::path& link,
                                                const std::string& inside, bool remote_engine) {
  if (!remote_engine) {
    std::filesystem::create_symlink(std::filesystem::absolute(path), link);
    return {"-v", link.string() + ":" + inside + ":ro"};
  }
  std::string source = "source=" + std::filesystem::absolute(path).string();
  if (source.find_first_of(",\"") != std::string::npos) {
    std::string quoted = "\"";
    for (char c : source) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    source = quoted + "\"";
  }
  return {"--mount", "type=bind," + source + ",target=" + inside + ",readonly"};
}

// The first "address:port" line of `docker port NAME 5432/tcp` (docker lists IPv4 and IPv6).
inline int published_port(const std::string& answer) {
  std::string first = answer.substr(0, answer.find('\n'));
  auto colon = first.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(first.substr(colon + 1).c_str());
}

}  // namespace detail

/// A PostgreSQL container following the official image's contract (POSTGRES_PASSWORD,
/// POSTGRES_USER, POSTGRES_DB, PGDATA, port 5432), data on tmpfs, its port published on the
/// engine host's loopback (or on all its interfaces when reached from elsewhere, see
/// container_options::host).
class container_server final : public server {
 public:
  /// Start a ready container or throw; a container that started but never got ready is removed
  /// before the exception leaves, with its log in the message. One whose server answers inside it
  /// but not on its published port after 30 s is replaced by a new one, once.
  static std::unique_ptr<container_server> start(const container_options& options = {}) {
    auto engine = container_engine::find(options.engine);
    std::string host = options.host.empty() ? container_host_from_environment() : options.host;
    auto server = launch(engine, options, host);
    // The engine's port forwarding can fail for one container (CNI's rules raced by containers
    // started or removed beside it: "No route to host" for minutes): a server that answers inside
    // its container but not on its published port is started once more, with a new port.
    wait_strategy first_look = options.readiness;
    first_look.deadline = std::min(first_look.deadline, std::chrono::milliseconds(30000));
    try {
      server->await_ready(first_look);
    } catch (const provisioning_error&) {
      if (!server->answers_inside()) {
        server->await_ready(options.readiness);
      } else {
        server.reset();
        server = launch(engine, options, host);
        server->await_ready(options.readiness, "a second container, started because the first answered only inside it; ");
      }
    }
    // What the image really runs, whatever its tag says.
    std::tie(server->major_, server->version_) = server_version_of(server->admin_);
    return server;
  }

  container_server(const container_server&) = delete;
  container_server& operator=(const container_server&) = delete;
  ~container_server() override {
    try {
      stop();
    } catch (...) {  // the destructor must not throw; stop() already did all it could
    }
  }

  const endpoint& admin() const override { return admin_; }
  int major_version() const override { return major_; }
  std::string version() const override { return version_; }
  std::string provider() const override { return "container"; }
  std::string describe() const override {
    return engine_.name() + " container " + name_ + " (" + image_ + ") on " + admin_.host + ":" + std::to_string(admin_.port);
  }
  const std::string& name() const noexcept { return name_; }

  /// The image's own pg_restore and psql, run inside this container (the host needs no
  /// PostgreSQL); the host's (at least `min_major`) when the image has none.
  pg_binaries client_tools(binary_search search, std::optional<int> min_major) const override {
    std::string missing;
    std::optional<pg_binaries> tools;
    for (const char* tool : {"pg_restore", "psql"}) {
      auto answer = engine_.run({"exec", name_, tool, "--version"}, std::chrono::seconds(60));
      auto version = detail::parse_tool_version(answer.out);
      if (!answer.ok() || !version) {
        missing += std::string(missing.empty() ? "" : ", ") + tool;
      } else if (!tools) {
        tools = pg_binaries{"", major_of(*version), *version,
                            tools_container{engine_.program, name_, mounts_, {{"PGHOST", "127.0.0.1"}, {"PGPORT", "5432"}}},
                            std::nullopt};
      }
    }
    if (missing.empty()) return *tools;
    try {
      return server::client_tools(std::move(search), min_major);
    } catch (const could_not_verify& failure) {
      throw could_not_verify("image " + image_ + " has no " + missing + ", and this host has none to use either: " + failure.what());
    }
  }

  /// Remove the container and its anonymous volumes; safe to call twice.
  void stop() override {
    if (name_.empty()) return;
    auto removed = engine_.run({"rm", "-f", "-v", name_}, std::chrono::minutes(2));
    std::string name = std::exchange(name_, std::string());
    if (!removed.ok()) throw provisioning_error("could not remove container " + name + ": " + removed.err_tail);
    forget_on_death(std::exchange(removal_on_death_, 0));  // left to the warden when the removal failed
  }

 private:
  // A started container whose published port is known, not yet ready.
  static std::unique_ptr<container_server> launch(const container_engine& engine, const container_options& options,
                                                  const std::string& host) {
    std::string image = options.image_for(options.major);
    std::string password = detail::random_secret(32);
    std::string name = "pgdrill-" + owner_tag() + "-" + detail::random_suffix();
    std::vector<std::string> args{"run", "-d", "--name", name,
                                  "--label", std::string(container_owner_label) + "=" + run_owner::of_this_run().text(),
                                  "--label", std::string(container_temp_root_label) + "=" + options.temp_root.string(),
                                  // The password travels in the engine's environment, named here without a value.
                                  "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_USER=postgres", "-e", "POSTGRES_DB=postgres",
                                  "-e", "PGDATA=/var/lib/postgresql/data/pgdata",
                                  "--tmpfs", "/var/lib/postgresql/data", "--shm-size", options.shm_size,
                                  "-p", detail::is_loopback(host) ? "127.0.0.1::5432" : "5432"};
    scratch_dir links(options.temp_root);
    std::vector<std::pair<std::string, std::string>> mounts;
    for (const auto& path : options.read_only_paths) {
      mounts.emplace_back(path.string(), "/pgdrill/backup-" + std::to_string(mounts.size()));
      auto mount = detail::read_only_mount(path, links.path() / std::to_string(mounts.size()), mounts.back().second,
                                           container_engine_is_remote());
      args.insert(args.end(), mount.begin(), mount.end());
    }
    args.push_back(image);
    setting_list settings = restore_settings();
    settings.insert(settings.end(), options.settings.begin(), options.settings.end());
    for (const auto& [setting, value] : settings)
      if (setting != "listen_addresses") args.insert(args.end(), {"-c", setting + "=" + value});
    // Should the runner die, even by SIGKILL, its warden removes the container at once.
    std::int32_t removal_on_death = run_on_death(engine.command_for({"rm", "-f", "-v", name}));
    auto started = engine.run(args, std::chrono::minutes(15), {{"POSTGRES_PASSWORD", password}});
    if (!started.ok()) {
      engine.run({"rm", "-f", "-v", name}, std::chrono::minutes(2));
      forget_on_death(removal_on_death);
      throw provisioning_error(engine.name() + " could not start " + image + " (" + started.describe() + "): " +
                               detail::trim(started.err_tail) +
                               "\nCheck the image name (PGDRILL_IMAGE / \"image\"), that the registry is reachable, "
                               "or pull the image beforehand.");
    }
    std::unique_ptr<container_server> server(new container_server(engine, name, image, std::move(mounts)));
    server->removal_on_death_ = removal_on_death;
    auto port = engine.run({"port", name, "5432/tcp"}, std::chrono::seconds(60));
    int published = port.ok() ? detail::published_port(port.out) : 0;
    if (published <= 0)
      throw provisioning_error("cannot read the published port of " + name + ": " + port.err_tail + server->logs());
    server->admin_ = endpoint::of_started_server(host, published, "postgres", password);
    return server;
  }

  // `preface` opens the error's diagnostics.
  void await_ready(const wait_strategy& strategy, const std::string& preface = "") {
    wait_until_ready(admin_, strategy, [this] { return running(); },
                     [&] { return preface + "container " + name_ + " log:\n" + logs(); });
  }

  // The server accepts TCP connections inside the container (the image's init phase listens on
  // its socket only).
  bool answers_inside() const {
    return engine_.run({"exec", name_, "pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"}, std::chrono::seconds(30)).ok();
  }

  container_server(container_engine engine, std::string name, std::string image,
                   std::vector<std::pair<std::string, std::string>> mounts)
      : engine_(std::move(engine)), name_(std::move(name)), image_(std::move(image)), mounts_(std::move(mounts)) {}

  bool running() const {
    auto state = engine_.run({"inspect", "--format", "{{.State.Running}}", name_}, std::chrono::seconds(30));
    return state.ok() && detail::trim(state.out) == "true";
  }
  std::string logs() const {
    auto log = engine_.run({"logs", "--tail", "60", name_}, std::chrono::seconds(30));
    return log.out + log.err_tail;
  }

  container_engine engine_;
  std::string name_, image_;
  std::int32_t removal_on_death_ = 0;  ///< the warden's removal of the container, dropped once removed
  std::vector<std::pair<std::string, std::string>> mounts_;  ///< host path, path inside
  int major_ = 0;
  std::string version_;
  endpoint admin_;
};

}  // namespace pgdrill
