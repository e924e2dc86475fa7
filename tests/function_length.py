#!/usr/bin/env python3
"""Keeps the library's functions short enough to read at once: fails naming every function body
in a header under INCLUDE_DIR longer than LIMIT lines (80 by default). String and character
literals and comments are blanked first, so their braces do not count; lambdas are part of the
function that holds them. Usage: function_length.py INCLUDE_DIR [LIMIT]."""
import pathlib
import re
import sys

CONTROL = re.compile(r"^(if|for|while|switch|else|do|try|catch|return|namespace|struct|class|enum|union)\b|^\}")
LAMBDA = re.compile(r"\[[&=\w, *]*\]\s*(\(.*\))?\s*(mutable\s*)?(->\s*[\w:&<>, ]+)?\s*\{$")
BRACED_VALUE = re.compile(r"=\s*\{$|^[\w:<>]+\s*\{$")


def blank_literals(text):
    """The text with string and character literals emptied and comments removed; lines kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            delimiter = re.match(r'R"([^(]*)\(', text[i:]).group(1)
            end = text.index(")" + delimiter + '"', i)
            out.append('""' + "\n" * text[i:end].count("\n"))
            i = end + len(delimiter) + 2
        elif text[i] in "\"'" and not (text[i] == "'" and i > 0 and text[i - 1].isalnum()):
            quote, j = text[i], i + 1
            while text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            out.append(quote * 2)
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if text.find("\n", i) >= 0 else n
        elif text.startswith("/*", i):
            end = text.index("*/", i)
            out.append("\n" * text[i:end].count("\n"))
            i = end + 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def long_functions(path, limit):
    lines = blank_literals(path.read_text()).split("\n")
    found, i = [], 0
    while i < len(lines):
        line = lines[i].strip()
        opens_body = line.endswith("{") and ")" in line and not CONTROL.match(line) and not LAMBDA.search(line)
        if not opens_body or BRACED_VALUE.search(line):
            i += 1
            continue
        depth, end = 0, i
        while end < len(lines):
            depth += lines[end].count("{") - lines[end].count("}")
            if depth <= 0:
                break
            end += 1
        if end - i + 1 > limit:
            found.append(f"{path}:{i + 1}: {end - i + 1} lines: {line[:100]}")
        i = end + 1
    return found


def main(include_dir, limit):
    found = [item for header in sorted(pathlib.Path(include_dir).rglob("*.hpp")) for item in long_functions(header, limit)]
    for item in found:
        print(item)
    print(f"{len(found)} functions over {limit} lines" if found else f"every function is at most {limit} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 80))
