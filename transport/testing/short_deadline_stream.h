// A conformance check every byte-stream Channel must pass: agents poll Receive with deadlines
// far shorter than a big checkpoint takes to arrive, so a Receive that times out mid-message
// must lose nothing. Interleaves large messages (checkpoints) with tiny ones (heartbeats),
// receives them with 1 ms deadlines, and checks each message arrives whole and in order.
#ifndef UNDERSTUDY_TRANSPORT_TESTING_SHORT_DEADLINE_STREAM_H_
#define UNDERSTUDY_TRANSPORT_TESTING_SHORT_DEADLINE_STREAM_H_

#include "transport/channel.h"

namespace understudy::transport::testing {

// Sends from `sender` on a thread while `receiver` polls. Records gtest failures; returns how
// many Receive calls hit their deadline (callers assert it is > 0, or the check proved nothing).
int ExpectFramesSurviveShortReceiveDeadlines(Channel& sender, Channel& receiver);

}  // namespace understudy::transport::testing

#endif  // UNDERSTUDY_TRANSPORT_TESTING_SHORT_DEADLINE_STREAM_H_
