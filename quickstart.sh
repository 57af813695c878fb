#!/usr/bin/env bash
# Understudy's two entry points on a fresh Debian bookworm machine (run as root):
#
#   ./quickstart.sh demo   install what is missing, build, run the end-to-end demonstration (a
#                          Linux VM running Redis; `demo --guest=counter` for the counter guest)
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
  libssl-dev openssl libcurl4-openssl-dev libzmq3-dev cppzmq-dev liblz4-dev prometheus-cpp-dev
  libibverbs-dev librdmacm-dev libgtest-dev nlohmann-json3-dev
  iproute2 procps etcd-server prometheus
  clang-14 libclang-rt-14-dev llvm-14
  busybox-static redis-server redis-tools
)

# The TCG test vehicle, QEMU 7.2 plus our COLO fixes (qemu/tcg/build.sh builds it once): the
# Linux guest runs under it on every machine (this project's paravirtual /dev/kvm cannot boot
# Linux), and on a machine without a usable /dev/kvm (or with UNDERSTUDY_ACCEL=tcg) every other
# guest does too. Its build dependencies:
TCG_BUILD_PACKAGES=(ninja-build meson libglib2.0-dev libpixman-1-dev libfdt-dev pkg-config flex bison
                    python3-venv zlib1g-dev)
PACKAGES+=("${TCG_BUILD_PACKAGES[@]}")

needs_tcg_vehicle() {
  case "${UNDERSTUDY_ACCEL:-}" in
    tcg) return 0 ;;
    kvm) return 1 ;;
  esac
  ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
}

# Builds the vehicle unless cached (build.sh prints its time estimate before it starts), saying
# first why it is needed.
prepare_tcg_vehicle() {
  qemu/tcg/build.sh --print-path > /dev/null && return 0
  if [ "${UNDERSTUDY_ACCEL:-}" = tcg ]; then
    echo "UNDERSTUDY_ACCEL=tcg: building the TCG test vehicle (QEMU 7.2 + the patches in qemu/tcg/)."
  elif needs_tcg_vehicle; then
    echo "/dev/kvm is not usable here: the guests will run under TCG with the TCG test vehicle"
    echo "(QEMU 7.2 + the patches in qemu/tcg/), which is built once now."
  else
    echo "The Linux guest runs under TCG with the TCG test vehicle (QEMU 7.2 + the patches in qemu/tcg/):"
    echo "this machine's /dev/kvm cannot boot Linux. The vehicle is built once now."
  fi
  qemu/tcg/build.sh || { echo "FAILED: qemu/tcg/build.sh" >&2; exit 1; }
}

# Builds the vehicle if needed and, where /dev/kvm is not usable, pins the suite to TCG: the
# accelerator then keys Bazel's cached test results, so a result from a run under another
# accelerator is never reused.
prepare_accelerator() {
  prepare_tcg_vehicle
  needs_tcg_vehicle || return 0
  export UNDERSTUDY_ACCEL=tcg
}

# The Linux test guest (Debian's kernel package, busybox, Debian's Redis in an initramfs) is
# built once into the cache by tests/guests/linux/build.sh (~1 min; apt-get download of the
# kernel package); its tests run it under TCG with the TCG vehicle on every machine.
prepare_linux_guest() {
  if ! tests/guests/linux/build.sh --print-path > /dev/null; then
    echo "Building the Linux test guest (Debian kernel + busybox + Redis) once (~1 min)."
  fi
  tests/guests/linux/build.sh > /dev/null || { echo "FAILED: tests/guests/linux/build.sh" >&2; exit 1; }
}

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

# The demo protects the Linux guest running Redis (`demo --guest=counter`: the counter guest).
run_demo() {
  bazel build //tests/demo:failover_demo
  bazel run //tests/demo:failover_demo -- "$@"
}

case "${1:-}" in
  demo)
    shift
    install_missing_packages
    if [[ " $* " == *" --guest=counter "* ]]; then
      # The counter guest needs the vehicle only where /dev/kvm is not usable.
      if needs_tcg_vehicle; then prepare_accelerator; fi
    else
      prepare_accelerator
      prepare_linux_guest
    fi
    run_demo "$@" ;;
  test) shift; install_missing_packages; prepare_accelerator; prepare_linux_guest; run_tests "$@" ;;
  deps) install_missing_packages ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
