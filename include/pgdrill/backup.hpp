// Backups: find the newest one, and tell what it is from its bytes (not its name).
#pragma once

#include <fnmatch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>  // optional timestamp from the file name
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <pgdrill/binaries.hpp>
#include <pgdrill/detail/text.hpp>
#include <pgdrill/detail/time.hpp>
#include <pgdrill/error.hpp>
#include <pgdrill/process.hpp>
#include <pgdrill/provider.hpp>
#include <pgdrill/restore_errors.hpp>
#include <pgdrill/schema.hpp>
#include <pgdrill/scenario.hpp>
#include <pgdrill/stream.hpp>
#include <pgdrill/workspace.hpp>

namespace pgdrill {

enum class backup_format { plain, custom, directory, tar, json_snapshot, unknown };
enum class compression { none, gzip, zstd, lz4, bzip2, xz };

/// What each backup format is and how it is made and restored: one row per format, read by
/// inspect, restore, dump and bench.
struct format_traits {
  backup_format format;
  const char* name;          ///< as reports and `pgdrill dump --format` spell it
  const char* pg_dump_flag;  ///< pg_dump --format value ("" for none)
  const char* extension;     ///< what `pgdrill dump` names its files
  const char* restore_tool;  ///< psql or pg_restore ("" for a JSON snapshot: loaded with COPY)
  bool parallel_restore;     ///< pg_restore -j works on it
};

inline const std::array<format_traits, 6>& backup_formats() {
  static const std::array<format_traits, 6> formats{{
      {backup_format::custom, "custom", "c", ".dump", "pg_restore", true},
      {backup_format::directory, "directory", "d", ".dir", "pg_restore", true},
      {backup_format::tar, "tar", "t", ".tar", "pg_restore", false},
      {backup_format::plain, "plain", "p", ".sql", "psql", false},
      {backup_format::json_snapshot, "json-snapshot", "", ".json", "", false},
      {backup_format::unknown, "unknown", "", "", "", false},
  }};
  return formats;
}

inline const format_traits& traits_of(backup_format format) {
  for (const auto& traits : backup_formats())
    if (traits.format == format) return traits;
  return backup_formats().back();
}

/// The format `pgdrill dump --format NAME` means; usage_error for another name.
inline const format_traits& format_named(const std::string& name) {
  for (const auto& traits : backup_formats())
    if (name == traits.name && *traits.pg_dump_flag) return traits;
  throw usage_error("unknown dump format '" + name + "' (custom, plain, directory, tar)");
}

inline const char* to_string(backup_format format) { return traits_of(format).name; }

inline const char* to_string(compression kind) {
  switch (kind) {
    case compression::gzip: return "gzip";
    case compression::zstd: return "zstd";
    case compression::lz4: return "lz4";
    case compression::bzip2: return "bzip2";
    case compression::xz: return "xz";
    case compression::none: break;
  }
  return "none";
}

/// One backup file (or directory archive) and what its bytes say it is.
struct backup_info {
  std::filesystem::path path;
  backup_format format = backup_format::unknown;
  compression compressed = compression::none;
  std::uintmax_t size = 0;  ///< bytes (all files, for a directory archive)
  std::filesystem::file_time_type modified{};
  std::optional<std::time_t> name_time;  ///< timestamp found in the file name (UTC)
  std::string chosen_because;            ///< why it was picked, for the report
  std::string sha256;                    ///< of the file, once computed (empty for directories)
  std::string looks_like;                ///< for an unknown format: what the bytes look like instead

  /// When the backup was taken, as far as we can tell: the name's timestamp, else the mtime.
  std::time_t taken_at() const {
    if (name_time) return *name_time;
    auto since = modified - std::filesystem::file_time_type::clock::now() + std::chrono::system_clock::now();
    return std::chrono::system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::system_clock::duration>(since));
  }
};

namespace detail {

inline bool starts_with_bytes(const std::string& head, std::initializer_list<unsigned char> magic) {
  if (head.size() < magic.size()) return false;
  return std::equal(magic.begin(), magic.end(), head.begin(),
                    [](unsigned char want, char have) { return want == static_cast<unsigned char>(have); });
}

// What text that is no pg_dump archive looks like: "" for SQL (what pg_dump, pg_dumpall or a
// person writes: comments, psql meta-commands, statements), else a description for the report.
inline std::string text_looks_like(const std::string& head) {
  if (head.empty()) return "an empty file";
  if (head.find('\0') != std::string::npos) return "binary data";
  auto start = head.find_first_not_of(" \t\r\n", head.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0);
  if (start == std::string::npos) return "blank text";
  if (head.compare(start, std::strlen(schema_reference_opening), schema_reference_opening) == 0) return schema_reference_opening;
  std::string word;
  for (auto at = start; at < head.size() && (std::isalpha(static_cast<unsigned char>(head[at])) || head[at] == '<' || head[at] == '!'); ++at)
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(head[at])));
  if (word.rfind("<!DOCTYPE", 0) == 0 || word.rfind("<HTML", 0) == 0) return "an HTML page";
  if (head[start] == '<') return "XML";
  if (head[start] == '{' || head[start] == '[')
    return "JSON that is no table snapshot (an object whose first key is \"manifest\" or \"data\")";
  if (head.compare(start, 2, "--") == 0 || head.compare(start, 2, "/*") == 0 || head[start] == '\\') return "";
  static const std::vector<std::string> keywords{"SET", "SELECT", "CREATE", "ALTER", "BEGIN", "START", "INSERT", "COPY",
                                                 "DROP", "COMMENT", "GRANT", "REVOKE", "UPDATE", "DELETE", "WITH", "DO",
                                                 "TRUNCATE", "COMMIT", "ANALYZE", "VACUUM", "LOCK", "REFRESH", "VALUES"};
  if (std::find(keywords.begin(), keywords.end(), word) != keywords.end()) return "";
  return "text that is not SQL";
}

// A JSON object whose first key is "manifest" or "data": a table snapshot (snapshot.hpp).
inline bool looks_like_json_snapshot(const std::string& head) {
  static const std::regex opening(R"re(^(?:\xEF\xBB\xBF)?\s*\{\s*"(?:manifest|data)"\s*:)re");
  return std::regex_search(head, opening);
}

// The format the first bytes of an (uncompressed) pg_dump output or JSON snapshot say.
inline backup_format format_of(const std::string& head) {
  if (head.compare(0, 5, "PGDMP") == 0) return backup_format::custom;
  if (looks_like_json_snapshot(head)) return backup_format::json_snapshot;
  if (head.size() >= 262 && head.compare(257, 5, "ustar") == 0) return backup_format::tar;
  if (text_looks_like(head).empty()) return backup_format::plain;
  return backup_format::unknown;
}


// A FIFO, socket or device is refused without being opened: reading a FIFO waits for a writer
// forever. (A symlink's target is judged, not the link.)
inline void refuse_special_file(const std::filesystem::path& path, std::filesystem::file_status status) {
  using std::filesystem::file_type;
  const char* kind = status.type() == file_type::fifo      ? "a FIFO"
                     : status.type() == file_type::socket  ? "a socket"
                     : status.type() == file_type::block   ? "a block device"
                     : status.type() == file_type::character ? "a character device"
                                                           : nullptr;
  if (kind) throw could_not_verify(path.string() + " is " + kind + ", not a backup file: refused without opening it");
}

// The bytes of a directory archive's files. pg_dump writes only regular files into it: a member
// that is a symlink (which could lead the tools to any file), a directory or a device is
// refused (corrupt_backup naming it) without being opened.
inline std::uintmax_t archive_directory_size(const std::filesystem::path& directory) {
  std::uintmax_t size = 0;
  std::error_code failure;
  for (const auto& entry : std::filesystem::directory_iterator(directory, failure)) {
    auto type = entry.symlink_status().type();
    if (type != std::filesystem::file_type::regular)
      throw corrupt_backup("the directory archive " + directory.string() + " holds " + entry.path().filename().string() + ", which is " +
                           (type == std::filesystem::file_type::symlink     ? "a symlink"
                            : type == std::filesystem::file_type::directory ? "a directory"
                                                                            : "no regular file") +
                           " (pg_dump writes only regular files there): refused");
    size += entry.file_size(failure);
  }
  if (failure) throw could_not_verify("cannot list the directory archive " + directory.string() + ": " + failure.message());
  return size;
}

}  // namespace detail

/// A directory archive (pg_dump --format=directory) is a directory holding toc.dat.
inline bool is_directory_archive(const std::filesystem::path& path) { return std::filesystem::exists(path / "toc.dat"); }

/// A directory of backups to choose from: a directory that is no directory archive.
inline bool is_backup_directory(const std::filesystem::path& path) {
  return std::filesystem::is_directory(path) && !is_directory_archive(path);
}

/// Format and compression from the first bytes (or the files, for a directory archive).
inline backup_info inspect_file(const std::filesystem::path& path) {
  std::error_code failure;
  backup_info info;
  info.path = path;
  auto status = std::filesystem::status(path, failure);
  if (failure.value() == ELOOP) throw could_not_verify("backup " + path.string() + " is a symlink loop");
  if (failure || !std::filesystem::exists(status))
    throw could_not_verify("backup " + path.string() + " does not exist or cannot be read");
  detail::refuse_special_file(path, status);
  info.modified = std::filesystem::last_write_time(path, failure);
  info.name_time = timestamp_in_name(path.filename().string());

  if (std::filesystem::is_directory(status)) {
    info.format = is_directory_archive(path) ? backup_format::directory : backup_format::unknown;
    if (info.format == backup_format::directory) {
      info.size = detail::archive_directory_size(path);
      return info;
    }
    for (const auto& entry : std::filesystem::recursive_directory_iterator(path, failure)) {
      detail::refuse_special_file(entry.path(), entry.symlink_status());
      if (entry.is_regular_file()) info.size += entry.file_size();
    }
    info.looks_like = "a directory without toc.dat";
    return info;
  }
  info.size = std::filesystem::file_size(path, failure);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw could_not_verify("cannot open backup " + path.string() + ": " + std::strerror(errno));
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));

  using detail::starts_with_bytes;
  if (starts_with_bytes(head, {0x1f, 0x8b})) info.compressed = compression::gzip;
  else if (starts_with_bytes(head, {0x28, 0xb5, 0x2f, 0xfd})) info.compressed = compression::zstd;
  else if (starts_with_bytes(head, {0x04, 0x22, 0x4d, 0x18})) info.compressed = compression::lz4;
  else if (starts_with_bytes(head, {'B', 'Z', 'h'})) info.compressed = compression::bzip2;
  else if (starts_with_bytes(head, {0xfd, '7', 'z', 'X', 'Z', 0x00})) info.compressed = compression::xz;

  if (info.compressed != compression::none) {
    // The format is that of the decompressed bytes; a stream too damaged to start is unknown.
    try {
      backup_reader reader(path);
      head.assign(512, '\0');
      std::size_t got = 0, step;
      while (got < head.size() && (step = reader.read(head.data() + got, head.size() - got)) > 0) got += step;
      head.resize(got);
    } catch (const corrupt_backup&) {
      head.clear();
    }
  }
  info.format = detail::format_of(head);
  if (info.format == backup_format::unknown)
    info.looks_like = head.empty() && info.compressed != compression::none ? "a damaged " + std::string(to_string(info.compressed)) + " stream"
                                                                           : detail::text_looks_like(head);
  return info;
}

/// One line of an archive's table of contents (`pg_restore --list`).
struct toc_entry {
  int id = 0;          ///< the dump id (names a directory archive's data file, ID.dat)
  std::string type;    ///< "TABLE", "TABLE DATA", "INDEX", "SEQUENCE SET", ...
  std::string schema;  ///< "-" for objects outside a schema
  std::string name;
};

/// What is inside a backup, as PostgreSQL's own tools read it.
struct backup_contents {
  std::string source_version;  ///< server the dump was taken from, e.g. "15.18"; empty when unknown
  std::string dump_version;    ///< pg_dump that wrote it
  std::vector<toc_entry> toc;  ///< archives only (plain SQL has no table of contents)
  bool cluster = false;            ///< plain pg_dumpall output: roles, tablespaces, every database
  bool creates_databases = false;  ///< plain SQL that creates and \connects to its own databases
  std::string encoding;            ///< the source database's, e.g. "UTF8", "SQL_ASCII"; empty when unknown
  database_locale locale;          ///< archives: the source database's, from their DATABASE entry
  std::string archive_version;     ///< archives: the format version of their header, e.g. "1.14"
  std::string toc_unread;          ///< archives: why the table of contents was not read here, if it was not

  std::optional<int> source_major() const {
    if (source_version.empty()) return std::nullopt;
    return std::atoi(source_version.c_str());
  }
  /// The PostgreSQL major a restore needs: the newer of the source server's and pg_dump's (a
  /// newer pg_dump writes settings, e.g. transaction_timeout, older servers do not know).
  std::optional<int> needed_major() const {
    auto needed = source_major();
    if (!dump_version.empty()) needed = std::max(needed.value_or(0), std::atoi(dump_version.c_str()));
    return needed;
  }
  /// "PostgreSQL 13.16 by pg_dump 17.2", for messages.
  std::string origin() const {
    return "PostgreSQL " + (source_version.empty() ? "(unknown)" : source_version) + " by pg_dump " +
           (dump_version.empty() ? "(unknown)" : dump_version);
  }
  /// "schema.table" of every table in the table of contents.
  std::vector<std::string> tables() const {
    std::vector<std::string> names;
    for (const auto& entry : toc)
      if (entry.type == "TABLE") names.push_back(entry.schema + "." + entry.name);
    return names;
  }
  /// Entry counts by type, e.g. "2 TABLE, 2 TABLE DATA, 3 INDEX".
  std::string toc_summary() const {
    std::vector<std::pair<std::string, int>> counts;
    for (const auto& entry : toc) {
      auto found = std::find_if(counts.begin(), counts.end(), [&](const auto& item) { return item.first == entry.type; });
      if (found == counts.end()) counts.emplace_back(entry.type, 1);
      else ++found->second;
    }
    std::string text;
    for (const auto& [type, count] : counts) text += (text.empty() ? "" : ", ") + std::to_string(count) + " " + type;
    return text;
  }
};

namespace detail {

// Types in `pg_restore --list` output that are more than one word, longest first.
inline const std::vector<std::string>& multiword_toc_types() {
  static const std::vector<std::string> types{
      "MATERIALIZED VIEW DATA", "SEQUENCE OWNED BY", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY",
      "TEXT SEARCH TEMPLATE", "TEXT SEARCH PARSER", "FOREIGN DATA WRAPPER", "DEFAULT ACL", "FK CONSTRAINT",
      "CHECK CONSTRAINT", "MATERIALIZED VIEW", "SEQUENCE SET", "TABLE DATA", "FOREIGN TABLE", "FOREIGN SERVER",
      "LARGE OBJECT", "BLOB DATA", "BLOBS", "USER MAPPING", "ACCESS METHOD", "OPERATOR CLASS", "OPERATOR FAMILY",
      "EVENT TRIGGER", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "ROW SECURITY", "SHELL TYPE",
      "STATISTICS", "TABLE ATTACH", "INDEX ATTACH"};
  return types;
}

inline std::optional<toc_entry> parse_toc_line(const std::string& line) {
  static const std::regex entry_line(R"(^(\d+); \d+ \d+ (.*)$)");
  std::smatch match;
  if (!std::regex_match(line, match, entry_line)) return std::nullopt;
  std::string rest = match[2];
  toc_entry entry;
  entry.id = std::atoi(match[1].str().c_str());
  for (const auto& type : multiword_toc_types())
    if (rest.compare(0, type.size() + 1, type + " ") == 0) {
      entry.type = type;
      break;
    }
  if (entry.type.empty()) entry.type = rest.substr(0, rest.find(' '));
  std::istringstream words(rest.substr(std::min(rest.size(), entry.type.size() + 1)));
  std::vector<std::string> parts;
  for (std::string word; words >> word;) parts.push_back(word);
  if (!parts.empty()) entry.schema = parts.front();
  // Between the schema and the owner: the name (which may contain spaces).
  for (std::size_t index = 1; index + 1 < parts.size(); ++index) entry.name += (index > 1 ? " " : "") + parts[index];
  if (parts.size() == 2) entry.name = parts[1];
  return entry;
}

inline std::string first_word(const std::string& text) { return text.substr(0, text.find_first_of(" \n")); }

}  // namespace detail

/// What the lines before a plain script's first table say: versions (which pg_dumpall writes
/// only after its roles and tablespaces), whether it is a pg_dumpall cluster dump, and whether
/// it creates and `\connect`s to databases of its own (pg_dump --create, pg_dumpall). Reads at
/// most 64 MiB, streaming.
inline backup_contents read_plain_header(const std::filesystem::path& file) {
  backup_contents contents;
  static const std::regex from(R"(^-- Dumped from database version (\S+))"), by(R"(^-- Dumped by pg_dump version (\S+))"),
      encoding(R"(^SET client_encoding = '([^']+)';$)");
  backup_reader reader(file);
  std::vector<char> block(1U << 20);
  std::string pending;
  std::uint64_t scanned = 0;
  auto header_line = [&](const std::string& line) {  // false once the script's tables begin
    std::smatch match;
    if (contents.source_version.empty() && std::regex_search(line, match, from)) contents.source_version = match[1];
    if (contents.dump_version.empty() && std::regex_search(line, match, by)) contents.dump_version = match[1];
    if (contents.encoding.empty() && std::regex_search(line, match, encoding)) contents.encoding = match[1];
    if (line == "-- PostgreSQL database cluster dump") contents.cluster = true;
    if (line.rfind("\\connect ", 0) == 0) contents.creates_databases = true;
    return !(line.rfind("CREATE TABLE ", 0) == 0 || line.rfind("COPY ", 0) == 0 || line.rfind("INSERT INTO ", 0) == 0);
  };
  for (std::size_t got; scanned < (64U << 20) && (got = reader.read(block.data(), block.size())) > 0; scanned += got) {
    pending.append(block.data(), got);
    std::size_t start = 0;
    for (std::size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1)
      if (!header_line(pending.substr(start, newline - start))) return contents;
    pending.erase(0, start);
  }
  header_line(pending);
  return contents;
}

/// A scratch directory under `root` that the account of `tools` may enter: where what the drill
/// hands them (a decompressed or private copy of a backup) goes.
inline scratch_dir scratch_for_tools(const pg_binaries& tools, const std::filesystem::path& root = default_temp_root()) {
  scratch_dir scratch(root);
  if (auto account = tools.account()) scratch.give_to(*account);
  return scratch;
}

namespace detail {

// Whether the tools' account opens `path` by name (a directory: each file in it). A backup it
// cannot open reaches it through the drill (stdin, or a copy: copy_for_tools), never through a
// right to read any file.
inline bool tools_can_open(const pg_binaries& tools, const std::filesystem::path& path) {
  auto account = tools.account();
  return !account || readable_as(*account, {path});
}

// A copy of `source` (a file, or a directory archive's regular files; `only`: just those names)
// at `copy`, in a directory of the tools' account, readable by it. Streamed by the file system.
inline void copy_for_tools(const std::filesystem::path& source, const std::filesystem::path& copy,
                           const std::vector<std::string>& only = {}) {
  using std::filesystem::perms;
  const auto readable = perms::owner_read | perms::owner_write | perms::group_read | perms::others_read;
  std::error_code failure;
  auto copy_file = [&](const std::filesystem::path& from, const std::filesystem::path& to) {
    if (!failure) std::filesystem::copy_file(from, to, failure);
    if (!failure) std::filesystem::permissions(to, readable, failure);
  };
  if (std::filesystem::is_directory(source)) {
    std::filesystem::create_directory(copy, failure);
    if (!failure) std::filesystem::permissions(copy, readable | perms::owner_exec | perms::group_exec | perms::others_exec, failure);
    for (const auto& entry : std::filesystem::directory_iterator(source, failure)) {
      auto name = entry.path().filename().string();
      if (entry.is_regular_file() && (only.empty() || std::find(only.begin(), only.end(), name) != only.end()))
        copy_file(entry.path(), copy / name);
    }
  } else {
    copy_file(source, copy);
  }
  if (failure)
    throw could_not_verify("cannot copy " + source.string() + " for the tools, whose account cannot open it, to " + copy.string() +
                           ": " + failure.message());
}

// pg_restore's output for `args` on an archive (`part` names what they read, for the error):
// returned, or handed piece by piece to `sink` when one is given. A compressed archive, or a file the tools' account cannot open, is fed on stdin;
// of a directory archive it cannot open, a copy of toc.dat (all that --list, the preamble and
// --schema-only read). Throws corrupt_backup when it cannot read the archive, could_not_verify
// when the archive is newer than the tools.
inline std::string read_archive(const backup_info& backup, const pg_binaries& tools, std::vector<std::string> args,
                                const std::function<void(std::string_view)>& sink = {},
                                const std::string& part = "table of contents") {
  command tool(tools.tool("pg_restore"), std::move(args));
  run_options options = run_options::within(std::chrono::minutes(10));
  options.stdout_sink = sink;
  std::optional<backup_reader> reader;
  std::optional<scratch_dir> copy;
  auto path = backup.path;
  if (backup.format == backup_format::directory && !tools_can_open(tools, path)) {
    copy.emplace(scratch_for_tools(tools));
    path = copy->path() / "archive";
    copy_for_tools(backup.path, path, {"toc.dat"});
  }
  if (backup.compressed != compression::none || (backup.format != backup_format::directory && !tools_can_open(tools, path))) {
    reader.emplace(backup.path);
    options.stdin_source = [&](char* buffer, std::size_t capacity) { return reader->read(buffer, capacity); };
  } else {
    tool.args.push_back(path.string());
    tool.reads.push_back(path);
  }
  auto result = tools.run(tool, options);
  auto problems = classify_restore_errors(result.err_tail);
  if (!result.ok() || !problems.empty()) {
    std::string first = problems.empty() ? result.describe() : problems.front().line;
    if (!problems.empty() && problems.front().kind == "archive newer than the tools")
      throw could_not_verify("backup " + backup.path.string() + " was written by a newer pg_dump than the installed " +
                             tools.version + " tools (" + tools.where() + ") can read (" + first + ")");
    throw corrupt_backup(part + " of " + backup.path.string() + " is unreadable: " + first);
  }
  return result.out;
}

}  // namespace detail

/// The header pg_dump writes at the start of a custom archive and of a directory or tar
/// archive's toc.dat: read in-process, so knowing what an archive is needs no PostgreSQL tool.
struct archive_header {
  int version_major = 0, version_minor = 0, version_revision = 0;  ///< the archive format, e.g. 1.14.0
  std::string database;        ///< the database dumped
  std::string source_version;  ///< the server's version string, e.g. "13.16 (Debian 13.16-0+deb11u1)"
  std::string dump_version;    ///< pg_dump's

  /// "1.14", as pg_restore names archive versions.
  std::string version() const { return std::to_string(version_major) + "." + std::to_string(version_minor); }
};

namespace detail {

// Reads pg_dump's header fields from a byte source (pg_backup_archiver.c, ReadHead): integers
// are a sign byte and `int_size` little-endian bytes; strings an integer length and the bytes.
class archive_header_parser {
 public:
  archive_header_parser(std::function<std::size_t(char*, std::size_t)> read, std::string what)
      : read_(std::move(read)), what_(std::move(what)) {}

  archive_header parse() {
    archive_header header;
    if (bytes(5) != "PGDMP") fail("it does not start with pg_dump's PGDMP signature");
    header.version_major = byte();
    header.version_minor = byte();
    header.version_revision = byte();
    int_size_ = byte();
    byte();  // offset size
    byte();  // format: custom 1, tar 3, directory 5
    if (int_size_ < 1 || int_size_ > 8 || header.version_major != 1) fail("its header is not one pg_dump writes");
    if (header.version_minor > newest_known_minor) return header;  // a newer layout: only its version is certain
    if (header.version_minor >= 15) byte();  // compression algorithm (PostgreSQL 16 on)
    else integer();                           // compression level
    for (int field = 0; field < 7; ++field) integer();  // the time it was taken (struct tm)
    header.database = text();
    header.source_version = text();
    header.dump_version = text();
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw corrupt_backup(what_ + " is not a readable pg_dump archive: " + why); }
  std::string bytes(std::size_t count) {
    std::string data(count, '\0');
    for (std::size_t got = 0; got < count;) {
      std::size_t now = read_(data.data() + got, count - got);
      if (now == 0) fail("it ends inside its header");
      got += now;
    }
    return data;
  }
  int byte() { return static_cast<unsigned char>(bytes(1)[0]); }
  long long integer() {
    bool negative = byte() != 0;
    auto digits = bytes(static_cast<std::size_t>(int_size_));
    unsigned long long value = 0;
    for (int index = int_size_; index-- > 0;) value = (value << 8) | static_cast<unsigned char>(digits[static_cast<std::size_t>(index)]);
    return negative ? -static_cast<long long>(value) : static_cast<long long>(value);
  }
  std::string text() {
    long long length = integer();
    if (length < 0) return "";
    if (length > 4096) fail("a header field claims " + std::to_string(length) + " bytes");
    return bytes(static_cast<std::size_t>(length));
  }

  static constexpr int newest_known_minor = 16;  // archive format 1.16: pg_dump 17 and 18

  std::function<std::size_t(char*, std::size_t)> read_;
  std::string what_;
  int int_size_ = 4;
};

}  // namespace detail

/// The archive's header: from the (decompressed) file of a custom archive, from toc.dat of a
/// directory archive, and from the first member (toc.dat) of a tar archive. Throws corrupt_backup
/// when there is none.
inline archive_header read_archive_header(const backup_info& backup) {
  auto file = backup.format == backup_format::directory ? backup.path / "toc.dat" : backup.path;
  if (!std::filesystem::exists(file)) throw corrupt_backup(backup.path.string() + " has no toc.dat: not a directory archive");
  backup_reader reader(file);
  auto read = [&](char* buffer, std::size_t capacity) { return reader.read(buffer, capacity); };
  if (backup.format == backup_format::tar) {  // a 512-byte tar header names the first member
    std::string member(512, '\0');
    for (std::size_t got = 0, now; got < member.size(); got += now)
      if ((now = read(member.data() + got, member.size() - got)) == 0) throw corrupt_backup(backup.path.string() + " is cut short");
    if (member.compare(0, 8, std::string("toc.dat\0", 8)) != 0)
      throw corrupt_backup(backup.path.string() + " does not begin with toc.dat: not a pg_dump tar archive");
  }
  return detail::archive_header_parser(read, backup.path.string()).parse();
}

/// Versions, read in-process from the bytes: an archive's header, plain SQL's header lines. No
/// PostgreSQL tool is needed. Throws corrupt_backup when an archive has no readable header.
inline backup_contents read_versions(const backup_info& backup) {
  if (backup.format == backup_format::plain) return read_plain_header(backup.path);
  if (backup.format == backup_format::json_snapshot) return {};  // no PostgreSQL version: any server loads it
  if (backup.format == backup_format::tar) check_tar_complete(backup.path);
  auto header = read_archive_header(backup);
  backup_contents contents;
  contents.source_version = detail::first_word(header.source_version);
  contents.dump_version = detail::first_word(header.dump_version);
  contents.archive_version = header.version();
  return contents;
}

namespace detail {

// A directory archive's data files against its table of contents: each TABLE DATA entry has its
// ID.dat (or .dat.gz, .dat.lz4, .dat.zst), compressed as its name says, decompressing to its end.
// (An uncompressed file emptied reads as an empty table: the SHA-256 sidecar and the manifest's
// row counts catch that.)
inline std::vector<std::string> directory_data_problems(const std::filesystem::path& directory, const std::vector<toc_entry>& toc) {
  static const std::vector<std::pair<std::string, compression>> suffixes{
      {".dat", compression::none}, {".dat.gz", compression::gzip}, {".dat.lz4", compression::lz4}, {".dat.zst", compression::zstd}};
  std::vector<std::string> problems;
  for (const auto& entry : toc) {
    if (entry.type != "TABLE DATA") continue;
    auto found = std::find_if(suffixes.begin(), suffixes.end(),
                              [&](const auto& suffix) { return std::filesystem::is_regular_file(directory / (std::to_string(entry.id) + suffix.first)); });
    std::string what = entry.schema + "." + entry.name;
    if (found == suffixes.end()) {
      problems.push_back(what + ": its data file " + std::to_string(entry.id) + ".dat is missing");
      continue;
    }
    auto file = directory / (std::to_string(entry.id) + found->first);
    try {
      auto info = inspect_file(file);
      if (found->second != compression::none && info.compressed != found->second)
        throw corrupt_backup(info.size == 0 ? "empty" : "not " + std::string(to_string(found->second)) + " data");
      backup_reader reader(file);
      std::vector<char> block(1U << 20);
      while (reader.read(block.data(), block.size()) > 0) {
      }
    } catch (const corrupt_backup& damaged) {
      problems.push_back(what + ": its data file " + file.filename().string() + " is damaged (" + damaged.what() + ")");
    }
  }
  return problems;
}

}  // namespace detail

namespace detail {

// The locale of the first CREATE DATABASE in `sql`, as pg_dump 13 to 18 write it (LOCALE, or
// LC_COLLATE and LC_CTYPE; LOCALE_PROVIDER with ICU_LOCALE or BUILTIN_LOCALE); unknown without one.
inline database_locale locale_of_create_database(const std::string& sql) {
  database_locale locale;
  std::smatch statement;
  if (!std::regex_search(sql, statement, std::regex(R"(\nCREATE DATABASE [^\n]* WITH TEMPLATE = template0[^\n]*;)"))) return locale;
  const std::string text = statement.str();
  auto option = [&text](const std::string& name) {
    std::smatch value;
    if (!std::regex_search(text, value, std::regex(" " + name + " = '((?:[^']|'')*)'"))) return std::string();
    return std::regex_replace(value[1].str(), std::regex("''"), "'");
  };
  std::smatch provider;
  locale.provider = std::regex_search(text, provider, std::regex(" LOCALE_PROVIDER = (\\w+)")) ? provider[1].str() : "libc";
  locale.collate = locale.ctype = option("LOCALE");
  if (auto collate = option("LC_COLLATE"); !collate.empty()) locale.collate = collate;
  if (auto ctype = option("LC_CTYPE"); !ctype.empty()) locale.ctype = ctype;
  locale.locale = option(locale.provider == "icu" ? "ICU_LOCALE" : "BUILTIN_LOCALE");
  return locale;
}

// The opening and closing lines of pg_dump's and pg_dumpall's scripts.
inline const std::vector<std::pair<std::string, std::string>>& plain_script_frames() {
  static const std::vector<std::pair<std::string, std::string>> frames{
      {"-- PostgreSQL database dump\n", "-- PostgreSQL database dump complete"},
      {"-- PostgreSQL database cluster dump\n", "-- PostgreSQL database cluster dump complete"}};
  return frames;
}

// Follows a plain script line by line as psql reads it, to tell whether it ends as pg_dump's and
// pg_dumpall's do: its last line outside COPY data is their closing comment (rows may quote that
// comment; a script cut inside them lost the rest). Keeps a few bytes of each line only, so any
// row length fits in bounded memory.
class plain_script_end {
 public:
  void see(const char* data, std::size_t size) {
    if (head_.size() < 64) head_.append(data, std::min(size, 64 - head_.size()));
    for (std::size_t at = 0; at < size;) {
      const char* newline = static_cast<const char*>(std::memchr(data + at, '\n', size - at));
      std::size_t end = newline ? static_cast<std::size_t>(newline - data) : size;
      add_to_line(data + at, end - at);
      if (newline) line_ended();
      at = end + (newline ? 1 : 0);
    }
  }
  /// Why a script that opens like pg_dump's (or pg_dumpall's) was cut short; empty when it ends whole.
  std::string cut_short() const {
    bool unterminated = line_length_ > 0;
    for (const auto& [header, footer] : plain_script_frames()) {
      if (head_.rfind("--\n" + header, 0) != 0 && head_.rfind(header, 0) != 0) continue;
      if (in_copy_) return "the plain SQL script stops inside the rows of its '" + copy_ + "': it was cut short";
      const std::string& last = unterminated && counts(line_start_) ? line_start_ : last_line_;
      if (last != footer) return "the plain SQL script ends without its closing '" + footer + "' line: it was cut short";
    }
    return "";
  }

 private:
  static constexpr std::size_t kept = 160;  // of a line's start: more than any line this judges
  void add_to_line(const char* data, std::size_t size) {
    if (line_start_.size() < kept) line_start_.append(data, std::min(size, kept - line_start_.size()));
    line_end_.append(data, size);
    if (line_end_.size() > 16) line_end_.erase(0, line_end_.size() - 16);
    line_length_ += size;
  }
  // A line that can end a script: not blank, not a bare "--", not pg_dump's \unrestrict.
  static bool counts(const std::string& line) { return !line.empty() && line != "--" && line.rfind("\\unrestrict ", 0) != 0; }
  static bool ends_with(const std::string& text, const std::string& tail) {
    return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
  }
  void line_ended() {
    if (in_copy_) {
      in_copy_ = !(line_length_ == 2 && line_start_ == "\\.");
    } else if (line_start_.rfind("COPY ", 0) == 0 && ends_with(line_end_, " FROM stdin;")) {
      in_copy_ = true;
      copy_ = line_start_.substr(0, line_start_.find(" FROM stdin;"));
      last_line_ = line_start_;
    } else if (counts(line_start_)) {
      last_line_ = line_start_;
    }
    line_start_.clear();
    line_end_.clear();
    line_length_ = 0;
  }

  std::string head_, line_start_, line_end_, last_line_, copy_;
  std::size_t line_length_ = 0;
  bool in_copy_ = false;
};

}  // namespace detail

/// Versions (read_versions) and an archive's table of contents with the field's own tools:
/// `pg_restore --list` (fed the decompressed stream when compressed). Throws corrupt_backup when
/// the table of contents cannot be read, could_not_verify when the tools are too old for it.
inline backup_contents read_contents(const backup_info& backup, const pg_binaries& tools) {
  auto contents = read_versions(backup);
  if (backup.format == backup_format::plain) return contents;
  std::string listing;
  try {
    listing = detail::read_archive(backup, tools, {"--list"});
  } catch (const could_not_verify& failure) {
    throw could_not_verify("backup " + backup.path.string() + " was dumped from " + contents.origin() + " (archive format " +
                           contents.archive_version + "): the PostgreSQL " + tools.version + " tools in " +
                           tools.where() + " cannot read it. Restore it with " +
                           (contents.needed_major() ? "PostgreSQL " + std::to_string(*contents.needed_major()) + " or newer tools"
                                                    : "the tools of the PostgreSQL major whose pg_dump wrote it") +
                           ", or with the container provider (" + failure.what() + ")");
  }
  std::istringstream lines(listing);
  for (std::string line; std::getline(lines, line);)
    if (auto entry = detail::parse_toc_line(line)) contents.toc.push_back(*entry);
  if (backup.format == backup_format::directory)
    if (auto problems = detail::directory_data_problems(backup.path, contents.toc); !problems.empty())
      throw corrupt_backup("the directory archive " + backup.path.string() + " does not hold what its table of contents lists: " +
                           detail::join(problems, "; "));
  // The source database's encoding and locale: in the preamble and the CREATE DATABASE that
  // pg_restore writes with --create for an otherwise empty selection.
  auto preamble = detail::read_archive(backup, tools, {"--create", "--file", "-", "--use-list", "/dev/null"});
  static const std::regex encoding(R"(SET client_encoding = '([^']+)';)");
  std::smatch match;
  if (std::regex_search(preamble, match, encoding)) contents.encoding = match[1];
  contents.locale = detail::locale_of_create_database(preamble);
  contents.locale.encoding = contents.encoding;
  return contents;
}

/// Every byte of a backup read as a restore would, without a server: a plain script decompressed
/// to its end and judged by its own last line; every data block of a custom or tar archive
/// decompressed by `pg_restore --file /dev/null` (read_contents reads a directory archive's data
/// files). Throws corrupt_backup naming what is damaged.
inline void read_every_block(const backup_info& backup, const pg_binaries& tools) {
  if (backup.format == backup_format::custom || backup.format == backup_format::tar)
    detail::read_archive(backup, tools, {"--file", "/dev/null"}, {}, "the data");
  if (backup.format != backup_format::plain) return;
  backup_reader reader(backup.path);
  detail::plain_script_end end;
  std::vector<char> block(1U << 20);
  for (std::size_t got; (got = reader.read(block.data(), block.size())) > 0;) end.see(block.data(), got);
  if (auto cut = end.cut_short(); !cut.empty()) throw corrupt_backup(backup.path.string() + ": " + cut);
}

/// What a backup is, as far as this host can read it: versions always, an archive's table of
/// contents when tools found by `search` can read it (else `toc_unread` says why: the tools
/// where the drill restores read it there). Throws corrupt_backup for a damaged backup.
inline backup_contents read_contents_here(const backup_info& backup, const binary_search& search) {
  if (backup.format == backup_format::plain || backup.format == backup_format::json_snapshot) return read_versions(backup);
  std::string unread;
  try {
    return read_contents(backup, find_binaries(search));
  } catch (const could_not_verify& failure) {
    unread = failure.what();
  }
  auto versions = read_versions(backup);
  versions.toc_unread = unread;
  return versions;
}

/// Files that describe a backup rather than being one: checksums and pgdrill manifests.
inline bool is_sidecar(const std::string& name) {
  for (const char* suffix : {".sha256", ".md5", ".manifest.json"})
    if (name.size() > std::strlen(suffix) && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
      return true;
  return false;
}

/// Files in `directory` whose names match the glob (sidecars excluded), newest first: by the timestamp in the name
/// when every candidate has one, else by modification time.
inline std::vector<backup_info> list_backups(const std::filesystem::path& directory, const std::string& pattern = "*",
                                             std::vector<std::string>* skipped = nullptr) {
  std::error_code failure;
  if (!std::filesystem::is_directory(directory, failure))
    throw could_not_verify("backup directory " + directory.string() + " does not exist or is not a directory");
  std::vector<backup_info> found;
  for (const auto& entry : std::filesystem::directory_iterator(directory, failure)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || is_sidecar(name) || ::fnmatch(pattern.c_str(), name.c_str(), 0) != 0) continue;
    try {
      auto info = inspect_file(entry.path());
      if (info.looks_like == schema_reference_opening) {
        if (skipped) skipped->push_back("skipped: " + entry.path().string() + " is a pgdrill schema reference, not a backup");
        continue;
      }
      found.push_back(std::move(info));
    } catch (const could_not_verify& unreadable) {  // a FIFO or a symlink loop costs its own entry, not the listing
      if (skipped) skipped->push_back(std::string("skipped: ") + unreadable.what());
    }
  }
  bool all_named = std::all_of(found.begin(), found.end(), [](const backup_info& b) { return b.name_time.has_value(); });
  std::stable_sort(found.begin(), found.end(), [&](const backup_info& a, const backup_info& b) {
    if (all_named && *a.name_time != *b.name_time) return *a.name_time > *b.name_time;
    if (a.modified != b.modified) return a.modified > b.modified;
    return a.path.filename() > b.path.filename();
  });
  for (auto& backup : found)
    backup.chosen_because = all_named ? "newest by the timestamp in its name" : "newest by modification time";
  return found;
}

/// The newest of `found` (a list_backups result for `directory` and `pattern`), with why it
/// was chosen; could_not_verify when there is none.
inline backup_info latest_of(const std::vector<backup_info>& found, const std::filesystem::path& directory,
                             const std::string& pattern) {
  if (found.empty())
    throw could_not_verify("no backup matching '" + pattern + "' in " + directory.string());
  auto latest = found.front();
  latest.chosen_because += " (of " + std::to_string(found.size()) + " matching '" + pattern + "')";
  return latest;
}

/// The newest backup in `directory` matching `pattern`; could_not_verify when there is none.
inline backup_info find_latest(const std::filesystem::path& directory, const std::string& pattern = "*") {
  return latest_of(list_backups(directory, pattern), directory, pattern);
}

/// The backups a drill restores, in order, and the directory listing they were chosen from
/// (empty unless the source is a directory).
struct located_backups {
  std::vector<backup_info> backups;
  std::vector<backup_info> listing;
  std::vector<std::string> skipped;  ///< entries of the directory that could not be read, and why
};

/// The one place that finds a scenario's backups: the named file, the set of files in order, or
/// the newest match in a directory. could_not_verify when there is none.
inline located_backups locate_backups(const backup_source& source) {
  located_backups found;
  if (!source.files.empty()) {
    for (const auto& file : source.files) found.backups.push_back(inspect_file(file));
    for (auto& backup : found.backups) backup.chosen_because = "part of the scenario's backup set";
  } else if (!source.file.empty()) {
    found.backups.push_back(inspect_file(source.file));
    found.backups.back().chosen_because = "named in the scenario";
  } else {
    found.listing = list_backups(source.directory, source.pattern, &found.skipped);
    found.backups.push_back(latest_of(found.listing, source.directory, source.pattern));
  }
  return found;
}

}  // namespace pgdrill
