// WriteGenerations: for every 64 KiB block of a disk, the generation in which it was last
// written — a per-block dirty map that answers "what changed since generation g?" for any g
// at once. The disk server starts a new generation at every checkpoint; a peer that has
// committed up to generation g needs only the blocks written later.
//
// Thread safety: none (the disk server's mutex guards it).
#ifndef UNDERSTUDY_DISK_WRITE_GENERATIONS_H_
#define UNDERSTUDY_DISK_WRITE_GENERATIONS_H_

#include <cstdint>
#include <vector>

namespace understudy::disk {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ByteRange&) const = default;
};

class WriteGenerations {
 public:
  static constexpr uint64_t kBlockBytes = 64 << 10;

  explicit WriteGenerations(uint64_t disk_bytes);

  void Mark(uint64_t offset, uint64_t length, uint64_t generation);
  // Blocks written in a generation after `generation`, merged into ranges, clipped to the
  // disk; plus every block of `extra` (ranges of the same disk).
  std::vector<ByteRange> ChangedSince(uint64_t generation, const std::vector<ByteRange>& extra = {}) const;
  // Whether any block in [offset, offset + length) was written after `generation`.
  bool AnyChangedSince(uint64_t offset, uint64_t length, uint64_t generation) const;

 private:
  uint64_t disk_bytes_;
  std::vector<uint64_t> last_written_;  // per block; 0: not written since tracking began
};

}  // namespace understudy::disk

#endif  // UNDERSTUDY_DISK_WRITE_GENERATIONS_H_
