// RamBlockInfo: one of QEMU's RAM blocks as the migration stream announces it.
#ifndef UNDERSTUDY_CHECKPOINT_RAM_BLOCK_H_
#define UNDERSTUDY_CHECKPOINT_RAM_BLOCK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace understudy::checkpoint {

struct RamBlockInfo {
  std::string id;            // QEMU's idstr, e.g. "pc.ram", "/rom@etc/acpi/tables"
  uint64_t used_length = 0;  // bytes, a multiple of the 4 KiB page
  std::optional<uint64_t> guest_physical_address;  // only in streams with x-ignore-shared

  bool operator==(const RamBlockInfo&) const = default;
};

using RamBlockList = std::vector<RamBlockInfo>;

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_RAM_BLOCK_H_
