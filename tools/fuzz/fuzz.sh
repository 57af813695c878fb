#!/usr/bin/env bash
# Builds one of Understudy's libFuzzer targets with clang++-14 (+ ASan, UBSan) outside Bazel's
# gcc toolchain, and runs it.
#
#   fuzz.sh smoke NAME             the test: compile, run on the seed corpus for 25 s, fail on any
#                                  crash, leak, timeout or sanitizer report. Writes a JUnit XML to
#                                  $XML_OUTPUT_FILE; without clang++-14/libFuzzer it reports the
#                                  test as skipped (and exits 0).
#   fuzz.sh run NAME [SECONDS] [LIBFUZZER_ARGS...]
#                                  a long run (default 300 s) that keeps what it finds in
#                                  ${FUZZ_WORK_DIR:-/tmp/understudy-fuzz}/NAME/{corpus,artifacts}.
#
# Bazel: //checkpoint/fuzz:qemu_stream_reader_fuzz_smoke and
#        bazel run //checkpoint/fuzz:run_fuzzer -- qemu_stream_reader 300
#        (each fuzzer lives beside its code, as //FOLDER/fuzz:NAME_fuzz_smoke and
#        bazel run //FOLDER/fuzz:run_fuzzer -- NAME: failover/fuzz etcd_reply,
#        replication/fuzz agent_protocol, qemu/fuzz vm_definition, disk/fuzz lineage_record,
#        control/fuzz control_request)
# It also runs straight from the source tree: tools/fuzz/fuzz.sh run qemu_stream_reader 300
set -uo pipefail

readonly SKIP_MESSAGE="skipped: clang++-14 with libFuzzer not installed"
readonly SMOKE_SECONDS=25
CXX=${FUZZ_CXX:-clang++-14}
LINK_LIBS=()
CXXFLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
          -fno-sanitize-recover=undefined)

usage() {
  echo "usage: $0 smoke NAME | run NAME [SECONDS] [LIBFUZZER_ARGS...]" >&2
  echo "fuzzers: qemu_stream_reader checkpoint_decoder checkpoint_apply etcd_reply agent_protocol vm_definition lineage_record control_request" >&2
  exit 2
}

# Sources (workspace-relative), seed corpus and dictionary of each fuzzer. The BUILD file's
# *_fuzzer_sources filegroup must carry these files and the headers they include.
fuzzer_sources() {
  case "$1" in
    qemu_stream_reader)
      SOURCES=(checkpoint/fuzz/qemu_stream_reader_fuzzer.cc checkpoint/qemu_stream_reader.cc
               checkpoint/device_sections.cc common/status.cc)
      SEED_CORPUS=checkpoint/fuzz/corpus/qemu_stream
      DICT=checkpoint/fuzz/qemu_stream.dict
      ;;
    checkpoint_decoder)
      SOURCES=(checkpoint/fuzz/checkpoint_decoder_fuzzer.cc checkpoint/checkpoint_codec.cc
               checkpoint/checkpoint_apply.cc checkpoint/page_codec.cc checkpoint/ram_image.cc
               checkpoint/dirty_page_set.cc common/crc32c.cc common/status.cc)
      SEED_CORPUS=checkpoint/fuzz/corpus/checkpoint
      DICT=""
      LINK_LIBS=(-llz4)
      ;;
    checkpoint_apply)
      SOURCES=(checkpoint/fuzz/checkpoint_apply_fuzzer.cc checkpoint/checkpoint_codec.cc
               checkpoint/checkpoint_apply.cc checkpoint/page_codec.cc checkpoint/ram_image.cc
               checkpoint/dirty_page_set.cc common/crc32c.cc common/status.cc)
      SEED_CORPUS=checkpoint/fuzz/corpus/checkpoint_apply
      DICT=""
      LINK_LIBS=(-llz4)
      ;;
    vm_definition)
      SOURCES=(qemu/fuzz/vm_definition_fuzzer.cc qemu/vm_definition.cc common/json_fields.cc common/status.cc)
      SEED_CORPUS=qemu/fuzz/corpus/vm_definition
      DICT=""
      LINK_LIBS=()
      ;;
    lineage_record)
      SOURCES=(disk/fuzz/lineage_record_fuzzer.cc disk/lineage_record.cc common/json_fields.cc common/status.cc)
      SEED_CORPUS=disk/fuzz/corpus/lineage_record
      DICT=""
      LINK_LIBS=()
      ;;
    etcd_reply)
      SOURCES=(failover/fuzz/etcd_reply_fuzzer.cc failover/etcd_reply.cc common/json_fields.cc common/base64.cc
               common/status.cc)
      SEED_CORPUS=failover/fuzz/corpus/etcd_reply
      DICT=""
      LINK_LIBS=()
      ;;
    agent_protocol)
      SOURCES=(replication/fuzz/agent_protocol_fuzzer.cc replication/agent_protocol.cc common/json_fields.cc
               common/status.cc)
      SEED_CORPUS=replication/fuzz/corpus/agent_protocol
      DICT=""
      LINK_LIBS=()
      ;;
    control_request)
      SOURCES=(control/fuzz/control_request_fuzzer.cc control/control_server.cc common/fd_io.cc common/log.cc common/json_fields.cc common/status.cc)
      SEED_CORPUS=control/fuzz/corpus/control_request
      DICT=""
      LINK_LIBS=(-pthread)
      ;;
    *) echo "unknown fuzzer '$1'" >&2; usage ;;
  esac
}

# The directory that holds the workspace's files: runfiles under Bazel, else the source tree.
workspace_root() {
  if [[ -n "${TEST_SRCDIR:-}" ]]; then
    echo "$TEST_SRCDIR/${TEST_WORKSPACE:-understudy}"
  elif [[ -n "${RUNFILES_DIR:-}" && -d "${RUNFILES_DIR}/understudy" ]]; then
    echo "$RUNFILES_DIR/understudy"
  elif [[ -d "$0.runfiles/understudy" ]]; then
    echo "$0.runfiles/understudy"
  else
    (cd "$(dirname "$0")/../.." && pwd)
  fi
}

xml_escape() {
  local text=$1
  text=${text//&/&amp;}; text=${text//</&lt;}; text=${text//>/&gt;}; text=${text//\"/&quot;}
  printf '%s' "$text"
}

# write_xml RESULT(passed|skipped|failed) MESSAGE SECONDS
write_xml() {
  [[ -n "${XML_OUTPUT_FILE:-}" ]] || return 0
  local result=$1 message seconds=$3 name=${TEST_TARGET:-$NAME} body="" failures=0 skipped=0
  message=$(xml_escape "$2")
  name=$(xml_escape "$name")
  case "$result" in
    skipped) body="<skipped message=\"$message\"/>"; skipped=1 ;;
    failed) body="<failure message=\"$message\"/>"; failures=1 ;;
  esac
  cat >"$XML_OUTPUT_FILE" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="1" failures="$failures" errors="0" skipped="$skipped">
  <testsuite name="$name" tests="1" failures="$failures" errors="0" skipped="$skipped" time="$seconds">
    <testcase name="$NAME" classname="fuzz.$NAME" time="$seconds">$body</testcase>
  </testsuite>
</testsuites>
EOF
}

# Whether $CXX can build and link a libFuzzer target with the sanitizers.
have_libfuzzer() {
  command -v "$CXX" >/dev/null 2>&1 || return 1
  local probe
  probe=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-probe.XXXXXX") || return 1
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe/probe.cc"
  "$CXX" "${CXXFLAGS[@]}" "$probe/probe.cc" -o "$probe/probe" >/dev/null 2>&1
  local status=$?
  rm -rf "$probe"
  return $status
}

# build ROOT OUT_DIR: compiles $SOURCES in parallel and links $OUT_DIR/$NAME.
build() {
  local root=$1 out=$2 pids=() objects=() i=0 failed=0
  mkdir -p "$out"
  for source in "${SOURCES[@]}"; do
    local object="$out/$i.o"
    objects+=("$object")
    "$CXX" "${CXXFLAGS[@]}" -I"$root" -c "$root/$source" -o "$object" &
    pids+=($!)
    i=$((i + 1))
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [[ $failed -eq 0 ]] || return 1
  "$CXX" "${CXXFLAGS[@]}" "${objects[@]}" "${LINK_LIBS[@]}" -o "$out/$NAME"
}

sanitizer_environment() {
  local symbolizer
  for symbolizer in /usr/lib/llvm-14/bin/llvm-symbolizer /usr/bin/llvm-symbolizer-14; do
    [[ -x $symbolizer ]] && export ASAN_SYMBOLIZER_PATH=$symbolizer UBSAN_SYMBOLIZER_PATH=$symbolizer && break
  done
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
}

smoke() {
  local start=$SECONDS root work log
  if ! have_libfuzzer; then
    echo "$SKIP_MESSAGE"
    write_xml skipped "$SKIP_MESSAGE" 0
    exit 0
  fi
  root=$(workspace_root)
  work=${TEST_TMPDIR:-$(mktemp -d)}/fuzz
  mkdir -p "$work/new_corpus" "$work/artifacts"
  local artifacts=${TEST_UNDECLARED_OUTPUTS_DIR:-$work/artifacts}
  if ! build "$root" "$work/build"; then
    echo "FAILED: $NAME fuzzer did not compile with $CXX"
    write_xml failed "the fuzzer did not compile with $CXX" $((SECONDS - start))
    exit 1
  fi
  local seeds=$root/$SEED_CORPUS
  local seed_count
  seed_count=$(find -L "$seeds" -type f | wc -l)
  if [[ $seed_count -eq 0 ]]; then
    echo "FAILED: no seed corpus in $seeds"
    write_xml failed "no seed corpus in $SEED_CORPUS" $((SECONDS - start))
    exit 1
  fi
  sanitizer_environment
  log=$work/fuzz.log
  echo "running $NAME for ${SMOKE_SECONDS}s on $seed_count seeds"
  # New inputs go to a scratch directory (first corpus argument); the seeds stay untouched.
  "$work/build/$NAME" -max_total_time=$SMOKE_SECONDS -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
    ${DICT:+-dict="$root/$DICT"} -artifact_prefix="$artifacts/" "$work/new_corpus" "$seeds" >"$log" 2>&1
  local status=$?
  grep -E '^INFO: seed corpus|^#[0-9]+[[:space:]]+(INITED|DONE)|^Done |^stat::' "$log" || true
  if [[ $status -ne 0 ]] || ! grep -q '^Done [0-9]* runs' "$log"; then
    echo "---- fuzzer output (last 150 lines) ----"
    tail -n 150 "$log"
    echo "FAILED: $NAME fuzzer exited with status $status; crashing inputs are in the test's undeclared outputs"
    write_xml failed "the fuzzer found a problem (exit status $status); see the test log" $((SECONDS - start))
    exit 1
  fi
  write_xml passed "" $((SECONDS - start))
  echo "PASSED: $NAME ran ${SMOKE_SECONDS}s without a finding"
}

run() {
  local seconds=${1:-300}
  shift || true
  if ! have_libfuzzer; then
    echo "$SKIP_MESSAGE (apt-get install -y clang-14 libclang-rt-14-dev)" >&2
    exit 1
  fi
  local root seeds work
  root=$(workspace_root)
  # Seeds from the source tree when run with bazel run, so new seeds need no rebuild.
  seeds=${BUILD_WORKSPACE_DIRECTORY:-$root}/$SEED_CORPUS
  [[ -d $seeds ]] || seeds=$root/$SEED_CORPUS
  work=${FUZZ_WORK_DIR:-/tmp/understudy-fuzz}/$NAME
  mkdir -p "$work/corpus" "$work/artifacts"
  echo "building $NAME with $CXX in $work/build"
  build "$root" "$work/build" || { echo "the fuzzer did not compile" >&2; exit 1; }
  sanitizer_environment
  echo "fuzzing $NAME for ${seconds}s; corpus $work/corpus (+ seeds $seeds); findings in $work/artifacts"
  "$work/build/$NAME" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
    ${DICT:+-dict="$root/$DICT"} -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds"
  local status=$?
  echo "fuzzer exit status $status; corpus: $(find "$work/corpus" -type f | wc -l) inputs;" \
       "findings: $(find "$work/artifacts" -type f | wc -l) in $work/artifacts"
  exit $status
}

[[ $# -ge 2 ]] || usage
MODE=$1
NAME=$2
shift 2
fuzzer_sources "$NAME"
case "$MODE" in
  smoke) smoke ;;
  run) run "$@" ;;
  *) usage ;;
esac
