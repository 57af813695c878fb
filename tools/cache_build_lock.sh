# Sourced by the scripts that build something once into a cache outside the checkout
# (qemu/tcg/build.sh, tests/guests/linux/build.sh): the one way they take their cache.
#
# take_cache_or_exit RESULT
#   If the cache already holds the result (the caller's is_cached), prints RESULT and exits 0.
#   Otherwise takes $cache_root/.lock on fd 9 (waiting, with a message, for a concurrent build,
#   and exiting 0 with RESULT if that build produced it) and removes .build-* directories that
#   a killed run left behind, then returns holding the lock.
# REQUIRES: cache_root set; log, die and is_cached defined by the caller.
take_cache_or_exit() {
  local result=$1
  if is_cached; then
    log "cached: $result"
    echo "$result"
    exit 0
  fi
  mkdir -p "$cache_root" 2>/dev/null && [ -w "$cache_root" ] ||
    die "cannot write $cache_root: run as root, or set UNDERSTUDY_CACHE to a writable directory"
  exec 9>"$cache_root/.lock"
  if ! flock -n 9; then
    log "another build holds $cache_root/.lock; waiting for it"
    flock 9
  fi
  if is_cached; then  # built by the run we waited for
    log "cached: $result"
    echo "$result"
    exit 0
  fi
  # Holding the lock, no other build runs: a .build-* directory left now is from a killed run.
  rm -rf "$cache_root"/.build-*
}
