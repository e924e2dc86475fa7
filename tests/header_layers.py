#!/usr/bin/env python3
"""Checks the library's layering: each public header includes only pgdrill headers of its own
layer or below, and third-party headers its layer allows; and the scenario model preprocesses
without libpq, libpqxx, libarchive or OpenSSL. Usage: header_layers.py INCLUDE_DIR CXX."""
import pathlib
import re
import subprocess
import sys

# Lowest first. A new header must be placed here, or this test fails.
LAYERS = [
    ("base", ["error.hpp", "result.hpp", "detail/text.hpp", "detail/time.hpp", "detail/sql.hpp", "detail/ticker.hpp", "detail/fd.hpp", "restore_errors.hpp", "roles.hpp"], []),
    ("model", ["detail/json_reader.hpp", "assertions.hpp", "scenario.hpp"], ["nlohmann/"]),
    ("io", ["detail/warden.hpp", "process.hpp", "sandbox.hpp", "binaries.hpp", "workspace.hpp", "stream.hpp", "backup.hpp", "provider.hpp", "local.hpp",
            "container.hpp", "existing.hpp", "clones.hpp", "snapshot.hpp", "restore.hpp", "failure.hpp", "checksum.hpp", "checksums_during_restore.hpp", "objects.hpp", "schema.hpp", "integrity.hpp", "manifest.hpp", "hygiene.hpp", "history.hpp", "drift.hpp", "check_plan.hpp", "detail/checks/context.hpp", "detail/checks/rows.hpp", "detail/checks/queries.hpp", "detail/checks/objects.hpp", "detail/checks/structure.hpp", "detail/checks/snapshot.hpp", "detail/checks/drift.hpp", "checks.hpp"],
     ["nlohmann/", "pqxx/", "libpq-fe.h", "archive.h", "archive_entry.h", "openssl/", "xxhash.h"]),
    ("pipeline", ["drill.hpp", "report.hpp", "markdown.hpp", "metrics.hpp", "html.hpp", "reports.hpp", "gtest.hpp", "pgdrill.hpp"],
     ["nlohmann/", "pqxx/", "pugixml.hpp", "gtest/"]),
]
# System headers any layer may use besides the C++ standard library's.
POSIX = {"unistd.h", "fcntl.h", "signal.h", "fnmatch.h", "grp.h", "poll.h", "pwd.h", "linux/capability.h"}


def main(include_dir, compiler):
    root = pathlib.Path(include_dir) / "pgdrill"
    layer_of = {name: index for index, (_, names, _) in enumerate(LAYERS) for name in names}
    problems = []
    for header in sorted(root.rglob("*.hpp")):
        name = header.relative_to(root).as_posix()
        if name not in layer_of:
            problems.append(f"{name}: not placed in a layer (add it to LAYERS in {pathlib.Path(__file__).name})")
            continue
        level = layer_of[name]
        allowed = [prefix for _, _, prefixes in LAYERS[: level + 1] for prefix in prefixes]
        for included in re.findall(r'^#include <([^>]+)>', header.read_text(), re.MULTILINE):
            if included.startswith("pgdrill/"):
                target = included[len("pgdrill/"):]
                if layer_of.get(target, len(LAYERS)) > level:
                    problems.append(f"{name} ({LAYERS[level][0]}) includes {included} from a layer above")
            elif "/" in included or included.endswith(".h"):
                if not (included in POSIX or included.startswith("sys/") or any(included.startswith(p) for p in allowed)):
                    problems.append(f"{name} ({LAYERS[level][0]}) includes <{included}>, not allowed in its layer")
    listing = subprocess.run([compiler, "-std=c++17", "-E", "-H", "-x", "c++", f"-I{include_dir}", "-o", "/dev/null",
                              str(root / "scenario.hpp")], capture_output=True, text=True)
    if listing.returncode != 0:
        errors = [line for line in listing.stderr.splitlines() if "error" in line]
        problems.append("scenario.hpp does not preprocess alone: " + "; ".join(errors[:3]))
    for heavy in ("libpq-fe.h", "pqxx/", "archive.h", "archive_entry.h", "openssl/"):
        if heavy in listing.stderr:
            problems.append(f"scenario.hpp pulls in {heavy}")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} layering problems" if problems else "layers hold: every include goes down or sideways")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
