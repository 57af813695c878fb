// The console stream protocol between an agent and its readers (ftctl console, tests).
//
//   reader → agent:  u64 LE start offset (the first byte the reader lacks)
//   agent → reader:  frames of  u64 LE offset, u32 LE length, `length` bytes
//
// Frames are contiguous from the start offset. An agent with nothing to send keeps the
// connection open; an agent that can no longer serve (its log does not reach back that far,
// or it is not the VM's owner) closes it, and the reader tries the other agent.
#ifndef UNDERSTUDY_CONSOLE_CONSOLE_PROTOCOL_H_
#define UNDERSTUDY_CONSOLE_CONSOLE_PROTOCOL_H_

#include <cstddef>

namespace understudy::console {

inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr size_t kMaxFrameBytes = 64 << 10;

}  // namespace understudy::console

#endif  // UNDERSTUDY_CONSOLE_CONSOLE_PROTOCOL_H_
