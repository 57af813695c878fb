#!/usr/bin/env bash
# Builds the TCG test vehicle: Debian's QEMU 7.2 source with our patches, x86_64 only:
#   colo-lock-fix.patch        stock 7.2's COLO primary deadlocks under TCG (see its header);
#   tcg-dirty-sync-fix.patch   under TCG, stores to pages whose TLB entries stay resident were
#                              missing from every checkpoint after the first (see its header;
#                              tests/e2e:ram_equality_test catches it).
#
# Without the first, on a machine
# without /dev/kvm nothing end to end can run with the distro binary. This vehicle exists only
# so the suite and the demo run there; production hosts keep stock distro QEMU under KVM.
#
#   qemu/tcg/build.sh                build unless cached; the last line printed is the wrapper's path
#   qemu/tcg/build.sh --print-path   print the wrapper's path if cached (exit 0), else exit 1
#   qemu/tcg/build.sh --print-key    print the cache key (source version + patches' hash)
#
# The result lives outside the checkout, in
#   ${UNDERSTUDY_CACHE:-/var/cache/understudy}/qemu-tcg/<source version>-<sha256(patches), 12 hex>/
# with `qemu-system-x86_64` there a wrapper that adds the firmware search path of Debian's
# seabios and qemu-system-data packages. The directory appears by one rename when complete, so
# a path that exists is always usable; concurrent runs serialise on a lock file.
#
# Environment: UNDERSTUDY_CACHE (cache root), UNDERSTUDY_BUILD_JOBS (ninja -j, default nproc),
# UNDERSTUDY_DEBIAN_MIRROR (source mirror, default: the system's Debian URI).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Applied in this order; the cache key covers all of them.
patch_files=("$here/colo-lock-fix.patch" "$here/tcg-dirty-sync-fix.patch")

# The orig tarball is all we use (not Debian's patch series), so it, not the Debian revision,
# is the source version. Its hash is pinned: a different tarball is a different vehicle.
source_version="7.2+dfsg"
orig_tarball="qemu_${source_version}.orig.tar.xz"
orig_sha256="91aca71520040edc40b8d437aa3004dae614f58e286cf653ee8996c07af2962f"
orig_topdir="qemu-7.2.0"
debian_suite="bookworm"

build_deps=(ninja-build meson libglib2.0-dev libpixman-1-dev libfdt-dev pkg-config flex bison
            python3-venv zlib1g-dev)
# Firmware the wrapper points at (-L); the same 7.2 data files the stock binary uses.
runtime_deps=(seabios qemu-system-data)

configure_flags=(--target-list=x86_64-softmmu --without-default-features --enable-kvm
                 --enable-fdt=system --enable-replication --disable-docs --disable-werror
                 --disable-install-blobs)
# --enable-replication is required: without it QEMU refuses the x-colo capability.

expected_minutes_on_2_cores=17

cache_root="${UNDERSTUDY_CACHE:-/var/cache/understudy}/qemu-tcg"
key="${source_version}-$(cat "${patch_files[@]}" | sha256sum | cut -c1-12)"
vehicle_dir="$cache_root/$key"
wrapper="$vehicle_dir/qemu-system-x86_64"

log() { echo "[qemu-tcg] $*"; }
die() { echo "[qemu-tcg] ERROR: $*" >&2; exit 1; }

is_cached() { [ -x "$wrapper" ] && [ -x "$vehicle_dir/libexec/qemu-system-x86_64" ]; }

case "${1:-}" in
  --print-path) is_cached && { echo "$wrapper"; exit 0; }; exit 1 ;;
  --print-key) echo "$key"; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--print-path|--print-key]" >&2; exit 2 ;;
esac

. "$here/../../tools/cache_build_lock.sh"
take_cache_or_exit "$wrapper"

jobs="${UNDERSTUDY_BUILD_JOBS:-$(nproc)}"
estimate=$(( expected_minutes_on_2_cores * 2 / jobs ))
[ "$estimate" -ge 4 ] || estimate=4
log "building the TCG test vehicle (QEMU ${source_version} + our patches) into $vehicle_dir"
log "one-time build, expected ~${estimate} min with $jobs jobs (~${expected_minutes_on_2_cores} min on 2 cores; longer on a busy machine)"
started=$(date +%s)
phase() { log "phase: $* ($(( ($(date +%s) - started) / 60 )) min elapsed)"; }

missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

phase "build dependencies"
mapfile -t missing < <(missing_packages "${build_deps[@]}" "${runtime_deps[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  log "installing missing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

work=$(mktemp -d "$cache_root/.build-${key}.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# The source comes through apt from a deb-src entry that exists only in this private
# configuration: the system's sources, lists and package caches are never touched.
fetch_orig_tarball() {
  local downloads="$cache_root/downloads"
  mkdir -p "$downloads"
  if [ -f "$downloads/$orig_tarball" ] &&
     echo "$orig_sha256  $downloads/$orig_tarball" | sha256sum -c --status; then
    log "source tarball already downloaded: $downloads/$orig_tarball"
    return 0
  fi
  local mirror="${UNDERSTUDY_DEBIAN_MIRROR:-}"
  if [ -z "$mirror" ]; then
    mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
             awk '{print $2}' | grep -E '/debian/?$' | head -1 || true)
  fi
  mirror="${mirror:-http://deb.debian.org/debian}"
  local apt="$work/apt"
  mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/get"
  cat >"$apt/sources.list.d/understudy-src.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: $debian_suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local opts=(-q -o "Dir::Etc::sourceparts=$apt/sources.list.d" -o "Dir::Etc::sourcelist=/dev/null"
              -o "Dir::State::lists=$apt/lists" -o "Dir::Cache=$apt/cache"
              -o "APT::Sandbox::User=root")
  log "apt-get update (private deb-src list for $mirror $debian_suite)"
  apt-get "${opts[@]}" update >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; die "apt-get update failed"; }
  log "apt-get source --download-only qemu"
  (cd "$apt/get" && apt-get "${opts[@]}" source --download-only qemu) >>"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log"; die "apt-get source failed"; }
  [ -f "$apt/get/$orig_tarball" ] ||
    die "Debian's qemu source for $debian_suite no longer uses $orig_tarball ($(ls "$apt/get")); update build.sh"
  echo "$orig_sha256  $apt/get/$orig_tarball" | sha256sum -c --status ||
    die "$orig_tarball does not have the pinned sha256 $orig_sha256"
  mv "$apt/get/$orig_tarball" "$downloads/$orig_tarball"
}

phase "fetch Debian's qemu source"
fetch_orig_tarball

phase "unpack and patch"
tar -C "$work" -xf "$cache_root/downloads/$orig_tarball"
src="$work/$orig_topdir"
[ -d "$src" ] || die "$orig_tarball did not unpack to $orig_topdir"
for patch_file in "${patch_files[@]}"; do
  patch -d "$src" -p1 --forward --quiet <"$patch_file" || die "$(basename "$patch_file") does not apply"
done
# The dfsg tarball has no EDK2 firmware blobs; pc-bios/meson.build would fail unpacking them.
sed -i 's/^\(\s*unpack_edk2_blobs = \)bzip2\.found()/\1false/' "$src/meson.build"
grep -q 'unpack_edk2_blobs = bzip2.found()' "$src/meson.build" &&
  die "could not disable unpack_edk2_blobs in meson.build"

phase "configure"
# Debian's meson runs on the system interpreter; keep configure on it too (not a pyenv shim).
export PATH="/usr/bin:/bin:$PATH"
mkdir -p "$src/build"
(cd "$src/build" && nice -n 10 ../configure "${configure_flags[@]}") \
  >"$work/configure.log" 2>&1 || { tail -40 "$work/configure.log"; die "configure failed (log above)"; }

phase "compile (ninja qemu-system-x86_64, $jobs jobs)"
# ninja's status lines ([n/N]) go to the build log; one per ~5% (and the last) reaches the screen.
set +e
(cd "$src/build" && NINJA_STATUS='[%f/%t] ' nice -n 10 ninja -j "$jobs" qemu-system-x86_64) 2>&1 |
  tee "$work/ninja.log" |
  awk -v t0="$started" '/^\[[0-9]+\/[0-9]+\] / {
         split(substr($1, 2), a, "/"); n = a[1]; total = a[2] + 0
         if (n - last >= total / 20 || n == total) {
           last = n
           printf "[qemu-tcg] compile [%d/%d] %d%% (%d min elapsed)\n", n, total, 100 * n / total,
                  (systime() - t0) / 60
           fflush()
         }
       }'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { grep -v '^\[[0-9]*/[0-9]*\] ' "$work/ninja.log" | tail -40; die "ninja failed (errors above)"; }

phase "install into the cache"
out="$work/out"
mkdir -p "$out/libexec"
cp "$src/build/qemu-system-x86_64" "$out/libexec/qemu-system-x86_64"
cat >"$out/qemu-system-x86_64" <<'EOF'
#!/bin/sh
# Understudy's TCG test vehicle: QEMU 7.2 with our patches (see BUILDINFO here).
# The build carries no firmware; Debian's seabios and qemu-system-data packages provide it.
here=$(dirname "$(readlink -f "$0")")
exec "$here/libexec/qemu-system-x86_64" -L /usr/share/seabios -L /usr/share/qemu "$@"
EOF
chmod 755 "$out/qemu-system-x86_64"
cp "${patch_files[@]}" "$out/"
{
  echo "source: Debian $debian_suite qemu, $orig_tarball (sha256 $orig_sha256)"
  for patch_file in "${patch_files[@]}"; do
    echo "patch: $(basename "$patch_file") (sha256 $(sha256sum "$patch_file" | cut -d' ' -f1))"
  done
  echo "configure: ${configure_flags[*]}"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(( ($(date +%s) - started) / 60 )) min, $jobs jobs"
} >"$out/BUILDINFO"

phase "check that the binary accepts COLO under TCG"
# The x-colo capability is refused by a build without replication; the machine must also find
# its firmware through the wrapper's -L options.
reply=$(printf '%s\n' '{"execute":"qmp_capabilities"}' \
  '{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"x-colo","state":true}]}}' \
  '{"execute":"query-migrate-capabilities"}' '{"execute":"quit"}' |
  timeout 60 "$out/qemu-system-x86_64" -accel tcg -M pc -m 64 -nodefaults -display none -S -qmp stdio 2>&1) ||
  { echo "$reply"; die "the built QEMU did not start"; }
if echo "$reply" | grep -q '"error"' ||
   ! echo "$reply" | grep -q '"state": true, "capability": "x-colo"'; then
  echo "$reply"
  die "the built QEMU refused x-colo under TCG"
fi

mv -T "$out" "$vehicle_dir"
log "done in $(( ($(date +%s) - started) / 60 )) min: $wrapper"
echo "$wrapper"
