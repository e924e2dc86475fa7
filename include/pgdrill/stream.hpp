// Reading a backup file as a stream of its decompressed bytes, in constant memory.
#pragma once

// Decompression is libarchive's: one well-kept library that decodes gzip, zstd, lz4, bzip2 and
// xz in-process (Debian builds it against zlib, libzstd, liblz4, libbz2 and liblzma), used with
// its "raw" format so the payload is streamed as is.

#include <archive.h>
#include <archive_entry.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include <pgdrill/error.hpp>

namespace pgdrill {

/// The bytes of a backup file, decompressed when it is compressed. Move-only.
class backup_reader {
 public:
  explicit backup_reader(const std::filesystem::path& file, std::size_t block_size = 256U << 10) : file_(file) {
    archive_ = archive_read_new();
    archive_read_support_filter_all(archive_);
    archive_read_support_format_raw(archive_);
    if (archive_read_open_filename(archive_, file.c_str(), block_size) != ARCHIVE_OK) fail("cannot open");
    archive_entry* entry = nullptr;
    int status = archive_read_next_header(archive_, &entry);
    if (status == ARCHIVE_EOF) {
      at_end_ = true;  // an empty file has no entry: zero bytes
    } else if (status != ARCHIVE_OK) {
      fail("cannot read");
    }
  }
  backup_reader(backup_reader&& other) noexcept
      : file_(std::move(other.file_)), archive_(std::exchange(other.archive_, nullptr)), at_end_(other.at_end_) {}
  backup_reader& operator=(backup_reader&&) = delete;
  backup_reader(const backup_reader&) = delete;
  backup_reader& operator=(const backup_reader&) = delete;
  ~backup_reader() {
    if (archive_) archive_read_free(archive_);
  }

  const std::filesystem::path& path() const { return file_; }

  /// Fill `buffer` with the next bytes; 0 at the end. Throws corrupt_backup on damaged input.
  std::size_t read(char* buffer, std::size_t capacity) {
    if (at_end_) return 0;
    la_ssize_t got = archive_read_data(archive_, buffer, capacity);
    if (got < 0) fail("damaged or truncated");
    if (got == 0) at_end_ = true;
    return static_cast<std::size_t>(got);
  }

  /// Bytes of the file consumed so far (compressed bytes, for progress against the file size).
  std::uint64_t file_bytes_read() const {
    la_int64_t bytes = archive_ ? archive_filter_bytes(archive_, -1) : 0;
    return bytes > 0 ? static_cast<std::uint64_t>(bytes) : 0;
  }

  /// The compression libarchive recognised, e.g. "gzip"; "none" for a plain file.
  std::string filter_name() const {
    const char* name = archive_filter_name(archive_, 0);
    return name && std::string(name) != "none" ? name : "none";
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string reason = archive_ && archive_error_string(archive_) ? archive_error_string(archive_) : "unknown error";
    throw corrupt_backup("backup " + file_.string() + ": " + what + ": " + reason);
  }

  std::filesystem::path file_;
  archive* archive_ = nullptr;
  bool at_end_ = false;
};

/// Read a tar archive's every member to its end (libarchive's tar reader): a truncated or
/// damaged archive throws corrupt_backup. pg_dump's tar format needs this before pg_restore,
/// which can loop forever on a truncated member instead of failing. pg_dump writes only regular
/// files with plain names: a link, directory or device member, or a name with a directory part
/// ('../x', '/etc/x'), is refused as well (corrupt_backup naming it).
inline void check_tar_complete(const std::filesystem::path& file) {
  archive* reader = archive_read_new();
  archive_read_support_filter_all(reader);
  archive_read_support_format_tar(reader);
  auto fail = [&](const std::string& what) {
    std::string reason = archive_error_string(reader) ? archive_error_string(reader) : "unknown error";
    archive_read_free(reader);
    throw corrupt_backup("tar archive " + file.string() + ": " + what + ": " + reason);
  };
  if (archive_read_open_filename(reader, file.c_str(), 256U << 10) != ARCHIVE_OK) fail("cannot open");
  archive_entry* entry = nullptr;
  int status;
  while ((status = archive_read_next_header(reader, &entry)) == ARCHIVE_OK) {
    const char* name = archive_entry_pathname(entry);
    std::string member = name ? name : "";
    if (archive_entry_filetype(entry) != AE_IFREG || member.empty() || member.find('/') != std::string::npos) {
      archive_read_free(reader);
      throw corrupt_backup("tar archive " + file.string() + ": member '" + member + "' is not a regular file with a plain name " +
                           "(pg_dump writes none other): refused");
    }
    if (archive_read_data_skip(reader) != ARCHIVE_OK) fail("truncated member");
  }
  if (status != ARCHIVE_EOF) fail("damaged or truncated");
  archive_read_free(reader);
}

}  // namespace pgdrill
