#!/usr/bin/env python3
"""Turns a `bazel test` run into one closing line: `N passed, N failed[, N skipped]`.

Counts individual test cases from each target's test.xml (GoogleTest writes one per case,
with result="skipped" for GTEST_SKIP), so a test that cannot run here shows up as skipped,
never as passed. A target that failed without a usable test.xml (build failure, time-out,
crash before writing results) counts as one failure. Exits 1 on any failure.

Usage: test_summary.py BAZEL_OUTPUT_LOG TESTLOGS_DIR [EXTRA_FAILURES]
"""
import os
import re
import sys
import xml.etree.ElementTree as ElementTree

STATUS_LINE = re.compile(r"^(//\S+)\s+(?:\(cached\)\s+)?(PASSED|FAILED|TIMEOUT|FLAKY|NO STATUS|FAILED TO BUILD|"
                         r"INCOMPLETE|REMOTE FAILURE|SKIPPED)\b")


def target_statuses(log_path):
    statuses = {}
    with open(log_path, errors="replace") as log:
        for line in log:
            match = STATUS_LINE.match(line.strip())
            if match:
                statuses[match.group(1)] = match.group(2)
    return statuses


def count_cases(xml_path):
    passed = failed = skipped = 0
    failed_names = []
    root = ElementTree.parse(xml_path).getroot()
    for case in root.iter("testcase"):
        name = case.get("classname", "") + "." + case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            failed_names.append(name)
        elif case.find("skipped") is not None or case.get("result") == "skipped" or case.get("status") == "notrun":
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, failed_names


def main():
    log_path, testlogs = sys.argv[1], sys.argv[2]
    extra_failures = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    passed = failed = skipped = 0
    failures = []
    for target, status in sorted(target_statuses(log_path).items()):
        package, _, name = target[2:].partition(":")
        xml_path = os.path.join(testlogs, package, name, "test.xml")
        counts = None
        if status in ("PASSED", "FAILED", "FLAKY") and os.path.exists(xml_path):
            try:
                counts = count_cases(xml_path)
            except ElementTree.ParseError:
                counts = None
        if counts is None or (status != "PASSED" and counts[1] == 0):
            # No per-case results we can trust: the whole target is one result.
            if status == "PASSED":
                passed += 1
            else:
                failed += 1
                failures.append(f"{target} ({status})")
            continue
        passed += counts[0]
        failed += counts[1]
        skipped += counts[2]
        failures.extend(f"{target} {case}" for case in counts[3])
    failed += extra_failures
    for failure in failures:
        print(f"FAILED: {failure}")
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
