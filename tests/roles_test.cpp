// Which roles a backup's SQL refers to, read from lines as pg_dump 15 and pg_dumpall 15 write them
// (owners, ACLs, default privileges, policies, user mappings, memberships), fed in pieces of any
// size, with COPY data and function bodies that must not count.
#include <gtest/gtest.h>

#include <pgdrill/roles.hpp>

using namespace pgdrill;

namespace {

std::set<std::string> roles_in(const std::string& sql, std::size_t chunk = 5) {
  role_reference_scanner scanner;
  for (std::size_t at = 0; at < sql.size(); at += chunk) scanner.feed(sql.data() + at, std::min(chunk, sql.size() - at));
  scanner.finish();
  return scanner.roles();
}

using roles = std::set<std::string>;

}  // namespace

TEST(role_references, owners_grantees_and_grantors_as_pg_dump_writes_them) {
  const std::string sql =
      "ALTER TABLE public.dogs OWNER TO app;\n"
      "ALTER SCHEMA \"odd.schema\" OWNER TO \"Odd Role\";\n"
      "ALTER FUNCTION public.f(a integer, b text) OWNER TO fn_owner;\n"
      "GRANT SELECT ON TABLE public.animals TO reader;\n"
      "GRANT ALL ON FUNCTION public.f(a integer, b text) TO writer, \"we\"\"ird\" WITH GRANT OPTION;\n"
      "REVOKE ALL ON SCHEMA public FROM PUBLIC;\n"
      "REVOKE USAGE ON SCHEMA s FROM revoked;\n"
      "GRANT USAGE ON SCHEMA public TO PUBLIC;\n"
      "ALTER DEFAULT PRIVILEGES FOR ROLE definer IN SCHEMA public GRANT SELECT ON TABLES TO defaulted;\n"
      "ALTER DEFAULT PRIVILEGES FOR ROLE definer REVOKE ALL ON FUNCTIONS FROM PUBLIC;\n"
      "CREATE POLICY own_rows ON public.t FOR SELECT TO policy_a, policy_b USING ((owner = CURRENT_USER));\n"
      "CREATE USER MAPPING FOR mapped SERVER remote OPTIONS (\"user\" 'x');\n"
      "SET SESSION AUTHORIZATION 'session_role';\n"
      "SET SESSION AUTHORIZATION DEFAULT;\n"
      "GRANT member_of TO member WITH INHERIT TRUE GRANTED BY grantor;\n";
  EXPECT_EQ(roles_in(sql), (roles{"app", "Odd Role", "fn_owner", "reader", "writer", "we\"ird", "revoked", "definer", "defaulted",
                                  "policy_a", "policy_b", "mapped", "session_role", "member_of", "member", "grantor"}));
}

TEST(role_references, statements_that_only_look_alike_name_no_role) {
  const std::string sql =
      "ALTER TABLE ONLY public.m ATTACH PARTITION public.m_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n"
      "ALTER DATABASE shop SET search_path TO 'public', 'odd';\n"
      "ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('public.t_id_seq'::regclass);\n"
      "COMMENT ON TABLE public.t IS 'GRANT SELECT ON x TO nobody';\n"
      "  GRANT SELECT ON TABLE indented TO not_a_statement;\n"
      "ALTER TABLE public.\"OWNER TO x\" ADD COLUMN y int;\n";
  EXPECT_EQ(roles_in(sql), roles{});
}

TEST(role_references, copy_data_and_function_bodies_are_skipped) {
  const std::string sql =
      "COPY public.notes (id, body) FROM stdin;\n"
      "1\tGRANT SELECT ON t TO in_copy;\n"
      "ALTER TABLE x OWNER TO also_in_copy;\n"
      "\\.\n"
      "CREATE FUNCTION public.grant_it() RETURNS void\n"
      "    LANGUAGE plpgsql\n"
      "    AS $_$\n"
      "BEGIN\n"
      "GRANT SELECT ON public.t TO in_body;\n"
      "END;\n"
      "$_$;\n"
      "CREATE FUNCTION public.one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
      "COMMENT ON FUNCTION public.one() IS 'costs $$ nothing';\n"
      "ALTER FUNCTION public.grant_it() OWNER TO after_body;\n";
  EXPECT_EQ(roles_in(sql), roles{"after_body"});
  EXPECT_EQ(roles_in(sql, 1), roles{"after_body"});
  EXPECT_EQ(roles_in(sql, sql.size()), roles{"after_body"});
}

TEST(role_references, the_last_line_counts_without_a_newline_and_overlong_lines_are_dropped) {
  EXPECT_EQ(roles_in("ALTER TABLE t OWNER TO last"), roles{"last"});
  std::string huge = "INSERT INTO t VALUES ('" + std::string(role_reference_scanner::longest_statement + 10, 'x') + "');\n";
  EXPECT_EQ(roles_in(huge + "ALTER TABLE t OWNER TO after_huge;\n", 4096), roles{"after_huge"});
}

TEST(role_references, unquoted_names_fold_to_lower_case) {
  EXPECT_EQ(roles_in("GRANT SELECT ON TABLE t TO App;\n"), roles{"app"});
}

TEST(roles_missing, lists_referenced_roles_absent_from_the_target_unless_ignored) {
  roles referenced{"app", "postgres", "reader"};
  roles existing{"postgres", "pg_read_all_data"};
  EXPECT_EQ(roles_missing(referenced, existing), (std::vector<std::string>{"app", "reader"}));
  EXPECT_EQ(roles_missing(referenced, existing, {"reader"}), std::vector<std::string>{"app"});
  EXPECT_TRUE(roles_missing(referenced, existing, {"*"}).empty());
  EXPECT_TRUE(roles_missing({}, existing).empty());
}
