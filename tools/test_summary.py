#!/usr/bin/env python3
"""Turns a `bazel test` run into one closing line: `N passed, N failed[, N skipped]`.

Counts individual test cases from each target's test.xml (GoogleTest writes one per case,
with result="skipped" for GTEST_SKIP), so a test that cannot run here shows up as skipped,
never as passed. A target that failed without a usable test.xml (build failure, time-out,
crash before writing results) counts as one failure. Exits 1 on any failure.

A CI run may be several `bazel test` runs (the normal suite, then under sanitizers). Each
writes its own testlogs directory (the sanitizer configs have their own output directory,
see .bazelrc), so they are summed into one line; a failure names its run.

Usage: test_summary.py BAZEL_OUTPUT_LOG TESTLOGS_DIR [EXTRA_FAILURES] [--run NAME LOG TESTLOGS_DIR]...
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


def summarize_run(log_path, testlogs):
    """(passed, failed, skipped, failure descriptions) of one `bazel test` run."""
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
    return passed, failed, skipped, failures


def parse_arguments(argv):
    """[(run name, log, testlogs)], extra failures."""
    positional, runs = [], []
    index = 0
    while index < len(argv):
        if argv[index] == "--run":
            if index + 3 >= len(argv):
                raise SystemExit("--run needs NAME LOG TESTLOGS_DIR")
            runs.append(tuple(argv[index + 1:index + 4]))
            index += 4
        else:
            positional.append(argv[index])
            index += 1
    if len(positional) not in (2, 3):
        raise SystemExit(__doc__)
    extra_failures = int(positional[2]) if len(positional) == 3 else 0
    return [("", positional[0], positional[1])] + runs, extra_failures


def main():
    runs, extra_failures = parse_arguments(sys.argv[1:])
    passed = failed = skipped = 0
    failures = []
    for name, log_path, testlogs in runs:
        run_passed, run_failed, run_skipped, run_failures = summarize_run(log_path, testlogs)
        passed += run_passed
        failed += run_failed
        skipped += run_skipped
        failures.extend(f"[{name}] {failure}" if name else failure for failure in run_failures)
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
