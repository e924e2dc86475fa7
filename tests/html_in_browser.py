#!/usr/bin/env python3
"""The HTML page of a history as a real browser shows it: `pgdrill report --html` on a history of a
passing drill, one whose restore failed and one whose backup was missing, opened in headless
Chromium. The browser's own DOM must hold the dated axis, both marks and their reasons, and its
screenshot must show the red mark of the failed drill and the orange one of the drill that could
not verify (pixels of those colours). Exits 77 (skipped) without Chromium.
Usage: html_in_browser.py RUNNER WORK_DIR"""
import json
import pathlib
import shutil
import subprocess
import sys

from PIL import Image

RED, ORANGE = (0xCC, 0x22, 0x22), (0xEE, 0x99, 0x00)  # the page's CSS: line.mark.failed, line.mark.unverified


def drill(at, code, outcome, restore, tables, steps):
    return {"pgdrill_history": 1, "at": at, "scenario": "nightly", "exit_code": code, "outcome": outcome,
            "backup": "/backups/nightly.dump" if code != 2 else "", "backup_size_bytes": 40960 if code != 2 else 0,
            "backup_taken_at": at, "restore_seconds": restore, "drill_seconds": 5.0, "tables": tables, "steps": steps}


def chromium(*args):
    return subprocess.run([BROWSER, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=180, check=True).stdout


def tallest_column(image, colour, tolerance=24):
    """The most pixels of `colour` in any one column: a vertical mark has hundreds, text a few."""
    width, height = image.size
    pixels = image.load()
    return max(sum(1 for y in range(height) if all(abs(a - b) <= tolerance for a, b in zip(pixels[x, y], colour)))
               for x in range(width))


def main(runner, work):
    work = pathlib.Path(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    history = work / "history.jsonl"
    lines = [drill("2026-08-01T03:17:00Z", 0, "PASSED", 3.5, {"public.orders": 5000, "public.customers": 1000}, []),
             drill("2026-09-01T03:17:00Z", 1, "FAILED", None, {},
                   [{"name": "restore", "kind": "stage", "result": "failed", "message": "pg_restore: error: COPY failed"}]),
             drill("2026-10-01T03:17:00Z", 0, "PASSED", 3.1, {"public.orders": 5100, "public.customers": 1010}, []),
             drill("2026-11-01T03:17:00Z", 2, "NOT VERIFIED", None, {},
                   [{"name": "locate backup", "kind": "stage", "result": "error", "message": "no backup matching '*'"}])]
    history.write_text("".join(json.dumps(line) + "\n" for line in lines))
    page = work / "page.html"
    subprocess.run([runner, "report", "--html", str(page), "--history", str(history)], check=True, capture_output=True)

    dom = chromium("--dump-dom", page.as_uri())
    for expected in ('class="mark failed"', 'class="mark unverified"', ">2026-08-01</text>", ">2026-11-01</text>",
                     "2026-09-01T03:17:00Z FAILED: restore: pg_restore: error: COPY failed", "<polyline"):
        assert expected in dom, f"the browser's DOM lacks {expected!r}"

    shot = work / "page.png"
    chromium("--window-size=1000,1600", f"--screenshot={shot}", page.as_uri())
    image = Image.open(shot).convert("RGB")
    red, orange = tallest_column(image, RED), tallest_column(image, ORANGE)
    # Each mark is a dashed line about 190 px high on each of three charts, one above the other:
    # a column with hundreds of its pixels. Red or orange text never fills a column like that.
    assert red > 200, f"at most {red} red pixels in a column: the failed drill's mark is not drawn"
    assert orange > 200, f"at most {orange} orange pixels in a column: the unverified drill's mark is not drawn"
    print(f"Chromium drew the marks: columns of {red} red and {orange} orange pixels; screenshot {shot}")


if __name__ == "__main__":
    BROWSER = shutil.which("chromium")
    if not BROWSER:
        print("no chromium: skipped")
        sys.exit(77)
    main(sys.argv[1], sys.argv[2])
