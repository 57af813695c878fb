// Serialising a Checkpoint to the bytes of FORMAT.md and parsing them back.
//
// ParseCheckpoint validates the whole frame before it returns anything: header, every
// section's length and CRC32C, the commit trailer and its chained checksum, and the structure
// of every payload. Any violation is kCorruption (or kNotSupported for a newer version or an
// unknown required section) naming what and where; nothing partial is returned. Page
// payloads are not decompressed here: staging does that (checkpoint_apply.h) before commit.
//
// SerializeCheckpoint(ParseCheckpoint(bytes)) == bytes for every valid input whose output
// sections hold at most format::kChunkSectionBytes each (every input SerializeCheckpoint
// writes): a writer splits larger output into such sections (FORMAT.md), so a chunk larger
// than that parses back as several chunks at consecutive stream offsets.
#ifndef UNDERSTUDY_CHECKPOINT_CHECKPOINT_CODEC_H_
#define UNDERSTUDY_CHECKPOINT_CHECKPOINT_CODEC_H_

#include <cstddef>
#include <span>
#include <string>

#include "checkpoint/checkpoint.h"
#include "common/result.h"

namespace understudy::checkpoint {

std::string SerializeCheckpoint(const Checkpoint& checkpoint);

Result<Checkpoint> ParseCheckpoint(std::span<const std::byte> bytes);

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_CHECKPOINT_CODEC_H_
