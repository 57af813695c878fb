/* The counter guest: a VM whose memory and console make rollbacks visible.
 *
 * Command line (multiboot, QEMU -append): "pages=N every=M"
 *   pages  distinct 4 KiB pages dirtied per pass (the dirty-rate knob), default 64
 *   every  passes between console lines, default 1000
 *
 * Each pass increments a sequence number and stores it in the first word of every one of
 * the N pages. Every M passes it prints the next line number on COM1: the k-th line since
 * boot is exactly "k". An observer that sees a number twice has seen a rollback; one that
 * sees a gap has lost output. */
#include "guest_runtime.h"

#define PAGE_SIZE 4096u
#define DIRTY_REGION_START 0x00400000u /* 4 MiB: above the guest image and its stack */

static uint32_t dirty_page_limit(const struct multiboot_info* info) {
  if ((info->flags & MULTIBOOT_INFO_MEMORY) == 0) return 0;
  uint32_t memory_end = 0x00100000u + info->mem_upper_kib * 1024u;
  if (memory_end <= DIRTY_REGION_START) return 0;
  return (memory_end - DIRTY_REGION_START) / PAGE_SIZE;
}

void guest_main(uint32_t magic, const struct multiboot_info* info) {
  serial_init();
  const char* cmdline = 0;
  if (magic == MULTIBOOT_BOOTLOADER_MAGIC && (info->flags & MULTIBOOT_INFO_CMDLINE) != 0) {
    cmdline = (const char*)info->cmdline;
  }
  uint32_t pages = cmdline_u32(cmdline, "pages", 64);
  uint32_t every = cmdline_u32(cmdline, "every", 1000);
  uint32_t limit = dirty_page_limit(info);
  if (pages > limit) pages = limit;
  if (every == 0) every = 1;

  volatile uint32_t* region = (volatile uint32_t*)DIRTY_REGION_START;
  uint32_t sequence = 0;
  uint32_t line = 0;
  uint32_t passes_since_line = 0;
  for (;;) {
    ++sequence;
    for (uint32_t page = 0; page < pages; ++page) region[page * (PAGE_SIZE / 4)] = sequence;
    if (++passes_since_line == every) {
      passes_since_line = 0;
      serial_write_u32(++line);
      serial_write("\n");
    }
  }
}
