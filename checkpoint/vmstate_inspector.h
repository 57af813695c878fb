// VMState inspection: what is inside QEMU's device state, field by field, and what changed
// between two checkpoints.
//
// QEMU's device sections carry no field boundaries: `<fields> [subsections]` are just bytes
// (notes/qemu-colo-stream.md). At the end of the initial precopy, though, QEMU appends a VM
// description (JSON) that lists, for every device section it wrote, each field's name, type
// and size in bytes, nested structs, compressed arrays ("array_len": one description for N
// identical elements) and the subsections that were present. This file lays those
// descriptions over the bytes, so a device's data becomes a list of named spans:
//
//   cpu      env.regs[0] … env.regs[15], env.eip, env.segs[1].base, …,
//            cpu/tsc_khz (subsection header: 05, u8 len, name, be32 version),
//            cpu/tsc_khz/env.tsc_khz
//
// The description is only trusted where the bytes agree with it. A device is laid out field by
// field only when its section's data size equals the size the description computes, its
// version matches, and every subsection header sits exactly where the description puts it;
// otherwise the device is reported opaque (its size only) with the reason. That matters for
// checkpoints: QEMU describes the precopy only, and a later checkpoint's device may carry
// another set of subsections or a variable-sized buffer of a different length. A nested struct
// whose own description does not add up to the size recorded for it stays one span of type
// "struct" rather than being split by guesswork.
//
// Paths name a field within its device: struct members are joined with '.', array elements get
// "[i]", and a subsection's fields are prefixed with the subsection's name and '/' (QEMU's
// subsection names already start with their parent's name, e.g. "cpu/tsc_khz").
//
// Values: QEMU writes integers big-endian, except types QEMU names with an " le" suffix
// ("int32 le"). FormatFieldValue honours that; everything else is shown byte for byte.
//
// Thread safety: free functions on values; safe to call concurrently.
#ifndef UNDERSTUDY_CHECKPOINT_VMSTATE_INSPECTOR_H_
#define UNDERSTUDY_CHECKPOINT_VMSTATE_INSPECTOR_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/device_sections.h"
#include "common/result.h"

namespace understudy::checkpoint {

// Parses the VM description's JSON text (what QemuStreamVisitor::OnVmDescription receives) and
// checks its shape: an object with a "devices" array whose entries, fields, structs and
// subsections have the names, sizes and types laying out needs. kCorruption naming the
// offending device and field otherwise. Never throws.
//
// Sizes, counts, versions and instance ids must be unsigned JSON numbers, which is what parsing
// text yields for non-negative integers; a description built in code must store them as
// unsigned too (`field["size"] = uint64_t{8}`), as device_sections.h expects.
Result<nlohmann::json> ParseVmDescription(std::string_view json_text);

// Checks the shape of an already parsed VM description, as ParseVmDescription does.
Status ValidateVmDescription(const nlohmann::json& vmdesc);

// One named run of bytes within a device section's data.
struct FieldSpan {
  enum class Kind {
    kValue,             // a field's bytes (or a whole struct's, when it could not be split)
    kSubsectionHeader,  // 05, u8 name length, name, be32 version: framing, not device state
  };
  Kind kind = Kind::kValue;
  std::string path;  // within the device, e.g. "env.regs[3]", "env.segs[1].base", "cpu/tsc_khz"
  std::string type;  // QEMU's VMState type name: "uint64", "buffer", "int32 le", "struct", ...
  size_t offset = 0;  // from the start of the section's data (DeviceSectionSpan::data_offset)
  size_t size = 0;

  bool operator==(const FieldSpan&) const = default;
};

// One device section and, when the VM description fits its bytes, its fields.
struct DeviceLayout {
  DeviceSectionSpan section;  // offsets into the buffer DescribeDevices was given
  std::string vmsd_name;      // QEMU's VMState name, e.g. "e1000"; empty if not described
  // Why the device is not laid out field by field; empty when it is.
  std::string opaque_reason;
  // In stream order; when decoded they tile [0, section.data_size) exactly, with no gaps.
  std::vector<FieldSpan> fields;

  bool decoded() const { return opaque_reason.empty(); }
  // Fields of kind kValue (what a person would call the device's fields).
  size_t value_field_count() const;
};

// Splits `sections_and_eof` (SECTION_FULL device sections followed by the EOF byte: the
// precopy's device state or a checkpoint's vmstate-size buffer) at its section footers and lays
// out every section whose name and instance the VM description lists and whose bytes agree with
// it (see the top of this file); the others come back opaque with the reason.
// Fails (kCorruption) only when the buffer cannot be split into sections, naming the offset, or
// when `vmdesc` is malformed (see ValidateVmDescription).
Result<std::vector<DeviceLayout>> DescribeDevices(std::span<const std::byte> sections_and_eof,
                                                  const nlohmann::json& vmdesc);

// The bytes of `field` within `buffer`.
// REQUIRES: `buffer` is the one `layout` was described from (or one laid out identically).
std::span<const std::byte> FieldBytes(std::span<const std::byte> buffer, const DeviceLayout& layout,
                                      const FieldSpan& field);

// "0x…" with two digits per byte for fields of at most 8 bytes: the integer value for QEMU's
// integer types (big-endian, or little-endian for " le" types), the bytes in order otherwise.
// Empty for longer fields.
std::string FormatFieldValue(std::string_view type, std::span<const std::byte> bytes);

// A field whose bytes differ between two device states.
struct FieldDifference {
  std::string path;
  std::string type;
  size_t offset = 0;  // within the section's data
  size_t size = 0;
  // FormatFieldValue of the old and new bytes: set for fields of at most 8 bytes.
  std::optional<std::string> before_value;
  std::optional<std::string> after_value;
  size_t bytes_differing = 0;
};

// A device whose state differs between two device states.
struct DeviceDifference {
  enum class Change {
    kFields,   // laid out in both: `fields` lists what changed
    kOpaque,   // bytes differ but at least one side could not be laid out (see `opaque_reason`)
    kAdded,    // only in the after state
    kRemoved,  // only in the before state
  };
  std::string name;
  uint32_t instance = 0;
  Change change = Change::kFields;
  size_t before_data_size = 0;  // 0 when added
  size_t after_data_size = 0;   // 0 when removed
  std::string opaque_reason;
  std::vector<FieldDifference> fields;  // kFields only; in stream order
};

struct DeviceStateDiff {
  std::vector<DeviceDifference> changed;  // in the order of the after state, removed ones last
  // Devices present in both with identical bytes, as "name" (instance 0) or "name#instance".
  std::vector<std::string> unchanged;
};

// Compares two device-state buffers (each SECTION_FULL sections + EOF, e.g. two checkpoints of
// the same VM), matching devices by name and instance, both described with `vmdesc`. Fails as
// DescribeDevices fails, with "before" or "after" in front.
Result<DeviceStateDiff> DiffDeviceState(std::span<const std::byte> before, std::span<const std::byte> after,
                                        const nlohmann::json& vmdesc);

// "name" for instance 0, "name#instance" otherwise.
std::string DeviceDisplayName(std::string_view name, uint32_t instance);

// Human-readable renderings, one line per row, ending in a newline.
// The device table: name, instance, version, data bytes, and field count or why opaque.
std::string RenderDeviceTable(const std::vector<DeviceLayout>& devices);
// One device's fields with offsets, sizes, types and (≤ 8 bytes) values from `buffer`.
std::string RenderDeviceFields(std::span<const std::byte> buffer, const DeviceLayout& device);
// Changed devices with their changed fields, then the unchanged devices.
std::string RenderDiff(const DeviceStateDiff& diff);

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_VMSTATE_INSPECTOR_H_
