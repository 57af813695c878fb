#!/usr/bin/env bash
# Builds the Linux test guest: Debian's cloud kernel and an initramfs holding busybox and the
# distro's Redis, which /init starts on the guest's virtio NIC. Everything comes from Debian
# packages; nothing is compiled.
#
#   tests/guests/linux/build.sh                build unless cached; the last line printed is the directory
#   tests/guests/linux/build.sh --print-path   print the directory if cached (exit 0), else exit 1
#   tests/guests/linux/build.sh --print-key    print the cache key (exit 1 if the packages are unknown)
#
# The result lives outside the checkout, in
#   ${UNDERSTUDY_CACHE:-/var/cache/understudy}/linux-guest/<kernel ABI>-<sha256, 12 hex>/
# (the hash covers this script and the versions of the kernel, busybox-static, redis-server and
# redis-tools packages), holding `vmlinuz`, `initrd.img` and `BUILDINFO`. Like qemu/tcg/build.sh,
# the directory appears by one rename when complete and concurrent runs serialise on a lock.
#
# The guest (kernel command line):
#   console=ttyS0 quiet tsc=reliable guest_ip=10.96.0.2/24 [guest_gw=10.96.0.1] [redis_port=6379] [guest_tick=1]
#   [guest_counter=SECONDS] [disk_records=1]
# /init mounts proc/sys/dev, loads the virtio (and IDE) modules, configures eth0 from guest_ip=,
# starts `redis-server --protected-mode no --save '' --appendonly no` on 0.0.0.0 and, once Redis
# answers PING on loopback, prints "redis ready" on the console. Redis's own log stays in the
# guest (/redis.log); the console carries only /init's lines. With guest_counter=SECONDS it then
# prints 1, 2, 3, ... one line every SECONDS (e.g. 0.2), like the counter guest, so the console
# continuity oracles (ftctl drill, CounterTranscript) judge the Linux guest's serial output too;
# /init turns the console's onlcr off, so those lines end in "\n" alone, as the counter guest's do.
# With disk_records=1 it writes numbered records to its IDE disk (/dev/sda, the agents' NBD
# disk), record N in 512-byte sector N, and prints N once it is written; before each append it
# reads the disk back (O_DIRECT, past the page cache) and checks it holds exactly the records its
# memory counted — record N in sector N and sector N+1 still empty — or prints "VERIFY FAILED"
# and stops, like tests/guests/disk_writer.c.
#
# Environment: UNDERSTUDY_CACHE (cache root).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"

# The Debian cloud kernel: small, serial and initrd built in; virtio and IDE are modules. It has
# no e1000 driver (CONFIG_E1000 is unset), so this guest's NIC is virtio-net.
kernel_metapackage="linux-image-cloud-amd64"
# Loaded by /init in this order after their dependencies (resolved from each module's
# `depends=` below). sd_mod and ata_piix serve a later disk guest on IDE.
guest_modules=(virtio_pci virtio_net virtio_blk ata_piix sd_mod)
userland_packages=(busybox-static redis-server redis-tools)

cache_root="${UNDERSTUDY_CACHE:-/var/cache/understudy}/linux-guest"

log() { echo "[linux-guest] $*" >&2; }
die() { echo "[linux-guest] ERROR: $*" >&2; exit 1; }

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
package_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# The kernel package behind the metapackage (e.g. linux-image-6.1.0-57-cloud-amd64) and the
# version apt would fetch now.
resolve_kernel() {
  kernel_package=$(apt-cache depends "$kernel_metapackage" 2>/dev/null |
                   awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$kernel_package" ] || return 1
  kernel_version=$(apt-cache policy "$kernel_package" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
  [ -n "$kernel_version" ] && [ "$kernel_version" != "(none)" ] || return 1
  kernel_abi=${kernel_package#linux-image-}
}

# Sets `key` and `guest_dir`; fails when a package is not known (not installed / no candidate).
compute_key() {
  resolve_kernel || return 1
  local manifest p v
  manifest="$kernel_package=$kernel_version"
  for p in "${userland_packages[@]}"; do
    v=$(installed_version "$p")
    [ -n "$v" ] || return 1
    manifest+=" $p=$v"
  done
  package_manifest="$manifest"
  key="${kernel_abi}-$( { sha256sum "$script" | cut -d' ' -f1; echo "$manifest"; } | sha256sum | cut -c1-12)"
  guest_dir="$cache_root/$key"
}

is_cached() { [ -f "$guest_dir/vmlinuz" ] && [ -f "$guest_dir/initrd.img" ]; }

case "${1:-}" in
  --print-path) compute_key && is_cached && { echo "$guest_dir"; exit 0; }; exit 1 ;;
  --print-key) compute_key && { echo "$key"; exit 0; }; exit 1 ;;
  "") ;;
  *) echo "usage: $0 [--print-path|--print-key]" >&2; exit 2 ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=()
for p in "${userland_packages[@]}"; do package_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing missing Debian packages: ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
fi
if ! compute_key; then
  log "apt does not know $kernel_metapackage yet; apt-get update"
  $sudo apt-get update -q >&2
  compute_key || die "cannot resolve $kernel_metapackage or the versions of ${userland_packages[*]}"
fi

. "$here/../../../tools/cache_build_lock.sh"
take_cache_or_exit "$guest_dir"
work=$(mktemp -d "$cache_root/.build-${key}.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
log "building the Linux guest ($package_manifest) into $guest_dir"

# The kernel package is unpacked, never installed: the host's /boot and module tree stay as
# they are. A candidate that left the mirror since the last `apt-get update` needs one.
download_kernel() { (cd "$work/deb" && apt-get download -q "$kernel_package=$kernel_version") >"$work/apt.log" 2>&1; }
mkdir -p "$work/deb"
if ! download_kernel; then
  log "apt-get download failed; apt-get update and retry"
  $sudo apt-get update -q >&2
  compute_key || die "cannot resolve $kernel_metapackage after apt-get update"
  download_kernel || { cat "$work/apt.log" >&2; die "apt-get download $kernel_package=$kernel_version failed"; }
  # The key moved with the version: the work directory's name is only cosmetic, but the
  # destination is not.
  if is_cached; then echo "$guest_dir"; exit 0; fi
fi
dpkg-deb -x "$work"/deb/*.deb "$work/kernel"
module_root="$work/kernel/lib/modules/$kernel_abi"
[ -f "$work/kernel/boot/vmlinuz-$kernel_abi" ] || die "no vmlinuz-$kernel_abi in $kernel_package"
[ -d "$module_root" ] || die "no module tree for $kernel_abi in $kernel_package"

root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,lib/modules,lib64}

# Modules, dependencies first. There is no depmod here: each module's .modinfo section says
# what it depends on (NUL-separated "depends=a,b").
declare -A module_seen=()
module_order=()
module_file() {
  local name=$1 found
  found=$(find "$module_root/kernel" \( -name "$name.ko" -o -name "${name//_/-}.ko" \) -print -quit)
  [ -n "$found" ] || die "module $name is not in $kernel_package"
  echo "$found"
}
add_module() {
  local name=$1 file deps dep
  [ -z "${module_seen[$name]:-}" ] || return 0
  module_seen[$name]=1
  file=$(module_file "$name")
  deps=$(tr '\0' '\n' <"$file" | sed -n 's/^depends=//p' | head -1)
  for dep in ${deps//,/ }; do add_module "$dep"; done
  cp "$file" "$root/lib/modules/$name.ko"
  module_order+=("$name")
}
for m in "${guest_modules[@]}"; do add_module "$m"; done
printf '%s\n' "${module_order[@]}" >"$root/etc/modules"

# busybox provides the shell and every tool /init uses.
cp /bin/busybox "$root/bin/busybox"
if ldd "$root/bin/busybox" >/dev/null 2>&1; then die "/bin/busybox is dynamic: not busybox-static's"; fi
"$root/bin/busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
done

# redis-server is a name of Redis's one binary (Debian links it to redis-check-rdb); it picks
# its role from argv[0], so the file goes in under the server's name. Every library ldd lists
# goes in at the path ldd resolved it under.
redis_binary=$(readlink -f /usr/bin/redis-server)
cp "$redis_binary" "$root/usr/bin/redis-server"
ldd "$redis_binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}' | sort -u | while read -r lib; do
  mkdir -p "$root/$(dirname "$lib")"
  cp -L "$lib" "$root/$lib"
done
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || die "ldd did not list the dynamic loader"

cat >"$root/init" <<'EOF'
#!/bin/sh
# The Linux test guest's /init (tests/guests/linux/build.sh). Never exits: PID 1 must not.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

halt_forever() { echo "guest: $*"; while :; do sleep 3600; done; }

# disk_records=1: the record writer (see the header of build.sh).
sector() { dd if=/dev/sda bs=512 skip="$1" count=1 iflag=direct 2>/dev/null | tr -d '\000' | head -n 1; }
disk_writer() {
  tries=0
  while [ ! -b /dev/sda ] && [ $tries -lt 100 ]; do sleep 0.05; tries=$((tries + 1)); done
  [ -b /dev/sda ] || { echo "guest: no /dev/sda (is the disk IDE?)"; return; }
  last=$(( $(cat /sys/block/sda/size) - 2 ))
  n=0
  while [ $n -lt $last ]; do
    if [ $n -gt 0 ]; then
      have=$(sector $n)
      [ "$have" = "record $n" ] || { echo "VERIFY FAILED: sector $n holds '$have', not record $n"; return; }
    fi
    next=$(sector $((n + 1)))
    [ -z "$next" ] || { echo "VERIFY FAILED: sector $((n + 1)) already holds '$next' (the disk ran ahead of memory)"; return; }
    n=$((n + 1))
    printf 'record %d\n' $n | dd of=/dev/sda bs=512 seek=$n count=1 conv=sync,notrunc oflag=direct 2>/dev/null ||
      { echo "VERIFY FAILED: writing record $n"; return; }
    echo "$n"
  done
  echo "guest: disk full after $n records"
}

for module in $(cat /etc/modules); do
  insmod "/lib/modules/$module.ko" || echo "guest: insmod $module failed"
done

guest_ip="" guest_gw="" redis_port=6379 guest_counter="" disk_records=""
for word in $(cat /proc/cmdline); do
  case "$word" in
    guest_ip=*) guest_ip=${word#guest_ip=} ;;
    guest_gw=*) guest_gw=${word#guest_gw=} ;;
    redis_port=*) redis_port=${word#redis_port=} ;;
    guest_tick=*) guest_tick=${word#guest_tick=} ;;
    guest_counter=*) guest_counter=${word#guest_counter=} ;;
    disk_records=*) disk_records=${word#disk_records=} ;;
  esac
done
# Diagnostics: guest_tick=1 prints "tick N" every second, to tell a running guest from a hung one.
if [ "${guest_tick:-0}" = 1 ]; then
  ( n=0; while :; do sleep 1; n=$((n + 1)); echo "tick $n"; done ) &
fi

ip link set lo up
if [ -n "$guest_ip" ]; then
  tries=0
  while [ ! -e /sys/class/net/eth0 ] && [ $tries -lt 100 ]; do sleep 0.05; tries=$((tries + 1)); done
  [ -e /sys/class/net/eth0 ] || halt_forever "no eth0 (is the NIC virtio-net?)"
  ip addr add "$guest_ip" dev eth0 || halt_forever "cannot set $guest_ip on eth0"
  ip link set eth0 up
  [ -z "$guest_gw" ] || ip route add default via "$guest_gw"
  echo "guest: eth0 $(cat /sys/class/net/eth0/address) $guest_ip"
fi

redis-server --bind 0.0.0.0 --port "$redis_port" --protected-mode no --save '' --appendonly no \
  --daemonize no --logfile /redis.log &
redis_pid=$!
tries=0
until [ "$(printf 'PING\r\n' | nc -w 1 127.0.0.1 "$redis_port" 2>/dev/null | tr -d '\r')" = "+PONG" ]; do
  kill -0 $redis_pid 2>/dev/null || { tail -5 /redis.log; halt_forever "redis-server exited"; }
  tries=$((tries + 1))
  [ $tries -lt 600 ] || { tail -5 /redis.log; halt_forever "redis-server does not answer"; }
  sleep 0.1
done
echo "redis ready"
# The console counter (guest_counter=SECONDS): digits and one dot only, or no counter.
case "$guest_counter" in
  "" | *[!0-9.]* | *.*.*) [ -z "$guest_counter" ] || echo "guest: ignoring guest_counter=$guest_counter" ;;
  *) stty -onlcr 2>/dev/null
     ( n=0; while :; do n=$((n + 1)); echo "$n"; sleep "$guest_counter"; done ) & ;;
esac
if [ "$disk_records" = 1 ]; then
  stty -onlcr 2>/dev/null
  disk_writer &
fi
wait $redis_pid
tail -5 /redis.log
halt_forever "redis-server exited"
EOF
chmod 755 "$root/init"

out="$work/out"
mkdir -p "$out"
cp "$work/kernel/boot/vmlinuz-$kernel_abi" "$out/vmlinuz"
(cd "$root" && find . | LC_ALL=C sort | "$root/bin/busybox" cpio -o -H newc 2>/dev/null) | gzip -9 >"$out/initrd.img"
{
  echo "packages: $package_manifest"
  echo "modules: ${module_order[*]}"
  echo "redis: $redis_binary as /usr/bin/redis-server"
  echo "initrd: $(du -k "$out/initrd.img" | cut -f1) KiB gzip"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
} >"$out/BUILDINFO"

mv -T "$out" "$guest_dir"
log "done: $guest_dir"
echo "$guest_dir"
