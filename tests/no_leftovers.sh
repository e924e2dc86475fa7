#!/usr/bin/env bash
# Fails when any process still runs from, or any scratch directory remains in, the tests' temp
# root, or a pgdrill container of this temp root remains: every test must clean up after itself
# (killed-runner tests included, via the reaper). Other drills on the machine are not judged.
set -u
root=${1:?temp root}
status=0
for proc in /proc/[0-9]*; do
  cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
  args=$(tr '\0' ' ' <"$proc/cmdline" 2>/dev/null)
  if [[ $cwd == "$root"/* || $args == *"$root/"* ]]; then
    echo "leftover process ${proc#/proc/}: $args (cwd $cwd)"
    status=1
  fi
done
shopt -s nullglob
for dir in "$root"/pgdrill-*; do
  echo "leftover scratch directory: $dir"
  status=1
done
if command -v podman >/dev/null; then
  containers=$(podman ps -a -q --filter "label=io.pgdrill.temp_root=$root")
  [ -z "$containers" ] || { echo "leftover containers: $containers"; status=1; }
fi
[ $status -eq 0 ] && echo "no leftover processes or scratch directories under $root"
exit $status
