"""Reads a JUnit XML file with junitparser (a real JUnit consumer) and prints one line per
suite and per test case, so tests can compare what CI systems will see."""
import sys

from junitparser import Error, Failure, JUnitXml, Skipped

KINDS = {Failure: "failure", Error: "error", Skipped: "skipped"}

xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    print(f"suite {suite.name} tests={suite.tests} failures={suite.failures} "
          f"errors={suite.errors} skipped={suite.skipped}")
    for case in suite:
        group = case.classname.rsplit(".", 1)[-1]
        if case.result:
            outcome = case.result[0]
            print(f"case {group}/{case.name} {KINDS[type(outcome)]}: {outcome.message}")
        else:
            print(f"case {group}/{case.name} passed")
