/* Multiboot (v1) entry for Understudy's freestanding test guests.
 *
 * QEMU's -kernel loader finds this header in the first 8 KiB of the ELF, loads the
 * segments, and jumps to _start in 32-bit protected mode with paging off, EAX holding the
 * multiboot magic and EBX the physical address of the multiboot information block. */

#define MULTIBOOT_MAGIC 0x1BADB002
#define MULTIBOOT_FLAGS 0x00000003 /* page-align modules, provide the memory map */

        .section .multiboot, "a"
        .align 4
        .long MULTIBOOT_MAGIC
        .long MULTIBOOT_FLAGS
        .long -(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)

        .section .text
        .global _start
_start:
        cli
        mov $boot_stack_top, %esp
        push %ebx
        push %eax
        call guest_main
halt_forever:
        hlt
        jmp halt_forever

        .section .note.GNU-stack, "", @progbits

        .section .bss
        .align 16
boot_stack:
        .skip 16384
boot_stack_top:
