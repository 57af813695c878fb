// The network guest (tests/guests/net_service.c) under KVM or the TCG vehicle, its e1000 on a tap device in a
// private network namespace. Four UDP clients drive its counter service at once, retransmitting
// whatever goes unanswered, and every answer must be exactly-once: status ok, increasing per
// client, and across clients exactly 1..800. A repeated request gets its old answer again, a
// stale one "stale", a skipped one "gap" without being applied; and the console counts along.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/child_process.h"
#include "common/unique_fd.h"
#include "tests/harness/network_lab.h"
#include "tests/harness/tap_namespace.h"
#include "tests/harness/require_guest_accelerator.h"
#include "tests/harness/service_protocol.h"
#include "tests/harness/test_guest.h"

namespace understudy::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kTapDevice[] = "ustap0";
constexpr char kHostAddress[] = "10.96.0.1";
constexpr char kGuestAddress[] = "10.96.0.2";
constexpr uint16_t kGuestPort = 7000;
constexpr char kGuestMac[] = "52:54:00:12:34:56";

constexpr uint32_t kClients = 4;
constexpr uint32_t kRequestsPerClient = 200;
constexpr auto kRetransmitAfter = std::chrono::milliseconds(200);

// One client of the service: a UDP socket connected to the guest, opened in the calling
// thread's network namespace (and staying there whichever thread uses it later).
class ServiceClient {
 public:
  static Result<ServiceClient> Connect(uint32_t client_id) {
    UniqueFd socket(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket.valid()) return Status::FromErrno("socket", errno);
    sockaddr_in guest{};
    guest.sin_family = AF_INET;
    guest.sin_port = htons(kGuestPort);
    ::inet_pton(AF_INET, kGuestAddress, &guest.sin_addr);
    if (::connect(socket.get(), reinterpret_cast<const sockaddr*>(&guest), sizeof(guest)) != 0) {
      return Status::FromErrno("connecting a UDP socket to the guest", errno);
    }
    return ServiceClient(client_id, std::move(socket));
  }

  uint32_t id() const { return id_; }
  int fd() const { return socket_.get(); }

  Status Send(uint32_t request_no, uint32_t op = kServiceOpIncrement) {
    std::array<uint8_t, kServiceRequestBytes> request = EncodeServiceRequest(id_, request_no, op);
    if (::send(socket_.get(), request.data(), request.size(), 0) < 0) {
      // The first datagrams may fail while the host still resolves the guest's MAC; the
      // retransmission covers them like a lost datagram.
      if (errno != EHOSTUNREACH && errno != ECONNREFUSED) return Status::FromErrno("sending a request", errno);
    }
    return Status::Ok();
  }

  // A reply that is already waiting, if any; datagrams that are not replies are skipped.
  std::optional<ServiceReply> TryReceive() {
    for (;;) {
      uint8_t datagram[64];
      ssize_t size = ::recv(socket_.get(), datagram, sizeof(datagram), MSG_DONTWAIT);
      if (size < 0) return std::nullopt;
      if (std::optional<ServiceReply> reply = DecodeServiceReply(std::span(datagram, static_cast<size_t>(size)))) {
        return reply;
      }
    }
  }

  // Sends request `request_no` and waits for its reply, retransmitting every
  // kRetransmitAfter; replies to other (earlier) requests are skipped.
  Result<ServiceReply> Call(uint32_t request_no, uint32_t op, Deadline deadline) {
    while (!deadline.Expired()) {
      UNDERSTUDY_RETURN_IF_ERROR(Send(request_no, op));
      Deadline retransmit = Deadline::After(kRetransmitAfter).Min(deadline);
      while (!retransmit.Expired()) {
        pollfd readable{socket_.get(), POLLIN, 0};
        ::poll(&readable, 1, retransmit.PollTimeoutMillis());
        while (std::optional<ServiceReply> reply = TryReceive()) {
          if (reply->client_id == id_ && reply->request_no == request_no) return *reply;
        }
      }
    }
    return Status::DeadlineExceeded("no reply to request " + std::to_string(request_no) + " of client " +
                                    std::to_string(id_));
  }

 private:
  ServiceClient(uint32_t id, UniqueFd socket) : id_(id), socket_(std::move(socket)) {}

  uint32_t id_;
  UniqueFd socket_;
};

// What the concurrent phase saw.
struct LoadReport {
  std::vector<std::vector<uint64_t>> values;  // [client][request_no - 1]: the value answered
  std::vector<std::string> violations;        // anything but an exactly-once answer
  std::vector<double> latencies_ms;           // first send to answer, retransmissions included
  uint32_t retransmissions = 0;
  double seconds = 0;
};

// Drives every client through requests 1..requests_each, each with one request outstanding,
// all at once from this thread.
Result<LoadReport> DriveConcurrently(std::vector<ServiceClient>& clients, uint32_t requests_each, Deadline deadline) {
  struct Outstanding {
    uint32_t request_no = 1;
    Clock::time_point first_sent, last_sent;
  };
  LoadReport report;
  report.values.resize(clients.size());
  std::vector<Outstanding> outstanding(clients.size());
  const Clock::time_point start = Clock::now();
  for (size_t c = 0; c < clients.size(); ++c) {
    UNDERSTUDY_RETURN_IF_ERROR(clients[c].Send(1));
    outstanding[c].first_sent = outstanding[c].last_sent = Clock::now();
  }
  size_t finished = 0;
  while (finished < clients.size()) {
    if (deadline.Expired()) return Status::DeadlineExceeded("the service stopped answering");
    std::vector<pollfd> readable;
    Clock::time_point next_retransmit = deadline.when();
    for (size_t c = 0; c < clients.size(); ++c) {
      readable.push_back({clients[c].fd(), POLLIN, 0});
      if (outstanding[c].request_no <= requests_each) {
        next_retransmit = std::min(next_retransmit, outstanding[c].last_sent + kRetransmitAfter);
      }
    }
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_retransmit - Clock::now()).count();
    ::poll(readable.data(), readable.size(), static_cast<int>(std::max<int64_t>(wait, 0)));

    for (size_t c = 0; c < clients.size(); ++c) {
      Outstanding& current = outstanding[c];
      std::vector<uint64_t>& values = report.values[c];
      while (std::optional<ServiceReply> reply = clients[c].TryReceive()) {
        const std::string which = "client " + std::to_string(c) + " request " + std::to_string(reply->request_no);
        const uint32_t last_sent_no = std::min(current.request_no, requests_each);
        if (reply->client_id != clients[c].id() || reply->request_no == 0 || reply->request_no > last_sent_no) {
          report.violations.push_back(which + ": a reply to a request never sent");
          continue;
        }
        if (reply->request_no < current.request_no) {
          // A late answer to a retransmission: "stale", or the very value answered before.
          if (reply->status == ReplyStatus::kOk && reply->value != values[reply->request_no - 1]) {
            report.violations.push_back(which + ": answered " + std::to_string(values[reply->request_no - 1]) +
                                        ", then " + std::to_string(reply->value));
          }
          continue;
        }
        if (reply->status != ReplyStatus::kOk) {
          report.violations.push_back(which + ": status " + std::to_string(static_cast<uint32_t>(reply->status)));
        }
        values.push_back(reply->value);
        report.latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - current.first_sent).count());
        if (++current.request_no > requests_each) {
          ++finished;
          continue;
        }
        UNDERSTUDY_RETURN_IF_ERROR(clients[c].Send(current.request_no));
        current.first_sent = current.last_sent = Clock::now();
      }
      if (current.request_no <= requests_each && Clock::now() >= current.last_sent + kRetransmitAfter) {
        UNDERSTUDY_RETURN_IF_ERROR(clients[c].Send(current.request_no));
        current.last_sent = Clock::now();
        ++report.retransmissions;
      }
    }
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

qemu::VmDefinition NetGuestDefinition() {
  qemu::VmDefinition definition;
  definition.name = "net";
  definition.memory_mib = 32;
  definition.kernel = RunfilePath("tests/guests/net_service.elf");
  definition.append = std::string("ip=") + kGuestAddress + " port=" + std::to_string(kGuestPort);
  definition.serial.kind = qemu::SerialBackend::Kind::kUnixSocketServer;
  return definition;
}

// A tap device rather than the definition's NIC socket: with the host kernel as the guest's
// peer, the test talks to the service through ordinary UDP sockets.
std::vector<std::string> NetGuestTapArgs() {
  return {"-netdev", std::string("tap,id=n0,ifname=") + kTapDevice + ",script=no,downscript=no", "-device",
          std::string("e1000,netdev=n0,romfile=,mac=") + kGuestMac};
}

double Percentile(std::vector<double> samples, double fraction) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[std::min(samples.size() - 1, static_cast<size_t>(fraction * samples.size()))];
}

// Exactly once: every answer ok, per client strictly increasing, together exactly 1..total.
void ExpectExactlyOnce(const LoadReport& load, uint64_t total) {
  for (const std::string& violation : load.violations) ADD_FAILURE() << violation;
  std::vector<uint64_t> all;
  for (size_t c = 0; c < load.values.size(); ++c) {
    const std::vector<uint64_t>& values = load.values[c];
    auto not_increasing =
        std::adjacent_find(values.begin(), values.end(), [](uint64_t a, uint64_t b) { return b <= a; });
    EXPECT_TRUE(not_increasing == values.end())
        << "client " << c << " got " << *not_increasing << " before " << *(not_increasing + 1);
    all.insert(all.end(), values.begin(), values.end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), total);
  for (uint64_t i = 0; i < total; ++i) ASSERT_EQ(all[i], i + 1) << "the values answered are not exactly 1.." << total;
}

// After `client` had requests 1..last_request answered, the last with `last_value`, and
// `applied` requests were applied in all: a repeat gets its old answer and applies nothing,
// an older request is stale, a skipped number is a gap and applies nothing, an unknown op
// is invalid.
void ExpectRepeatStaleGapAnswers(ServiceClient& client, uint32_t last_request, uint64_t last_value, uint64_t applied) {
  // Late copies of earlier answers would be mistaken for answers to these.
  while (client.TryReceive()) {
  }
  const Deadline deadline = Deadline::AfterMillis(30000);
  Result<ServiceReply> repeated = client.Call(last_request, kServiceOpIncrement, deadline);
  ASSERT_TRUE(repeated.ok()) << repeated.status();
  EXPECT_EQ(repeated->status, ReplyStatus::kOk);
  EXPECT_EQ(repeated->value, last_value) << "a repeated request was not answered with its old value";

  Result<ServiceReply> stale = client.Call(last_request / 2, kServiceOpIncrement, deadline);
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_EQ(stale->status, ReplyStatus::kStale) << "an old request was not refused as stale";
  EXPECT_EQ(stale->value, 0u);

  Result<ServiceReply> gap = client.Call(last_request + 2, kServiceOpIncrement, deadline);
  ASSERT_TRUE(gap.ok()) << gap.status();
  EXPECT_EQ(gap->status, ReplyStatus::kGap) << "a request past a gap was not refused";
  EXPECT_EQ(gap->value, 0u);

  Result<ServiceReply> next = client.Call(last_request + 1, kServiceOpIncrement, deadline);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->status, ReplyStatus::kOk);
  EXPECT_EQ(next->value, applied + 1) << "something besides the " << applied << " requests was applied";

  Result<ServiceReply> unknown_op = client.Call(last_request + 2, /*op=*/7, deadline);
  ASSERT_TRUE(unknown_op.ok()) << unknown_op.status();
  EXPECT_EQ(unknown_op->status, ReplyStatus::kInvalid);
}

// The whole scenario; runs on a thread inside the namespace, so QEMU (started from it) finds
// the tap device and the clients' sockets reach the guest.
void ServeClientsInsideNamespace() {
  Result<std::unique_ptr<TestGuest>> guest = TestGuest::Start(NetGuestDefinition(), "net-guest", StartMode::kRun, NetGuestTapArgs());
  ASSERT_TRUE(guest.ok()) << guest.status();
  SerialConsole& console = (*guest)->console();
  Result<std::string> boot = console.ReadLine(Deadline::AfterMillis(60000));
  ASSERT_TRUE(boot.ok()) << boot.status() << "; QEMU log: " << (*guest)->process().Log();
  ASSERT_EQ(*boot, std::string("net_service: e1000 MAC ") + kGuestMac + ", ip " + kGuestAddress + " port " +
                       std::to_string(kGuestPort));

  // QEMU's e1000 holds received frames for a second after the guest enables its receiver;
  // wait for a first answer (to an invalid op, which applies nothing) before measuring. A
  // client id of its own keeps late copies of that answer away from the clients below.
  {
    Result<ServiceClient> warm_up = ServiceClient::Connect(kClients);
    ASSERT_TRUE(warm_up.ok()) << warm_up.status();
    Result<ServiceReply> answer = warm_up->Call(1, /*op=*/0, Deadline::AfterMillis(30000));
    ASSERT_TRUE(answer.ok()) << answer.status() << "; console: " << console.RecentLines(5);
    ASSERT_EQ(answer->status, ReplyStatus::kInvalid);
  }

  std::vector<ServiceClient> clients;
  for (uint32_t id = 0; id < kClients; ++id) {
    Result<ServiceClient> client = ServiceClient::Connect(id);
    ASSERT_TRUE(client.ok()) << client.status();
    clients.push_back(std::move(*client));
  }
  Result<LoadReport> load = DriveConcurrently(clients, kRequestsPerClient, Deadline::AfterMillis(120000));
  ASSERT_TRUE(load.ok()) << load.status() << "; console: " << console.RecentLines(5);
  const uint32_t total = kClients * kRequestsPerClient;
  std::printf(
      "%u requests from %u clients in %.2f s: %.0f requests/s, latency p50 %.2f ms, p99 %.2f ms, "
      "%u retransmissions\n",
      total, kClients, load->seconds, total / load->seconds, Percentile(load->latencies_ms, 0.5),
      Percentile(load->latencies_ms, 0.99), load->retransmissions);
  ExpectExactlyOnce(*load, total);
  ExpectRepeatStaleGapAnswers(clients[0], kRequestsPerClient, load->values[0].back(), total);

  // The console counted along ("applied 100" ... "applied 800") and reported no driver trouble.
  Result<std::string> last = console.WaitForLine("applied " + std::to_string(total), Deadline::AfterMillis(30000));
  ASSERT_TRUE(last.ok()) << last.status();
  std::vector<std::string> expected = {*boot};
  for (uint32_t applied = 100; applied <= total; applied += 100)
    expected.push_back("applied " + std::to_string(applied));
  EXPECT_EQ(console.lines(), expected);
}

TEST(NetGuestTest, FourClientsGetExactlyOnceAnswersOverATapDevice) {
  UNDERSTUDY_REQUIRE_GUEST_ACCELERATOR();
  if (std::optional<std::string> why = NetworkLabUnavailableReason()) GTEST_SKIP() << "skipped: " << *why;
  Result<std::unique_ptr<TapNamespace>> ns = TapNamespace::Create("usng" + std::to_string(::getpid()), kTapDevice, std::string(kHostAddress) + "/24");
  if (!ns.ok()) GTEST_SKIP() << "skipped: cannot build a network namespace with a tap device: " << ns.status();

  Status entered = RunInNetworkNamespace((*ns)->name(), [] { ServeClientsInsideNamespace(); });
  ASSERT_TRUE(entered.ok()) << entered;
}

}  // namespace
}  // namespace understudy::testing
