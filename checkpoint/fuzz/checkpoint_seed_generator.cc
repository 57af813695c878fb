// Writes seed checkpoints for the checkpoint decoder fuzzer into DIR: first and later epochs
// with every page encoding, machine definition, stream info, block list, device state and
// console output, built by the same code the primary uses (EncodeStagedPages).
//
//   bazel run //checkpoint/fuzz:checkpoint_seed_generator -- $PWD/checkpoint/fuzz/corpus/checkpoint
#include <cstdio>
#include <fstream>
#include <random>

#include "checkpoint/checkpoint_apply.h"
#include "checkpoint/checkpoint_codec.h"
#include "checkpoint/checkpoint_test_util.h"

using namespace understudy::checkpoint;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::mt19937_64 random(2026);
  RamBlockList blocks = {{"pc.ram", 1u << 20, std::nullopt}, {"vga.vram", 64u << 10, std::nullopt}};
  auto image = RamImage::Create(blocks);
  if (!image.ok()) return 1;
  for (uint64_t epoch = 1; epoch <= 6; ++epoch) {
    Checkpoint checkpoint = testing::StageRandomEpoch(random, **image, epoch, epoch == 1 ? 24 : 6);
    if (epoch == 1) {
      checkpoint.machine_definition_json = R"({"name":"counter","memory_mib":1})";
      checkpoint.stream_info = QemuStreamInfo{2, "pc-i440fx-7.2", {}};
      checkpoint.ram_blocks = blocks;
    }
    (*image)->CommitStaged(epoch);
    std::string bytes = SerializeCheckpoint(checkpoint);
    std::ofstream(std::string(argv[1]) + "/seed-epoch-" + std::to_string(epoch), std::ios::binary) << bytes;
  }
  return 0;
}
