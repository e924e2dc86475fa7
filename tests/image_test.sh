#!/usr/bin/env bash
# The container image recipe (ci/image) as a user builds it: the .deb of the build tree
# (cpack), installed into a Debian 12 root and imported into podman under a tag of this run
# alone. Inside the image, as its own user (postgres, uid 999): `pgdrill --version`, then a
# real drill (a demo database on a throwaway server, backed up by `pgdrill dump`, drilled by
# `pgdrill run`) whose JUnit file must say it passed. The image is removed afterwards.
# Usage: image_test.sh BUILD_DIR SOURCE_DIR WORK_DIR. Exits 77 (skipped) unless root with podman.
set -euo pipefail
build=$1 source=$2 work=$3
[ "$(id -u)" -eq 0 ] && command -v podman >/dev/null || { echo "needs root and podman"; exit 77; }
rm -rf "$work" && mkdir -p "$work"
image=localhost/pgdrill-image-test:$$-$(date +%s)
trap 'podman rmi --force "$image" >/dev/null 2>&1 || true' EXIT

(cd "$build" && cpack -G DEB -B "$work/package" >/dev/null)
PGDRILL_DEB=$(ls "$work"/package/pgdrill_*.deb) "$source/ci/image" "$image"
test "$(podman image inspect --format '{{.Config.User}}' "$image")" = postgres

version=$(podman run --rm "$image" --version)
echo "in the image: $version"
[ "$version" = "$("$build/pgdrill" --version)" ]

cp "$source/ci/demo-seed.sql" "$work/demo-seed.sql"
cat >"$work/drill.sh" <<'DRILL'
set -eu
id -u
cd /drills
pgdrill with-server -- sh -c 'psql -X -q -v ON_ERROR_STOP=1 -f /input/demo-seed.sql && pgdrill dump --out backups --name demo'
printf '%s' '{"name": "image", "backup": {"directory": "backups", "pattern": "demo_*.dump"},
  "assertions": [{"type": "row_count", "expect": "manifest"}, {"type": "checksum", "expect": "manifest"}]}' >image.json
pgdrill run image.json --junit reports/image.xml >/dev/null
grep -o 'failures="0" errors="0"' reports/image.xml | head -1
DRILL
output=$(podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -v "$work:/input:ro" \
  --entrypoint sh "$image" /input/drill.sh)
echo "$output"
[ "$(echo "$output" | head -1)" = 999 ] || { echo "the drill did not run as uid 999"; exit 1; }
echo "$output" | grep -qx 'failures="0" errors="0"'
echo "a drill inside the image: PASSED"
