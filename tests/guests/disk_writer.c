/* The disk guest: a VM whose disk and memory must agree, and that says so when they do not.
 *
 * Command line: "delay=N" (busy-loop iterations between records, default 200000).
 *
 * It appends numbered records to its disk — record k in sector k (LBA28, ATA PIO on the
 * primary IDE channel, cache flushed after every write) — and counts them in memory only.
 * After record k is on the disk it prints "k" on COM1, so the k-th console line is "k" and
 * the console-continuity oracle applies unchanged.
 *
 * Verification, at boot and before every append: with `count` records in memory, sector
 * `count` must hold record `count` and sector `count + 1` must hold no record. A disk ahead
 * of memory (writes from after the checkpoint were applied) or behind it (committed writes
 * lost) prints "VERIFY FAILED: ..." and the guest stops writing. After a failover the
 * promoted guest resumes inside this loop, so its very next append checks the disk it
 * was handed against the memory it was handed. */
#include "guest_runtime.h"

enum {
  ATA_DATA = 0x1F0,
  ATA_SECTOR_COUNT = 0x1F2,
  ATA_LBA_LOW = 0x1F3,
  ATA_LBA_MID = 0x1F4,
  ATA_LBA_HIGH = 0x1F5,
  ATA_DRIVE = 0x1F6,
  ATA_STATUS = 0x1F7, /* read */
  ATA_COMMAND = 0x1F7, /* write */
  ATA_CONTROL = 0x3F6,
  ATA_BUSY = 0x80,
  ATA_FAULT = 0x20,
  ATA_DATA_REQUEST = 0x08,
  ATA_ERROR = 0x01,
  ATA_READ_SECTORS = 0x20,
  ATA_WRITE_SECTORS = 0x30,
  ATA_FLUSH_CACHE = 0xE7,
};

#define RECORD_MAGIC 0x52445355u /* "USDR" */
#define SECTOR_WORDS 128u        /* 32-bit words in a 512-byte sector */

static uint32_t sector[SECTOR_WORDS];

static void halt(void) {
  for (;;) __asm__ volatile("hlt");
}

static void fail(const char* what, uint32_t number) {
  serial_write("VERIFY FAILED: ");
  serial_write(what);
  serial_write_u32(number);
  serial_write("\n");
  halt();
}

/* Waits until the drive is idle; 0 on success, -1 on a drive error. */
static int ata_wait(int want_data) {
  for (;;) {
    uint8_t status = inb(ATA_STATUS);
    if (status & ATA_BUSY) continue;
    if (status & (ATA_ERROR | ATA_FAULT)) return -1;
    if (!want_data || (status & ATA_DATA_REQUEST)) return 0;
  }
}

static void ata_select(uint32_t lba, uint8_t command) {
  outb(ATA_DRIVE, (uint8_t)(0xE0u | ((lba >> 24) & 0x0Fu))); /* master, LBA mode */
  outb(ATA_SECTOR_COUNT, 1);
  outb(ATA_LBA_LOW, (uint8_t)lba);
  outb(ATA_LBA_MID, (uint8_t)(lba >> 8));
  outb(ATA_LBA_HIGH, (uint8_t)(lba >> 16));
  outb(ATA_COMMAND, command);
}

static void read_sector(uint32_t lba) {
  if (ata_wait(0) != 0) fail("drive error before reading sector ", lba);
  ata_select(lba, ATA_READ_SECTORS);
  if (ata_wait(1) != 0) fail("drive error reading sector ", lba);
  uint16_t* words = (uint16_t*)sector;
  for (uint32_t i = 0; i < SECTOR_WORDS * 2; ++i) words[i] = inw(ATA_DATA);
}

static void write_sector(uint32_t lba) {
  if (ata_wait(0) != 0) fail("drive error before writing sector ", lba);
  ata_select(lba, ATA_WRITE_SECTORS);
  if (ata_wait(1) != 0) fail("drive error writing sector ", lba);
  const uint16_t* words = (const uint16_t*)sector;
  for (uint32_t i = 0; i < SECTOR_WORDS * 2; ++i) outw(ATA_DATA, words[i]);
  if (ata_wait(0) != 0) fail("drive error after writing sector ", lba);
  outb(ATA_COMMAND, ATA_FLUSH_CACHE);
  if (ata_wait(0) != 0) fail("drive error flushing after sector ", lba);
}

static void fill_record(uint32_t number) {
  sector[0] = RECORD_MAGIC;
  sector[1] = number;
  for (uint32_t i = 2; i < SECTOR_WORDS; ++i) sector[i] = number * 2654435761u + i;
}

/* 1 if the sector just read holds record `number` exactly, 0 if it holds no record; fails
 * on anything else (another record, a torn one). */
static int sector_holds(uint32_t number) {
  if (sector[0] != RECORD_MAGIC) return 0;
  if (sector[1] != number) fail("the disk holds a different record where this one belongs: ", number);
  for (uint32_t i = 2; i < SECTOR_WORDS; ++i) {
    if (sector[i] != number * 2654435761u + i) fail("torn record ", number);
  }
  return 1;
}

static void verify(uint32_t count) {
  if (count > 0) {
    read_sector(count);
    if (!sector_holds(count)) fail("record missing from the disk (memory says it was written): ", count);
  }
  read_sector(count + 1);
  if (sector[0] == RECORD_MAGIC) fail("disk is ahead of memory: it already holds record ", count + 1);
}

void guest_main(uint32_t magic, const struct multiboot_info* info) {
  serial_init();
  const char* cmdline = 0;
  if (magic == MULTIBOOT_BOOTLOADER_MAGIC && (info->flags & MULTIBOOT_INFO_CMDLINE) != 0) {
    cmdline = (const char*)info->cmdline;
  }
  uint32_t delay = cmdline_u32(cmdline, "delay", 200000);
  outb(ATA_CONTROL, 0x02); /* nIEN: no interrupts, we poll */

  uint32_t count = 0; /* records written, kept in memory only */
  for (;;) {
    verify(count);
    fill_record(count + 1);
    write_sector(count + 1);
    ++count;
    serial_write_u32(count);
    serial_write("\n");
    for (volatile uint32_t spin = 0; spin < delay; ++spin) {
    }
  }
}
