#include "guest_runtime.h"

enum {
  COM1 = 0x3f8,
  UART_DATA = 0,
  UART_INTERRUPT_ENABLE = 1,
  UART_FIFO_CONTROL = 2,
  UART_LINE_CONTROL = 3,
  UART_MODEM_CONTROL = 4,
  UART_LINE_STATUS = 5,
  UART_LINE_STATUS_THR_EMPTY = 0x20,
};

void serial_init(void) {
  outb(COM1 + UART_INTERRUPT_ENABLE, 0x00);
  outb(COM1 + UART_LINE_CONTROL, 0x80); /* DLAB on: next two writes set the divisor */
  outb(COM1 + UART_DATA, 0x01);         /* 115200 baud */
  outb(COM1 + UART_INTERRUPT_ENABLE, 0x00);
  outb(COM1 + UART_LINE_CONTROL, 0x03); /* 8 data bits, no parity, one stop bit */
  outb(COM1 + UART_FIFO_CONTROL, 0xc7);
  outb(COM1 + UART_MODEM_CONTROL, 0x03);
}

static void serial_put(char c) {
  while ((inb(COM1 + UART_LINE_STATUS) & UART_LINE_STATUS_THR_EMPTY) == 0) {
  }
  outb(COM1 + UART_DATA, (uint8_t)c);
}

void serial_write(const char* text) {
  for (; *text != '\0'; ++text) serial_put(*text);
}

void serial_write_u32(uint32_t value) {
  char digits[11];
  int count = 0;
  do {
    digits[count++] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) serial_put(digits[--count]);
}

static int starts_with_key(const char* at, const char* key) {
  while (*key != '\0') {
    if (*at++ != *key++) return 0;
  }
  return *at == '=';
}

uint32_t cmdline_u32(const char* cmdline, const char* key, uint32_t fallback) {
  if (cmdline == 0) return fallback;
  for (const char* at = cmdline; *at != '\0'; ++at) {
    int at_word_start = (at == cmdline) || at[-1] == ' ';
    if (!at_word_start || !starts_with_key(at, key)) continue;
    const char* digit = at;
    while (*digit != '=') ++digit;
    ++digit;
    if (*digit < '0' || *digit > '9') return fallback;
    uint32_t value = 0;
    for (; *digit >= '0' && *digit <= '9'; ++digit) value = value * 10 + (uint32_t)(*digit - '0');
    return value;
  }
  return fallback;
}
