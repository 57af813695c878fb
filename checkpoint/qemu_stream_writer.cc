#include "checkpoint/qemu_stream_writer.h"

#include "checkpoint/qemu_stream_format.h"
#include "common/byte_order.h"

namespace understudy::checkpoint {

namespace qs = qemu_stream;

namespace {

void PutByte(std::string& out, uint8_t value) { out.push_back(static_cast<char>(value)); }

void PutShortString(std::string& out, std::string_view text) {
  PutByte(out, static_cast<uint8_t>(text.size()));
  out.append(text);
}

}  // namespace

QemuStreamWriter::QemuStreamWriter(ByteSink sink, size_t buffer_bytes)
    : sink_(std::move(sink)), buffer_bytes_(buffer_bytes) {
  buffer_.reserve(buffer_bytes_ + qs::kTargetPageSize + 512);
}

Status QemuStreamWriter::Refuse(std::string_view what) const {
  return Status::FailedPrecondition("QEMU stream writer: " + std::string(what));
}

void QemuStreamWriter::Put(std::string_view bytes) { buffer_.append(bytes); }

Status QemuStreamWriter::MaybeFlush() {
  if (buffer_.size() >= buffer_bytes_) return Flush();
  return Status::Ok();
}

Status QemuStreamWriter::Flush() {
  if (buffer_.empty()) return Status::Ok();
  Status status = sink_(std::as_bytes(std::span(buffer_.data(), buffer_.size())));
  bytes_written_ += buffer_.size();
  buffer_.clear();
  return status;
}

Status QemuStreamWriter::WriteHeader(const StreamConfiguration& configuration) {
  if (stage_ != Stage::kStart) return Refuse("header written twice");
  AppendBigEndian<uint32_t>(buffer_, qs::kFileMagic);
  AppendBigEndian<uint32_t>(buffer_, qs::kFileVersion);
  PutByte(buffer_, qs::kConfiguration);
  AppendBigEndian<uint32_t>(buffer_, static_cast<uint32_t>(configuration.machine_type.size()));
  Put(configuration.machine_type);
  if (!configuration.capabilities.empty()) {
    PutByte(buffer_, qs::kSubsection);
    PutShortString(buffer_, qs::kCapabilitiesSubsection);
    AppendBigEndian<uint32_t>(buffer_, 1);  // subsection version
    AppendBigEndian<uint32_t>(buffer_, static_cast<uint32_t>(configuration.capabilities.size()));
    for (const std::string& capability : configuration.capabilities) PutShortString(buffer_, capability);
  }
  ignore_shared_ = configuration.ignore_shared();
  stage_ = Stage::kAfterHeader;
  return Status::Ok();
}

Status QemuStreamWriter::BeginRamStart(uint32_t section_id, const RamBlockList& blocks) {
  if (stage_ != Stage::kAfterHeader) return Refuse("RAM SECTION_START must follow the header, once");
  ram_section_id_ = section_id;
  blocks_ = blocks;
  PutByte(buffer_, qs::kSectionStart);
  AppendBigEndian<uint32_t>(buffer_, section_id);
  PutShortString(buffer_, qs::kRamSectionName);
  AppendBigEndian<uint32_t>(buffer_, 0);  // instance
  AppendBigEndian<uint32_t>(buffer_, qs::kRamSectionVersion);
  uint64_t total = 0;
  for (const RamBlockInfo& block : blocks) total += block.used_length;
  AppendBigEndian<uint64_t>(buffer_, total | qs::kRamFlagMemSize);
  for (const RamBlockInfo& block : blocks) {
    PutShortString(buffer_, block.id);
    AppendBigEndian<uint64_t>(buffer_, block.used_length);
    if (ignore_shared_) {
      if (!block.guest_physical_address) return Refuse("x-ignore-shared needs every block's guest address");
      AppendBigEndian<uint64_t>(buffer_, *block.guest_physical_address);
    }
  }
  stage_ = Stage::kInRamSection;
  return MaybeFlush();
}

Status QemuStreamWriter::BeginRamPart() {
  if (stage_ != Stage::kBetweenRamSections) return Refuse("RAM SECTION_PART must follow a finished RAM section");
  PutByte(buffer_, qs::kSectionPart);
  AppendBigEndian<uint32_t>(buffer_, ram_section_id_);
  stage_ = Stage::kInRamSection;
  return Status::Ok();
}

Status QemuStreamWriter::WriteRamRecordHeader(uint32_t block_index, uint64_t offset, uint64_t flag) {
  if (stage_ != Stage::kInRamSection) return Refuse("page outside a RAM section");
  if (block_index >= blocks_.size()) return Refuse("page for block " + std::to_string(block_index) + " of " + std::to_string(blocks_.size()));
  if (offset % qs::kTargetPageSize != 0 || offset + qs::kTargetPageSize > blocks_[block_index].used_length) {
    return Refuse("page offset " + std::to_string(offset) + " outside block '" + blocks_[block_index].id + "'");
  }
  bool same_block = last_block_ == block_index;
  AppendBigEndian<uint64_t>(buffer_, offset | flag | (same_block ? qs::kRamFlagContinue : 0));
  if (!same_block) PutShortString(buffer_, blocks_[block_index].id);
  last_block_ = block_index;
  return Status::Ok();
}

Status QemuStreamWriter::WritePage(uint32_t block_index, uint64_t offset, std::span<const std::byte> page) {
  if (page.size() != qs::kTargetPageSize) return Refuse("a page must be 4096 bytes");
  UNDERSTUDY_RETURN_IF_ERROR(WriteRamRecordHeader(block_index, offset, qs::kRamFlagPage));
  Put({reinterpret_cast<const char*>(page.data()), page.size()});
  return MaybeFlush();
}

Status QemuStreamWriter::WriteZeroPage(uint32_t block_index, uint64_t offset) {
  UNDERSTUDY_RETURN_IF_ERROR(WriteRamRecordHeader(block_index, offset, qs::kRamFlagZero));
  PutByte(buffer_, 0);
  return MaybeFlush();
}

Status QemuStreamWriter::EndRamSection() {
  if (stage_ != Stage::kInRamSection) return Refuse("no RAM section to end");
  AppendBigEndian<uint64_t>(buffer_, qs::kRamFlagEos);
  PutByte(buffer_, qs::kSectionFooter);
  AppendBigEndian<uint32_t>(buffer_, ram_section_id_);
  stage_ = Stage::kBetweenRamSections;
  return MaybeFlush();
}

Status QemuStreamWriter::WriteDeviceState(std::span<const std::byte> sections_and_eof) {
  if (stage_ != Stage::kBetweenRamSections) return Refuse("device state must follow the RAM sections");
  if (sections_and_eof.empty() || sections_and_eof.back() != std::byte{qs::kEof}) {
    return Refuse("device state must end with the EOF byte");
  }
  UNDERSTUDY_RETURN_IF_ERROR(Flush());
  UNDERSTUDY_RETURN_IF_ERROR(sink_(sections_and_eof));
  bytes_written_ += sections_and_eof.size();
  stage_ = Stage::kAfterDevices;
  return Status::Ok();
}

Status QemuStreamWriter::WriteVmDescription(std::string_view json) {
  if (stage_ != Stage::kAfterDevices) return Refuse("the VM description must follow the device state");
  PutByte(buffer_, qs::kVmDescription);
  AppendBigEndian<uint32_t>(buffer_, static_cast<uint32_t>(json.size()));
  Put(json);
  stage_ = Stage::kDone;
  return Flush();
}

}  // namespace understudy::checkpoint
