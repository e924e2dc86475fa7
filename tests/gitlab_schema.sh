#!/usr/bin/env bash
# The GitLab template against GitLab's own CI schema (ci.json from gitlab-org/gitlab, as the npm
# package gitlab-ci-local bundles it; fetched once into CACHE_DIR, rebuilt when missing), with
# python3-jsonschema. A job with known mistakes must be rejected, so a check that passes
# everything fails here.
# Usage: gitlab_schema.sh SOURCE_DIR CACHE_DIR. Exits 77 (skipped) without node and npm.
set -euo pipefail
source_dir=$1 cache=$2/gitlab-ci-local-4.75.1
command -v node >/dev/null && command -v npm >/dev/null || { echo "no node/npm: skipped"; exit 77; }
if [ ! -s "$cache/ci.json" ]; then
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  (cd "$cache.tmp" && npm pack --silent gitlab-ci-local@4.75.1 >/dev/null && tar xzf gitlab-ci-local-4.75.1.tgz)
  # The package bundles the schema as a JavaScript object literal: cut it out at its balanced
  # closing brace and print it as JSON.
  cat >"$cache.tmp/extract.cjs" <<'JS'
const text = require("fs").readFileSync(process.argv[2], "utf8");
const start = text.indexOf('{$schema:"http://json-schema.org/draft-07/schema#",$id:"https://gitlab.com/.gitlab-ci.yml"');
if (start < 0) { console.error("no GitLab CI schema in " + process.argv[2]); process.exit(1); }
let depth = 0, quote = null, end = -1;
for (let i = start; i < text.length && end < 0; i++) {
  const c = text[i];
  if (quote) { if (c === "\\") i++; else if (c === quote) quote = null; continue; }
  if (c === '"' || c === "'" || c === "`") quote = c;
  else if (c === "{") depth++;
  else if (c === "}" && --depth === 0) end = i + 1;
}
process.stdout.write(JSON.stringify(new Function("return (" + text.slice(start, end) + ")")()));
JS
  node "$cache.tmp/extract.cjs" "$cache.tmp/package/dist/index.js" >"$cache.tmp/ci.json"
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
python3 - "$cache/ci.json" "$source_dir/ci/templates/gitlab-ci.yml" <<'PY'
import copy, json, sys
import jsonschema, yaml
validator = jsonschema.Draft7Validator(json.load(open(sys.argv[1])))
template = yaml.safe_load(open(sys.argv[2]))
job_name = next(name for name, value in template.items() if isinstance(value, dict) and "script" in value)
mistakes = {
    "'scripts' for 'script'": lambda job: job.__setitem__("scripts", job.pop("script")),
    "'when: sometimes'": lambda job: job.__setitem__("when", "sometimes"),
    "a JUnit report that is a number": lambda job: job.setdefault("artifacts", {}).setdefault("reports", {}).__setitem__("junit", 5),
}
for mistake, make in mistakes.items():
    broken = copy.deepcopy(template)
    make(broken[job_name])
    if not list(validator.iter_errors(broken)):
        sys.exit(f"GitLab's schema accepted a job with {mistake}: the check cannot fail")
problems = sorted(validator.iter_errors(template), key=lambda error: list(error.path))
for problem in problems:
    print(f"{sys.argv[2]}: {'/'.join(map(str, problem.path))}: {problem.message}")
if problems:
    sys.exit(1)
print(f"GitLab's CI schema: {sys.argv[2]} is valid ({job_name})")
PY
