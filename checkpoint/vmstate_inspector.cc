#include "checkpoint/vmstate_inspector.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>

#include "checkpoint/qemu_stream_format.h"
#include "common/byte_order.h"

namespace understudy::checkpoint {

namespace {

using Json = nlohmann::json;

// Bounds that keep a hostile VM description from overflowing sizes or the stack. Real ones
// nest a handful of levels and describe a few hundred KB per device.
constexpr int kMaxNesting = 32;
constexpr uint64_t kMaxFieldBytes = uint64_t{1} << 32;
constexpr uint64_t kMaxEntryBytes = uint64_t{1} << 40;

constexpr size_t kSubsectionHeaderFixedBytes = 1 + 1 + 4;  // 05, u8 name length, be32 version

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

bool IsUnsigned(const Json& object, const char* key) {
  auto found = object.find(key);
  return found != object.end() && found->is_number_unsigned();
}

bool IsString(const Json& object, const char* key) {
  auto found = object.find(key);
  return found != object.end() && found->is_string();
}

// The description an element of `field` is laid out with: its "struct", or the field itself
// when QEMU wrote the nested description inline (VMSTATE_WITH_TMP's "tmp" fields); null when
// the field is a leaf.
const Json* NestedDescription(const Json& field) {
  auto nested = field.find("struct");
  if (nested != field.end()) return &*nested;
  if (field.contains("fields") || field.contains("subsections")) return &field;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Shape checks, so that laying out can read the JSON without further type tests.

class DescriptionValidator {
 public:
  // Checks `entry` (a device, struct or subsection description) and returns the bytes it spans.
  Result<uint64_t> Entry(const Json& entry, const std::string& where, int depth) {
    if (depth > kMaxNesting) return Bad(where, "nests deeper than " + std::to_string(kMaxNesting) + " levels");
    if (!entry.is_object()) return Bad(where, "is not an object");
    uint64_t total = 0;
    if (auto fields = entry.find("fields"); fields != entry.end()) {
      if (!fields->is_array()) return Bad(where, "'fields' is not an array");
      for (size_t i = 0; i < fields->size(); ++i) {
        UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t bytes, Field((*fields)[i], where, i, depth));
        total += bytes;
        if (total > kMaxEntryBytes) return Bad(where, "describes more than 2^40 bytes");
      }
    }
    if (auto subsections = entry.find("subsections"); subsections != entry.end()) {
      if (!subsections->is_array()) return Bad(where, "'subsections' is not an array");
      for (const Json& subsection : *subsections) {
        if (!subsection.is_object() || !IsString(subsection, "vmsd_name")) {
          return Bad(where, "has a subsection without a 'vmsd_name'");
        }
        const std::string& name = subsection["vmsd_name"].get_ref<const std::string&>();
        if (name.empty() || name.size() > 255) return Bad(where, "subsection name " + Quoted(name) + " is not 1..255 bytes");
        if (!IsUnsigned(subsection, "version") || subsection["version"].get<uint64_t>() > UINT32_MAX) {
          return Bad(where, "subsection " + Quoted(name) + " has no 32-bit 'version'");
        }
        UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t bytes, Entry(subsection, where + ", subsection " + Quoted(name), depth + 1));
        total += kSubsectionHeaderFixedBytes + name.size() + bytes;
        if (total > kMaxEntryBytes) return Bad(where, "describes more than 2^40 bytes");
      }
    }
    return total;
  }

 private:
  Result<uint64_t> Field(const Json& field, const std::string& where, size_t index, int depth) {
    std::string here = where + ", field " + std::to_string(index);
    if (!field.is_object()) return Bad(here, "is not an object");
    if (!IsString(field, "name")) return Bad(here, "has no 'name'");
    here = where + ", field " + Quoted(field["name"].get_ref<const std::string&>());
    if (field.contains("type") && !field["type"].is_string()) return Bad(here, "'type' is not a string");
    if (!IsUnsigned(field, "size")) return Bad(here, "has no unsigned 'size'");
    uint64_t size = field["size"].get<uint64_t>();
    if (size > kMaxFieldBytes) return Bad(here, "is larger than 4 GiB");
    uint64_t count = 1;
    if (field.contains("array_len")) {
      if (!IsUnsigned(field, "array_len")) return Bad(here, "'array_len' is not unsigned");
      count = field["array_len"].get<uint64_t>();
      if (count > kMaxFieldBytes) return Bad(here, "'array_len' is larger than 2^32");
    }
    if (field.contains("index") && !IsUnsigned(field, "index")) return Bad(here, "'index' is not unsigned");
    if (field.contains("struct") && !field["struct"].is_object()) return Bad(here, "'struct' is not an object");
    if (const Json* nested = NestedDescription(field)) {
      // The nested description's own sizes are checked for shape only: whether they add up to
      // `size` is decided when laying out (a struct that does not add up stays one span).
      UNDERSTUDY_RETURN_IF_ERROR(Entry(*nested, here, depth + 1).status());
    }
    if (size * count > kMaxEntryBytes) return Bad(here, "describes more than 2^40 bytes");
    return size * count;
  }

  static Status Bad(const std::string& where, const std::string& what) {
    return Status::Corruption("VM description: " + where + " " + what);
  }
};

Status ValidateDevices(const Json& vmdesc) {
  if (!vmdesc.is_object()) return Status::Corruption("VM description is not a JSON object");
  auto devices = vmdesc.find("devices");
  if (devices == vmdesc.end() || !devices->is_array()) {
    return Status::Corruption("VM description has no 'devices' array");
  }
  DescriptionValidator validator;
  for (size_t i = 0; i < devices->size(); ++i) {
    const Json& device = (*devices)[i];
    std::string where = "device " + std::to_string(i);
    if (!device.is_object() || !IsString(device, "name")) {
      return Status::Corruption("VM description: " + where + " has no 'name'");
    }
    where = "device " + Quoted(device["name"].get_ref<const std::string&>());
    if (device.contains("instance_id") &&
        (!IsUnsigned(device, "instance_id") || device["instance_id"].get<uint64_t>() > UINT32_MAX)) {
      return Status::Corruption("VM description: " + where + " has an 'instance_id' that is not a 32-bit number");
    }
    if (device.contains("version") && !IsUnsigned(device, "version")) {
      return Status::Corruption("VM description: " + where + " has a 'version' that is not a number");
    }
    if (device.contains("vmsd_name") && !device["vmsd_name"].is_string()) {
      return Status::Corruption("VM description: " + where + " has a 'vmsd_name' that is not a string");
    }
    UNDERSTUDY_RETURN_IF_ERROR(validator.Entry(device, where, 0).status());
  }
  return Status::Ok();
}

// Runs `body`, turning any exception nlohmann may still throw (a shape the checks above missed)
// into kCorruption: no exception leaves this file.
template <typename Body>
auto Guarded(std::string_view what, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const Json::exception& error) {
    return Status::Corruption(std::string(what) + ": malformed VM description: " + error.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Laying a validated description over one section's data.

class FieldLayouter {
 public:
  // `data` is the section's data; `data_offset` where it starts in the caller's buffer (for
  // messages only).
  FieldLayouter(std::span<const std::byte> data, size_t data_offset) : data_(data), data_offset_(data_offset) {}

  // Lays `entry`'s fields, then its subsections, from `offset` on without passing `end`;
  // appends the spans to `out` and returns the offset after the last. kCorruption, naming the
  // place, where the bytes disagree with the description (then `out` holds a partial layout).
  Result<size_t> LayOutEntry(const Json& entry, const std::string& prefix, size_t offset, size_t end,
                             std::vector<FieldSpan>& out) const {
    if (auto fields = entry.find("fields"); fields != entry.end()) {
      for (const Json& field : *fields) {
        UNDERSTUDY_ASSIGN_OR_RETURN(offset, LayOutField(field, prefix, offset, end, out));
      }
    }
    if (auto subsections = entry.find("subsections"); subsections != entry.end()) {
      for (const Json& subsection : *subsections) {
        UNDERSTUDY_ASSIGN_OR_RETURN(offset, LayOutSubsection(subsection, prefix, offset, end, out));
      }
    }
    return offset;
  }

 private:
  Result<size_t> LayOutField(const Json& field, const std::string& prefix, size_t offset, size_t end,
                             std::vector<FieldSpan>& out) const {
    std::string path = prefix + field["name"].get_ref<const std::string&>();
    if (field.contains("index")) path += "[" + std::to_string(field["index"].get<uint64_t>()) + "]";
    const std::string type = field.value("type", std::string("?"));
    const uint64_t element_size = field["size"].get<uint64_t>();
    const bool compressed_array = field.contains("array_len");
    const uint64_t count = compressed_array ? field["array_len"].get<uint64_t>() : 1;
    if (element_size * count > end - offset) {
      return Status::Corruption("field " + Quoted(path) + " needs " + std::to_string(element_size * count) +
                                " bytes at offset " + At(offset) + " but only " + std::to_string(end - offset) +
                                " remain");
    }
    if (element_size == 0 || count == 0) {
      // Nothing on the wire; one span keeps the field visible without one per element.
      out.push_back({FieldSpan::Kind::kValue, path, type, offset, 0});
      return offset;
    }
    const Json* nested = NestedDescription(field);
    for (uint64_t i = 0; i < count; ++i) {
      std::string element_path = compressed_array ? path + "[" + std::to_string(i) + "]" : path;
      const size_t element_end = offset + element_size;
      bool split = false;
      if (nested != nullptr) {
        std::vector<FieldSpan> members;
        Result<size_t> members_end = LayOutEntry(*nested, element_path + ".", offset, element_end, members);
        // Only a struct whose members account for exactly its recorded size is split; anything
        // else (a list whose length varies, a description that does not add up) stays whole.
        if (members_end.ok() && *members_end == element_end && !members.empty()) {
          out.insert(out.end(), std::make_move_iterator(members.begin()), std::make_move_iterator(members.end()));
          split = true;
        }
      }
      if (!split) out.push_back({FieldSpan::Kind::kValue, element_path, type, offset, element_size});
      offset = element_end;
    }
    return offset;
  }

  Result<size_t> LayOutSubsection(const Json& subsection, const std::string& prefix, size_t offset, size_t end,
                                  std::vector<FieldSpan>& out) const {
    const std::string& name = subsection["vmsd_name"].get_ref<const std::string&>();
    const uint32_t version = static_cast<uint32_t>(subsection["version"].get<uint64_t>());
    const size_t header_size = kSubsectionHeaderFixedBytes + name.size();
    auto expected = [&] {
      return "expected subsection " + Quoted(name) + " version " + std::to_string(version) + " at offset " +
             At(offset);
    };
    if (header_size > end - offset) return Status::Corruption(expected() + " but the data ends first");
    std::span<const std::byte> header = data_.subspan(offset, header_size);
    if (header[0] != std::byte{qemu_stream::kSubsection} || static_cast<uint8_t>(header[1]) != name.size() ||
        std::string_view(reinterpret_cast<const char*>(&header[2]), name.size()) != name) {
      return Status::Corruption(expected() + " but the bytes there are not its header");
    }
    uint32_t wire_version = LoadBigEndian<uint32_t>(&header[2 + name.size()]);
    if (wire_version != version) {
      return Status::Corruption(expected() + " but the stream has version " + std::to_string(wire_version));
    }
    out.push_back({FieldSpan::Kind::kSubsectionHeader, prefix + name, "subsection", offset, header_size});
    return LayOutEntry(subsection, prefix + name + "/", offset + header_size, end, out);
  }

  // "N (data offset M)": the buffer offset first, since that is what a hex dump shows.
  std::string At(size_t offset) const {
    return std::to_string(data_offset_ + offset) + " (data offset " + std::to_string(offset) + ")";
  }

  std::span<const std::byte> data_;
  size_t data_offset_;
};

using DeviceKey = std::pair<std::string, uint32_t>;

std::map<DeviceKey, const Json*> IndexDevices(const Json& vmdesc) {
  std::map<DeviceKey, const Json*> index;
  for (const Json& device : vmdesc["devices"]) {
    uint32_t instance = static_cast<uint32_t>(device.value("instance_id", uint64_t{0}));
    index.emplace(DeviceKey{device["name"].get<std::string>(), instance}, &device);
  }
  return index;
}

// Fills `layout` (whose section is set) from its VM-description entry, or says why not.
void LayOutDevice(std::span<const std::byte> buffer, const Json& description, DeviceLayout& layout) {
  const DeviceSectionSpan& section = layout.section;
  layout.vmsd_name = description.value("vmsd_name", std::string());
  if (description.contains("version") && description["version"].get<uint64_t>() != section.version) {
    layout.opaque_reason = "version " + std::to_string(section.version) + " in the stream, " +
                           std::to_string(description["version"].get<uint64_t>()) + " in the VM description";
    return;
  }
  Result<uint64_t> described = VmDescriptionDataSize(description);
  if (!described.ok()) {
    layout.opaque_reason = described.status().message();
    return;
  }
  if (*described != section.data_size) {
    layout.opaque_reason = "the VM description accounts for " + std::to_string(*described) + " bytes, the section holds " +
                           std::to_string(section.data_size);
    return;
  }
  FieldLayouter layouter(buffer.subspan(section.data_offset, section.data_size), section.data_offset);
  std::vector<FieldSpan> fields;
  Result<size_t> end = layouter.LayOutEntry(description, "", 0, section.data_size, fields);
  if (!end.ok()) {
    layout.opaque_reason = end.status().message();
    return;
  }
  if (*end != section.data_size) {
    layout.opaque_reason = "the fields end at data offset " + std::to_string(*end) + " of " +
                           std::to_string(section.data_size);
    return;
  }
  layout.fields = std::move(fields);
}

Result<std::vector<DeviceLayout>> DescribeValidated(std::span<const std::byte> buffer, const Json& vmdesc) {
  UNDERSTUDY_ASSIGN_OR_RETURN(std::vector<DeviceSectionSpan> sections, SplitDeviceSectionsByFooters(buffer));
  const std::map<DeviceKey, const Json*> described = IndexDevices(vmdesc);
  std::vector<DeviceLayout> layouts;
  layouts.reserve(sections.size());
  for (DeviceSectionSpan& section : sections) {
    DeviceLayout layout;
    layout.section = std::move(section);
    auto found = described.find({layout.section.name, layout.section.instance});
    if (found == described.end()) {
      layout.opaque_reason = "not in the VM description";
    } else {
      LayOutDevice(buffer, *found->second, layout);
    }
    layouts.push_back(std::move(layout));
  }
  return layouts;
}

std::span<const std::byte> SectionData(std::span<const std::byte> buffer, const DeviceLayout& layout) {
  return buffer.subspan(layout.section.data_offset, layout.section.data_size);
}

bool SameLayout(const DeviceLayout& a, const DeviceLayout& b) {
  return a.decoded() && b.decoded() && a.section.data_size == b.section.data_size && a.fields == b.fields;
}

std::string Padded(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

std::string LeftPadded(std::string text, size_t width) {
  if (text.size() < width) text.insert(0, width - text.size(), ' ');
  return text;
}

std::string HexOffset(size_t offset) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%04zx", offset);
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Status ValidateVmDescription(const nlohmann::json& vmdesc) {
  return Guarded("validating the VM description", [&]() -> Status { return ValidateDevices(vmdesc); });
}

Result<nlohmann::json> ParseVmDescription(std::string_view json_text) {
  Json vmdesc = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (vmdesc.is_discarded()) {
    return Status::Corruption("VM description is not valid JSON (" + std::to_string(json_text.size()) + " bytes)");
  }
  UNDERSTUDY_RETURN_IF_ERROR(ValidateVmDescription(vmdesc));
  return vmdesc;
}

size_t DeviceLayout::value_field_count() const {
  return static_cast<size_t>(std::count_if(fields.begin(), fields.end(),
                                           [](const FieldSpan& f) { return f.kind == FieldSpan::Kind::kValue; }));
}

Result<std::vector<DeviceLayout>> DescribeDevices(std::span<const std::byte> sections_and_eof,
                                                  const nlohmann::json& vmdesc) {
  UNDERSTUDY_RETURN_IF_ERROR(ValidateVmDescription(vmdesc));
  return Guarded("describing device state",
                 [&]() -> Result<std::vector<DeviceLayout>> { return DescribeValidated(sections_and_eof, vmdesc); });
}

std::span<const std::byte> FieldBytes(std::span<const std::byte> buffer, const DeviceLayout& layout,
                                      const FieldSpan& field) {
  return SectionData(buffer, layout).subspan(field.offset, field.size);
}

std::string FormatFieldValue(std::string_view type, std::span<const std::byte> bytes) {
  if (bytes.empty() || bytes.size() > 8) return {};
  static constexpr char kDigits[] = "0123456789abcdef";
  const bool little_endian = type.size() >= 3 && type.substr(type.size() - 3) == " le";
  std::string text = "0x";
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto byte = static_cast<uint8_t>(bytes[little_endian ? bytes.size() - 1 - i : i]);
    text += kDigits[byte >> 4];
    text += kDigits[byte & 15];
  }
  return text;
}

std::string DeviceDisplayName(std::string_view name, uint32_t instance) {
  std::string text(name);
  if (instance != 0) text += "#" + std::to_string(instance);
  return text;
}

Result<DeviceStateDiff> DiffDeviceState(std::span<const std::byte> before, std::span<const std::byte> after,
                                        const nlohmann::json& vmdesc) {
  Result<std::vector<DeviceLayout>> before_layouts = DescribeDevices(before, vmdesc);
  if (!before_layouts.ok()) return before_layouts.status().WithContext("before");
  Result<std::vector<DeviceLayout>> after_layouts = DescribeDevices(after, vmdesc);
  if (!after_layouts.ok()) return after_layouts.status().WithContext("after");

  std::map<DeviceKey, const DeviceLayout*> unmatched_before;
  for (const DeviceLayout& layout : *before_layouts) {
    unmatched_before.emplace(DeviceKey{layout.section.name, layout.section.instance}, &layout);
  }
  DeviceStateDiff diff;
  for (const DeviceLayout& new_layout : *after_layouts) {
    const DeviceSectionSpan& section = new_layout.section;
    auto found = unmatched_before.find({section.name, section.instance});
    DeviceDifference difference;
    difference.name = section.name;
    difference.instance = section.instance;
    difference.after_data_size = section.data_size;
    if (found == unmatched_before.end()) {
      difference.change = DeviceDifference::Change::kAdded;
      diff.changed.push_back(std::move(difference));
      continue;
    }
    const DeviceLayout& old_layout = *found->second;
    unmatched_before.erase(found);
    std::span<const std::byte> old_data = SectionData(before, old_layout);
    std::span<const std::byte> new_data = SectionData(after, new_layout);
    if (std::equal(old_data.begin(), old_data.end(), new_data.begin(), new_data.end())) {
      diff.unchanged.push_back(DeviceDisplayName(section.name, section.instance));
      continue;
    }
    difference.before_data_size = old_layout.section.data_size;
    if (!SameLayout(old_layout, new_layout)) {
      difference.change = DeviceDifference::Change::kOpaque;
      if (!old_layout.decoded()) {
        difference.opaque_reason = "before: " + old_layout.opaque_reason;
      } else if (!new_layout.decoded()) {
        difference.opaque_reason = "after: " + new_layout.opaque_reason;
      } else {
        difference.opaque_reason = "the two states lay out differently";
      }
      diff.changed.push_back(std::move(difference));
      continue;
    }
    difference.change = DeviceDifference::Change::kFields;
    for (const FieldSpan& field : new_layout.fields) {
      std::span<const std::byte> old_bytes = old_data.subspan(field.offset, field.size);
      std::span<const std::byte> new_bytes = new_data.subspan(field.offset, field.size);
      size_t differing = 0;
      for (size_t i = 0; i < field.size; ++i) differing += old_bytes[i] != new_bytes[i];
      if (differing == 0) continue;
      FieldDifference changed{field.path, field.type, field.offset, field.size, std::nullopt, std::nullopt, differing};
      if (field.size <= 8) {
        changed.before_value = FormatFieldValue(field.type, old_bytes);
        changed.after_value = FormatFieldValue(field.type, new_bytes);
      }
      difference.fields.push_back(std::move(changed));
    }
    diff.changed.push_back(std::move(difference));
  }
  // What is left was in the before state only; keep the before state's order.
  for (const DeviceLayout& old_layout : *before_layouts) {
    if (!unmatched_before.contains({old_layout.section.name, old_layout.section.instance})) continue;
    DeviceDifference difference;
    difference.name = old_layout.section.name;
    difference.instance = old_layout.section.instance;
    difference.change = DeviceDifference::Change::kRemoved;
    difference.before_data_size = old_layout.section.data_size;
    diff.changed.push_back(std::move(difference));
  }
  return diff;
}

// ---------------------------------------------------------------------------------------------
// Renderings.

std::string RenderDeviceTable(const std::vector<DeviceLayout>& devices) {
  size_t name_width = 6;
  for (const DeviceLayout& device : devices) name_width = std::max(name_width, device.section.name.size());
  std::string text = Padded("device", name_width) + "  inst  ver    bytes  layout\n";
  size_t total_bytes = 0;
  size_t decoded = 0;
  for (const DeviceLayout& device : devices) {
    const DeviceSectionSpan& section = device.section;
    total_bytes += section.data_size;
    std::string layout;
    if (device.decoded()) {
      ++decoded;
      size_t subsections = device.fields.size() - device.value_field_count();
      size_t values = device.value_field_count();
      layout = std::to_string(values) + (values == 1 ? " field" : " fields");
      if (subsections > 0) layout += ", " + std::to_string(subsections) + " subsection" + (subsections > 1 ? "s" : "");
    } else {
      layout = "opaque: " + device.opaque_reason;
    }
    text += Padded(section.name, name_width) + "  " + LeftPadded(std::to_string(section.instance), 4) + "  " +
            LeftPadded(std::to_string(section.version), 3) + "  " + LeftPadded(std::to_string(section.data_size), 7) +
            "  " + layout + "\n";
  }
  text += std::to_string(devices.size()) + " devices, " + std::to_string(total_bytes) + " bytes of field data; " +
          std::to_string(decoded) + " laid out field by field, " + std::to_string(devices.size() - decoded) +
          " opaque\n";
  return text;
}

std::string RenderDeviceFields(std::span<const std::byte> buffer, const DeviceLayout& device) {
  const DeviceSectionSpan& section = device.section;
  std::string text = DeviceDisplayName(section.name, section.instance) + " (vmsd " +
                     Quoted(device.vmsd_name.empty() ? "?" : device.vmsd_name) + ", version " +
                     std::to_string(section.version) + ", " + std::to_string(section.data_size) +
                     " bytes at buffer offset " + std::to_string(section.data_offset) + ")\n";
  if (!device.decoded()) return text + "  opaque: " + device.opaque_reason + "\n";
  size_t path_width = 4;
  size_t type_width = 4;
  for (const FieldSpan& field : device.fields) {
    path_width = std::max(path_width, field.path.size());
    type_width = std::max(type_width, field.type.size());
  }
  text += "  offset    size  " + Padded("type", type_width) + "  " + Padded("path", path_width) + "  value\n";
  for (const FieldSpan& field : device.fields) {
    std::string value = FormatFieldValue(field.type, FieldBytes(buffer, device, field));
    if (field.kind == FieldSpan::Kind::kSubsectionHeader) value.clear();
    text += "  " + HexOffset(field.offset) + "  " + LeftPadded(std::to_string(field.size), 6) + "  " +
            Padded(field.type, type_width) + "  " + Padded(field.path, path_width) + "  " + value;
    while (!text.empty() && text.back() == ' ') text.pop_back();
    text += "\n";
  }
  return text;
}

std::string RenderDiff(const DeviceStateDiff& diff) {
  std::string text;
  if (diff.changed.empty()) text += "no device changed\n";
  for (const DeviceDifference& device : diff.changed) {
    std::string name = DeviceDisplayName(device.name, device.instance);
    switch (device.change) {
      case DeviceDifference::Change::kAdded:
        text += name + ": added (" + std::to_string(device.after_data_size) + " bytes)\n";
        continue;
      case DeviceDifference::Change::kRemoved:
        text += name + ": removed (" + std::to_string(device.before_data_size) + " bytes)\n";
        continue;
      case DeviceDifference::Change::kOpaque:
        text += name + ": changed, " + std::to_string(device.before_data_size) + " -> " +
                std::to_string(device.after_data_size) + " bytes, not laid out (" + device.opaque_reason + ")\n";
        continue;
      case DeviceDifference::Change::kFields:
        break;
    }
    text += name + ": " + std::to_string(device.fields.size()) + " field" + (device.fields.size() == 1 ? "" : "s") +
            " changed\n";
    size_t path_width = 4;
    for (const FieldDifference& field : device.fields) path_width = std::max(path_width, field.path.size());
    for (const FieldDifference& field : device.fields) {
      std::string change = field.before_value ? *field.before_value + " -> " + *field.after_value
                                              : std::to_string(field.bytes_differing) + " of " +
                                                    std::to_string(field.size) + " bytes differ";
      text += "  " + Padded(field.path, path_width) + "  @" + HexOffset(field.offset) + " " +
              LeftPadded(std::to_string(field.size), 5) + "  " + change + "\n";
    }
  }
  text += "unchanged (" + std::to_string(diff.unchanged.size()) + "):";
  for (const std::string& name : diff.unchanged) text += " " + name;
  text += "\n";
  return text;
}

}  // namespace understudy::checkpoint
