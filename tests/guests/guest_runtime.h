/* The little runtime every freestanding test guest shares: port I/O, COM1, the multiboot
 * command line, and number formatting. No libc exists in the guest. */
#ifndef UNDERSTUDY_TESTS_GUESTS_GUEST_RUNTIME_H_
#define UNDERSTUDY_TESTS_GUESTS_GUEST_RUNTIME_H_

#include <stdint.h>

struct multiboot_info {
  uint32_t flags;
  uint32_t mem_lower_kib;
  uint32_t mem_upper_kib; /* memory above 1 MiB, valid when flags bit 0 is set */
  uint32_t boot_device;
  uint32_t cmdline; /* physical address of a NUL-terminated string, flags bit 2 */
};

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MULTIBOOT_INFO_MEMORY (1u << 0)
#define MULTIBOOT_INFO_CMDLINE (1u << 2)

static inline void outb(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port) {
  uint8_t value;
  __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

static inline void outw(uint16_t port, uint16_t value) {
  __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint16_t inw(uint16_t port) {
  uint16_t value;
  __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

void serial_init(void);
void serial_write(const char* text);
void serial_write_u32(uint32_t value);

/* Finds "key=<decimal>" in the command line; returns fallback when absent or malformed. */
uint32_t cmdline_u32(const char* cmdline, const char* key, uint32_t fallback);

#endif
