#include "checkpoint/checkpoint_codec.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "common/byte_order.h"
#include "common/crc32c.h"

namespace understudy::checkpoint {

using format::PageEncoding;
using format::SectionType;

std::string_view format::SectionTypeName(uint16_t type) {
  switch (static_cast<SectionType>(type)) {
    case SectionType::kMachineDefinition: return "machine_definition";
    case SectionType::kStreamInfo: return "stream_info";
    case SectionType::kRamBlocks: return "ram_blocks";
    case SectionType::kPages: return "pages";
    case SectionType::kDeviceState: return "device_state";
    case SectionType::kOutput: return "output";
    case SectionType::kDiskWrites: return "disk_writes";
    case SectionType::kCommit: return "commit";
  }
  return "unknown";
}

std::string_view format::PageEncodingName(PageEncoding encoding) {
  switch (encoding) {
    case PageEncoding::kRaw: return "raw";
    case PageEncoding::kZero: return "zero";
    case PageEncoding::kLz4: return "lz4";
    case PageEncoding::kXorLz4: return "xor_lz4";
  }
  return "unknown";
}

size_t Checkpoint::page_count() const {
  size_t count = 0;
  for (const PageRun& run : page_runs) count += run.pages.size();
  return count;
}

namespace {

std::span<const std::byte> AsBytes(std::string_view text) { return std::as_bytes(std::span(text.data(), text.size())); }

// ---- Writing ----

// Disk writes are split into sections of about this size (far below the 256 MiB cap; one
// write is at most 32 MiB, disk/disk_server.cc).
constexpr size_t kDiskSectionTargetBytes = format::kChunkSectionBytes;

class SectionWriter {
 public:
  explicit SectionWriter(std::string& out) : out_(out) {}

  // Appends a section; returns its 12 header bytes for the chain checksum.
  void Append(SectionType type, std::string_view payload) {
    std::string header;
    AppendLittleEndian<uint16_t>(header, static_cast<uint16_t>(type));
    AppendLittleEndian<uint16_t>(header, 0);
    AppendLittleEndian<uint32_t>(header, static_cast<uint32_t>(payload.size()));
    uint32_t crc = crc32c::Extend(crc32c::Value(AsBytes(header)), AsBytes(payload));
    AppendLittleEndian<uint32_t>(header, crc);
    chain_.append(header);
    out_.append(header);
    out_.append(payload);
    ++count_;
  }

  std::string& chain() { return chain_; }
  uint32_t count() const { return count_; }

 private:
  std::string& out_;
  std::string chain_;  // header bytes of the checkpoint and every section so far
  uint32_t count_ = 0;
};

void AppendShortString(std::string& out, std::string_view text) {
  out.push_back(static_cast<char>(text.size()));
  out.append(text);
}

}  // namespace

std::string SerializeCheckpoint(const Checkpoint& checkpoint) {
  std::string out;
  size_t estimate = format::kHeaderBytes + 64;
  for (const PageRun& run : checkpoint.page_runs) {
    for (const EncodedPage& page : run.pages) estimate += 13 + page.bytes.size();
  }
  if (checkpoint.device_state) estimate += checkpoint.device_state->size() + 12;
  for (const OutputChunk& chunk : checkpoint.outputs) {
    estimate += chunk.bytes.size() + 24 * (chunk.bytes.size() / format::kChunkSectionBytes + 1);
  }
  for (const DiskWrite& write : checkpoint.disk_writes) estimate += 13 + write.data.size();
  estimate += 13 * (checkpoint.disk_writes.size() / 64 + 1);
  out.reserve(estimate);

  AppendLittleEndian<uint32_t>(out, format::kMagic);
  AppendLittleEndian<uint16_t>(out, format::kVersion);
  AppendLittleEndian<uint16_t>(out, format::kHeaderBytes);
  AppendLittleEndian<uint64_t>(out, checkpoint.epoch);
  AppendLittleEndian<uint64_t>(out, checkpoint.base_epoch);
  AppendLittleEndian<uint32_t>(out, checkpoint.full ? format::kHeaderFlagFull : 0);
  AppendLittleEndian<uint32_t>(out, crc32c::Value(AsBytes(out)));

  SectionWriter sections(out);
  sections.chain() = out;  // the chain starts with the checkpoint header
  if (checkpoint.machine_definition_json) {
    sections.Append(SectionType::kMachineDefinition, *checkpoint.machine_definition_json);
  }
  if (checkpoint.stream_info) {
    std::string payload;
    AppendLittleEndian<uint32_t>(payload, checkpoint.stream_info->ram_section_id);
    AppendShortString(payload, checkpoint.stream_info->machine_type);
    payload.push_back(static_cast<char>(checkpoint.stream_info->capabilities.size()));
    for (const std::string& capability : checkpoint.stream_info->capabilities) AppendShortString(payload, capability);
    sections.Append(SectionType::kStreamInfo, payload);
  }
  if (checkpoint.ram_blocks) {
    std::string payload;
    AppendLittleEndian<uint32_t>(payload, static_cast<uint32_t>(checkpoint.ram_blocks->size()));
    for (const RamBlockInfo& block : *checkpoint.ram_blocks) {
      AppendLittleEndian<uint16_t>(payload, static_cast<uint16_t>(block.id.size()));
      payload.append(block.id);
      AppendLittleEndian<uint64_t>(payload, block.used_length);
      payload.push_back(block.guest_physical_address ? 1 : 0);
      if (block.guest_physical_address) AppendLittleEndian<uint64_t>(payload, *block.guest_physical_address);
    }
    sections.Append(SectionType::kRamBlocks, payload);
  }
  std::string payload;
  for (const PageRun& run : checkpoint.page_runs) {
    payload.clear();
    AppendLittleEndian<uint32_t>(payload, run.block_index);
    AppendLittleEndian<uint32_t>(payload, static_cast<uint32_t>(run.pages.size()));
    for (const EncodedPage& page : run.pages) {
      AppendLittleEndian<uint64_t>(payload, page.offset);
      payload.push_back(static_cast<char>(page.encoding));
      if (page.encoding != PageEncoding::kZero) {
        AppendLittleEndian<uint32_t>(payload, static_cast<uint32_t>(page.bytes.size()));
        payload.append(page.bytes);
      }
    }
    sections.Append(SectionType::kPages, payload);
  }
  if (checkpoint.device_state) sections.Append(SectionType::kDeviceState, *checkpoint.device_state);
  for (const OutputChunk& chunk : checkpoint.outputs) {
    // In pieces of at most kChunkSectionBytes at consecutive stream offsets (an empty chunk
    // still makes one section: it says where the stream stands).
    size_t done = 0;
    do {
      const size_t piece = std::min<size_t>(chunk.bytes.size() - done, format::kChunkSectionBytes);
      payload.clear();
      AppendLittleEndian<uint32_t>(payload, static_cast<uint32_t>(chunk.stream));
      AppendLittleEndian<uint64_t>(payload, chunk.stream_offset + done);
      payload.append(chunk.bytes, done, piece);
      sections.Append(SectionType::kOutput, payload);
      done += piece;
    } while (done < chunk.bytes.size());
  }
  // Disk writes, in sections of bounded size so a busy epoch never nears the section cap; an
  // epoch that only flushed still says so in one empty section.
  size_t next = 0;
  const uint8_t disk_flags = (checkpoint.disk_flushed ? 1 : 0) | (checkpoint.disk_sync_incomplete ? 2 : 0);
  while (next < checkpoint.disk_writes.size() || (next == 0 && disk_flags != 0)) {
    payload.clear();
    payload.push_back(static_cast<char>(disk_flags));
    while (next < checkpoint.disk_writes.size() && payload.size() < kDiskSectionTargetBytes) {
      const DiskWrite& write = checkpoint.disk_writes[next++];
      AppendLittleEndian<uint64_t>(payload, write.offset);
      AppendLittleEndian<uint32_t>(payload, write.length);
      payload.push_back(static_cast<char>(write.zero ? 1 : 0));
      if (!write.zero) payload.append(write.data);
    }
    sections.Append(SectionType::kDiskWrites, payload);
    if (checkpoint.disk_writes.empty()) break;
  }
  payload.clear();
  AppendLittleEndian<uint64_t>(payload, checkpoint.epoch);
  AppendLittleEndian<uint32_t>(payload, sections.count());
  AppendLittleEndian<uint32_t>(payload, crc32c::Value(AsBytes(sections.chain())));
  sections.Append(SectionType::kCommit, payload);
  return out;
}

namespace {

// ---- Reading ----

// Bounds-checked little-endian reads from one section's payload; errors name the field.
class PayloadReader {
 public:
  PayloadReader(std::span<const std::byte> payload, std::string context)
      : payload_(payload), context_(std::move(context)) {}

  template <typename T>
  Result<T> Read(std::string_view field) {
    if (remaining() < sizeof(T)) return Truncated(field);
    T value = LoadLittleEndian<T>(payload_.data() + at_);
    at_ += sizeof(T);
    return value;
  }

  Result<std::string> ReadBytes(size_t length, std::string_view field) {
    if (remaining() < length) return Truncated(field);
    std::string bytes(reinterpret_cast<const char*>(payload_.data() + at_), length);
    at_ += length;
    return bytes;
  }

  Result<std::string> ReadShortString(std::string_view field) {
    UNDERSTUDY_ASSIGN_OR_RETURN(uint8_t length, Read<uint8_t>(field));
    return ReadBytes(length, field);
  }

  Result<std::string> ReadRest() { return ReadBytes(remaining(), "payload"); }

  Status ExpectEnd() const {
    if (remaining() == 0) return Status::Ok();
    return Status::Corruption(context_ + ": " + std::to_string(remaining()) + " unexpected bytes at payload offset " +
                              std::to_string(at_));
  }

  Status Error(std::string_view what) const {
    return Status::Corruption(context_ + ": " + std::string(what) + " at payload offset " + std::to_string(at_));
  }

  size_t remaining() const { return payload_.size() - at_; }

 private:
  Status Truncated(std::string_view field) const {
    return Status::Corruption(context_ + ": truncated " + std::string(field) + " at payload offset " +
                              std::to_string(at_));
  }

  std::span<const std::byte> payload_;
  std::string context_;
  size_t at_ = 0;
};

Status ParsePages(PayloadReader& reader, Checkpoint& checkpoint) {
  PageRun run;
  UNDERSTUDY_ASSIGN_OR_RETURN(run.block_index, reader.Read<uint32_t>("block index"));
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t count, reader.Read<uint32_t>("page count"));
  // Every entry takes at least 9 bytes: refuse counts the payload cannot hold before reserving.
  if (count > reader.remaining() / 9) return reader.Error("page count " + std::to_string(count) + " exceeds the payload");
  run.pages.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    EncodedPage page;
    UNDERSTUDY_ASSIGN_OR_RETURN(page.offset, reader.Read<uint64_t>("page offset"));
    UNDERSTUDY_ASSIGN_OR_RETURN(uint8_t encoding, reader.Read<uint8_t>("page encoding"));
    if (encoding > static_cast<uint8_t>(PageEncoding::kXorLz4)) {
      return reader.Error("unknown page encoding " + std::to_string(encoding));
    }
    page.encoding = static_cast<PageEncoding>(encoding);
    if (page.offset % format::kPageBytes != 0) return reader.Error("page offset not page-aligned");
    if (page.encoding != PageEncoding::kZero) {
      UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t length, reader.Read<uint32_t>("encoded length"));
      bool valid = page.encoding == PageEncoding::kRaw ? length == format::kPageBytes
                                                       : length >= 1 && length <= format::kPageBytes;
      if (!valid) {
        return reader.Error(std::string(format::PageEncodingName(page.encoding)) + " page with encoded length " +
                            std::to_string(length));
      }
      if (page.encoding == PageEncoding::kXorLz4 && checkpoint.base_epoch == 0) {
        return reader.Error("xor_lz4 page in a checkpoint without a base epoch");
      }
      UNDERSTUDY_ASSIGN_OR_RETURN(page.bytes, reader.ReadBytes(length, "page bytes"));
    }
    run.pages.push_back(std::move(page));
  }
  checkpoint.page_runs.push_back(std::move(run));
  return reader.ExpectEnd();
}

Status ParseRamBlocks(PayloadReader& reader, Checkpoint& checkpoint) {
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t count, reader.Read<uint32_t>("block count"));
  if (count > reader.remaining() / 11) return reader.Error("block count " + std::to_string(count) + " exceeds the payload");
  RamBlockList blocks;
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    RamBlockInfo block;
    UNDERSTUDY_ASSIGN_OR_RETURN(uint16_t length, reader.Read<uint16_t>("block id length"));
    UNDERSTUDY_ASSIGN_OR_RETURN(block.id, reader.ReadBytes(length, "block id"));
    UNDERSTUDY_ASSIGN_OR_RETURN(block.used_length, reader.Read<uint64_t>("block length"));
    UNDERSTUDY_ASSIGN_OR_RETURN(uint8_t has_address, reader.Read<uint8_t>("block address flag"));
    if (has_address > 1) return reader.Error("block address flag " + std::to_string(has_address));
    if (has_address) {
      UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t address, reader.Read<uint64_t>("block address"));
      block.guest_physical_address = address;
    }
    if (block.id.empty() || block.used_length == 0 || block.used_length % format::kPageBytes != 0) {
      return reader.Error("block '" + block.id + "' with length " + std::to_string(block.used_length));
    }
    // Both bounds hold, so the sum cannot wrap.
    if (block.used_length > format::kMaxRamBytes || total + block.used_length > format::kMaxRamBytes) {
      return reader.Error("block '" + block.id + "' with length " + std::to_string(block.used_length) + " takes RAM past the " +
                          std::to_string(format::kMaxRamBytes) + "-byte cap");
    }
    total += block.used_length;
    blocks.push_back(std::move(block));
  }
  checkpoint.ram_blocks = std::move(blocks);
  return reader.ExpectEnd();
}

Status ParseStreamInfo(PayloadReader& reader, Checkpoint& checkpoint) {
  QemuStreamInfo info;
  UNDERSTUDY_ASSIGN_OR_RETURN(info.ram_section_id, reader.Read<uint32_t>("ram section id"));
  UNDERSTUDY_ASSIGN_OR_RETURN(info.machine_type, reader.ReadShortString("machine type"));
  UNDERSTUDY_ASSIGN_OR_RETURN(uint8_t count, reader.Read<uint8_t>("capability count"));
  for (uint8_t i = 0; i < count; ++i) {
    UNDERSTUDY_ASSIGN_OR_RETURN(std::string capability, reader.ReadShortString("capability"));
    info.capabilities.push_back(std::move(capability));
  }
  checkpoint.stream_info = std::move(info);
  return reader.ExpectEnd();
}

Status ParseOutput(PayloadReader& reader, Checkpoint& checkpoint) {
  OutputChunk chunk;
  UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t stream, reader.Read<uint32_t>("output stream"));
  if (stream > static_cast<uint32_t>(OutputStream::kNetwork)) return reader.Error("unknown output stream " + std::to_string(stream));
  chunk.stream = static_cast<OutputStream>(stream);
  UNDERSTUDY_ASSIGN_OR_RETURN(chunk.stream_offset, reader.Read<uint64_t>("output stream offset"));
  UNDERSTUDY_ASSIGN_OR_RETURN(chunk.bytes, reader.ReadRest());
  checkpoint.outputs.push_back(std::move(chunk));
  return Status::Ok();
}

Status ParseDiskWrites(PayloadReader& reader, Checkpoint& checkpoint) {
  UNDERSTUDY_ASSIGN_OR_RETURN(uint8_t flags, reader.Read<uint8_t>("disk flags"));
  if (flags > 3) return reader.Error("unknown disk flags " + std::to_string(flags));
  checkpoint.disk_flushed = checkpoint.disk_flushed || (flags & 1) != 0;
  checkpoint.disk_sync_incomplete = checkpoint.disk_sync_incomplete || (flags & 2) != 0;
  while (reader.remaining() > 0) {
    DiskWrite write;
    UNDERSTUDY_ASSIGN_OR_RETURN(write.offset, reader.Read<uint64_t>("disk write offset"));
    UNDERSTUDY_ASSIGN_OR_RETURN(write.length, reader.Read<uint32_t>("disk write length"));
    UNDERSTUDY_ASSIGN_OR_RETURN(uint8_t kind, reader.Read<uint8_t>("disk write kind"));
    if (kind > 1) return reader.Error("unknown disk write kind " + std::to_string(kind));
    if (write.length == 0) return reader.Error("an empty disk write");
    if (write.offset > UINT64_MAX - write.length) return reader.Error("a disk write past the end of any disk");
    write.zero = kind == 1;
    if (!write.zero) {
      if (reader.remaining() < write.length) {
        return reader.Error("a disk write of " + std::to_string(write.length) + " bytes with " +
                            std::to_string(reader.remaining()) + " left in the section");
      }
      UNDERSTUDY_ASSIGN_OR_RETURN(write.data, reader.ReadBytes(write.length, "disk write data"));
    }
    checkpoint.disk_writes.push_back(std::move(write));
  }
  return Status::Ok();
}

// Cross-section rules: pages name existing blocks (when the block list travels along) and
// stay inside them, and no page appears twice.
Status CheckPagesAgainstBlocks(const Checkpoint& checkpoint) {
  std::set<std::pair<uint32_t, uint64_t>> seen;
  for (const PageRun& run : checkpoint.page_runs) {
    if (checkpoint.ram_blocks) {
      if (run.block_index >= checkpoint.ram_blocks->size()) {
        return Status::Corruption("pages for block " + std::to_string(run.block_index) + " of " +
                                  std::to_string(checkpoint.ram_blocks->size()));
      }
      uint64_t length = (*checkpoint.ram_blocks)[run.block_index].used_length;
      for (const EncodedPage& page : run.pages) {
        // Written so that no peer-supplied offset can wrap around (offset + 4096 would).
        if (page.offset % format::kPageBytes != 0 || page.offset > length || length - page.offset < format::kPageBytes) {
          return Status::Corruption("page at offset " + std::to_string(page.offset) + " beyond block '" +
                                    (*checkpoint.ram_blocks)[run.block_index].id + "'");
        }
      }
    }
    for (const EncodedPage& page : run.pages) {
      if (!seen.insert({run.block_index, page.offset}).second) {
        return Status::Corruption("page at offset " + std::to_string(page.offset) + " of block " +
                                  std::to_string(run.block_index) + " appears twice");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Checkpoint> ParseCheckpoint(std::span<const std::byte> bytes) {
  if (bytes.size() < format::kHeaderBytes) {
    return Status::Corruption("checkpoint of " + std::to_string(bytes.size()) + " bytes is shorter than its header");
  }
  uint32_t magic = LoadLittleEndian<uint32_t>(&bytes[0]);
  if (magic != format::kMagic) return Status::Corruption("not an Understudy checkpoint (bad magic)");
  uint16_t version = LoadLittleEndian<uint16_t>(&bytes[4]);
  if (version != format::kVersion) {
    return Status::NotSupported("checkpoint format version " + std::to_string(version) + "; this build reads version " +
                                std::to_string(format::kVersion));
  }
  uint16_t header_size = LoadLittleEndian<uint16_t>(&bytes[6]);
  if (header_size != format::kHeaderBytes) return Status::Corruption("header size " + std::to_string(header_size));
  uint32_t header_crc = LoadLittleEndian<uint32_t>(&bytes[28]);
  if (crc32c::Value(bytes.first(28)) != header_crc) return Status::Corruption("checkpoint header checksum mismatch");

  Checkpoint checkpoint;
  checkpoint.epoch = LoadLittleEndian<uint64_t>(&bytes[8]);
  checkpoint.base_epoch = LoadLittleEndian<uint64_t>(&bytes[16]);
  uint32_t flags = LoadLittleEndian<uint32_t>(&bytes[24]);
  if ((flags & ~format::kHeaderFlagFull) != 0) return Status::Corruption("unknown header flags " + std::to_string(flags));
  checkpoint.full = (flags & format::kHeaderFlagFull) != 0;
  std::string context = "checkpoint " + std::to_string(checkpoint.epoch);

  // Pass 1: framing and checksums of everything, before looking inside any payload.
  struct Section {
    uint16_t type;
    uint16_t flags;
    size_t offset;
    std::span<const std::byte> payload;
  };
  std::vector<Section> sections;
  uint32_t chain = crc32c::Value(bytes.first(format::kHeaderBytes));
  size_t at = format::kHeaderBytes;
  bool committed = false;
  while (at < bytes.size()) {
    if (committed) {
      return Status::Corruption(context + ": " + std::to_string(bytes.size() - at) + " bytes after the commit trailer");
    }
    if (bytes.size() - at < format::kSectionHeaderBytes) {
      return Status::Corruption(context + ": truncated section header at offset " + std::to_string(at));
    }
    Section section;
    section.type = LoadLittleEndian<uint16_t>(&bytes[at]);
    section.flags = LoadLittleEndian<uint16_t>(&bytes[at + 2]);
    uint32_t length = LoadLittleEndian<uint32_t>(&bytes[at + 4]);
    uint32_t crc = LoadLittleEndian<uint32_t>(&bytes[at + 8]);
    std::string where = "section " + std::string(format::SectionTypeName(section.type)) + " (type " +
                        std::to_string(section.type) + ") at offset " + std::to_string(at);
    if (length > format::kMaxSectionBytes) {
      return Status::Corruption(context + ": " + where + " declares " + std::to_string(length) + " bytes, over the " +
                                std::to_string(format::kMaxSectionBytes) + "-byte cap");
    }
    if (length > bytes.size() - at - format::kSectionHeaderBytes) {
      return Status::Corruption(context + ": " + where + " declares " + std::to_string(length) + " bytes but only " +
                                std::to_string(bytes.size() - at - format::kSectionHeaderBytes) + " remain");
    }
    if ((section.flags & ~format::kSectionFlagIgnorable) != 0) {
      return Status::Corruption(context + ": " + where + " has unknown flags " + std::to_string(section.flags));
    }
    section.offset = at;
    section.payload = bytes.subspan(at + format::kSectionHeaderBytes, length);
    uint32_t actual = crc32c::Extend(crc32c::Value(bytes.subspan(at, 8)), section.payload);
    if (actual != crc) return Status::Corruption(context + ": checksum mismatch in " + where);
    if (section.type == static_cast<uint16_t>(SectionType::kCommit)) {
      PayloadReader trailer(section.payload, context + ": commit trailer");
      UNDERSTUDY_ASSIGN_OR_RETURN(uint64_t epoch, trailer.Read<uint64_t>("epoch"));
      UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t count, trailer.Read<uint32_t>("section count"));
      UNDERSTUDY_ASSIGN_OR_RETURN(uint32_t chain_crc, trailer.Read<uint32_t>("chain checksum"));
      UNDERSTUDY_RETURN_IF_ERROR(trailer.ExpectEnd());
      if (epoch != checkpoint.epoch) {
        return Status::Corruption(context + ": commit trailer names epoch " + std::to_string(epoch));
      }
      if (count != sections.size()) {
        return Status::Corruption(context + ": commit trailer counts " + std::to_string(count) + " sections, found " +
                                  std::to_string(sections.size()));
      }
      if (chain_crc != chain) return Status::Corruption(context + ": chained checksum mismatch in the commit trailer");
      committed = true;
    } else {
      chain = crc32c::Extend(chain, bytes.subspan(at, format::kSectionHeaderBytes));
      sections.push_back(section);
    }
    at += format::kSectionHeaderBytes + length;
  }
  if (!committed) return Status::Corruption(context + ": no commit trailer (truncated checkpoint)");

  // Pass 2: payloads.
  std::set<uint16_t> once_seen;
  for (const Section& section : sections) {
    std::string where = context + ": section " + std::string(format::SectionTypeName(section.type)) + " at offset " +
                        std::to_string(section.offset);
    PayloadReader reader(section.payload, where);
    auto type = static_cast<SectionType>(section.type);
    bool once_only = type != SectionType::kPages && type != SectionType::kOutput && type != SectionType::kDiskWrites;
    if (once_only && !once_seen.insert(section.type).second) return Status::Corruption(where + " appears twice");
    Status status;
    switch (type) {
      case SectionType::kMachineDefinition: {
        UNDERSTUDY_ASSIGN_OR_RETURN(std::string json, reader.ReadRest());
        checkpoint.machine_definition_json = std::move(json);
        break;
      }
      case SectionType::kStreamInfo: status = ParseStreamInfo(reader, checkpoint); break;
      case SectionType::kRamBlocks: status = ParseRamBlocks(reader, checkpoint); break;
      case SectionType::kPages: status = ParsePages(reader, checkpoint); break;
      case SectionType::kDeviceState: {
        UNDERSTUDY_ASSIGN_OR_RETURN(std::string state, reader.ReadRest());
        if (state.empty() || state.back() != '\0') return Status::Corruption(where + ": device state lacks its EOF byte");
        checkpoint.device_state = std::move(state);
        break;
      }
      case SectionType::kOutput: status = ParseOutput(reader, checkpoint); break;
      case SectionType::kDiskWrites: status = ParseDiskWrites(reader, checkpoint); break;
      case SectionType::kCommit: return Status::Internal("commit trailer among sections");
      default:
        if (section.flags & format::kSectionFlagIgnorable) continue;
        return Status::NotSupported(where + ": unknown section type " + std::to_string(section.type) +
                                    " (written by a newer Understudy?)");
    }
    UNDERSTUDY_RETURN_IF_ERROR(status);
  }
  UNDERSTUDY_RETURN_IF_ERROR(CheckPagesAgainstBlocks(checkpoint).WithContext(context));
  return checkpoint;
}

}  // namespace understudy::checkpoint
