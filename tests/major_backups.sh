#!/usr/bin/env bash
# Real backups from several PostgreSQL majors, for majors_test.cpp: tests/fixtures/nasty.sql
# loaded into a PostgreSQL 13, 15, 17 and 18 server (the images ci/container-test-image builds),
# each dumped by its own major's pg_dump in every format (custom, directory, tar, plain,
# plain.gz), and the PostgreSQL 13 server dumped by pg_dump 17 as well (a backup host with newer
# clients). Usage: major_backups.sh OUTDIR (OUTDIR exists and is empty).
set -euo pipefail
out=$(realpath "$1")
nasty=$(dirname "$0")/fixtures/nasty.sql
image=localhost/pgdrill-test-postgres
password=fixture-only
servers=()
trap 'for s in "${servers[@]}"; do podman rm -f -v "$s" >/dev/null 2>&1 || true; done' EXIT

# Every format of the database "postgres" of the server in container $1, by the pg_dump of
# image $2, named $3.*; pg_dump runs in its own container sharing the server's network.
dump_all_formats() {
  local server=$1 dumper=$2 name=$3
  dump() {
    podman run --rm --network "container:$server" -e PGPASSWORD="$password" -v "$out:/out" --entrypoint pg_dump \
      "$dumper" -h 127.0.0.1 -U postgres -d postgres "$@"
  }
  dump -Fc -f "/out/$name.dump"
  dump -Fd -f "/out/$name.dir"
  dump -Ft -f "/out/$name.tar"
  dump -Fp -f "/out/$name.sql"
  dump -Fp | gzip >"$out/$name.sql.gz"
}

for major in 13 15 17 18; do
  server=pgdrill-fixture-$major-$$
  servers+=("$server")
  podman run -d --name "$server" -e POSTGRES_PASSWORD="$password" --tmpfs /var/lib/postgresql/data "$image:$major" >/dev/null
  for _ in $(seq 1 300); do
    podman exec -e PGPASSWORD="$password" "$server" psql -X -h 127.0.0.1 -U postgres -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
  done
  podman exec -i -e PGPASSWORD="$password" "$server" \
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres >/dev/null <"$nasty"
  dump_all_formats "$server" "$image:$major" "pg$major"
  [ "$major" = 13 ] && dump_all_formats "$server" "$image:17" "pg13-by-pg_dump17"
  podman rm -f -v "$server" >/dev/null
done
