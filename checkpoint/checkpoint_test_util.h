// Randomised checkpoints for tests: realistic page mixes (zero, compressible, random, small
// deltas against a previous image) so every encoding appears.
#ifndef UNDERSTUDY_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_
#define UNDERSTUDY_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_

#include <random>

#include "checkpoint/checkpoint.h"
#include "checkpoint/ram_image.h"

namespace understudy::checkpoint::testing {

RamBlockList SampleBlocks();

// Fills `page` with one of several kinds of content chosen by `random`.
void FillPage(std::mt19937_64& random, std::span<std::byte> page);

// Stages `pages` random pages of `image` (changing a few words of pages that already hold
// data, so deltas are worth it) and returns the checkpoint a primary would build from them.
Checkpoint StageRandomEpoch(std::mt19937_64& random, RamImage& image, uint64_t epoch, int pages);

}  // namespace understudy::checkpoint::testing

#endif  // UNDERSTUDY_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_
