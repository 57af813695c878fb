// Encoding one 4 KiB guest page for a checkpoint, and decoding it back.
//
// EncodePage picks, per page, whichever of zero / LZ4 / LZ4-of-XOR-with-the-previous-version
// / raw is smallest (FORMAT.md). Guests typically rewrite a few words of a page per epoch, so
// the XOR is mostly zeros and compresses to a few dozen bytes; that case is tried first and
// accepted at once when it is tiny, which keeps the encoder cheap on the hot path.
//
// Thread safety: stateless functions; safe from any thread.
#ifndef UNDERSTUDY_CHECKPOINT_PAGE_CODEC_H_
#define UNDERSTUDY_CHECKPOINT_PAGE_CODEC_H_

#include <cstddef>
#include <span>

#include "checkpoint/checkpoint.h"
#include "common/status.h"

namespace understudy::checkpoint {

struct PageEncoderOptions {
  bool compress = true;  // try LZ4 at all (off: raw and zero only)
  bool delta = true;     // try XOR against the previous version when one is given
  // An XOR-LZ4 encoding at most this big is taken without trying plain LZ4.
  size_t good_enough_delta_bytes = 256;
};

// `page` and `previous` (when not empty) are 4096 bytes. `previous` is the same page as the
// receiver will hold it when decoding (its committed image at the base epoch).
EncodedPage EncodePage(uint64_t offset, std::span<const std::byte> page, std::span<const std::byte> previous,
                       const PageEncoderOptions& options = {});

// Writes the page's 4096 bytes into `out`. `previous` is required for kXorLz4.
// kCorruption when LZ4 data does not decode to exactly one page.
Status DecodePage(const EncodedPage& encoded, std::span<const std::byte> previous, std::span<std::byte> out);

// True when all 4096 bytes are zero (word-at-a-time; the common case returns early).
bool IsZeroPage(std::span<const std::byte> page);

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_PAGE_CODEC_H_
