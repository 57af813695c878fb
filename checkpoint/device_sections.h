// Splitting QEMU's device state into its SECTION_FULL sections.
//
// QEMU writes device sections without a length: `04 be32 section_id u8 len idstr be32
// instance be32 version <fields> 7e be32 section_id`, one after another, then an EOF byte.
// Two independent ways find the boundaries:
//  * by footers: after each header, the first `7e <same id>` that is followed by either the
//    final EOF or a plausible next section header;
//  * by the VM description (the JSON QEMU appends to a precopy): every field's size is listed,
//    so each section's length can be computed.
// SplitDeviceSections runs both when it has a VM description and fails if they disagree.
#ifndef UNDERSTUDY_CHECKPOINT_DEVICE_SECTIONS_H_
#define UNDERSTUDY_CHECKPOINT_DEVICE_SECTIONS_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace understudy::checkpoint {

struct DeviceSectionSpan {
  uint32_t section_id = 0;
  std::string name;       // QEMU's idstr, e.g. "cpu", "kvmclock", "0000:00:03.0/e1000"
  uint32_t instance = 0;
  uint32_t version = 0;
  size_t offset = 0;       // of the 04 byte within the buffer
  size_t size = 0;         // header through footer
  size_t data_offset = 0;  // the device's fields, between header and footer
  size_t data_size = 0;

  bool operator==(const DeviceSectionSpan&) const = default;
};

// `sections_and_eof` must end with the EOF byte (0x00).
Result<std::vector<DeviceSectionSpan>> SplitDeviceSectionsByFooters(std::span<const std::byte> sections_and_eof);

Result<std::vector<DeviceSectionSpan>> SplitDeviceSectionsByVmDescription(std::span<const std::byte> sections_and_eof,
                                                                          const nlohmann::json& vmdesc);

// Both ways; kCorruption naming the first section where they disagree.
Result<std::vector<DeviceSectionSpan>> SplitDeviceSectionsCrossChecked(std::span<const std::byte> sections_and_eof,
                                                                       const nlohmann::json& vmdesc);

// Bytes one device's fields and subsections occupy according to its VM-description entry.
// kCorruption for members of the wrong type, sizes that overflow, or nesting beyond 32.
Result<uint64_t> VmDescriptionDataSize(const nlohmann::json& device);

// kCorruption when `text` nests arrays/objects deeper than `max_depth`: check untrusted JSON
// before parsing it, because parsing and walking it recurse.
Status CheckJsonNesting(std::string_view text, int max_depth);

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_DEVICE_SECTIONS_H_
