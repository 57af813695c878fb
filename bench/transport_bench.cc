// transport_bench: what each Channel transport costs on loopback, against plain TCP and a
// single-thread memcpy measured in the same run.
//
//   bazel run //bench:transport_bench [-- --batches=1,64,8192 --repetitions=5 --seconds=1
//                                         --min-mib=256 --max-seconds=3 --round-trips=2000
//                                         --no-results]
//
// One connection per transport (tcp:// with insecure, tls:// with a throwaway PKI from
// transport/testing/test_pki.h, zmq+curve:// with fresh CURVE keys), dialled to a listener on
// 127.0.0.1 and kept for the whole run. The dialled end sends; the accepted end receives (or
// echoes) on its own thread.
//
//  * Throughput: batches of N 4 KiB pages, each page its own MessagePart (as the primary ships
//    page payloads), one Send per batch. Pages come from a 64 MiB pool — larger than the
//    caches, like guest RAM — walked in order. A round sends batches until at least --seconds
//    have passed and --min-mib have been sent (or --max-seconds), then an empty message; the
//    receiver notes when the last batch arrived and acknowledges. Time = first Send to last
//    arrival. Every round is preceded by a short unmeasured warm-up round.
//  * Latency: 16-byte ping-pong; the accepted end echoes. Round-trip time per exchange, median
//    and p99 over all repetitions.
//  * memcpy: one thread copying the whole pool page by page into a second buffer
//    (MemcpyBaselineSeconds), the bandwidth any transport must at least read its input with.
//  * AEAD: one thread sealing the pool in 16 KiB records (TLS's record size) with each cipher
//    TLS 1.3 offers, key set once and a fresh nonce per record, as a TLS stack does.
//  * CPU: each throughput row gives the sending and receiving threads' CPU time per byte. With
//    the AEAD and memcpy baselines this yields TLS's best case here: TCP's CPU per byte plus one
//    AEAD pass and one copy on each side (the sender gathers pages into 16 KiB records; OpenSSL
//    opens a record in its own buffer and copies the plaintext out).
//    On loopback both ends share the same cores, so throughput scales with total CPU per byte.
//
// Repetitions interleave the transports (tcp, tls, zmq+curve for each batch size, then again),
// so a burst of load from other work on this shared machine hits them alike; the table gives
// the median of the repetitions. Goal checked: TLS >= 0.6x plain TCP at 8192-page batches.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <stdlib.h>
#include <time.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "common/deadline.h"
#include "common/result.h"
#include "transport/channel.h"
#include "transport/testing/test_pki.h"
#include "transport/zmq_channel.h"

namespace understudy::bench {
namespace {

using transport::Channel;
using transport::ChannelOptions;
using transport::Listener;
using transport::MessagePart;

constexpr size_t kPage = 4096;
constexpr size_t kPoolPages = 16384;  // 64 MiB
constexpr size_t kPingBytes = 16;
constexpr size_t kTlsRecord = 16384;  // TLS's largest record payload
constexpr auto kIoBudget = std::chrono::seconds(30);  // per blocking call; only a hang reaches it

struct Options {
  std::vector<uint32_t> batches = {1, 64, 8192};
  int repetitions = 5;
  double seconds = 1.0;
  double min_mib = 256;
  double max_seconds = 3.0;
  int round_trips = 2000;
  bool write_results = true;
  std::string flags;  // as given, for the command line printed with the results
};

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::fprintf(stderr, "transport_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::fflush(stderr);
  std::_Exit(1);  // threads may still be blocked in a channel: no orderly teardown
}

void Check(const Status& status, const std::string& what) {
  if (!status.ok()) Die(what, status);
}

// A connected pair over one transport. Declared so that the channels go before the listener
// (an accepted zmq+curve channel shares its listener's context).
struct Connection {
  std::string name;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Channel> sender;    // the dialled end
  std::unique_ptr<Channel> receiver;  // the accepted end
  std::vector<std::byte> inbox;       // the receiver's message buffer, reused across rounds
};

std::unique_ptr<Connection> Connect(const std::string& name, const std::string& uri, const ChannelOptions& listen_options,
                                    const ChannelOptions& dial_options) {
  auto connection = std::make_unique<Connection>();
  connection->name = name;
  Result<std::unique_ptr<Listener>> listener = transport::Listen(uri, listen_options);
  if (!listener.ok()) Die("listen on " + uri, listener.status());
  connection->listener = std::move(*listener);
  Status accept_status;
  std::thread acceptor([&] {
    Result<std::unique_ptr<Channel>> accepted = connection->listener->Accept(Deadline::After(kIoBudget));
    if (accepted.ok()) {
      connection->receiver = std::move(*accepted);
    } else {
      accept_status = accepted.status();
    }
  });
  Result<std::unique_ptr<Channel>> dialled =
      transport::Dial(connection->listener->address(), dial_options, Deadline::After(kIoBudget));
  acceptor.join();
  if (!dialled.ok()) Die("dial " + connection->listener->address(), dialled.status());
  Check(accept_status, "accept on " + connection->listener->address());
  connection->sender = std::move(*dialled);
  return connection;
}

// `count` distinct pages of noise.
std::vector<std::byte> MakePool(size_t count) {
  std::vector<std::byte> pool(count * kPage);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i + 8 <= pool.size(); i += 8) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    std::memcpy(pool.data() + i, &state, 8);
  }
  return pool;
}

struct Round {
  double bytes = 0;
  double seconds = 0;
  double sender_cpu_seconds = 0;    // the sending thread's CPU time (user + system)
  double receiver_cpu_seconds = 0;  // the receiving thread's, up to the last batch
};

// CPU time the calling thread has used.
double ThreadCpuSeconds() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// One throughput round: batches of `pages` pages until the budget is spent.
Round ThroughputRound(Connection& connection, std::span<const std::byte> pool, size_t pages, double min_seconds,
                      double min_bytes, double max_seconds) {
  Clock::time_point last_arrival{};
  double received = 0;
  double receiver_cpu = 0;
  Status receive_status;
  std::thread receiver([&] {
    const double cpu_start = ThreadCpuSeconds();
    for (;;) {
      Status status = connection.receiver->Receive(connection.inbox, Deadline::After(kIoBudget));
      if (!status.ok()) {
        receive_status = status;
        return;
      }
      if (connection.inbox.empty()) break;
      last_arrival = Clock::now();
      receiver_cpu = ThreadCpuSeconds() - cpu_start;
      received += static_cast<double>(connection.inbox.size());
    }
    std::byte ack{1};
    receive_status = connection.receiver->Send(MessagePart(&ack, 1), Deadline::After(kIoBudget));
  });

  std::vector<MessagePart> parts(pages);
  size_t cursor = 0;
  double sent = 0;
  Clock::time_point start = Clock::now();
  const double cpu_start = ThreadCpuSeconds();
  for (;;) {
    if (cursor + pages > kPoolPages) cursor = 0;
    for (size_t i = 0; i < pages; ++i) parts[i] = pool.subspan((cursor + i) * kPage, kPage);
    cursor += pages;
    Check(connection.sender->Send(parts, Deadline::After(kIoBudget)), connection.name + " send");
    sent += static_cast<double>(pages * kPage);
    double elapsed = SecondsSince(start);
    if ((elapsed >= min_seconds && sent >= min_bytes) || elapsed >= max_seconds) break;
  }
  const double sender_cpu = ThreadCpuSeconds() - cpu_start;
  Check(connection.sender->Send(MessagePart(), Deadline::After(kIoBudget)), connection.name + " send end of round");
  std::vector<std::byte> ack;
  Check(connection.sender->Receive(ack, Deadline::After(kIoBudget)), connection.name + " receive ack");
  receiver.join();
  Check(receive_status, connection.name + " receiver");
  if (received != sent) Die(connection.name + " round", Status::Internal(Format("sent %.0f bytes, received %.0f", sent, received)));
  return {received, std::chrono::duration<double>(last_arrival - start).count(), sender_cpu, receiver_cpu};
}

// `count` 16-byte ping-pongs; appends each round trip in microseconds to `micros`.
void LatencyRound(Connection& connection, int count, std::vector<double>* micros) {
  Status echo_status;
  std::thread echo([&] {
    std::vector<std::byte> message;
    for (;;) {
      Status status = connection.receiver->Receive(message, Deadline::After(kIoBudget));
      if (!status.ok()) {
        echo_status = status;
        return;
      }
      if (message.empty()) return;
      status = connection.receiver->Send(MessagePart(message.data(), message.size()), Deadline::After(kIoBudget));
      if (!status.ok()) {
        echo_status = status;
        return;
      }
    }
  });
  std::byte ping[kPingBytes] = {};
  std::vector<std::byte> pong;
  for (int i = 0; i < count; ++i) {
    ping[0] = static_cast<std::byte>(i);
    Clock::time_point start = Clock::now();
    Check(connection.sender->Send(MessagePart(ping, sizeof(ping)), Deadline::After(kIoBudget)), connection.name + " ping");
    Check(connection.sender->Receive(pong, Deadline::After(kIoBudget)), connection.name + " pong");
    if (micros != nullptr) micros->push_back(SecondsSince(start) * 1e6);
    if (pong.size() != kPingBytes || pong[0] != ping[0]) Die(connection.name + " pong", Status::Corruption("wrong echo"));
  }
  Check(connection.sender->Send(MessagePart(), Deadline::After(kIoBudget)), connection.name + " end of pings");
  echo.join();
  Check(echo_status, connection.name + " echo");
}

// Megabytes per second one thread seals `pool` with `cipher` in TLS-sized records.
double AeadMegabytesPerSecond(const EVP_CIPHER* cipher, std::span<const std::byte> pool, int repetitions) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> context(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  unsigned char key[32] = {7};
  unsigned char nonce[12] = {};
  unsigned char tag[16];
  std::vector<unsigned char> sealed(kTlsRecord + 16);
  if (!context || EVP_EncryptInit_ex(context.get(), cipher, nullptr, key, nullptr) != 1) {
    Die("AEAD baseline", Status::Internal("EVP_EncryptInit_ex failed"));
  }
  std::vector<double> times;
  for (int repetition = 0; repetition < repetitions; ++repetition) {
    Clock::time_point start = Clock::now();
    for (size_t offset = 0; offset < pool.size(); offset += kTlsRecord) {
      ++nonce[11];
      if (nonce[11] == 0) ++nonce[10];
      int length = 0, final_length = 0;
      const auto* in = reinterpret_cast<const unsigned char*>(pool.data() + offset);
      int size = static_cast<int>(std::min(kTlsRecord, pool.size() - offset));
      if (EVP_EncryptInit_ex(context.get(), nullptr, nullptr, nullptr, nonce) != 1 ||
          EVP_EncryptUpdate(context.get(), sealed.data(), &length, in, size) != 1 ||
          EVP_EncryptFinal_ex(context.get(), sealed.data() + length, &final_length) != 1 ||
          EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_AEAD_GET_TAG, sizeof(tag), tag) != 1) {
        Die("AEAD baseline", Status::Internal("sealing failed"));
      }
      DoNotOptimize(sealed.data());
    }
    times.push_back(SecondsSince(start));
  }
  return MegabytesPerSecond(static_cast<double>(pool.size()), Median(std::move(times)));
}

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU", flags;
  while (std::getline(cpuinfo, line)) {
    if (line.starts_with("model name") && model == "unknown CPU") model = line.substr(line.find(':') + 2);
    if (line.starts_with("flags") && flags.empty()) flags = " " + line.substr(line.find(':') + 1) + " ";
  }
  bool aes = flags.find(" aes ") != std::string::npos;
  bool vaes = flags.find(" vaes ") != std::string::npos;
  return model + (aes ? (vaes ? ", AES-NI + VAES" : ", AES-NI") : ", no AES-NI");
}

Options ParseFlags(int argc, char** argv) {
  Options options;
  const char* usage =
      "flags: --batches=1,64,8192 --repetitions=5 --seconds=1 --min-mib=256 --max-seconds=3 --round-trips=2000 "
      "--no-results\n";
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    options.flags += " " + flag;
    auto value = [&](size_t prefix) { return flag.substr(prefix); };
    if (flag.starts_with("--batches=")) {
      options.batches = ParseUintList(value(10));
      for (uint32_t batch : options.batches) {
        if (batch > kPoolPages) {
          std::fprintf(stderr, "--batches: at most %zu pages\n", kPoolPages);
          std::exit(2);
        }
      }
    } else if (flag.starts_with("--repetitions=")) {
      options.repetitions = std::max(1, std::stoi(value(14)));
    } else if (flag.starts_with("--seconds=")) {
      options.seconds = std::stod(value(10));
    } else if (flag.starts_with("--min-mib=")) {
      options.min_mib = std::stod(value(10));
    } else if (flag.starts_with("--max-seconds=")) {
      options.max_seconds = std::stod(value(14));
    } else if (flag.starts_with("--round-trips=")) {
      options.round_trips = std::max(1, std::stoi(value(14)));
    } else if (flag == "--no-results") {
      options.write_results = false;
    } else {
      std::fprintf(stderr, "unknown flag %s\n%s", flag.c_str(), usage);
      std::exit(2);
    }
  }
  return options;
}

std::string Times(double numerator, double denominator) {
  return denominator > 0 ? Format("%.2fx", numerator / denominator) : "n/a";
}

int Run(const Options& options) {
  Clock::time_point run_start = Clock::now();
  // Certificates and keys.
  char scratch_template[] = "/tmp/transport_bench.XXXXXX";
  const char* scratch = ::mkdtemp(scratch_template);
  if (scratch == nullptr) Die("mkdtemp", Status::FromErrno("mkdtemp", errno));
  Result<transport::testing::TestPki> pki = transport::testing::TestPki::Create(scratch, "bench CA");
  if (!pki.ok()) Die("test PKI", pki.status());
  Result<transport::TlsOptions> secondary_tls = pki->OptionsFor("secondary");
  Result<transport::TlsOptions> primary_tls = pki->OptionsFor("primary");
  if (!secondary_tls.ok() || !primary_tls.ok()) Die("certificates", secondary_tls.ok() ? primary_tls.status() : secondary_tls.status());
  Result<transport::ZmqCurveKeyPair> server_keys = transport::GenerateZmqCurveKeyPair();
  Result<transport::ZmqCurveKeyPair> client_keys = transport::GenerateZmqCurveKeyPair();
  if (!server_keys.ok() || !client_keys.ok()) Die("CURVE keys", server_keys.ok() ? client_keys.status() : server_keys.status());

  ChannelOptions tcp;
  tcp.insecure = true;
  ChannelOptions tls_listen, tls_dial;
  tls_listen.tls = *secondary_tls;
  tls_dial.tls = *primary_tls;
  tls_dial.tls.expected_peer_name = "secondary";
  // The agents' default (AES-128-GCM preferred) and AES-256-GCM forced, in the same run.
  ChannelOptions tls256_listen = tls_listen, tls256_dial = tls_dial;
  tls256_listen.tls.ciphersuites = tls256_dial.tls.ciphersuites = "TLS_AES_256_GCM_SHA384";
  ChannelOptions curve_listen, curve_dial;
  // Idle connections wait while the others saturate both cores: no false kBroken.
  curve_listen.curve.heartbeat_timeout_ms = curve_dial.curve.heartbeat_timeout_ms = 10000;
  curve_listen.curve.server_public_key = curve_dial.curve.server_public_key = server_keys->public_key;
  curve_listen.curve.server_secret_key = server_keys->secret_key;
  curve_listen.curve.allowed_client_keys = {client_keys->public_key};
  curve_dial.curve.client_public_key = client_keys->public_key;
  curve_dial.curve.client_secret_key = client_keys->secret_key;

  std::vector<std::unique_ptr<Connection>> connections;
  connections.push_back(Connect("tcp", "tcp://127.0.0.1:0", tcp, tcp));
  connections.push_back(Connect("tls", "tls://127.0.0.1:0", tls_listen, tls_dial));
  connections.push_back(Connect("tls aes256", "tls://127.0.0.1:0", tls256_listen, tls256_dial));
  connections.push_back(Connect("zmq+curve", "zmq+curve://127.0.0.1:0", curve_listen, curve_dial));

  std::vector<std::byte> pool = MakePool(kPoolPages);
  const std::vector<size_t> page_sizes(kPoolPages, kPage);
  const double min_bytes = options.min_mib * 1024 * 1024;

  // [transport][batch] → MB/s per repetition; [transport] → round trips in µs.
  std::map<std::string, std::map<uint32_t, std::vector<double>>> throughput;
  std::map<std::string, std::map<uint32_t, double>> bytes_moved;
  // [transport][batch] → CPU nanoseconds per byte moved, per repetition.
  std::map<std::string, std::map<uint32_t, std::vector<double>>> sender_cpu, receiver_cpu;
  std::map<std::string, std::vector<double>> round_trips;
  std::vector<double> memcpy_mbps;
  struct Aead {
    const char* name;
    const EVP_CIPHER* cipher;
    std::vector<double> mbps;
  };
  std::vector<Aead> aeads = {{"TLS_AES_256_GCM_SHA384", EVP_aes_256_gcm(), {}},
                             {"TLS_AES_128_GCM_SHA256", EVP_aes_128_gcm(), {}},
                             {"TLS_CHACHA20_POLY1305_SHA256", EVP_chacha20_poly1305(), {}}};
  for (int repetition = 0; repetition < options.repetitions; ++repetition) {
    double memcpy_seconds = MemcpyBaselineSeconds(pool, page_sizes, 5);
    memcpy_mbps.push_back(MegabytesPerSecond(static_cast<double>(pool.size()), memcpy_seconds));
    std::printf("repetition %d: memcpy %.0f MB/s", repetition + 1, memcpy_mbps.back());
    for (Aead& aead : aeads) {
      aead.mbps.push_back(AeadMegabytesPerSecond(aead.cipher, pool, 3));
      std::printf(", %s seal %.0f MB/s", aead.name, aead.mbps.back());
    }
    std::printf("\n");
    for (uint32_t batch : options.batches) {
      for (auto& connection : connections) {
        ThroughputRound(*connection, pool, batch, 0.1, 0, 0.5);  // warm-up
        Round round = ThroughputRound(*connection, pool, batch, options.seconds, min_bytes, options.max_seconds);
        double mbps = MegabytesPerSecond(round.bytes, round.seconds);
        throughput[connection->name][batch].push_back(mbps);
        bytes_moved[connection->name][batch] += round.bytes;
        sender_cpu[connection->name][batch].push_back(round.sender_cpu_seconds * 1e9 / round.bytes);
        receiver_cpu[connection->name][batch].push_back(round.receiver_cpu_seconds * 1e9 / round.bytes);
        std::printf("  %-9s %5u pages/batch: %8.0f MB/s (%.0f MB in %.2f s)\n", connection->name.c_str(), batch, mbps,
                    round.bytes / 1e6, round.seconds);
        std::fflush(stdout);
      }
    }
    for (auto& connection : connections) {
      LatencyRound(*connection, 200, nullptr);  // warm-up
      std::vector<double> micros;
      LatencyRound(*connection, options.round_trips, &micros);
      std::printf("  %-9s ping-pong: p50 %.1f us, p99 %.1f us\n", connection->name.c_str(), Median(micros),
                  Percentile(micros, 0.99));
      round_trips[connection->name].insert(round_trips[connection->name].end(), micros.begin(), micros.end());
    }
  }
  for (auto& connection : connections) {
    Check(connection->sender->Close(Deadline::After(kIoBudget)), connection->name + " close");
    std::vector<std::byte> rest;
    Status end = connection->receiver->Receive(rest, Deadline::After(kIoBudget));
    if (end.code() != Status::Code::kPeerClosed) Die(connection->name + " close", end);
  }
  connections.clear();
  std::filesystem::remove_all(scratch);

  const double memcpy = Median(memcpy_mbps);
  Table speed({"transport", "pages/batch", "batch", "MB/s", "vs TCP", "vs memcpy", "send CPU ns/B", "receive CPU ns/B",
               "MB moved"},
              3);
  speed.AddRow({"memcpy (1 thread)", "", "4 KiB pieces", Format("%.0f", memcpy), "", "1.00x",
                Format("%.3f", 1e3 / memcpy), "", ""});
  for (const Aead& aead : aeads) {
    double mbps = Median(aead.mbps);
    speed.AddRow({std::string(aead.name) + " seal (1 thread)", "", "16 KiB records", Format("%.0f", mbps), "",
                  Times(mbps, memcpy), Format("%.3f", 1e3 / mbps), "", ""});
  }
  const double aes256 = Median(aeads[0].mbps);
  const double aes128 = Median(aeads[1].mbps);
  std::string notes;
  double tls_goal_ratio = -1;
  double tls_ceiling_ratio = -1;
  for (uint32_t batch : options.batches) {
    const double tcp_mbps = Median(throughput["tcp"][batch]);
    for (const char* name : {"tcp", "tls", "tls aes256", "zmq+curve"}) {
      const std::vector<double>& runs = throughput[name][batch];
      const double mbps = Median(runs);
      std::string size = batch * kPage >= (1u << 20) ? Format("%u MiB", static_cast<unsigned>(batch * kPage >> 20))
                                                      : Format("%u KiB", static_cast<unsigned>(batch * kPage >> 10));
      speed.AddRow({name, Format("%u", batch), size, Format("%.0f", mbps), Times(mbps, tcp_mbps), Times(mbps, memcpy),
                    Format("%.3f", Median(sender_cpu[name][batch])), Format("%.3f", Median(receiver_cpu[name][batch])),
                    Format("%.0f", bytes_moved[name][batch] / 1e6)});
      if (std::string(name) == "tls" && batch == 8192) tls_goal_ratio = mbps / tcp_mbps;
      if (std::string(name).starts_with("tls")) {
        // TCP's own CPU per byte on each side, plus one AES-GCM pass (the suite the row used:
        // tls = AES-128-GCM, the agents' preference) and one copy: all TLS must add. Loopback
        // runs both ends on the same cores, so throughput scales with the total CPU per byte.
        const bool is_128 = std::string(name) == "tls";
        const double extra = 1e3 / (is_128 ? aes128 : aes256) + 1e3 / memcpy;
        const double tcp_send = Median(sender_cpu["tcp"][batch]), tcp_receive = Median(receiver_cpu["tcp"][batch]);
        const double floor_send = tcp_send + extra, floor_receive = tcp_receive + extra;
        const double best = tcp_mbps * (tcp_send + tcp_receive) / (floor_send + floor_receive);
        if (batch == 8192 && is_128) tls_ceiling_ratio = best / tcp_mbps;
        speed.AddRow({std::string(name) + " best case (CPU model)", Format("%u", batch), "", Format("%.0f", best), Times(best, tcp_mbps),
                      Times(best, memcpy), Format("%.3f", floor_send), Format("%.3f", floor_receive), ""});
      }
      std::string each;
      for (double run : runs) each += Format("%s%.0f", each.empty() ? "" : ", ", run);
      notes += Format("* %s, %u pages/batch: MB/s per repetition %s.\n", name, batch, each.c_str());
    }
  }
  Table latency({"transport", "RTT p50 us", "RTT p99 us", "p50 vs TCP", "p99 vs TCP", "round trips"}, 1);
  const double tcp_p50 = Median(round_trips["tcp"]);
  const double tcp_p99 = Percentile(round_trips["tcp"], 0.99);
  for (const char* name : {"tcp", "tls", "tls aes256", "zmq+curve"}) {
    const std::vector<double>& micros = round_trips[name];
    double p50 = Median(micros), p99 = Percentile(micros, 0.99);
    latency.AddRow({name, Format("%.1f", p50), Format("%.1f", p99), Times(p50, tcp_p50), Times(p99, tcp_p99),
                    Format("%zu", micros.size())});
  }
  std::string goal =
      tls_goal_ratio < 0
          ? "Goal: TLS >= 0.6x plain TCP at 8192-page batches — not measured (run without --batches or include 8192)."
          : Format("Goal: TLS (AES-128-GCM, the agents' default) >= 0.6x plain TCP at 8192-page batches — %s (TLS at "
                   "%.2fx TCP; CPU-model best case %.2fx on this machine).",
                   tls_goal_ratio >= 0.6 ? "MET" : "NOT MET", tls_goal_ratio, tls_ceiling_ratio);

  int zmq_major = 0, zmq_minor = 0, zmq_patch = 0;
  zmq_version(&zmq_major, &zmq_minor, &zmq_patch);
  std::string command = "bazel run //bench:transport_bench" + (options.flags.empty() ? "" : " --" + options.flags);
  std::string body =
      "Run " + UtcNow() + Format(" on %u cores (", std::thread::hardware_concurrency()) + CpuModel() +
      "), loopback 127.0.0.1, built " + BuildMode() + ", " + OpenSSL_version(OPENSSL_VERSION) +
      Format(", libzmq %d.%d.%d. Command: `", zmq_major, zmq_minor, zmq_patch) + command + "`" +
      Format(" (%d interleaved repetitions; each throughput round >= %.1f s and >= %.0f MiB, at most %.1f s; %d round "
             "trips per repetition; %.0f s in all).\n\n",
             options.repetitions, options.seconds, options.min_mib, options.max_seconds, options.round_trips,
             SecondsSince(run_start)) +
      "Throughput: one Send per batch, each 4 KiB page its own MessagePart, from a 64 MiB page pool; sender and "
      "receiver on separate threads of one process; time = first Send to arrival of the last batch; MB = 10^6 bytes; "
      "median of the repetitions; MB moved = over all repetitions. \"vs memcpy\" = transport MB/s over single-thread memcpy MB/s of the same pool in "
      "4 KiB pieces. AEAD rows: one thread sealing the pool in 16 KiB records. \"tls\" = the agents' TLS 1.3 "
      "preference (TLS_AES_128_GCM_SHA256 negotiated); \"tls aes256\" = TLS_AES_256_GCM_SHA384 forced on both ends. CPU ns/B = the sending or receiving thread's CPU time (user + "
      "system, including the loopback delivery the kernel runs on the sender's behalf) per byte moved; for zmq+curve "
      "the CURVE encryption runs in libzmq's I/O threads and is not in these columns. \"best case (CPU model)\": "
      "TCP's CPU per byte on each side plus one pass of that row's AES-GCM and one memcpy per byte (sender: gathering pages into "
      "records; receiver: OpenSSL's copy out of its record buffer), and the throughput TCP's would scale to at that total CPU per byte (loopback runs both ends on the "
      "same cores).\n\n" +
      speed.Markdown() + "\nRound-trip latency, 16-byte ping-pong (echoed by the accepted end), all repetitions pooled:\n\n" +
      latency.Markdown() + "\n**" + goal + "**\n\n" + notes;
  PublishResults("transport_bench", body, options.write_results);
  return 0;
}

}  // namespace
}  // namespace understudy::bench

int main(int argc, char** argv) { return understudy::bench::Run(understudy::bench::ParseFlags(argc, argv)); }
