#!/usr/bin/env python3
"""Prints the shell steps of a CI template as a POSIX script, so a test can run them in a clean
Debian root where pgdrill's .deb is installed. What only the CI system does (checkout, caches,
uploads, installing pgdrill, fetching the user's backups, the dind service) is left out; the
provider is the local one, since the root has no container engine.
Usage: template_steps.py github|gitlab|k8s SOURCE_DIR"""
import re
import shlex
import sys

import yaml

LOCAL = "--provider local"


def exports(variables):
    return "".join(f"export {name}={shlex.quote(str(value))}\n" for name, value in variables.items())


def github(source):
    action = yaml.safe_load(open(f"{source}/action.yml"))
    defaults = {name: spec.get("default", "") for name, spec in action["inputs"].items()}
    defaults["run-args"] = LOCAL
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "drill")
    env = {name: re.sub(r"\$\{\{ inputs\.([a-z-]+) \}\}", lambda m: defaults[m.group(1)], str(value))
           for name, value in step["env"].items()}
    env["SCENARIOS"] = "scenarios/nightly-shop.json"
    return exports(env) + step["run"]


def gitlab(source):
    job = yaml.safe_load(open(f"{source}/ci/templates/gitlab-ci.yml"))["restore-drill"]
    variables = {k: v for k, v in job["variables"].items() if not k.startswith(("DOCKER_", "PGDRILL_DEB"))}
    variables["PGDRILL_RUN_ARGS"] = LOCAL
    lines = [line for line in job["script"] if "fetch-backups" not in line]
    return exports(variables) + "\n".join(lines) + "\n"


def k8s(source):
    cronjob = next(yaml.safe_load_all(open(f"{source}/ci/templates/k8s-cronjob.yaml")))
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    env["PGDRILL_RUN_ARGS"] = env["PGDRILL_RUN_ARGS"].replace("--provider local", LOCAL)
    mounts = "".join(f"mkdir -p {shlex.quote(m['mountPath'])}\n" for m in container["volumeMounts"])
    scenario_dir = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "scenarios")
    return (exports(env) + mounts + f"cp scenarios/nightly-shop.json {shlex.quote(scenario_dir)}/\n" +
            shlex.join(container["command"] + container["args"]) + "\n")


if __name__ == "__main__":
    print("set -eu")
    print({"github": github, "gitlab": gitlab, "k8s": k8s}[sys.argv[1]](sys.argv[2]))
