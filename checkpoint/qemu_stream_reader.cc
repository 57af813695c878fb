#include "checkpoint/qemu_stream_reader.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/byte_order.h"

namespace understudy::checkpoint {

namespace qs = qemu_stream;

namespace {

constexpr size_t kPageSize = qs::kTargetPageSize;

// The VM description starts `00 06 <be32 length> {"page_size"`.
constexpr std::string_view kVmdescOpening = "{\"page_size\"";
constexpr size_t kVmdescPrefixBytes = 6;  // EOF byte, VMDESCRIPTION byte, be32 length

std::string_view AsText(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

struct RamFlagName {
  uint64_t flag;
  const char* name;
};
constexpr RamFlagName kUnsupportedRamFlags[] = {
    {qs::kRamFlagFull, "FULL (obsolete)"},
    {qs::kRamFlagXbzrle, "XBZRLE"},
    {qs::kRamFlagHook, "HOOK (RDMA migration)"},
    {qs::kRamFlagCompressPage, "COMPRESS_PAGE"},
    {qs::kRamFlagMultifdFlush, "MULTIFD_FLUSH"},
};

std::string Hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

std::string_view qs::ColoMessageName(ColoMessage message) {
  switch (message) {
    case ColoMessage::kCheckpointReady: return "checkpoint-ready";
    case ColoMessage::kCheckpointRequest: return "checkpoint-request";
    case ColoMessage::kCheckpointReply: return "checkpoint-reply";
    case ColoMessage::kVmstateSend: return "vmstate-send";
    case ColoMessage::kVmstateSize: return "vmstate-size";
    case ColoMessage::kVmstateReceived: return "vmstate-received";
    case ColoMessage::kVmstateLoaded: return "vmstate-loaded";
  }
  return "unknown";
}

bool StreamConfiguration::ignore_shared() const {
  return std::find(capabilities.begin(), capabilities.end(), qs::kIgnoreSharedCapability) != capabilities.end();
}

QemuStreamReader::QemuStreamReader(QemuStreamVisitor& visitor, QemuStreamReaderOptions options)
    : visitor_(visitor), options_(options) {}

QemuStreamReader::Phase QemuStreamReader::phase() const {
  if (state_ == State::kFailed) return Phase::kFailed;
  if (!precopy_complete_) return Phase::kPrecopy;
  if (state_ == State::kColoMessage && expected_message_ == qs::ColoMessage::kCheckpointRequest) {
    return Phase::kAwaitingCheckpoint;
  }
  return Phase::kInCheckpoint;
}

std::string QemuStreamReader::At(uint64_t extra) const { return "at offset " + std::to_string(stream_offset_ + extra); }

Status QemuStreamReader::Fail(Status status) {
  state_ = State::kFailed;
  failure_ = std::move(status);
  return failure_;
}

Status QemuStreamReader::Feed(std::span<const std::byte> input) {
  if (state_ == State::kFailed) return failure_;
  // Bytes left from an incomplete unit: join just enough new input to complete it, then go
  // back to parsing straight from the caller's buffer (no copy of the bulk of the stream).
  while (!carry_.empty() && !input.empty()) {
    size_t carried = carry_.size();
    size_t take = std::min(input.size(), std::max<size_t>(8192, carried));
    carry_.insert(carry_.end(), input.begin(), input.begin() + take);
    Result<size_t> used = ParseAvailable(carry_);
    if (!used.ok()) return Fail(used.status());
    if (*used >= carried) {
      // The carried unit completed; re-parse the remainder from `input` itself.
      input = input.subspan(*used - carried);
      carry_.clear();
    } else {
      carry_.erase(carry_.begin(), carry_.begin() + *used);
      input = input.subspan(take);
    }
  }
  if (input.empty()) return Status::Ok();
  Result<size_t> used = ParseAvailable(input);
  if (!used.ok()) return Fail(used.status());
  carry_.assign(input.begin() + *used, input.end());
  return Status::Ok();
}

Result<size_t> QemuStreamReader::ParseAvailable(std::span<const std::byte> input) {
  size_t start = input.size();
  for (;;) {
    if (input.empty()) break;
    uint64_t before = input.size();
    Result<bool> complete = ParseUnit(input);
    if (!complete.ok()) return complete.status();
    stream_offset_ += before - input.size();
    if (!*complete) break;
  }
  return start - input.size();
}

Result<bool> QemuStreamReader::ParseUnit(std::span<const std::byte>& input) {
  switch (state_) {
    case State::kFileHeader: return ParseFileHeader(input);
    case State::kTopLevel: return ParseTopLevel(input);
    case State::kRamRecords: return ParseRamRecord(input);
    case State::kSectionFooter: return ParseSectionFooter(input);
    case State::kPrecopyDevices: return ParsePrecopyDevices(input);
    case State::kVmDescription: return ParseVmDescription(input);
    case State::kColoMessage: return ParseColoMessage(input);
    case State::kLiveRamSection: return ParseLiveRamSection(input);
    case State::kDeviceBuffer: return ParseDeviceBuffer(input);
    case State::kFailed: return failure_;
  }
  return Status::Internal("unknown reader state");
}

Result<bool> QemuStreamReader::ParseFileHeader(std::span<const std::byte>& input) {
  if (input.size() < 8) return false;
  uint32_t magic = LoadBigEndian<uint32_t>(&input[0]);
  uint32_t version = LoadBigEndian<uint32_t>(&input[4]);
  if (magic != qs::kFileMagic) {
    return Status::Corruption("not a QEMU migration stream: magic " + Hex(magic) + " " + At() + ", expected " +
                              Hex(qs::kFileMagic) + " (\"QEVM\")");
  }
  if (version != qs::kFileVersion) {
    return Status::NotSupported("QEMU migration stream version " + std::to_string(version) + " " + At(4) +
                                "; only version 3 is supported");
  }
  input = input.subspan(8);
  state_ = State::kTopLevel;
  return true;
}

Result<bool> QemuStreamReader::ParseTopLevel(std::span<const std::byte>& input) {
  uint8_t type = static_cast<uint8_t>(input[0]);
  switch (type) {
    case qs::kConfiguration:
      return ParseConfiguration(input);
    case qs::kCommand: {
      if (input.size() < 5) return false;
      uint16_t command = LoadBigEndian<uint16_t>(&input[1]);
      uint16_t length = LoadBigEndian<uint16_t>(&input[3]);
      if (input.size() < 5u + length) return false;
      UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnCommand(command, input.subspan(5, length)));
      input = input.subspan(5 + length);
      return true;
    }
    case qs::kSectionStart: {
      if (input.size() < 6) return false;
      uint32_t section_id = LoadBigEndian<uint32_t>(&input[1]);
      size_t name_length = static_cast<uint8_t>(input[5]);
      if (input.size() < 6 + name_length + 8) return false;
      std::string name(AsText(input.subspan(6, name_length)));
      uint32_t version = LoadBigEndian<uint32_t>(&input[10 + name_length]);
      if (name != qs::kRamSectionName) {
        return Status::NotSupported("iterable section '" + name + "' (id " + std::to_string(section_id) + ") " + At() +
                                    " is not supported; only 'ram' is");
      }
      if (ram_section_id_) return Status::Corruption("a second SECTION_START for 'ram' " + At());
      if (version != qs::kRamSectionVersion) {
        return Status::NotSupported("RAM section version " + std::to_string(version) + " " + At() + "; expected 4");
      }
      ram_section_id_ = section_id;
      current_section_id_ = section_id;
      current_section_kind_ = RamSectionKind::kStart;
      input = input.subspan(14 + name_length);
      state_ = State::kRamRecords;
      return true;
    }
    case qs::kSectionPart:
    case qs::kSectionEnd: {
      if (input.size() < 5) return false;
      uint32_t section_id = LoadBigEndian<uint32_t>(&input[1]);
      if (!ram_section_id_ || section_id != *ram_section_id_) {
        return Status::Corruption("SECTION_" + std::string(type == qs::kSectionPart ? "PART" : "END") +
                                  " for unknown section id " + std::to_string(section_id) + " " + At());
      }
      current_section_id_ = section_id;
      current_section_kind_ = type == qs::kSectionPart ? RamSectionKind::kPart : RamSectionKind::kEnd;
      input = input.subspan(5);
      state_ = State::kRamRecords;
      return true;
    }
    case qs::kSectionFull:
    case qs::kEof:
      if (!ram_section_id_) return Status::Corruption("device state before any RAM section " + At());
      state_ = State::kPrecopyDevices;
      return true;  // consumed nothing; the device scanner takes it from here
    default:
      return Status::Corruption("unexpected section type " + Hex(type) + " " + At());
  }
}

Result<bool> QemuStreamReader::ParseConfiguration(std::span<const std::byte>& input) {
  if (configuration_seen_) return Status::Corruption("a second CONFIGURATION section " + At());
  if (input.size() < 5) return false;
  uint32_t length = LoadBigEndian<uint32_t>(&input[1]);
  if (length > 255) return Status::Corruption("machine type name of " + std::to_string(length) + " bytes " + At(1));
  size_t at = 5 + length;
  StreamConfiguration configuration;
  configuration.machine_type = std::string(AsText(input.subspan(std::min<size_t>(5, input.size()),
                                                                std::min<size_t>(length, input.size() - 5))));
  // Subsections follow while the next byte is QEMU_VM_SUBSECTION; the byte after the last one
  // already belongs to the next section, so it must have arrived before we can decide.
  for (;;) {
    if (input.size() <= at) return false;
    if (static_cast<uint8_t>(input[at]) != qs::kSubsection) break;
    if (input.size() < at + 2) return false;
    size_t name_length = static_cast<uint8_t>(input[at + 1]);
    if (input.size() < at + 2 + name_length + 4) return false;
    std::string name(AsText(input.subspan(at + 2, name_length)));
    size_t body = at + 2 + name_length + 4;  // after the be32 version
    if (name != qs::kCapabilitiesSubsection) {
      return Status::NotSupported("configuration subsection '" + name + "' " + At(at) + " is not supported");
    }
    if (input.size() < body + 4) return false;
    uint32_t count = LoadBigEndian<uint32_t>(&input[body]);
    if (count > 64) return Status::Corruption("configuration lists " + std::to_string(count) + " capabilities " + At(body));
    size_t cursor = body + 4;
    std::vector<std::string> capabilities;
    for (uint32_t i = 0; i < count; ++i) {
      if (input.size() < cursor + 1) return false;
      size_t capability_length = static_cast<uint8_t>(input[cursor]);
      if (input.size() < cursor + 1 + capability_length) return false;
      capabilities.emplace_back(AsText(input.subspan(cursor + 1, capability_length)));
      cursor += 1 + capability_length;
    }
    configuration.capabilities.insert(configuration.capabilities.end(), capabilities.begin(), capabilities.end());
    at = cursor;
  }
  configuration_ = std::move(configuration);
  configuration_seen_ = true;
  UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnConfiguration(configuration_));
  input = input.subspan(at);
  return true;
}

Result<bool> QemuStreamReader::ParseRamRecord(std::span<const std::byte>& input) {
  if (input.size() < 8) return false;
  uint64_t header = LoadBigEndian<uint64_t>(&input[0]);
  uint64_t flags = header & qs::kRamFlagMask;
  uint64_t offset = header & ~qs::kRamFlagMask;
  for (const RamFlagName& unsupported : kUnsupportedRamFlags) {
    if (flags & unsupported.flag) {
      return Status::NotSupported("RAM record flag " + std::string(unsupported.name) + " (" + Hex(unsupported.flag) +
                                  ") " + At() + " is not supported");
    }
  }
  uint64_t kind = flags & ~qs::kRamFlagContinue;
  if (kind == qs::kRamFlagEos) {
    input = input.subspan(8);
    state_ = State::kSectionFooter;
    return true;
  }
  if (kind == qs::kRamFlagMemSize) {
    if (current_section_kind_ != RamSectionKind::kStart) {
      return Status::Corruption("RAM block list outside the SECTION_START " + At());
    }
    return ParseBlockList(input, offset, 8);
  }
  if (kind != qs::kRamFlagPage && kind != qs::kRamFlagZero) {
    return Status::Corruption("RAM record with flags " + Hex(flags) + " " + At());
  }
  // Which block: named unless CONTINUE says "the same as the previous record".
  size_t at = 8;
  uint32_t block_index;
  if (flags & qs::kRamFlagContinue) {
    if (!current_block_) return Status::Corruption("RAM record with CONTINUE but no previous block " + At());
    block_index = *current_block_;
  } else {
    if (input.size() < at + 1) return false;
    size_t name_length = static_cast<uint8_t>(input[at]);
    if (input.size() < at + 1 + name_length) return false;
    std::string_view name = AsText(input.subspan(at + 1, name_length));
    auto found = std::find_if(blocks_.begin(), blocks_.end(), [&](const RamBlockInfo& b) { return b.id == name; });
    if (found == blocks_.end()) {
      return Status::Corruption("RAM record names unknown block '" + std::string(name) + "' " + At());
    }
    block_index = static_cast<uint32_t>(found - blocks_.begin());
    at += 1 + name_length;
  }
  const RamBlockInfo& block = blocks_[block_index];
  if (offset > block.used_length - kPageSize) {  // used_length >= one page; no overflow
    return Status::Corruption("page at " + Hex(offset) + " beyond block '" + block.id + "' of " +
                              std::to_string(block.used_length) + " bytes " + At());
  }
  size_t payload = kind == qs::kRamFlagPage ? kPageSize : 1;
  if (input.size() < at + payload) return false;
  current_block_ = block_index;
  if (kind == qs::kRamFlagPage) {
    UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnRamPage(block_index, offset, input.subspan(at, kPageSize)));
  } else {
    UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnRamZeroPage(block_index, offset, static_cast<uint8_t>(input[at])));
  }
  input = input.subspan(at + payload);
  return true;
}

Result<bool> QemuStreamReader::ParseBlockList(std::span<const std::byte>& input, uint64_t total_bytes,
                                              size_t header_bytes) {
  if (block_list_seen_) return Status::Corruption("a second RAM block list " + At());
  if (total_bytes == 0) return Status::Corruption("an empty RAM block list " + At());
  const bool with_address = configuration_.ignore_shared();
  RamBlockList blocks;
  size_t at = header_bytes;
  uint64_t remaining = total_bytes;
  while (remaining > 0) {
    if (input.size() < at + 1) return false;
    size_t name_length = static_cast<uint8_t>(input[at]);
    size_t entry = 1 + name_length + 8 + (with_address ? 8 : 0);
    if (input.size() < at + entry) return false;
    RamBlockInfo block;
    block.id = std::string(AsText(input.subspan(at + 1, name_length)));
    block.used_length = LoadBigEndian<uint64_t>(&input[at + 1 + name_length]);
    if (with_address) block.guest_physical_address = LoadBigEndian<uint64_t>(&input[at + 9 + name_length]);
    if (name_length == 0 || block.used_length == 0 || block.used_length % kPageSize != 0 ||
        block.used_length > remaining) {
      return Status::Corruption("RAM block '" + block.id + "' of " + std::to_string(block.used_length) +
                                " bytes does not fit the announced total of " + std::to_string(total_bytes) + " " +
                                At(at));
    }
    if (blocks.size() >= 4096) return Status::Corruption("more than 4096 RAM blocks " + At(at));
    remaining -= block.used_length;
    blocks.push_back(std::move(block));
    at += entry;
  }
  blocks_ = std::move(blocks);
  block_list_seen_ = true;
  UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnRamBlocks(blocks_));
  input = input.subspan(at);
  return true;
}

Result<bool> QemuStreamReader::ParseSectionFooter(std::span<const std::byte>& input) {
  if (input.size() < 5) return false;
  uint32_t section_id = LoadBigEndian<uint32_t>(&input[1]);
  if (input[0] != std::byte{qs::kSectionFooter} || section_id != current_section_id_) {
    return Status::Corruption("missing footer for section " + std::to_string(current_section_id_) + " " + At() +
                              " (found byte " + Hex(static_cast<uint8_t>(input[0])) + ")");
  }
  input = input.subspan(5);
  UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnRamSectionEnd(current_section_kind_));
  state_ = precopy_complete_ ? State::kLiveRamSection : State::kTopLevel;
  return true;
}

Result<bool> QemuStreamReader::ParsePrecopyDevices(std::span<const std::byte>& input) {
  // Device sections have no length: gather them until the VM description's opening shows.
  size_t previous = device_state_.size();
  if (previous + input.size() > options_.max_device_state_bytes) {
    return Status::Corruption("initial device state exceeds " + std::to_string(options_.max_device_state_bytes) +
                              " bytes without a VM description " + At());
  }
  device_state_.insert(device_state_.end(), input.begin(), input.end());
  std::string_view text = AsText(device_state_);
  for (size_t from = std::max(vmdesc_scan_from_, kVmdescPrefixBytes);;) {
    size_t found = text.find(kVmdescOpening, from);
    if (found == std::string_view::npos) break;
    if (device_state_[found - 6] == std::byte{qs::kEof} && device_state_[found - 5] == std::byte{qs::kVmDescription}) {
      device_state_end_ = found - 5;  // through the EOF byte
      vmdesc_length_ = LoadBigEndian<uint32_t>(&device_state_[found - 4]);
      if (vmdesc_length_ < kVmdescOpening.size()) {
        return Status::Corruption("VM description of " + std::to_string(vmdesc_length_) + " bytes is too short");
      }
      if (vmdesc_length_ > options_.max_vmdesc_bytes) {
        return Status::Corruption("VM description of " + std::to_string(vmdesc_length_) + " bytes at offset " +
                                  std::to_string(stream_offset_ - previous + found - 4) + " exceeds the limit");
      }
      // Bytes after the opening are JSON; any beyond its length belong to the next units and
      // all arrived in this call (earlier calls never held a whole opening).
      size_t json_have = device_state_.size() - found;
      if (json_have > vmdesc_length_) {
        size_t excess = json_have - vmdesc_length_;
        if (excess > input.size()) return Status::Internal("VM description scan overran its input");
        device_state_.resize(found + vmdesc_length_);
        input = input.subspan(input.size() - excess);
      } else {
        input = input.subspan(input.size());
      }
      if (json_have >= vmdesc_length_) {
        UNDERSTUDY_RETURN_IF_ERROR(FinishPrecopy());
      } else {
        state_ = State::kVmDescription;
      }
      return true;
    }
    from = found + 1;
  }
  vmdesc_scan_from_ = device_state_.size() > kVmdescOpening.size() ? device_state_.size() - kVmdescOpening.size() : 0;
  input = input.subspan(input.size());
  return true;
}

Result<bool> QemuStreamReader::ParseVmDescription(std::span<const std::byte>& input) {
  size_t have = device_state_.size() - (device_state_end_ + kVmdescPrefixBytes - 1);
  size_t take = std::min<size_t>(input.size(), vmdesc_length_ - have);
  device_state_.insert(device_state_.end(), input.begin(), input.begin() + take);
  input = input.subspan(take);
  if (have + take < vmdesc_length_) return true;
  UNDERSTUDY_RETURN_IF_ERROR(FinishPrecopy());
  return true;
}

Status QemuStreamReader::FinishPrecopy() {
  std::span<const std::byte> devices(device_state_.data(), device_state_end_);
  std::string_view json_text = AsText(std::span<const std::byte>(device_state_).subspan(device_state_end_ + 5));
  UNDERSTUDY_RETURN_IF_ERROR(CheckJsonNesting(json_text, 64).WithContext("the VM description " + At()));
  nlohmann::json vmdesc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (vmdesc.is_discarded() || !vmdesc.is_object()) return Status::Corruption("the VM description is not a JSON object " + At());
  auto listed = vmdesc.find("devices");
  bool minimal = listed == vmdesc.end() || (listed->is_array() && listed->empty());
  Result<std::vector<DeviceSectionSpan>> sections =
      (minimal && !options_.require_vmdesc_cross_check) ? SplitDeviceSectionsByFooters(devices)
                                                        : SplitDeviceSectionsCrossChecked(devices, vmdesc);
  if (!sections.ok()) return sections.status().WithContext("end of the initial precopy " + At());
  precopy_sections_ = std::move(*sections);
  UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnDeviceState(devices));
  UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnVmDescription(json_text, precopy_sections_));
  device_state_.clear();
  device_state_.shrink_to_fit();
  precopy_complete_ = true;
  expected_message_ = qs::ColoMessage::kCheckpointRequest;
  state_ = State::kColoMessage;
  return Status::Ok();
}

Result<bool> QemuStreamReader::ParseColoMessage(std::span<const std::byte>& input) {
  if (input.size() < 4) return false;
  uint32_t raw = LoadBigEndian<uint32_t>(&input[0]);
  if (raw >= qs::kColoMessageCount) {
    return Status::Corruption("unknown COLO message " + std::to_string(raw) + " " + At());
  }
  auto message = static_cast<qs::ColoMessage>(raw);
  if (message != expected_message_) {
    return Status::Corruption("COLO message " + std::string(qs::ColoMessageName(message)) + " " + At() + ", expected " +
                              std::string(qs::ColoMessageName(expected_message_)));
  }
  size_t used = 4;
  if (message == qs::ColoMessage::kVmstateSize) {
    if (input.size() < 12) return false;
    uint64_t size = LoadBigEndian<uint64_t>(&input[4]);
    if (size == 0 || size > options_.max_device_state_bytes) {
      return Status::Corruption("vmstate-size of " + std::to_string(size) + " bytes " + At(4) + " (limit " +
                                std::to_string(options_.max_device_state_bytes) + ")");
    }
    device_bytes_remaining_ = size;
    device_state_.clear();
    device_state_.reserve(size);
    used = 12;
  }
  UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnColoMessage(message));
  input = input.subspan(used);
  switch (message) {
    case qs::ColoMessage::kCheckpointRequest:
      expected_message_ = qs::ColoMessage::kVmstateSend;
      break;
    case qs::ColoMessage::kVmstateSend:
      state_ = State::kLiveRamSection;
      break;
    case qs::ColoMessage::kVmstateSize:
      state_ = State::kDeviceBuffer;
      break;
    default:
      return Status::Corruption("COLO message " + std::string(qs::ColoMessageName(message)) +
                                " travels from the secondary, not from QEMU " + At());
  }
  return true;
}

Result<bool> QemuStreamReader::ParseLiveRamSection(std::span<const std::byte>& input) {
  uint8_t type = static_cast<uint8_t>(input[0]);
  if (type == qs::kEof) {
    input = input.subspan(1);
    expected_message_ = qs::ColoMessage::kVmstateSize;
    state_ = State::kColoMessage;
    return true;
  }
  if (type == qs::kSectionPart || type == qs::kSectionEnd) {
    state_ = State::kTopLevel;  // reuse the section-header parser; the footer brings us back
    Result<bool> parsed = ParseTopLevel(input);
    if (!parsed.ok() || !*parsed) state_ = State::kLiveRamSection;
    return parsed;
  }
  return Status::Corruption("inside a checkpoint, expected a RAM section or EOF, found section type " + Hex(type) +
                            " " + At());
}

Result<bool> QemuStreamReader::ParseDeviceBuffer(std::span<const std::byte>& input) {
  size_t take = static_cast<size_t>(std::min<uint64_t>(input.size(), device_bytes_remaining_));
  device_state_.insert(device_state_.end(), input.begin(), input.begin() + take);
  input = input.subspan(take);
  device_bytes_remaining_ -= take;
  if (device_bytes_remaining_ > 0) return true;
  if (device_state_.back() != std::byte{qs::kEof}) {
    return Status::Corruption("checkpoint " + std::to_string(checkpoints_completed_ + 1) +
                              ": device state does not end with EOF " + At());
  }
  ++checkpoints_completed_;
  UNDERSTUDY_RETURN_IF_ERROR(visitor_.OnDeviceState(device_state_));
  device_state_.clear();
  expected_message_ = qs::ColoMessage::kCheckpointRequest;
  state_ = State::kColoMessage;
  return true;
}

}  // namespace understudy::checkpoint
