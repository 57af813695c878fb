#!/usr/bin/env bash
# Understudy's two entry points on a fresh Debian bookworm machine (run as root):
#
#   ./quickstart.sh demo   install what is missing, build, run the end-to-end demonstration
#   ./quickstart.sh test   install what is missing, build, run every test; then every test
#                          that needs no VM (tag "vm") again under ASan+UBSan (a build that
#                          also runs clang's thread-safety analysis) and under TSan; the last line is
#                          "N passed, N failed[, N skipped]" over all of it and the exit
#                          status is non-zero on any failure
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the build, the tests and the demo need. Only apt-get reaches the network.
PACKAGES=(
  bazel-bootstrap gcc g++ gcc-multilib binutils python3
  qemu-system-x86
  libssl-dev openssl libzmq3-dev cppzmq-dev liblz4-dev prometheus-cpp-dev
  libibverbs-dev librdmacm-dev libgtest-dev nlohmann-json3-dev
  iproute2 procps etcd-server prometheus
  clang-14 libclang-rt-14-dev llvm-14
)

install_missing_packages() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing missing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

qemu_pids() { pgrep -x 'qemu-system-x86_64' 2>/dev/null | sort || true; }

# One `bazel test` run; appends "--run NAME LOG TESTLOGS" for test_summary.py to SUMMARY_RUNS and
# counts a bazel failure that no test result shows (build error, infrastructure) in
# EXTRA_FAILURES. Usage: bazel_test_run NAME [bazel test arguments...]
bazel_test_run() {
  local name=$1 log status started argument
  shift
  log=$(mktemp)
  LOGS+=("$log")
  started=$(date +%s)
  set +e
  bazel test //... --keep_going --test_summary=short "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  echo "[$name] bazel test took $(( $(date +%s) - started )) s"
  if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
    # 3 means "some tests failed", which the summary counts; anything else (build or
    # infrastructure failure) must fail the run even if no test result says so.
    echo "FAILED: [$name] bazel test exited with status $status"
    EXTRA_FAILURES=$((EXTRA_FAILURES + 1))
  fi
  # Each config has its own output directory (.bazelrc), so this run's test.xml files stay
  # where they are while the next run writes its own.
  local configs=()
  for argument in "$@"; do [[ "$argument" == --config=* ]] && configs+=("$argument"); done
  SUMMARY_RUNS+=(--run "$name" "$log" "$(bazel info "${configs[@]}" bazel-testlogs 2>/dev/null || true)")
}

run_tests() {
  local before after stray started
  LOGS=()
  SUMMARY_RUNS=()
  EXTRA_FAILURES=0
  before=$(qemu_pids)
  bazel_test_run suite "$@"
  # Every QEMU the suite started must be gone: a stray one means a teardown bug.
  after=$(qemu_pids)
  stray=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
  if [ -n "$stray" ]; then
    echo "FAILED: qemu-system processes left behind by the suite: $(echo $stray)"
    for pid in $stray; do ps -o pid=,args= -p "$pid" | cut -c1-160 || true; kill -9 "$pid" 2>/dev/null || true; done
    EXTRA_FAILURES=$((EXTRA_FAILURES + 1))
  else
    echo "No qemu-system process was left behind by the suite."
  fi

  # Every test that needs no VM, again under ASan+UBSan and under TSan: a leak, UB or race
  # report fails its test (//tools/sanitizers:sanitizer_canary_test proves it does). The asan
  # run builds all of //... and its config carries -Wthread-safety, so it is also the
  # thread-safety build (`bazel build --config=clang-tsa //...`), every GUARDED_BY / REQUIRES
  # checked as an error, without a third clang build. The fuzz smokes are left out: they
  # already run under ASan+UBSan.
  bazel_test_run asan --config=asan --test_tag_filters=-vm,-fuzz "$@"
  bazel_test_run tsan --config=tsan --test_tag_filters=-vm,-fuzz,-no-tsan --build_tests_only "$@"

  local summary_status=0
  python3 tools/test_summary.py "${SUMMARY_RUNS[@]:2:2}" "$EXTRA_FAILURES" "${SUMMARY_RUNS[@]:4}" || summary_status=$?
  rm -f "${LOGS[@]}"
  return $summary_status
}

run_demo() {
  bazel build //tests/demo:failover_demo
  bazel run //tests/demo:failover_demo
}

case "${1:-}" in
  demo) install_missing_packages; run_demo ;;
  test) shift; install_missing_packages; run_tests "$@" ;;
  deps) install_missing_packages ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
