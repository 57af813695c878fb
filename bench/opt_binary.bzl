"""opt_binary: runs a binary built with `-c opt`, whatever the command line asked for.

Benchmarks measure the code as it would be deployed: optimised. `bazel run` builds in
fastbuild (-O0) unless told `-c opt`, and an -O0 codec is several times slower, so a
benchmark wrapped in opt_binary builds itself, its libraries and its data dependencies (the
agents it starts) in opt mode through a configuration transition. `bazel run //bench:X` then
always measures optimised code.
"""

def _opt_transition_impl(settings, attr):
    return {"//command_line_option:compilation_mode": "opt"}

_opt_transition = transition(
    implementation = _opt_transition_impl,
    inputs = [],
    outputs = ["//command_line_option:compilation_mode"],
)

def _opt_binary_impl(ctx):
    target = ctx.attr.binary[0]
    info = target[DefaultInfo]
    executable = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(
        output = executable,
        target_file = info.files_to_run.executable,
        is_executable = True,
    )
    runfiles = ctx.runfiles(files = [executable]).merge(info.default_runfiles)
    return [DefaultInfo(executable = executable, runfiles = runfiles)]

opt_binary = rule(
    implementation = _opt_binary_impl,
    doc = "The executable `binary`, built with -c opt, with its runfiles.",
    executable = True,
    attrs = {
        "binary": attr.label(
            mandatory = True,
            executable = True,
            cfg = _opt_transition,
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
