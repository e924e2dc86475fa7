#include "support.hpp"

using namespace pgdrill;

TEST(backup, reads_timestamps_in_the_common_name_styles) {
  auto at = [](int y, int mo, int d, int h, int mi, int s) { return *detail::utc_time(y, mo, d, h, mi, s); };
  EXPECT_EQ(timestamp_in_name("user-data-2026-05-06.sql.gz"), at(2026, 5, 6, 0, 0, 0));
  EXPECT_EQ(timestamp_in_name("mydb_2025-11-05_14-30-00.dump"), at(2025, 11, 5, 14, 30, 0));
  EXPECT_EQ(timestamp_in_name("backup_20250101_020000.dump"), at(2025, 1, 1, 2, 0, 0));
  EXPECT_EQ(timestamp_in_name("db-2025-01-01T02:00:00Z.sql"), at(2025, 1, 1, 2, 0, 0));
  EXPECT_FALSE(timestamp_in_name("users_backup.sql"));
  EXPECT_FALSE(timestamp_in_name("backup_20251399.dump"));  // no month 13
}

TEST(backup, newest_by_name_timestamp_beats_mtime) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "db_20250102_000000.sql", "-- newer by name\n");
  testkit::write_file(dir.path() / "db_20250101_000000.sql", "-- older by name, newer mtime\n");
  testkit::write_file(dir.path() / "notes.txt", "not a match\n");
  testkit::write_file(dir.path() / "db_20250103_000000.sql.sha256", "sidecars are never backups\n");
  testkit::write_file(dir.path() / "db_20250103_000000.sql.manifest.json", "{}\n");
  auto latest = find_latest(dir.path(), "db_*.sql");
  EXPECT_EQ(latest.path.filename(), "db_20250102_000000.sql");
  EXPECT_NE(latest.chosen_because.find("timestamp in its name"), std::string::npos);
  EXPECT_NE(latest.chosen_because.find("of 2 matching"), std::string::npos);
}

TEST(backup, falls_back_to_mtime_without_name_timestamps) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "a.sql", "-- a\n");
  testkit::write_file(dir.path() / "b.sql", "-- b\n");
  auto old_time = std::filesystem::file_time_type::clock::now() - std::chrono::hours(48);
  std::filesystem::last_write_time(dir.path() / "b.sql", old_time);
  auto latest = find_latest(dir.path(), "*.sql");
  EXPECT_EQ(latest.path.filename(), "a.sql");
  EXPECT_NE(latest.chosen_because.find("modification time"), std::string::npos);
}

TEST(backup, detects_format_and_compression_from_bytes_not_names) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "looks.sql", std::string("PGDMP\x01\x0e\x00", 8));
  testkit::write_file(dir.path() / "plain.dump", "--\n-- PostgreSQL database dump\n--\n");
  testkit::write_file(dir.path() / "z.sql", std::string("\x1f\x8b\x08\x00", 4));
  testkit::write_file(dir.path() / "zs.dump", std::string("\x28\xb5\x2f\xfd", 4));
  testkit::write_file(dir.path() / "binary", std::string("\x00\x01\x02", 3));
  EXPECT_EQ(inspect_file(dir.path() / "looks.sql").format, backup_format::custom);
  EXPECT_EQ(inspect_file(dir.path() / "plain.dump").format, backup_format::plain);
  EXPECT_EQ(inspect_file(dir.path() / "z.sql").compressed, compression::gzip);
  EXPECT_EQ(inspect_file(dir.path() / "zs.dump").compressed, compression::zstd);
  EXPECT_EQ(inspect_file(dir.path() / "binary").format, backup_format::unknown);
}

TEST(backup, missing_backups_cannot_be_verified) {
  scratch_dir dir;
  EXPECT_THROW(find_latest(dir.path(), "*.dump"), could_not_verify);
  EXPECT_THROW(find_latest(dir.path() / "absent"), could_not_verify);
  EXPECT_THROW(inspect_file(dir.path() / "absent.dump"), could_not_verify);
}
