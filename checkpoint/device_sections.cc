#include "checkpoint/device_sections.h"

#include "checkpoint/qemu_stream_format.h"
#include "common/byte_order.h"

namespace understudy::checkpoint {

namespace {

using qemu_stream::kEof;
using qemu_stream::kSectionFooter;
using qemu_stream::kSectionFull;

constexpr size_t kFooterBytes = 5;

// Parses a section header at `offset`; nullopt when the bytes there cannot be one.
std::optional<DeviceSectionSpan> ParseHeader(std::span<const std::byte> buffer, size_t offset) {
  if (offset + 6 > buffer.size() || buffer[offset] != std::byte{kSectionFull}) return std::nullopt;
  DeviceSectionSpan section;
  section.offset = offset;
  section.section_id = LoadBigEndian<uint32_t>(&buffer[offset + 1]);
  size_t name_length = static_cast<uint8_t>(buffer[offset + 5]);
  size_t header_end = offset + 6 + name_length + 8;
  if (name_length == 0 || header_end > buffer.size()) return std::nullopt;
  section.name.assign(reinterpret_cast<const char*>(&buffer[offset + 6]), name_length);
  for (char c : section.name) {
    if (c < 0x20 || c > 0x7e) return std::nullopt;
  }
  section.instance = LoadBigEndian<uint32_t>(&buffer[offset + 6 + name_length]);
  section.version = LoadBigEndian<uint32_t>(&buffer[offset + 10 + name_length]);
  section.data_offset = header_end;
  return section;
}

bool FooterAt(std::span<const std::byte> buffer, size_t at, uint32_t section_id) {
  return at + kFooterBytes <= buffer.size() && buffer[at] == std::byte{kSectionFooter} &&
         LoadBigEndian<uint32_t>(&buffer[at + 1]) == section_id;
}

Status CheckEndsWithEof(std::span<const std::byte> buffer) {
  if (buffer.empty() || buffer.back() != std::byte{kEof}) {
    return Status::Corruption("device state does not end with the EOF byte (0x00)");
  }
  return Status::Ok();
}

std::string HexByte(std::byte value) {
  static const char* kDigits = "0123456789abcdef";
  auto v = static_cast<uint8_t>(value);
  return std::string("0x") + kDigits[v >> 4] + kDigits[v & 15];
}

}  // namespace

Result<std::vector<DeviceSectionSpan>> SplitDeviceSectionsByFooters(std::span<const std::byte> buffer) {
  UNDERSTUDY_RETURN_IF_ERROR(CheckEndsWithEof(buffer));
  const size_t eof = buffer.size() - 1;
  std::vector<DeviceSectionSpan> sections;
  size_t offset = 0;
  while (offset < eof) {
    std::optional<DeviceSectionSpan> section = ParseHeader(buffer, offset);
    if (!section) {
      return Status::Corruption("no device section header at offset " + std::to_string(offset) + " (byte " +
                                HexByte(buffer[offset]) + ")");
    }
    size_t footer = section->data_offset;
    for (;; ++footer) {
      if (footer + kFooterBytes > eof) {
        return Status::Corruption("device section '" + section->name + "' (id " + std::to_string(section->section_id) +
                                  ") at offset " + std::to_string(offset) + " has no footer");
      }
      if (!FooterAt(buffer, footer, section->section_id)) continue;
      size_t next = footer + kFooterBytes;
      if (next == eof || ParseHeader(buffer, next)) break;
    }
    section->data_size = footer - section->data_offset;
    section->size = footer + kFooterBytes - offset;
    offset += section->size;
    sections.push_back(std::move(*section));
  }
  return sections;
}

Result<uint64_t> VmDescriptionDataSize(const nlohmann::json& entry) {
  uint64_t total = 0;
  if (entry.contains("fields")) {
    const nlohmann::json& fields = entry["fields"];
    if (!fields.is_array()) return Status::Corruption("VM description: 'fields' is not an array");
    for (const nlohmann::json& field : fields) {
      if (!field.is_object() || !field.contains("size") || !field["size"].is_number_unsigned()) {
        return Status::Corruption("VM description: field without a size: " + field.dump().substr(0, 200));
      }
      uint64_t size = field["size"].get<uint64_t>();
      // QEMU describes an array of identical elements once, with its length.
      if (field.contains("array_len")) size *= field["array_len"].get<uint64_t>();
      total += size;
    }
  }
  if (entry.contains("subsections")) {
    const nlohmann::json& subsections = entry["subsections"];
    if (!subsections.is_array()) return Status::Corruption("VM description: 'subsections' is not an array");
    for (const nlohmann::json& subsection : subsections) {
      std::string name = subsection.value("vmsd_name", "");
      if (name.empty() || name.size() > 255) return Status::Corruption("VM description: subsection without a name");
      // On the wire: 05, u8 length, name, be32 version, then the subsection's own fields.
      UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t inner, VmDescriptionDataSize(subsection));
      total += 1 + 1 + name.size() + 4 + inner;
    }
  }
  return total;
}

Result<std::vector<DeviceSectionSpan>> SplitDeviceSectionsByVmDescription(std::span<const std::byte> buffer,
                                                                          const nlohmann::json& vmdesc) {
  UNDERSTUDY_RETURN_IF_ERROR(CheckEndsWithEof(buffer));
  if (!vmdesc.is_object() || !vmdesc.contains("devices") || !vmdesc["devices"].is_array()) {
    return Status::Corruption("VM description has no 'devices' array");
  }
  const size_t eof = buffer.size() - 1;
  std::vector<DeviceSectionSpan> sections;
  size_t offset = 0;
  for (const nlohmann::json& device : vmdesc["devices"]) {
    std::string name = device.value("name", "");
    std::optional<DeviceSectionSpan> section = ParseHeader(buffer, offset);
    if (!section) {
      return Status::Corruption("VM description lists '" + name + "' but no section header is at offset " +
                                std::to_string(offset));
    }
    if (section->name != name || section->instance != device.value("instance_id", 0u)) {
      return Status::Corruption("VM description lists '" + name + "' but the section at offset " +
                                std::to_string(offset) + " is '" + section->name + "'");
    }
    Result<uint64_t> data_size = VmDescriptionDataSize(device);
    if (!data_size.ok()) return data_size.status().WithContext("device '" + name + "'");
    size_t footer = section->data_offset + *data_size;
    if (!FooterAt(buffer, footer, section->section_id)) {
      return Status::Corruption("device '" + name + "': the VM description's sizes end at offset " +
                                std::to_string(footer) + " where no footer for section " +
                                std::to_string(section->section_id) + " is");
    }
    section->data_size = *data_size;
    section->size = footer + kFooterBytes - offset;
    offset += section->size;
    sections.push_back(std::move(*section));
  }
  if (offset != eof) {
    return Status::Corruption("the VM description's devices end at offset " + std::to_string(offset) +
                              " but the device state ends at " + std::to_string(eof));
  }
  return sections;
}

Result<std::vector<DeviceSectionSpan>> SplitDeviceSectionsCrossChecked(std::span<const std::byte> buffer,
                                                                       const nlohmann::json& vmdesc) {
  Result<std::vector<DeviceSectionSpan>> by_vmdesc = SplitDeviceSectionsByVmDescription(buffer, vmdesc);
  if (!by_vmdesc.ok()) return by_vmdesc.status().WithContext("splitting device state by VM description");
  Result<std::vector<DeviceSectionSpan>> by_footers = SplitDeviceSectionsByFooters(buffer);
  if (!by_footers.ok()) return by_footers.status().WithContext("splitting device state by footers");
  for (size_t i = 0; i < std::min(by_vmdesc->size(), by_footers->size()); ++i) {
    if ((*by_vmdesc)[i] != (*by_footers)[i]) {
      return Status::Corruption("device section " + std::to_string(i) + " ('" + (*by_vmdesc)[i].name +
                                "'): VM description says " + std::to_string((*by_vmdesc)[i].size) +
                                " bytes, footers say " + std::to_string((*by_footers)[i].size));
    }
  }
  if (by_vmdesc->size() != by_footers->size()) {
    return Status::Corruption("VM description lists " + std::to_string(by_vmdesc->size()) +
                              " device sections, footers find " + std::to_string(by_footers->size()));
  }
  return by_vmdesc;
}

}  // namespace understudy::checkpoint
