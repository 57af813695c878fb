"""freestanding_guest: builds a 32-bit multiboot ELF that QEMU boots with -kernel.

The guests run without libc under a paravirtual KVM, so they are compiled with the host's gcc
in freestanding 32-bit mode and linked by guest.ld, not by Bazel's C++ toolchain (which
targets the host).
"""

_CFLAGS = " ".join([
    "-m32",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-nostdlib",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
])

def freestanding_guest(name, srcs, hdrs = [], visibility = None):
    """Declares `<name>.elf`, built from srcs plus the shared guest runtime."""
    all_srcs = srcs + ["guest_runtime.c", "multiboot_entry.S"]
    all_hdrs = hdrs + ["guest_runtime.h"]
    objects = []
    commands = ["set -e", "obj=$$(mktemp -d)"]
    for src in all_srcs:
        obj = "$$obj/" + src.replace("/", "_") + ".o"
        objects.append(obj)
        commands.append("gcc %s -I$$(dirname $(location %s)) -c $(location %s) -o %s" % (_CFLAGS, src, src, obj))
    commands.append("ld -m elf_i386 -z noexecstack --no-warn-rwx-segments -T $(location guest.ld) -o $@ " + " ".join(objects))
    commands.append("rm -rf $$obj")
    native.genrule(
        name = name,
        srcs = all_srcs + all_hdrs + ["guest.ld"],
        outs = [name + ".elf"],
        cmd = "; ".join(commands),
        visibility = visibility,
    )
