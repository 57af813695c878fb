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
  return at <= buffer.size() && kFooterBytes <= buffer.size() - at && buffer[at] == std::byte{kSectionFooter} &&
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

namespace {

// The VM description is untrusted input: every member is checked for its type before use,
// sizes are added with overflow checks, and nesting is bounded (no unbounded recursion).
constexpr int kMaxVmDescriptionDepth = 32;

const nlohmann::json* Member(const nlohmann::json& object, const char* name) {
  if (!object.is_object()) return nullptr;
  auto found = object.find(name);
  return found == object.end() ? nullptr : &*found;
}

Result<uint64_t> DataSize(const nlohmann::json& entry, int depth) {
  if (depth > kMaxVmDescriptionDepth) return Status::Corruption("VM description nested too deeply");
  if (!entry.is_object()) return Status::Corruption("VM description: an entry is not an object");
  uint64_t total = 0;
  auto add = [&](uint64_t amount) -> Status {
    if (__builtin_add_overflow(total, amount, &total)) return Status::Corruption("VM description: sizes overflow");
    return Status::Ok();
  };
  if (const nlohmann::json* fields = Member(entry, "fields")) {
    if (!fields->is_array()) return Status::Corruption("VM description: 'fields' is not an array");
    for (const nlohmann::json& field : *fields) {
      const nlohmann::json* size = Member(field, "size");
      if (size == nullptr || !size->is_number_unsigned()) {
        return Status::Corruption("VM description: field without an unsigned size: " + field.dump().substr(0, 200));
      }
      uint64_t bytes = size->get<uint64_t>();
      // QEMU describes an array of identical elements once, with its length.
      if (const nlohmann::json* length = Member(field, "array_len")) {
        if (!length->is_number_unsigned()) return Status::Corruption("VM description: 'array_len' is not unsigned");
        if (__builtin_mul_overflow(bytes, length->get<uint64_t>(), &bytes)) {
          return Status::Corruption("VM description: array size overflows");
        }
      }
      UNDERSTUDY_RETURN_IF_ERROR(add(bytes));
    }
  }
  if (const nlohmann::json* subsections = Member(entry, "subsections")) {
    if (!subsections->is_array()) return Status::Corruption("VM description: 'subsections' is not an array");
    for (const nlohmann::json& subsection : *subsections) {
      const nlohmann::json* name = Member(subsection, "vmsd_name");
      if (name == nullptr || !name->is_string() || name->get_ref<const std::string&>().empty() ||
          name->get_ref<const std::string&>().size() > 255) {
        return Status::Corruption("VM description: subsection without a valid name");
      }
      // On the wire: 05, u8 length, name, be32 version, then the subsection's own fields.
      UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t inner, DataSize(subsection, depth + 1));
      UNDERSTUDY_RETURN_IF_ERROR(add(1 + 1 + name->get_ref<const std::string&>().size() + 4));
      UNDERSTUDY_RETURN_IF_ERROR(add(inner));
    }
  }
  return total;
}

}  // namespace

Result<uint64_t> VmDescriptionDataSize(const nlohmann::json& entry) { return DataSize(entry, 0); }

Status CheckJsonNesting(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        return Status::Corruption("JSON nested deeper than " + std::to_string(max_depth) + " levels at byte " +
                                  std::to_string(i));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return Status::Ok();
}

Result<std::vector<DeviceSectionSpan>> SplitDeviceSectionsByVmDescription(std::span<const std::byte> buffer,
                                                                          const nlohmann::json& vmdesc) {
  UNDERSTUDY_RETURN_IF_ERROR(CheckEndsWithEof(buffer));
  const nlohmann::json* devices = Member(vmdesc, "devices");
  if (devices == nullptr || !devices->is_array()) return Status::Corruption("VM description has no 'devices' array");
  const size_t eof = buffer.size() - 1;
  std::vector<DeviceSectionSpan> sections;
  size_t offset = 0;
  for (const nlohmann::json& device : *devices) {
    const nlohmann::json* name_member = Member(device, "name");
    const nlohmann::json* instance = Member(device, "instance_id");
    if (name_member == nullptr || !name_member->is_string() || (instance != nullptr && !instance->is_number_unsigned())) {
      return Status::Corruption("VM description: a device without a string name or with a bad instance_id");
    }
    const std::string& name = name_member->get_ref<const std::string&>();
    uint64_t instance_id = instance ? instance->get<uint64_t>() : 0;
    std::optional<DeviceSectionSpan> section = ParseHeader(buffer, offset);
    if (!section) {
      return Status::Corruption("VM description lists '" + name + "' but no section header is at offset " +
                                std::to_string(offset));
    }
    if (section->name != name || section->instance != instance_id) {
      return Status::Corruption("VM description lists '" + name + "' but the section at offset " +
                                std::to_string(offset) + " is '" + section->name + "'");
    }
    Result<uint64_t> data_size = VmDescriptionDataSize(device);
    if (!data_size.ok()) return data_size.status().WithContext("device '" + name + "'");
    if (*data_size > buffer.size() - section->data_offset) {
      return Status::Corruption("device '" + name + "': the VM description's " + std::to_string(*data_size) +
                                " bytes exceed the device state");
    }
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
