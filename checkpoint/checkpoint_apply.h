// Building a checkpoint's page runs from a staged RamImage (primary side) and applying a
// parsed checkpoint to a RamImage all-or-nothing (secondary side).
#ifndef UNDERSTUDY_CHECKPOINT_CHECKPOINT_APPLY_H_
#define UNDERSTUDY_CHECKPOINT_CHECKPOINT_APPLY_H_

#include <vector>

#include "checkpoint/checkpoint.h"
#include "checkpoint/page_codec.h"
#include "checkpoint/ram_image.h"
#include "common/status.h"

namespace understudy::checkpoint {

// Encodes every page staged in `image`, in (block, offset) order, one run per block. Deltas
// refer to the committed image, so the result's base epoch is image.committed_epoch() (and
// deltas are not used when that is 0: the receiver has nothing to XOR with).
std::vector<PageRun> EncodeStagedPages(const RamImage& image, const PageEncoderOptions& options = {});

// Decodes every page of `checkpoint` into `image`'s staging area and commits it as
// checkpoint.epoch — or, on any error, discards the staging and leaves `image` exactly as it
// was. Errors: kFailedPrecondition when the epochs do not follow (epoch must exceed the
// committed one; a base epoch must equal it), kCorruption for a page that does not decode or
// a block list that differs from the image's.
Status ApplyCheckpoint(const Checkpoint& checkpoint, RamImage& image);

}  // namespace understudy::checkpoint

#endif  // UNDERSTUDY_CHECKPOINT_CHECKPOINT_APPLY_H_
