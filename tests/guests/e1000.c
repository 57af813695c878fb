/* Polling driver for the 82540EM (e1000); see e1000.h for the contract.
 *
 * Register offsets and bit positions are those of Intel's "PCI/PCI-X Family of Gigabit
 * Ethernet Controllers Software Developer's Manual" (82540EM), which QEMU's e1000 models.
 * Only legacy descriptors are used: one 2 KiB buffer per descriptor, no offloads. */
#include "e1000.h"

#include "guest_runtime.h"

/* ---- PCI configuration space, mechanism #1 (ports 0xCF8/0xCFC) ---- */

enum {
  PCI_CONFIG_ADDRESS = 0xCF8,
  PCI_CONFIG_DATA = 0xCFC,
  PCI_VENDOR_DEVICE = 0x00,
  PCI_COMMAND = 0x04,
  PCI_COMMAND_MEMORY = 1u << 1,
  PCI_COMMAND_BUS_MASTER = 1u << 2,
  PCI_COMMAND_INTX_DISABLE = 1u << 10,
  PCI_BAR0 = 0x10,
  PCI_BAR_IO = 1u << 0,
};

#define E1000_PCI_ID 0x100E8086u /* device << 16 | vendor */

static inline void outl(uint16_t port, uint32_t value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }

static inline uint32_t inl(uint16_t port) {
  uint32_t value;
  __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

static uint32_t pci_address(uint32_t device, uint32_t function, uint32_t offset) {
  return 0x80000000u | (device << 11) | (function << 8) | (offset & 0xFCu); /* bus 0 */
}

static uint32_t pci_read32(uint32_t device, uint32_t function, uint32_t offset) {
  outl(PCI_CONFIG_ADDRESS, pci_address(device, function, offset));
  return inl(PCI_CONFIG_DATA);
}

/* A 16-bit write, so the status register next to the command register (whose bits are
 * write-one-to-clear) is left alone. */
static void pci_write16(uint32_t device, uint32_t function, uint32_t offset, uint16_t value) {
  outl(PCI_CONFIG_ADDRESS, pci_address(device, function, offset));
  outw((uint16_t)(PCI_CONFIG_DATA + (offset & 2u)), value);
}

/* ---- NIC registers and descriptors ---- */

enum {
  REG_CTRL = 0x0000,
  REG_EERD = 0x0014,
  REG_ICR = 0x00C0,
  REG_IMC = 0x00D8,
  REG_RCTL = 0x0100,
  REG_TCTL = 0x0400,
  REG_TIPG = 0x0410,
  REG_RDBAL = 0x2800,
  REG_RDBAH = 0x2804,
  REG_RDLEN = 0x2808,
  REG_RDH = 0x2810,
  REG_RDT = 0x2818,
  REG_TDBAL = 0x3800,
  REG_TDBAH = 0x3804,
  REG_TDLEN = 0x3808,
  REG_TDH = 0x3810,
  REG_TDT = 0x3818,
  REG_MTA = 0x5200, /* 128 words of multicast hash filter */
  REG_RAL0 = 0x5400,
  REG_RAH0 = 0x5404,
};

#define CTRL_ASDE (1u << 5)     /* auto-speed detection */
#define CTRL_SLU (1u << 6)      /* set link up */
#define CTRL_RST (1u << 26)     /* self-clearing device reset */
#define CTRL_LRST (1u << 3)     /* link reset */
#define CTRL_ILOS (1u << 7)     /* invert loss-of-signal */
#define CTRL_PHY_RST (1u << 31) /* PHY reset */
#define EERD_START (1u << 0)
#define EERD_DONE (1u << 4)
#define EERD_ADDRESS_SHIFT 8
#define EERD_DATA_SHIFT 16
#define RAH_ADDRESS_VALID (1u << 31)
#define RCTL_EN (1u << 1)
#define RCTL_BAM (1u << 15)   /* accept broadcasts: ARP requests are broadcast */
#define RCTL_SECRC (1u << 26) /* strip the FCS, so lengths are frame lengths */
/* RCTL.BSIZE = 00 with BSEX = 0: 2048-byte receive buffers. */
#define TCTL_EN (1u << 1)
#define TCTL_PSP (1u << 3) /* pad short packets */
#define TCTL_CT (0x0Fu << 4)
#define TCTL_COLD (0x40u << 12) /* full-duplex collision distance */
#define TIPG_DEFAULT (10u | (8u << 10) | (6u << 20))

#define DESC_DD 0x01u       /* RX and TX status: descriptor done */
#define RX_STATUS_EOP 0x02u /* the frame ends in this descriptor */
#define TX_CMD_EOP 0x01u    /* the frame ends in this descriptor */
#define TX_CMD_IFCS 0x02u   /* the NIC appends the FCS */
#define TX_CMD_RS 0x08u     /* report status: the NIC sets DD when sent */

struct rx_desc {
  uint32_t buffer_low;
  uint32_t buffer_high;
  uint16_t length;
  uint16_t checksum;
  uint8_t status;
  uint8_t errors;
  uint16_t special;
};

struct tx_desc {
  uint32_t buffer_low;
  uint32_t buffer_high;
  uint16_t length;
  uint8_t checksum_offset;
  uint8_t command;
  uint8_t status;
  uint8_t checksum_start;
  uint16_t special;
};

_Static_assert(sizeof(struct rx_desc) == 16, "legacy RX descriptors are 16 bytes");
_Static_assert(sizeof(struct tx_desc) == 16, "legacy TX descriptors are 16 bytes");

/* Ring lengths in bytes must be multiples of 128, i.e. of 8 descriptors. */
#define RX_DESCRIPTORS 32u
#define TX_DESCRIPTORS 8u
#define BUFFER_BYTES 2048u
#define MIN_FRAME 60u

/* How many empty polls pass between checks of the RX ring against the NIC's registers.
 * A count, not a time, so nothing depends on how fast the guest runs; but the guest may run
 * very slowly (tens of thousands of polls a second under a paravirtual KVM), so the count is
 * kept small: a check costs only two register reads (VM exits). */
#define RX_CHECK_INTERVAL (1u << 16)
/* How many polls of a TX descriptor before giving up on it. QEMU completes a transmit
 * inside the TDT write, so any wait at all is already unusual. */
#define TX_DONE_POLLS (1u << 16)
#define RESET_POLLS 100000u
#define EEPROM_POLLS 100000u

/* Descriptors and buffers: the NIC DMAs here. Paging is off, so their addresses are
 * physical ones. */
static volatile struct rx_desc rx_ring[RX_DESCRIPTORS] __attribute__((aligned(128)));
static volatile struct tx_desc tx_ring[TX_DESCRIPTORS] __attribute__((aligned(128)));
static uint8_t rx_buffers[RX_DESCRIPTORS][BUFFER_BYTES] __attribute__((aligned(16)));
static uint8_t tx_buffers[TX_DESCRIPTORS][BUFFER_BYTES] __attribute__((aligned(16)));

/* Keeps the compiler from moving descriptor and buffer accesses across each other; x86
 * orders the stores themselves, and QEMU's DMA is cache-coherent. */
static inline void barrier(void) { __asm__ volatile("" : : : "memory"); }

static uint32_t reg_read(const struct e1000* nic, uint32_t offset) {
  return *(volatile uint32_t*)(nic->registers + offset);
}

static void reg_write(const struct e1000* nic, uint32_t offset, uint32_t value) {
  *(volatile uint32_t*)(nic->registers + offset) = value;
}

static void net_error(const char* what, uint32_t number) {
  serial_write("NET ERROR: ");
  serial_write(what);
  serial_write_u32(number);
  serial_write("\n");
}

/* ---- bring-up ---- */

/* The BAR0 address of the first 8086:100e on bus 0, with memory decoding and bus mastering
 * (the NIC's DMA) on, or 0. */
static uint32_t find_nic_registers(void) {
  for (uint32_t device = 0; device < 32; ++device) {
    for (uint32_t function = 0; function < 8; ++function) {
      if (pci_read32(device, function, PCI_VENDOR_DEVICE) != E1000_PCI_ID) continue;
      uint32_t bar = pci_read32(device, function, PCI_BAR0);
      if ((bar & PCI_BAR_IO) != 0 || (bar & ~0xFu) == 0) {
        net_error("e1000 BAR0 is not an assigned memory BAR: ", bar);
        return 0;
      }
      uint32_t command = pci_read32(device, function, PCI_COMMAND) & 0xFFFFu;
      command |= PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER | PCI_COMMAND_INTX_DISABLE;
      pci_write16(device, function, PCI_COMMAND, (uint16_t)command);
      return bar & ~0xFu;
    }
  }
  serial_write("NET ERROR: no e1000 (PCI 8086:100e) on bus 0\n");
  return 0;
}

/* One 16-bit EEPROM word through EERD, or -1 if the NIC never says it is done. */
static int32_t eeprom_read(const struct e1000* nic, uint32_t word) {
  reg_write(nic, REG_EERD, (word << EERD_ADDRESS_SHIFT) | EERD_START);
  for (uint32_t poll = 0; poll < EEPROM_POLLS; ++poll) {
    uint32_t value = reg_read(nic, REG_EERD);
    if (value & EERD_DONE) return (int32_t)(value >> EERD_DATA_SHIFT);
  }
  return -1;
}

/* The MAC from receive address 0, which QEMU (and the NIC, from its EEPROM) fills at reset;
 * the EEPROM itself when that entry is not valid. Written back as a valid entry 0, since
 * it is also the receive filter for unicast frames. */
static int load_mac(struct e1000* nic) {
  uint32_t low = reg_read(nic, REG_RAL0);
  uint32_t high = reg_read(nic, REG_RAH0);
  if ((high & RAH_ADDRESS_VALID) == 0 || (low == 0 && (high & 0xFFFFu) == 0)) {
    low = 0;
    high = 0;
    for (uint32_t word = 0; word < 3; ++word) {
      int32_t value = eeprom_read(nic, word);
      if (value < 0) {
        net_error("EEPROM read timed out at word ", word);
        return -1;
      }
      if (word < 2) {
        low |= (uint32_t)value << (16 * word);
      } else {
        high = (uint32_t)value;
      }
    }
  }
  for (uint32_t i = 0; i < 4; ++i) nic->mac[i] = (uint8_t)(low >> (8 * i));
  for (uint32_t i = 0; i < 2; ++i) nic->mac[4 + i] = (uint8_t)(high >> (8 * i));
  reg_write(nic, REG_RAL0, low);
  reg_write(nic, REG_RAH0, (high & 0xFFFFu) | RAH_ADDRESS_VALID);
  return 0;
}

/* Hands every RX descriptor but one to the NIC, from descriptor 0; the one held back keeps
 * head == tail meaning "no buffers", never "all buffers". (QEMU's e1000 delivers nothing
 * for one second of virtual time after any RCTL write; frames wait in QEMU meanwhile.) */
static void setup_rx(struct e1000* nic) {
  reg_write(nic, REG_RCTL, 0);
  for (uint32_t i = 0; i < RX_DESCRIPTORS; ++i) {
    rx_ring[i].buffer_low = (uint32_t)(uintptr_t)rx_buffers[i];
    rx_ring[i].buffer_high = 0;
    rx_ring[i].status = 0;
  }
  barrier();
  reg_write(nic, REG_RDBAL, (uint32_t)(uintptr_t)rx_ring);
  reg_write(nic, REG_RDBAH, 0);
  reg_write(nic, REG_RDLEN, sizeof(rx_ring));
  reg_write(nic, REG_RDH, 0);
  reg_write(nic, REG_RDT, RX_DESCRIPTORS - 1);
  nic->rx_next = 0;
  reg_write(nic, REG_RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
}

/* Marks every TX descriptor free (DD set) and empties the ring. */
static void setup_tx(struct e1000* nic) {
  reg_write(nic, REG_TCTL, 0);
  for (uint32_t i = 0; i < TX_DESCRIPTORS; ++i) {
    tx_ring[i].buffer_low = (uint32_t)(uintptr_t)tx_buffers[i];
    tx_ring[i].buffer_high = 0;
    tx_ring[i].status = DESC_DD;
  }
  barrier();
  reg_write(nic, REG_TDBAL, (uint32_t)(uintptr_t)tx_ring);
  reg_write(nic, REG_TDBAH, 0);
  reg_write(nic, REG_TDLEN, sizeof(tx_ring));
  reg_write(nic, REG_TDH, 0);
  reg_write(nic, REG_TDT, 0);
  nic->tx_next = 0;
  reg_write(nic, REG_TIPG, TIPG_DEFAULT);
  reg_write(nic, REG_TCTL, TCTL_EN | TCTL_PSP | TCTL_CT | TCTL_COLD);
}

int e1000_init(struct e1000* nic) {
  uint32_t base = find_nic_registers();
  if (base == 0) return -1;
  nic->registers = (volatile uint8_t*)(uintptr_t)base;
  nic->idle_polls = 0;

  reg_write(nic, REG_CTRL, reg_read(nic, REG_CTRL) | CTRL_RST);
  uint32_t poll = 0;
  while ((reg_read(nic, REG_CTRL) & CTRL_RST) != 0) {
    if (++poll == RESET_POLLS) {
      net_error("e1000 reset did not complete, CTRL=", reg_read(nic, REG_CTRL));
      return -1;
    }
  }
  /* We poll: mask every interrupt cause and clear any pending one (ICR clears on read). */
  reg_write(nic, REG_IMC, 0xFFFFFFFFu);
  (void)reg_read(nic, REG_ICR);

  uint32_t control = reg_read(nic, REG_CTRL);
  control &= ~(CTRL_LRST | CTRL_ILOS | CTRL_PHY_RST);
  reg_write(nic, REG_CTRL, control | CTRL_SLU | CTRL_ASDE);

  if (load_mac(nic) != 0) return -1;
  for (uint32_t i = 0; i < 128; ++i) reg_write(nic, REG_MTA + 4 * i, 0);
  setup_rx(nic);
  setup_tx(nic);
  return 0;
}

/* ---- receive ---- */

/* The NIC writes a descriptor before it moves RDH past it, so with RDH read first, a
 * descriptor at rx_next without DD is only consistent with RDH == rx_next; and after our
 * last release RDT sits just behind rx_next. Anything else (a ring the NIC considers full
 * while we see nothing, a head beyond the ring) would stall the loop forever: rebuild. */
static void check_rx_ring(struct e1000* nic) {
  uint32_t head = reg_read(nic, REG_RDH);
  uint32_t tail = reg_read(nic, REG_RDT);
  barrier();
  if (rx_ring[nic->rx_next].status & DESC_DD) return; /* a frame arrived meanwhile */
  uint32_t expected_tail = (nic->rx_next + RX_DESCRIPTORS - 1) % RX_DESCRIPTORS;
  if (head == nic->rx_next && tail == expected_tail) return;
  serial_write("NET ERROR: RX ring out of step with the NIC (head ");
  serial_write_u32(head);
  serial_write(" tail ");
  serial_write_u32(tail);
  serial_write(", expected head ");
  serial_write_u32(nic->rx_next);
  serial_write(" tail ");
  serial_write_u32(expected_tail);
  serial_write("), rebuilding it\n");
  setup_rx(nic);
}

const uint8_t* e1000_receive(struct e1000* nic, uint32_t* length) {
  for (;;) {
    volatile struct rx_desc* desc = &rx_ring[nic->rx_next];
    uint8_t status = desc->status;
    if ((status & DESC_DD) == 0) {
      if (++nic->idle_polls >= RX_CHECK_INTERVAL) {
        nic->idle_polls = 0;
        check_rx_ring(nic);
      }
      return 0;
    }
    barrier(); /* read the descriptor's fields and buffer only after seeing DD */
    uint32_t size = desc->length;
    /* With 2 KiB buffers and long packets off every frame fits one descriptor; anything
     * else (a receive error, a fragment) is dropped rather than half-parsed. */
    if ((status & RX_STATUS_EOP) == 0 || desc->errors != 0 || size == 0 || size > E1000_MAX_FRAME) {
      e1000_release(nic);
      continue;
    }
    *length = size;
    return rx_buffers[nic->rx_next];
  }
}

void e1000_release(struct e1000* nic) {
  uint32_t index = nic->rx_next;
  rx_ring[index].status = 0;
  nic->rx_next = (index + 1) % RX_DESCRIPTORS;
  barrier();
  /* The released descriptor becomes the one held back; the previous one goes to the NIC. */
  reg_write(nic, REG_RDT, index);
}

/* ---- transmit ---- */

static int wait_tx_done(uint32_t index) {
  for (uint32_t poll = 0; poll < TX_DONE_POLLS; ++poll) {
    if (tx_ring[index].status & DESC_DD) return 0;
  }
  return -1;
}

int e1000_transmit(struct e1000* nic, const void* frame, uint32_t length) {
  uint32_t index = nic->tx_next;
  if (wait_tx_done(index) != 0) {
    /* A frame the NIC never finished: start the ring over rather than queue behind it. */
    net_error("TX descriptor never completed, rebuilding the TX ring; descriptor ", index);
    setup_tx(nic);
    index = nic->tx_next;
  }
  const uint8_t* source = frame;
  uint8_t* buffer = tx_buffers[index];
  uint32_t padded = length < MIN_FRAME ? MIN_FRAME : length;
  for (uint32_t i = 0; i < padded; ++i) buffer[i] = i < length ? source[i] : 0;

  volatile struct tx_desc* desc = &tx_ring[index];
  desc->length = (uint16_t)padded;
  desc->checksum_offset = 0;
  desc->checksum_start = 0;
  desc->special = 0;
  desc->command = TX_CMD_EOP | TX_CMD_IFCS | TX_CMD_RS;
  desc->status = 0;
  nic->tx_next = (index + 1) % TX_DESCRIPTORS;
  barrier();
  reg_write(nic, REG_TDT, nic->tx_next);
  if (wait_tx_done(index) != 0) {
    /* The NIC did not take the frame; rebuild the ring so the next frame has a chance. */
    net_error("frame not sent, rebuilding the TX ring; descriptor ", index);
    setup_tx(nic);
    return -1;
  }
  return 0;
}
