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

TEST(backup, a_directory_with_toc_dat_is_an_archive_any_other_a_directory_of_backups) {
  scratch_dir dir;
  std::filesystem::create_directories(dir.path() / "archive");
  testkit::write_file(dir.path() / "archive" / "toc.dat", "PGDMP");
  std::filesystem::create_directories(dir.path() / "nightly");
  testkit::write_file(dir.path() / "nightly" / "db_20250101.sql", "-- a\n");
  testkit::write_file(dir.path() / "plain.sql", "-- b\n");
  EXPECT_TRUE(is_directory_archive(dir.path() / "archive"));
  EXPECT_FALSE(is_backup_directory(dir.path() / "archive"));
  EXPECT_TRUE(is_backup_directory(dir.path() / "nightly"));
  EXPECT_FALSE(is_directory_archive(dir.path() / "nightly"));
  EXPECT_FALSE(is_backup_directory(dir.path() / "plain.sql")) << "a file is neither";
  EXPECT_FALSE(is_backup_directory(dir.path() / "absent"));
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

TEST(backup, every_format_has_one_row_of_traits) {
  EXPECT_STREQ(traits_of(backup_format::directory).restore_tool, "pg_restore");
  EXPECT_TRUE(traits_of(backup_format::custom).parallel_restore);
  EXPECT_FALSE(traits_of(backup_format::tar).parallel_restore);
  EXPECT_STREQ(traits_of(backup_format::plain).restore_tool, "psql");
  EXPECT_STREQ(format_named("tar").pg_dump_flag, "t");
  EXPECT_STREQ(format_named("custom").extension, ".dump");
  EXPECT_THROW(format_named("unknown"), usage_error);
  for (const auto& traits : backup_formats()) EXPECT_STREQ(to_string(traits.format), traits.name);
}

TEST(backup, locates_a_file_a_set_in_order_or_the_newest_in_a_directory) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "db_20250101_000000.sql", "-- old\n");
  testkit::write_file(dir.path() / "db_20250102_000000.sql", "-- new\n");
  backup_source source;
  source.directory = dir.path();
  source.pattern = "db_*.sql";
  auto newest = locate_backups(source);
  EXPECT_EQ(newest.backups.at(0).path.filename(), "db_20250102_000000.sql");
  EXPECT_EQ(newest.listing.size(), 2U);
  backup_source set;
  set.files = {dir.path() / "db_20250102_000000.sql", dir.path() / "db_20250101_000000.sql"};
  auto ordered = locate_backups(set);
  EXPECT_EQ(ordered.backups.at(1).path.filename(), "db_20250101_000000.sql");
  EXPECT_EQ(ordered.backups.at(0).chosen_because, "part of the scenario's backup set");
  EXPECT_TRUE(ordered.listing.empty());
  backup_source missing;
  missing.file = dir.path() / "absent.dump";
  EXPECT_THROW(locate_backups(missing), could_not_verify);
}

TEST(backup, text_that_is_no_sql_is_no_backup) {
  EXPECT_EQ(detail::format_of("--\n-- PostgreSQL database dump\n"), backup_format::plain);
  EXPECT_EQ(detail::format_of("\xEF\xBB\xBF  create table t (a int);\n"), backup_format::plain);
  EXPECT_EQ(detail::format_of("\\connect app\n"), backup_format::plain);
  EXPECT_EQ(detail::text_looks_like("<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>"), "an HTML page");
  EXPECT_EQ(detail::text_looks_like("  <html>"), "an HTML page");
  EXPECT_EQ(detail::text_looks_like("<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>"), "XML");
  EXPECT_EQ(detail::text_looks_like("{\"error\": \"not found\"}").rfind("JSON that is no table snapshot", 0), 0U);
  EXPECT_EQ(detail::text_looks_like(""), "an empty file");
  EXPECT_EQ(detail::text_looks_like("hello world\n"), "text that is not SQL");
  EXPECT_EQ(detail::text_looks_like(std::string("ab\0cd", 5)), "binary data");
  EXPECT_EQ(detail::format_of("<html>"), backup_format::unknown);
}

TEST(backup, table_of_contents_lines_parse_with_multiword_types_and_spaced_names) {
  auto table = detail::parse_toc_line("215; 1259 16386 TABLE public orders postgres");
  ASSERT_TRUE(table);
  EXPECT_EQ(table->type, "TABLE");
  EXPECT_EQ(table->schema, "public");
  EXPECT_EQ(table->name, "orders");
  auto data = detail::parse_toc_line("3350; 0 16386 TABLE DATA public order lines postgres");
  ASSERT_TRUE(data);
  EXPECT_EQ(data->type, "TABLE DATA");
  EXPECT_EQ(data->name, "order lines");
  EXPECT_FALSE(detail::parse_toc_line(";     Dumped from database version: 15.18"));
  backup_contents contents;
  contents.toc = {*table, *data};
  EXPECT_EQ(contents.tables(), (std::vector<std::string>{"public.orders"}));
  EXPECT_EQ(contents.toc_summary(), "1 TABLE, 1 TABLE DATA");
}

TEST(backup, attached_partitions_are_not_counted_as_tables) {
  backup_contents contents;
  for (const char* line : {"220; 1259 16400 TABLE public events_2026 postgres", "3401; 0 0 TABLE ATTACH public events_2026 postgres",
                           "3402; 0 0 INDEX ATTACH public events_2026_pkey postgres"})
    contents.toc.push_back(*detail::parse_toc_line(line));
  EXPECT_EQ(contents.tables(), (std::vector<std::string>{"public.events_2026"}));
  EXPECT_EQ(contents.toc[1].type, "TABLE ATTACH");
}

TEST(backup, a_directory_archive_sidecar_lists_every_file_and_catches_each_change) {
  scratch_dir dir;
  auto archive = dir.path() / "shop.dir";
  testkit::write_file(archive / "toc.dat", "PGDMP toc");
  testkit::write_file(archive / "3001.dat.gz", "rows");
  auto sidecar = dir.path() / "shop.dir.sha256";
  auto lines = directory_sha256_lines(archive);
  testkit::write_file(sidecar, lines);
  EXPECT_EQ(lines.substr(64, 14), "  3001.dat.gz\n") << "sha256sum's format, sorted by path: " << lines;
  hygiene_spec spec;
  spec.min_size_bytes = 0;
  auto sha256_step = [&] {
    for (const auto& step : check_backup_file(inspect_file(archive), spec))
      if (step.name == "backup sha256") return step;
    return step_result{};
  };
  EXPECT_EQ(sha256_step().result, outcome::passed) << sha256_step().message;
  testkit::write_file(archive / "3001.dat.gz", "rowz");
  EXPECT_EQ(sha256_step().result, outcome::failed);
  EXPECT_NE(sha256_step().message.find("3001.dat.gz changed after the sidecar was written"), std::string::npos) << sha256_step().message;
  testkit::write_file(archive / "3001.dat.gz", "rows");
  testkit::write_file(archive / "3002.dat.gz", "more");
  EXPECT_NE(sha256_step().message.find("3002.dat.gz is in the archive but not in the sidecar"), std::string::npos);
  std::filesystem::remove(archive / "3002.dat.gz");
  std::filesystem::remove(archive / "3001.dat.gz");
  EXPECT_NE(sha256_step().message.find("3001.dat.gz is listed in the sidecar but missing"), std::string::npos);
}

TEST(backup, plain_header_is_read_wherever_pg_dumpall_puts_it) {
  scratch_dir dir;
  std::string roles;
  for (int index = 0; index < 3000; ++index) roles += "CREATE ROLE role_" + std::to_string(index) + ";\n";  // > 64 KiB
  testkit::write_file(dir.path() / "cluster.sql",
                      "--\n-- PostgreSQL database cluster dump\n--\n\nSET client_encoding = 'SQL_ASCII';\n" + roles +
                          "\\connect template1\n\n-- Dumped from database version 13.22\n-- Dumped by pg_dump version 17.6\n"
                          "CREATE TABLE t (a int);\n-- Dumped from database version 99.0\n");
  auto header = read_plain_header(dir.path() / "cluster.sql");
  EXPECT_TRUE(header.cluster);
  EXPECT_TRUE(header.creates_databases);
  EXPECT_EQ(header.source_version, "13.22");
  EXPECT_EQ(header.dump_version, "17.6");
  EXPECT_EQ(header.encoding, "SQL_ASCII");
  testkit::write_file(dir.path() / "plain.sql", "--\n-- PostgreSQL database dump\n--\nSET client_encoding = 'UTF8';\nCOPY t FROM stdin;\n\\connect x\n");
  auto plain = read_plain_header(dir.path() / "plain.sql");
  EXPECT_FALSE(plain.cluster);
  EXPECT_FALSE(plain.creates_databases) << "a \\connect in the data is no header";
  EXPECT_EQ(plain.encoding, "UTF8");
}

namespace {

// pg_dump's header integers: a sign byte, then 4 little-endian bytes; strings: length, bytes.
std::string header_int(long long value) {
  std::string bytes(1, value < 0 ? '\1' : '\0');
  unsigned long long magnitude = static_cast<unsigned long long>(value < 0 ? -value : value);
  for (int index = 0; index < 4; ++index) bytes += static_cast<char>((magnitude >> (8 * index)) & 0xFF);
  return bytes;
}
std::string header_text(const std::string& text) { return header_int(static_cast<long long>(text.size())) + text; }

// The header as pg_dump writes it (laid out like a real PostgreSQL 15 custom archive's first
// bytes; 1.15 and later write the compression algorithm as one byte instead of a level).
std::string archive_bytes(int minor, const std::string& source, const std::string& dump) {
  std::string bytes = std::string("PGDMP") + '\1' + static_cast<char>(minor) + '\0' + '\4' + '\10' + '\1';
  bytes += minor >= 15 ? std::string(1, '\0') : header_int(-1);
  for (int field : {46, 32, 9, 22, 10, 126, 0}) bytes += header_int(field);
  return bytes + header_text("shop") + header_text(source) + header_text(dump) + "rest of the archive";
}

archive_header parse_header(const std::string& bytes) {
  std::size_t at = 0;
  return detail::archive_header_parser([&](char* buffer, std::size_t capacity) {
    std::size_t count = std::min(capacity, bytes.size() - at);
    std::copy_n(bytes.data() + at, count, buffer);
    at += count;
    return count;
  }, "test.dump").parse();
}

}  // namespace

TEST(archive_header, versions_are_read_from_the_bytes_of_every_archive_version) {
  auto old = parse_header(archive_bytes(14, "15.18 (Debian 15.18-0+deb12u1)", "15.18 (Debian 15.18-0+deb12u1)"));
  EXPECT_EQ(old.version(), "1.14");
  EXPECT_EQ(old.database, "shop");
  EXPECT_EQ(old.source_version, "15.18 (Debian 15.18-0+deb12u1)");
  auto newer = parse_header(archive_bytes(16, "13.16", "17.2 (Debian 17.2-1)"));
  EXPECT_EQ(newer.version(), "1.16");
  EXPECT_EQ(newer.source_version, "13.16");
  EXPECT_EQ(newer.dump_version, "17.2 (Debian 17.2-1)");
}

TEST(archive_header, damaged_headers_are_corrupt_backups) {
  auto good = archive_bytes(14, "15.18", "15.18");
  EXPECT_THROW(parse_header("PGDMQ" + good.substr(5)), corrupt_backup);
  EXPECT_THROW(parse_header(good.substr(0, 40)), corrupt_backup);
  auto huge_length = good;
  huge_length.replace(good.find("shop") - 5, 5, header_int(1LL << 30));
  EXPECT_THROW(parse_header(huge_length), corrupt_backup);
  EXPECT_THROW(parse_header(""), corrupt_backup);
}

TEST(backup_contents, the_needed_major_is_the_newer_of_source_and_pg_dump) {
  backup_contents contents;
  EXPECT_FALSE(contents.needed_major());
  contents.source_version = "13.16";
  EXPECT_EQ(contents.needed_major(), 13);
  contents.dump_version = "17.2";
  EXPECT_EQ(contents.needed_major(), 17);
  EXPECT_EQ(contents.origin(), "PostgreSQL 13.16 by pg_dump 17.2");
  contents.source_version = "18.1";
  EXPECT_EQ(contents.needed_major(), 18);
}

// --- JSON table snapshots (snapshot.hpp): the format read without a server -------------------

namespace {

// Every row a snapshot streams, as "table: row text", and each table's end with its count.
std::vector<std::string> streamed(const std::filesystem::path& file) {
  std::vector<std::string> seen;
  snapshot_events events;
  events.row = [&](const std::string& table, const std::string& text, const std::vector<std::string>&) { seen.push_back(table + ": " + text); };
  events.table_ends = [&](const std::string& table, long long rows) { seen.push_back(table + " ends after " + std::to_string(rows)); };
  backup_reader reader(file);
  stream_snapshot(reader, events);
  return seen;
}

std::string corrupt_message(const std::string& text) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "s.json", text);
  try {
    streamed(dir.path() / "s.json");
  } catch (const corrupt_backup& failure) {
    return failure.what();
  }
  return "(no error)";
}

}  // namespace

TEST(snapshot_format, is_recognised_from_its_first_key_and_named_in_listings) {
  EXPECT_EQ(detail::format_of("{\"manifest\": {\"tables\": {}}, \"data\": {}}"), backup_format::json_snapshot);
  EXPECT_EQ(detail::format_of("\xEF\xBB\xBF\n  {\n  \"data\" : {\"t\": []}"), backup_format::json_snapshot);
  EXPECT_EQ(detail::format_of("{\"pgdrill_manifest\": 2}"), backup_format::unknown);
  EXPECT_EQ(detail::format_of("[{\"manifest\": 1}]"), backup_format::unknown);
  scratch_dir dir;
  std::string body = R"({"manifest": {"schema": "public", "tables": {"t": {"rowCount": 0}}}, "data": {"t": []}})";
  testkit::write_file(dir.path() / "public_2026-05-05T02-00-00-000Z.json", body);
  testkit::write_file(dir.path() / "public_2026-05-06T02-00-00-000Z.json", body);
  auto found = list_backups(dir.path(), "public_*.json");
  ASSERT_EQ(found.size(), 2U);
  EXPECT_EQ(found.front().path.filename(), "public_2026-05-06T02-00-00-000Z.json");
  EXPECT_EQ(found.front().format, backup_format::json_snapshot);
  EXPECT_EQ(*found.front().name_time, *detail::utc_time(2026, 5, 6, 2, 0, 0));
  EXPECT_STREQ(to_string(found.front().format), "json-snapshot");
}

TEST(snapshot_format, streams_rows_as_written_numbers_and_escapes_included) {
  scratch_dir dir;
  // The data comes before the manifest here: the order of the keys does not matter.
  testkit::write_file(dir.path() / "s.json", R"({"data": {"items": [
      {"id": 1, "price": 12345678901234567890.1234567891, "big": 18446744073709551615, "tiny": -1e-300,
       "text": "back\\slash \"quoted\" line\nbreak \u00fc 😀", "nested": {"a": [1, {"b": null}], "c": true}},
      {"id": 2}], "empty": []},
    "manifest": {"formatVersion": 1, "schema_name": "shop", "tables": [{"name": "items", "row_count": 2,
      "columns": [{"name": "id"}, "price"]}, {"table": "empty", "rows": 0}], "total_rows": 2, "excludedTables": ["audit_logs"]}})");
  auto rows = streamed(dir.path() / "s.json");
  ASSERT_EQ(rows.size(), 4U);
  EXPECT_EQ(rows[0], R"(items: {"id":1,"price":12345678901234567890.1234567891,"big":18446744073709551615,"tiny":-1e-300,)"
                     R"("text":"back\\slash \"quoted\" line\u000abreak ü 😀","nested":{"a":[1,{"b":null}],"c":true}})");
  EXPECT_EQ(rows[1], R"(items: {"id":2})");
  EXPECT_EQ(rows[2], "items ends after 2");
  EXPECT_EQ(rows[3], "empty ends after 0");
  auto manifest = read_snapshot_manifest(dir.path() / "s.json");
  EXPECT_EQ(manifest.schema, "shop");
  EXPECT_EQ(manifest.format_version, "1");
  ASSERT_EQ(manifest.tables.size(), 2U);
  EXPECT_EQ(manifest.tables[0].columns, (std::vector<std::string>{"id", "price"}));
  EXPECT_EQ(*manifest.tables[1].rows, 0);
  EXPECT_EQ(*manifest.total_rows, 2);
  EXPECT_EQ(manifest.excluded, std::vector<std::string>{"audit_logs"});
}

TEST(snapshot_format, damage_is_named_with_its_table) {
  std::string manifest = R"("manifest": {"tables": {"users": 2, "orders": 1}})";
  EXPECT_NE(corrupt_message("{" + manifest + R"(, "data": {"users": [{"id": 1}, {"id": 2)").find("(in table users)"), std::string::npos);
  EXPECT_NE(corrupt_message("{" + manifest + R"(, "data": {"orders": [{"id": 1}, 7]}})").find("row 2 of table 'orders' is not an object"),
            std::string::npos);
  EXPECT_NE(corrupt_message("{" + manifest + R"(, "data": {"orders": {"id": 1}}})").find("rows of table 'orders' are not a list"),
            std::string::npos);
  EXPECT_NE(corrupt_message("{" + manifest + R"(, "data": {"users": [{"id": 1,}]}})").find("malformed JSON"), std::string::npos);
  EXPECT_NE(corrupt_message(R"({"data": {"users": []}})").find("has no \"manifest\""), std::string::npos);
  EXPECT_NE(corrupt_message("{" + manifest + "}").find("has no \"data\""), std::string::npos);
  EXPECT_NE(corrupt_message(R"({"manifest": {"tables": {"users": "many"}}, "data": {}})").find("neither an object nor a count"),
            std::string::npos);
  EXPECT_NE(corrupt_message(R"({"manifest": {"tables": {"users": {"rowCount": -1}}}, "data": {}})").find("not a row count"),
            std::string::npos);
}

TEST(snapshot_format, read_through_without_a_server_finds_a_manifest_that_disagrees_with_its_data) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "s.json", R"({"manifest": {"tables": {"users": {"rowCount": 3}, "gone": {"rowCount": 1}}},
    "data": {"users": [{"id": 1}, {"id": 2}], "extra": [{"id": 1}]}})");
  long long rows = 0;
  auto problems = snapshot_disagreements(dir.path() / "s.json", rows);
  EXPECT_EQ(rows, 3);
  EXPECT_EQ(problems, (std::vector<std::string>{"public.gone: the manifest lists it, but \"data\" holds no rows for it",
                                                "public.users: the manifest says 3 rows, the file holds 2",
                                                "public.extra: the file holds its rows, but the manifest does not list it"}));
}

TEST(snapshot_format, migrations_apply_in_natural_order) {
  scratch_dir dir;
  for (const char* name : {"V10__late.sql", "V2__second.sql", "V1__first.sql", "notes.txt", "V2a__patch.sql"})
    testkit::write_file(dir.path() / name, "SELECT 1;\n");
  std::vector<std::string> names;
  for (const auto& file : detail::migration_files(dir.path())) names.push_back(file.filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"V1__first.sql", "V2__second.sql", "V2a__patch.sql", "V10__late.sql"}));
  scratch_dir empty;
  EXPECT_THROW(detail::migration_files(empty.path()), could_not_verify);
}

// A FIFO (as the backup, or in the directory of backups) hung run, backups and verify forever,
// and one symlink loop made a whole directory unreadable. Both are refused without opening
// anything; in a listing they are skipped with a note.
TEST(backup, fifos_and_symlink_loops_are_refused_at_once_and_skipped_in_listings) {
  scratch_dir dir;
  ASSERT_EQ(::mkfifo((dir.path() / "db_20250103_000000.sql").c_str(), 0600), 0);
  std::filesystem::create_symlink(dir.path() / "db_20250104_000000.sql", dir.path() / "db_20250104_000000.sql.loop");
  std::filesystem::create_symlink(dir.path() / "db_20250104_000000.sql.loop", dir.path() / "db_20250104_000000.sql");
  testkit::write_file(dir.path() / "db_20250101_000000.sql", "-- the one real backup\nSELECT 1;\n");
  try {
    inspect_file(dir.path() / "db_20250103_000000.sql");
    ADD_FAILURE() << "a FIFO was accepted";
  } catch (const could_not_verify& refused) {
    EXPECT_NE(std::string(refused.what()).find("is a FIFO, not a backup file: refused without opening it"), std::string::npos);
  }
  EXPECT_THROW(inspect_file(dir.path() / "db_20250104_000000.sql"), could_not_verify);
  std::vector<std::string> skipped;
  auto found = list_backups(dir.path(), "db_*", &skipped);
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found.front().path.filename(), "db_20250101_000000.sql");
  ASSERT_EQ(skipped.size(), 3U) << detail::join(skipped, "\n");  // the FIFO and both links of the loop
  EXPECT_NE(detail::join(skipped).find("symlink loop"), std::string::npos) << detail::join(skipped);
  scratch_dir archive;  // a directory archive holding a FIFO: damaged, since pg_dump writes only regular files there
  testkit::write_file(archive.path() / "toc.dat", "PGDMP");
  ASSERT_EQ(::mkfifo((archive.path() / "3001.dat").c_str(), 0600), 0);
  EXPECT_THROW(inspect_file(archive.path()), corrupt_backup);
}

// A plain script ends whole when its own last line outside COPY data is pg_dump's closing comment,
// however it arrives in pieces; rows quoting that comment, or a stop inside a COPY block, are a
// script cut short.
TEST(backup, a_plain_scripts_end_is_its_last_line_outside_copy_data) {
  const std::string opening = "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.t (x text);\n";
  const std::string rows = "COPY public.t (x) FROM stdin;\n-- PostgreSQL database dump complete\n" + std::string(5000, 'r') + "\n";
  const std::string closing = "\\.\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";
  auto end_of = [](const std::string& script, std::size_t piece) {
    detail::plain_script_end end;
    for (std::size_t at = 0; at < script.size(); at += piece) end.see(script.data() + at, std::min(piece, script.size() - at));
    return end.cut_short();
  };
  for (std::size_t piece : {1, 7, 4096}) {
    EXPECT_EQ(end_of(opening + rows + closing, piece), "") << piece;
    EXPECT_NE(end_of(opening + rows, piece).find("stops inside the rows of its 'COPY public.t (x)'"), std::string::npos) << piece;
    EXPECT_NE(end_of(opening + rows + "\\.\n", piece).find("ends without its closing"), std::string::npos) << piece;
    EXPECT_NE(end_of(opening + rows + closing.substr(0, 30), piece).find("ends without its closing"), std::string::npos) << piece;
  }
  EXPECT_EQ(end_of("SELECT 1;\n", 3), "");  // not pg_dump's: nothing to judge it by
}

// A schema reference kept beside the backups, however new, is never taken for one: skipped, and said so.
TEST(backup, a_schema_reference_beside_the_backups_is_not_the_newest_backup) {
  scratch_dir dir;
  testkit::write_file(dir.path() / "shop_20260101_000000.sql", "--\n-- PostgreSQL database dump\n--\nSELECT 1;\n");
  testkit::write_file(dir.path() / "shop.schema.ref", std::string(schema_reference_header) + "\nschema\tpublic\t\n");
  std::vector<std::string> skipped;
  auto found = list_backups(dir.path(), "*", &skipped);
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found[0].path.filename(), "shop_20260101_000000.sql");
  ASSERT_EQ(skipped.size(), 1U);
  EXPECT_NE(skipped[0].find("shop.schema.ref is a pgdrill schema reference, not a backup"), std::string::npos) << skipped[0];
}
