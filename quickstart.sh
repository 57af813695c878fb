#!/usr/bin/env bash
# Understudy's two entry points on a fresh Debian bookworm machine (run as root):
#
#   ./quickstart.sh demo   install what is missing, build, run the end-to-end demonstration
#   ./quickstart.sh test   install what is missing, build, run every test; the last line is
#                          "N passed, N failed[, N skipped]" and the exit status is non-zero
#                          on any failure
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
  busybox-static redis-server redis-tools
)

# On a machine without a usable /dev/kvm (or with UNDERSTUDY_ACCEL=tcg) the guests run under
# TCG with the TCG test vehicle, QEMU 7.2 plus our COLO fix, which qemu/tcg/build.sh builds once;
# its build dependencies are needed only then.
TCG_BUILD_PACKAGES=(ninja-build meson libglib2.0-dev libpixman-1-dev libfdt-dev pkg-config flex bison
                    python3-venv zlib1g-dev)

needs_tcg_vehicle() {
  case "${UNDERSTUDY_ACCEL:-}" in
    tcg) return 0 ;;
    kvm) return 1 ;;
  esac
  ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }
}

if needs_tcg_vehicle; then PACKAGES+=("${TCG_BUILD_PACKAGES[@]}"); fi

# Builds the vehicle unless cached (build.sh prints its time estimate first) and pins the suite
# to TCG: the accelerator then keys Bazel's cached test results, so a result from a run under
# another accelerator is never reused.
prepare_accelerator() {
  needs_tcg_vehicle || return 0
  if ! qemu/tcg/build.sh --print-path > /dev/null; then
    if [ "${UNDERSTUDY_ACCEL:-}" = tcg ]; then
      echo "UNDERSTUDY_ACCEL=tcg: building the TCG test vehicle (QEMU 7.2 + qemu/tcg/colo-lock-fix.patch)."
    else
      echo "/dev/kvm is not usable here: the guests will run under TCG with the TCG test vehicle"
      echo "(QEMU 7.2 + qemu/tcg/colo-lock-fix.patch), which is built once now."
    fi
  fi
  qemu/tcg/build.sh || { echo "FAILED: qemu/tcg/build.sh" >&2; exit 1; }
  export UNDERSTUDY_ACCEL=tcg
}

# The Linux test guest (Debian's kernel package, busybox, Debian's Redis in an initramfs) is
# built once into the cache by tests/guests/linux/build.sh (~1 min; apt-get download of the
# kernel package); its tests run it under TCG with the TCG vehicle on every machine.
prepare_linux_guest() {
  if ! tests/guests/linux/build.sh --print-path > /dev/null; then
    echo "Building the Linux test guest (Debian kernel + busybox + Redis) once."
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

run_tests() {
  local log before after stray extra_failures=0
  log=$(mktemp)
  before=$(qemu_pids)
  set +e
  bazel test //... --keep_going --test_summary=short "$@" 2>&1 | tee "$log"
  local bazel_status=${PIPESTATUS[0]}
  set -e
  # Every QEMU the suite started must be gone: a stray one means a teardown bug.
  after=$(qemu_pids)
  stray=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
  if [ -n "$stray" ]; then
    echo "FAILED: qemu-system processes left behind by the suite: $(echo $stray)"
    for pid in $stray; do ps -o pid=,args= -p "$pid" | cut -c1-160 || true; kill -9 "$pid" 2>/dev/null || true; done
    extra_failures=1
  else
    echo "No qemu-system process was left behind by the suite."
  fi
  if [ "$bazel_status" -ne 0 ] && [ "$bazel_status" -ne 3 ]; then
    # 3 means "some tests failed", which the summary counts; anything else (build or
    # infrastructure failure) must fail the run even if no test result says so.
    echo "FAILED: bazel test exited with status $bazel_status"
    extra_failures=$((extra_failures + 1))
  fi
  python3 tools/test_summary.py "$log" "$(bazel info bazel-testlogs 2>/dev/null)" "$extra_failures"
  local summary_status=$?
  rm -f "$log"
  return $summary_status
}

run_demo() {
  bazel build //tests/demo:failover_demo
  bazel run //tests/demo:failover_demo
}

case "${1:-}" in
  demo) install_missing_packages; prepare_accelerator; run_demo ;;
  test) shift; install_missing_packages; prepare_accelerator; prepare_linux_guest; run_tests "$@" ;;
  deps) install_missing_packages ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
