// The RAM-equality oracle: at one checkpoint, is the secondary's committed image of the guest's
// RAM (block "pc.ram") the primary's guest RAM, page for page? It proves dirty tracking
// complete — a page the guest wrote but no checkpoint carried shows up as a difference.
//
// How (CheckRamAtCheckpoint): the primary holds QEMU's VM stopped at epoch N (test-only
// test_hold_checkpoint: before it answers vmstate-loaded, so QEMU keeps the VM stopped and
// starts no further checkpoint); the oracle reads the stopped guest's physical memory through
// QEMU (QMP pmemsave, on a monitor of the test's own), waits until the secondary committed
// epoch N, has it write its committed pc.ram (test-only test_dump_ram, taken between commits
// by its commit thread), releases the hold and compares.
//
// Layout (-M pc with at most ~3.5 GiB of RAM): pc.ram offset X is guest-physical address X,
// except 0xA0000-0xFFFFF, where the legacy VGA window and the option/BIOS ROMs shadow RAM —
// what pmemsave reads there is device memory, not pc.ram, so those 96 pages are skipped (and
// counted as skipped). Other RAM blocks (ROMs, vga.vram) are not compared.
#ifndef UNDERSTUDY_TESTS_HARNESS_RAM_ORACLE_H_
#define UNDERSTUDY_TESTS_HARNESS_RAM_ORACLE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "qemu/qmp_client.h"
#include "tests/harness/agent_pair.h"

namespace understudy::testing {

struct RamComparison {
  uint64_t epoch = 0;
  uint64_t pages_compared = 0;
  uint64_t pages_skipped = 0;                    // the 0xA0000-0xFFFFF window
  uint64_t pages_differing = 0;
  std::vector<uint64_t> first_differing;          // guest-physical addresses, up to 8
  // For each of first_differing: the first differing 32-bit word (little-endian) on each
  // side and its offset in the page — e.g. the counter guest's sequence number, showing how
  // stale the secondary's copy is.
  struct WordDifference {
    uint32_t offset = 0;
    uint32_t primary = 0;
    uint32_t secondary = 0;
  };
  std::vector<WordDifference> first_words;
  uint64_t nonzero_pages = 0;                     // of the compared ones, in the primary's RAM
  double hold_ms = 0;                             // how long the VM was held stopped
  double compare_ms = 0;

  bool equal() const { return pages_differing == 0; }
  // "epoch N: P pages equal" or the differing pages' addresses.
  std::string Describe() const;
};

// Compares `primary` (guest-physical memory from address 0) with `secondary` (pc.ram from
// offset 0), page by page, over the shorter of the two, skipping 0xA0000-0xFFFFF.
RamComparison ComparePcRam(std::span<const std::byte> primary, std::span<const std::byte> secondary);

// The whole procedure above at epoch `epoch` (which must lie ahead of the primary's captured
// epoch). `monitor` is a QMP monitor of the primary's QEMU; `scratch` a directory both QEMU
// and the secondary can write; `ram_bytes` the guest's RAM size. Always releases the hold.
// `already_armed`: the hold for `epoch` was armed by the configuration
// (AgentPairOptions::hold_checkpoint_at_epoch), not here.
Result<RamComparison> CheckRamAtCheckpoint(const AgentPair& pair, qemu::QmpClient& monitor, uint64_t epoch,
                                           const std::string& scratch, uint64_t ram_bytes, bool already_armed = false);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_HARNESS_RAM_ORACLE_H_
