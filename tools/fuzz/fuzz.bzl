"""One fuzz target = the same rules everywhere; these macros write them.

    load("//tools/fuzz:fuzz.bzl", "understudy_fuzz_runner", "understudy_fuzz_target")

    understudy_fuzz_target(
        name = "etcd_reply",                     # fuzz.sh's name for it
        fuzzer = "etcd_reply_fuzzer.cc",
        corpus = "corpus/etcd_reply",            # seed corpus folder, in this package
        clang_srcs = [...],                      # what clang++ needs besides the fuzzer
        deps = [...],                            # the corpus test's deps (default toolchain)
    )
    understudy_fuzz_runner(name = "run_fuzzer", fuzzers = ["etcd_reply"])

For a fuzzer NAME, understudy_fuzz_target makes:

  NAME_fuzzer_sources  filegroup: the fuzzer, its dictionary and clang_srcs, shipped as runfiles
                       to tools/fuzz/fuzz.sh, which compiles the .cc files its own table names
                       for NAME with clang++-14 + libFuzzer + ASan/UBSan (gcc has no libFuzzer);
  NAME_corpus          filegroup: every file in the seed corpus folder;
  NAME_fuzz_smoke      sh_test, tag "fuzz": builds the fuzzer and runs it 25 s on the seeds,
                       fails on any finding; skipped (JUnit <skipped/>) without clang;
  NAME_corpus_test     cc_test: every corpus file through the same harness built with the
                       default toolchain (tools/fuzz/corpus_replay_main.cc), so it runs
                       everywhere, under --config=asan and --config=tsan too.

A new fuzzer also needs its entry in fuzz.sh's fuzzer_sources table (sources, seed corpus,
dictionary, libraries), which `fuzz.sh run` uses from the source tree without Bazel.
"""

_FUZZ_SH = "//tools/fuzz:fuzz.sh"
_CORPUS_REPLAY_MAIN = "//tools/fuzz:corpus_replay_main.cc"

def understudy_fuzz_target(
        name,
        fuzzer,
        corpus,
        clang_srcs,
        deps,
        dictionary = None,
        corpus_test_srcs = [],
        linkopts = []):
    """The sources filegroup, corpus filegroup, smoke test and corpus test of fuzzer `name`.

    Args:
      name: the fuzzer's name in tools/fuzz/fuzz.sh; prefix of every target made.
      fuzzer: the .cc file that defines LLVMFuzzerTestOneInput, in this package.
      corpus: the seed corpus folder, relative to this package.
      clang_srcs: every other file the clang build needs: the .cc files fuzz.sh compiles and
        every header they include (Bazel ships only these to fuzz.sh).
      deps: cc deps of the corpus test, built with the default toolchain.
      dictionary: an optional libFuzzer dictionary in this package (fuzz.sh passes it with -dict).
      corpus_test_srcs: sources the corpus test compiles besides the fuzzer and the replayer
        (code that has no cc_library of its own).
      linkopts: linkopts of the corpus test.
    """
    native.filegroup(
        name = name + "_fuzzer_sources",
        srcs = [fuzzer] + ([dictionary] if dictionary else []) + clang_srcs,
    )
    native.filegroup(
        name = name + "_corpus",
        srcs = native.glob([corpus + "/*"]),
    )
    native.sh_test(
        name = name + "_fuzz_smoke",
        size = "medium",
        srcs = [_FUZZ_SH],
        args = [
            "smoke",
            name,
        ],
        data = [
            ":" + name + "_corpus",
            ":" + name + "_fuzzer_sources",
        ],
        tags = ["fuzz"],
    )
    native.cc_test(
        name = name + "_corpus_test",
        size = "small",
        srcs = [
            fuzzer,
            _CORPUS_REPLAY_MAIN,
        ] + corpus_test_srcs,
        args = [native.package_name() + "/" + corpus],
        data = [":" + name + "_corpus"],
        linkopts = linkopts,
        deps = deps,
    )

def understudy_fuzz_runner(name, fuzzers):
    """`bazel run //<pkg>:<name> -- FUZZER [SECONDS] [LIBFUZZER_ARGS...]`: a long run of one of
    `fuzzers` (understudy_fuzz_target names of this package), outside the suite."""
    data = []
    for fuzzer in fuzzers:
        data += [
            ":" + fuzzer + "_corpus",
            ":" + fuzzer + "_fuzzer_sources",
        ]
    native.sh_binary(
        name = name,
        srcs = [_FUZZ_SH],
        args = ["run"],
        data = data,
    )
