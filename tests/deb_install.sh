#!/usr/bin/env bash
# The .deb as a user gets it: `cpack -G DEB` in the build tree, then installed with apt into a
# clean Debian 12 root (mmdebstrap, minbase) together with the PostgreSQL server its local
# provider uses. Inside that root: `pgdrill --version`, the man page, and a real drill: a demo
# database on a throwaway server, backed up by `pgdrill dump`, drilled by `pgdrill run`, whose
# JUnit file and Markdown summary must say PASSED. Then the shell steps of the GitHub Action,
# the GitLab job and the Kubernetes CronJob (tests/template_steps.py) on the same backup, each
# leaving its JUnit file, summary, HTML page, metrics and history. Nothing stays behind but
# WORK_DIR.
# Usage: deb_install.sh BUILD_DIR SOURCE_DIR WORK_DIR. Exits 77 (skipped) unless run as root.
set -euo pipefail
build=$1 source=$2 work=$3
[ "$(id -u)" -eq 0 ] || { echo "needs root: mmdebstrap builds the root in root mode"; exit 77; }
rm -rf "$work" && mkdir -p "$work"

(cd "$build" && cpack -G DEB -B "$work/package" >/dev/null)
deb=$(ls "$work"/package/pgdrill_*.deb)
echo "== $(basename "$deb"): $(dpkg-deb --field "$deb" Depends)"
dpkg-deb --contents "$deb" >"$work/contents"
for path in ./usr/bin/pgdrill ./usr/share/man/man1/pgdrill.1.gz ./usr/include/pgdrill/pgdrill.hpp \
            ./usr/lib/cmake/pgdrill/pgdrillConfig.cmake ./usr/share/pgdrill/scenarios/pgdrill-scenario.schema.json; do
  grep -q " $path\$" "$work/contents" || { echo "not in the package: $path"; exit 1; }
done

cat >"$work/drill.sh" <<'DRILL'
set -eu
# The kernel refuses user namespaces in a chroot, and this root is one: only here does the drill
# run without its sandbox.
bwrap --unshare-user --ro-bind / / true 2>/dev/null || export PGDRILL_UNSAFE_NO_SANDBOX=1
pgdrill --version
test -s /usr/share/man/man1/pgdrill.1.gz
cd /tmp
pgdrill with-server -- sh -c 'psql -X -q -v ON_ERROR_STOP=1 -f /tmp/demo-seed.sql && pgdrill dump --out /tmp/backups --name demo'
cat >/tmp/installed.json <<'JSON'
{"name": "installed", "backup": {"directory": "/tmp/backups", "pattern": "demo_*.dump"},
 "assertions": [{"type": "row_count", "expect": "manifest"}, {"type": "checksum", "expect": "manifest"},
                {"type": "row_count", "table": "public.customers", "equals": 1000}]}
JSON
pgdrill run /tmp/installed.json --junit /tmp/reports/installed.xml --summary-md /tmp/reports/summary.md
grep -q 'failures="0" errors="0"' /tmp/reports/installed.xml
grep -q 'PASSED (exit 0)' /tmp/reports/summary.md
echo "drill in the clean root: PASSED"

# Each template's own steps, as its CI system would run them, on the same demo backup.
for template in github gitlab k8s; do
  mkdir -p "/tmp/$template/scenarios" && cd "/tmp/$template"
  cp /tmp/installed.json scenarios/nightly-shop.json
  if [ "$template" = github ]; then  # what the runner sets for an action
    GITHUB_ACTION_PATH=/tmp/action GITHUB_OUTPUT=/tmp/github/output GITHUB_STEP_SUMMARY=/tmp/github/summary.md sh /tmp/steps-github.sh
  else
    sh "/tmp/steps-$template.sh"
  fi
done
grep -qx 'verdict=PASSED' /tmp/github/output && grep -qx 'exit-code=0' /tmp/github/output
grep -q '^restore-seconds=[0-9]' /tmp/github/output && grep -qx 'artifact-name=pgdrill-nightly-shop' /tmp/github/output
grep -q 'PASSED (exit 0)' /tmp/github/summary.md
for file in pgdrill-reports/nightly-shop.junit.xml pgdrill-reports/nightly-shop.html pgdrill-reports/nightly-shop.prom \
            pgdrill-history/drills.jsonl; do
  test -s "/tmp/github/$file" && test -s "/tmp/gitlab/$file"
done
grep -q 'PASSED (exit 0)' /tmp/gitlab/pgdrill-reports/summary.md
test -s /history/reports/nightly-shop.junit.xml && test -s /history/drills.jsonl
echo "the GitHub Action's, the GitLab job's and the CronJob's steps in the clean root: PASSED"
DRILL
mkdir -p "$work/action/ci" && cp "$source/ci/run-drills" "$work/action/ci/"
for template in github gitlab k8s; do
  python3 "$source/tests/template_steps.py" "$template" "$source" >"$work/steps-$template.sh"
done

# No service starts inside the root (policy-rc.d), and Debian's own cluster is not created:
# pgdrill starts its servers itself.
mmdebstrap --quiet --variant=minbase --mode=root \
  --customize-hook="copy-in $deb $source/ci/demo-seed.sql $work/drill.sh $work/steps-github.sh $work/steps-gitlab.sh $work/steps-k8s.sh $work/action /tmp" \
  --customize-hook='printf "#!/bin/sh\nexit 101\n" >"$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d"' \
  --customize-hook='mkdir -p "$1/etc/postgresql-common" && echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.conf"' \
  --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/'"$(basename "$deb")"' postgresql >/dev/null' \
  --customize-hook='chroot "$1" sh /tmp/drill.sh' \
  bookworm /dev/null "${PGDRILL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
