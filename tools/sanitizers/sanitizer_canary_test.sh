#!/usr/bin/env bash
# Under --config=asan / --config=tsan (with the environment .bazelrc gives tests), each kind of
# bug the sanitizer covers must end the canary with a non-zero status and a report; the clean
# run must stay quiet. In a build without sanitizers every mode exits 0: that is the control
# showing the non-zero statuses come from the sanitizers, not from the program.
set -uo pipefail
canary="$1"
failures=0

expect() {  # expect MODE fails|passes [TEXT]
  local mode=$1 outcome=$2 text=${3:-} output status
  output=$("$canary" "$mode" 2>&1)
  status=$?
  if [ "$outcome" = fails ]; then
    if [ "$status" -eq 0 ]; then
      echo "FAIL: canary $mode exited 0; the sanitizer report did not fail it"; failures=$((failures + 1)); return
    fi
    if [ -n "$text" ] && ! grep -q "$text" <<<"$output"; then
      echo "FAIL: canary $mode exited $status without '$text' in its output:"; echo "$output" | head -20
      failures=$((failures + 1)); return
    fi
  elif [ "$status" -ne 0 ]; then
    echo "FAIL: canary $mode exited $status:"; echo "$output" | head -20; failures=$((failures + 1)); return
  fi
  echo "ok: canary $mode $outcome (status $status)"
}

built_with=$("$canary" which)
echo "canary built with: $built_with"
case "$built_with" in
  asan)
    expect leak fails "LeakSanitizer: detected memory leaks"
    expect ub fails "runtime error: signed integer overflow"
    expect overflow fails "AddressSanitizer: heap-buffer-overflow"
    expect race passes
    expect clean passes
    ;;
  tsan)
    expect race fails "ThreadSanitizer: data race"
    expect clean passes
    ;;
  none)
    for mode in leak ub overflow race clean; do expect "$mode" passes; done
    ;;
  *) echo "FAIL: unexpected answer from canary which: $built_with"; failures=$((failures + 1)) ;;
esac
[ "$failures" -eq 0 ] && echo PASS
exit $((failures > 0))
