"""Add up JUnit XML reports and fail when they hold no test or any failure.

    junit_summary.py [--label WORD] REPORT.xml [...]

Prints one closing line such as ``tests: 52 passed, 0 failed, 1 skipped``.
A runner that collected nothing must not pass for a green run, so zero tests
(or a missing report) exits 1.

    junit_summary.py --failures REPORT.xml [...]

Prints each failed test with its message and the end of its traceback, and
nothing when all passed: ``make test`` ends with it, because CI shows only
the end of a log and a failing test's own output lies thousands of lines up.
"""

from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET


def count(path: str) -> dict:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def failures(path: str, tail: int = 12) -> list[str]:
    lines = []
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:  # a run killed while writing its report
        return ["UNREADABLE %s (%s)" % (path, exc)]
    for case in root.iter("testcase"):
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            name = "%s::%s" % (case.get("classname", "?"), case.get("name", "?"))
            lines.append("%s %s" % (problem.tag.upper(), name))
            message = " ".join((problem.get("message") or "").split())
            if message:
                lines.append("    " + message[:400])
            text = (problem.text or "").rstrip().splitlines()
            lines.extend("    | " + line for line in text[-tail:])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="tests")
    parser.add_argument("--failures", action="store_true",
                        help="list the failed tests (with their messages) instead of counting")
    parser.add_argument("reports", nargs="+")
    args = parser.parse_args(argv)
    if args.failures:
        for path in args.reports:
            if os.path.exists(path):
                for line in failures(path):
                    print(line)
        return 0
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    missing = [path for path in args.reports if not os.path.exists(path)]
    for path in args.reports:
        if path not in missing:
            for key, value in count(path).items():
                totals[key] += value
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print("%s: %d passed, %d failed, %d skipped" % (args.label, passed, failed, totals["skipped"]))
    for path in missing:
        print("missing test report: %s" % path, file=sys.stderr)
    if totals["tests"] == 0:
        print("no test was run", file=sys.stderr)
    return 1 if missing or failed or totals["tests"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
