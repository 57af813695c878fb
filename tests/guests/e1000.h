/* A polling driver for the Intel 82540EM ("e1000", PCI 8086:100e), QEMU's default NIC on
 * `-M pc`, just big enough for a freestanding test guest to send and receive Ethernet frames.
 *
 * No interrupts: the caller polls e1000_receive() in its main loop. Everything the driver
 * knows lives in guest RAM (struct e1000, the descriptor rings, the buffers) or in the NIC's
 * registers, and it never measures time, so a guest checkpointed at any instant and resumed
 * on another QEMU from the same RAM and device state carries on where it stopped.
 *
 * Errors are printed on COM1 as "NET ERROR: ..." lines; functions also return them.
 * Single-threaded (the guest has one CPU and no interrupt handlers). */
#ifndef UNDERSTUDY_TESTS_GUESTS_E1000_H_
#define UNDERSTUDY_TESTS_GUESTS_E1000_H_

#include <stdint.h>

#define E1000_MAC_BYTES 6
#define E1000_MAX_FRAME 1514u /* Ethernet header + 1500-byte payload, no FCS */

struct e1000 {
  volatile uint8_t* registers; /* BAR0; paging is off, so the physical address works */
  uint8_t mac[E1000_MAC_BYTES];
  uint32_t rx_next;    /* the RX descriptor the NIC fills next, and the next we look at */
  uint32_t tx_next;    /* the TX descriptor the next frame goes into */
  uint32_t idle_polls; /* empty polls since the RX ring was last checked against the NIC */
};

/* Finds the NIC on PCI bus 0, turns on memory decoding and bus mastering, resets it, reads
 * its MAC address, sets up both rings and enables the receiver (broadcasts accepted, so ARP
 * requests arrive) and the transmitter. Returns 0, or -1 after printing why not. */
int e1000_init(struct e1000* nic);

/* Non-blocking. Returns the next received frame (without FCS) and stores its length, or
 * returns 0 when none is waiting. The frame stays valid until e1000_release(); call that
 * before the next e1000_receive(). Also notices, and repairs, an RX ring whose state
 * contradicts the NIC's, so the caller's polling loop never waits on a ring that cannot fill. */
const uint8_t* e1000_receive(struct e1000* nic, uint32_t* length);

/* Gives the buffer of the frame returned by the last e1000_receive() back to the NIC. */
void e1000_release(struct e1000* nic);

/* Sends one frame (Ethernet header onwards, no FCS; padded to the 60-byte minimum here).
 * REQUIRES: length <= E1000_MAX_FRAME. Returns 0 once the NIC reports it sent, -1 (printed)
 * if the NIC did not take it. */
int e1000_transmit(struct e1000* nic, const void* frame, uint32_t length);

#endif
