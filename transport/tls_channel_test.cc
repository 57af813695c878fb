// TLS channel: round trips, deadlines, peer death, and every way a peer must be refused —
// each with its own log line — without leaking descriptors.
#include <dirent.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/fd_io.h"
#include "common/test_scratch_dir.h"
#include "transport/channel.h"
#include "transport/tcp_channel.h"
#include "transport/testing/short_deadline_stream.h"
#include "transport/testing/test_pki.h"

namespace understudy::transport {
namespace {

using testing::TestPki;

std::vector<std::byte> RandomBytes(size_t size, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<std::byte> bytes(size);
  for (auto& b : bytes) b = std::byte(static_cast<uint8_t>(random()));
  return bytes;
}

int OpenFdCount() {
  int count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  while (::readdir(dir) != nullptr) ++count;
  ::closedir(dir);
  return count;
}

// Captures what this process writes to stderr (where Log goes) while alive.
class StderrCapture {
 public:
  StderrCapture() : dir_(*TestScratchDir::Create("stderr")) {
    path_ = dir_.File("stderr.log");
    saved_ = ::dup(STDERR_FILENO);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~StderrCapture() { Restore(); }
  std::string Text() {
    std::ifstream file(path_);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }
  void Restore() {
    if (saved_ < 0) return;
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    saved_ = -1;
  }

 private:
  TestScratchDir dir_;
  std::string path_;
  int saved_ = -1;
};

class TlsChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TestScratchDir> scratch = TestScratchDir::Create("tls");
    ASSERT_TRUE(scratch.ok()) << scratch.status();
    scratch_.emplace(std::move(*scratch));
    auto ca = TestPki::Create(scratch_->path(), "ca");
    auto other = TestPki::Create(scratch_->path(), "other-ca");
    ASSERT_TRUE(ca.ok() && other.ok());
    ca_ = std::make_unique<TestPki>(*ca);
    other_ca_ = std::make_unique<TestPki>(*other);
    server_options_.tls = *ca_->OptionsFor("secondary");
    client_options_.tls = *ca_->OptionsFor("primary");
    auto listener = Listen("tls://127.0.0.1:0", server_options_);
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = std::move(*listener);
    port_ = static_cast<uint16_t>(std::stoi(listener_->address().substr(listener_->address().rfind(':') + 1)));
  }

  std::string Uri() const { return "tls://127.0.0.1:" + std::to_string(port_); }

  // Runs `bad_client` against Accept and returns what the listener logged; Accept must not
  // hand out the bad peer.
  std::string RefusedLog(const std::function<void()>& bad_client) {
    StderrCapture capture;
    std::thread client(bad_client);
    Result<std::unique_ptr<Channel>> accepted = listener_->Accept(Deadline::AfterMillis(1500));
    client.join();
    EXPECT_EQ(accepted.status().code(), Status::Code::kDeadlineExceeded) << "a bad peer was accepted";
    return capture.Text();
  }

  std::optional<TestScratchDir> scratch_;
  std::unique_ptr<TestPki> ca_, other_ca_;
  ChannelOptions server_options_, client_options_;
  std::unique_ptr<Listener> listener_;
  uint16_t port_ = 0;
};

TEST_F(TlsChannelTest, ScatterGatherRoundTripsFromOneByteTo64MiB) {
  // The payloads are made before the clock starts: generating 64 MiB of random bytes in an
  // unoptimised build takes seconds, which under load ate the receive deadline.
  std::vector<std::vector<std::byte>> payloads;
  for (size_t size : {size_t{1}, size_t{4096}, size_t{300000}, size_t{64} << 20}) payloads.push_back(RandomBytes(size, size));
  Status sender_status;
  std::thread sender([&] {
    auto client = Dial(Uri(), client_options_, Deadline::AfterMillis(10000));
    if (!client.ok()) {
      sender_status = client.status();
      return;
    }
    for (const std::vector<std::byte>& whole : payloads) {
      size_t size = whole.size();
      size_t piece = std::max<size_t>(1, size / 7);
      std::vector<MessagePart> parts;
      for (size_t at = 0; at < size; at += piece) parts.push_back(MessagePart(whole).subspan(at, std::min(size - at, piece)));
      sender_status = (*client)->Send(parts, Deadline::AfterMillis(60000));
      if (!sender_status.ok()) return;
    }
    sender_status = (*client)->Close(Deadline::AfterMillis(5000));
  });
  auto server = listener_->Accept(Deadline::AfterMillis(10000));
  std::vector<Status> received;
  std::vector<bool> intact;
  std::string peer;
  if (server.ok()) {
    peer = (*server)->peer_identity();
    std::vector<std::byte> message;
    for (const std::vector<std::byte>& expected : payloads) {
      received.push_back((*server)->Receive(message, Deadline::AfterMillis(60000)));
      if (!received.back().ok()) break;
      intact.push_back(message == expected);
    }
    if (received.back().ok()) received.push_back((*server)->Receive(message, Deadline::AfterMillis(5000)));
  }
  sender.join();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(sender_status.ok()) << sender_status;
  EXPECT_EQ(peer.substr(0, 8), "primary@");
  ASSERT_EQ(received.size(), payloads.size() + 1) << received.back();
  for (size_t i = 0; i < payloads.size(); ++i) {
    EXPECT_TRUE(received[i].ok()) << received[i];
    EXPECT_TRUE(intact[i]) << payloads[i].size() << " bytes arrived altered";
  }
  EXPECT_EQ(received.back().code(), Status::Code::kPeerClosed) << received.back();
}

TEST_F(TlsChannelTest, ReceiveDeadlinesMidMessageNeverMisalignFrames) {
  std::unique_ptr<Channel> client;
  std::thread dialer([&] {
    auto dialed = Dial(Uri(), client_options_, Deadline::AfterMillis(5000));
    ASSERT_TRUE(dialed.ok()) << dialed.status();
    client = std::move(*dialed);
  });
  auto server = listener_->Accept(Deadline::AfterMillis(5000));
  dialer.join();
  ASSERT_TRUE(server.ok() && client) << server.status();
  EXPECT_GT(testing::ExpectFramesSurviveShortReceiveDeadlines(*client, **server), 0);
}

TEST_F(TlsChannelTest, DeadlineAndPeerDeathMidMessage) {
  pid_t child = ::fork();
  if (child == 0) {
    auto client = Dial(Uri(), client_options_, Deadline::AfterMillis(5000));
    if (!client.ok()) ::_exit(1);
    std::vector<std::byte> big(64u << 20);
    (void)(*client)->Send(big, Deadline::AfterMillis(60000));
    ::_exit(0);
  }
  auto server = listener_->Accept(Deadline::AfterMillis(5000));
  ASSERT_TRUE(server.ok()) << server.status();
  // The child is blocked mid-message (we are not reading); kill it there.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  std::vector<std::byte> message;
  auto start = std::chrono::steady_clock::now();
  Status status = (*server)->Receive(message, Deadline::AfterMillis(5000));
  EXPECT_EQ(status.code(), Status::Code::kBroken) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << "hung on a dead peer";

  std::thread quiet([&] {
    auto client = Dial(Uri(), client_options_, Deadline::AfterMillis(5000));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  });
  auto silent = listener_->Accept(Deadline::AfterMillis(5000));
  ASSERT_TRUE(silent.ok());
  EXPECT_EQ((*silent)->Receive(message, Deadline::AfterMillis(100)).code(), Status::Code::kDeadlineExceeded);
  quiet.join();
}

TEST_F(TlsChannelTest, PeerWithoutCertificateIsRefused) {
  std::string log = RefusedLog([&] {
    SSL_CTX* context = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION);
    auto socket = ConnectRawTcp("127.0.0.1", port_, Deadline::AfterMillis(2000));
    ::fcntl(socket->get(), F_SETFL, ::fcntl(socket->get(), F_GETFL) & ~O_NONBLOCK);  // plain blocking client
    SSL* ssl = SSL_new(context);
    SSL_set_fd(ssl, socket->get());
    SSL_connect(ssl);  // the client may think it succeeded; the server refuses
    char byte;
    SSL_read(ssl, &byte, 1);
    SSL_free(ssl);
    SSL_CTX_free(context);
  });
  EXPECT_NE(log.find("refused TLS peer 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find(": no client certificate"), std::string::npos) << log;
}

TEST_F(TlsChannelTest, CertificateFromAnotherCaIsRefused) {
  ChannelOptions stranger;
  stranger.tls = *other_ca_->OptionsFor("primary");
  stranger.tls.ca_file = ca_->ca_file();  // it trusts our CA, but its own cert is foreign
  std::string log = RefusedLog([&] { (void)Dial(Uri(), stranger, Deadline::AfterMillis(1000)); });
  EXPECT_NE(log.find("certificate rejected: unable to get local issuer certificate"), std::string::npos) << log;
}

TEST_F(TlsChannelTest, ExpiredCertificateIsRefused) {
  ChannelOptions expired = client_options_;
  auto files = ca_->Issue("primary", /*valid_from_days=*/-30, /*valid_to_days=*/-1);
  ASSERT_TRUE(files.ok());
  expired.tls.cert_file = files->cert_file;
  expired.tls.key_file = files->key_file;
  std::string log = RefusedLog([&] { (void)Dial(Uri(), expired, Deadline::AfterMillis(1000)); });
  EXPECT_NE(log.find("certificate rejected: certificate has expired"), std::string::npos) << log;
}

TEST_F(TlsChannelTest, PlaintextClientOnTheTlsPortIsRefused) {
  std::string log = RefusedLog([&] {
    ChannelOptions plain;
    plain.insecure = true;
    auto client = Dial("tcp://127.0.0.1:" + std::to_string(port_), plain, Deadline::AfterMillis(1000));
    if (client.ok()) (void)(*client)->Send(std::as_bytes(std::span("a checkpoint in the clear", 25)), Deadline::AfterMillis(500));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  });
  EXPECT_NE(log.find("not TLS (plaintext client on a TLS port)"), std::string::npos) << log;
}

TEST_F(TlsChannelTest, ThePinnedNameMustMatch) {
  ChannelOptions pinned = client_options_;
  pinned.tls.expected_peer_name = "secondary";
  std::thread server([&] { (void)listener_->Accept(Deadline::AfterMillis(3000)); });
  auto good = Dial(Uri(), pinned, Deadline::AfterMillis(3000));
  EXPECT_TRUE(good.ok()) << good.status();
  server.join();
  pinned.tls.expected_peer_name = "some-other-host";
  std::thread server2([&] { (void)listener_->Accept(Deadline::AfterMillis(1500)); });
  auto bad = Dial(Uri(), pinned, Deadline::AfterMillis(3000));
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not the pinned 'some-other-host'"), std::string::npos) << bad.status();
  server2.join();
}

TEST_F(TlsChannelTest, ForcedCipherSuitesAreHonouredOnBothEnds) {
  // A dialer forcing AES-256-GCM reaches the default listener (which also offers it)...
  ChannelOptions aes256 = client_options_;
  aes256.tls.ciphersuites = "TLS_AES_256_GCM_SHA384";
  std::thread server([&] { (void)listener_->Accept(Deadline::AfterMillis(3000)); });
  auto good = Dial(Uri(), aes256, Deadline::AfterMillis(3000));
  EXPECT_TRUE(good.ok()) << good.status();
  server.join();
  // ...but not a listener that allows AES-128-GCM only: the setting is not ignored.
  ChannelOptions only128 = server_options_;
  only128.tls.ciphersuites = "TLS_AES_128_GCM_SHA256";
  auto strict = Listen("tls://127.0.0.1:0", only128);
  ASSERT_TRUE(strict.ok()) << strict.status();
  std::string address = (*strict)->address();
  std::string strict_uri = "tls://127.0.0.1:" + address.substr(address.rfind(':') + 1);
  StderrCapture quiet;
  std::thread strict_server([&] { (void)(*strict)->Accept(Deadline::AfterMillis(1500)); });
  auto refused = Dial(strict_uri, aes256, Deadline::AfterMillis(1500));
  EXPECT_FALSE(refused.ok());
  strict_server.join();
}

TEST_F(TlsChannelTest, TwoHundredIdleConnectionsDoNotDelayAValidPeer) {
  // A flood of connections that never say a word: each used to hold the accept loop for its
  // whole handshake budget, so a valid peer waited behind all of them (minutes).
  // The secondary polls Accept all the time; so does this pump while the flood connects
  // (the kernel's backlog alone would not hold 200).
  StderrCapture quiet;
  std::atomic<bool> flooding{true};
  std::atomic<int> accepted_during_flood{0};
  std::thread pump([&] {
    while (flooding.load()) {
      if (listener_->Accept(Deadline::AfterMillis(10)).ok()) ++accepted_during_flood;
    }
  });
  std::vector<UniqueFd> idle;
  Status connect_status;
  for (int i = 0; i < 200 && connect_status.ok(); ++i) {
    auto socket = ConnectRawTcp("127.0.0.1", port_, Deadline::AfterMillis(2000));
    if (socket.ok()) idle.push_back(std::move(*socket));
    else connect_status = socket.status();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  flooding = false;
  pump.join();
  ASSERT_TRUE(connect_status.ok()) << connect_status;
  EXPECT_EQ(accepted_during_flood.load(), 0) << "an idle connection was handed out as a channel";
  auto start = std::chrono::steady_clock::now();
  std::thread dialer([&] { (void)Dial(Uri(), client_options_, Deadline::AfterMillis(5000)); });
  Result<std::unique_ptr<Channel>> accepted = Status::DeadlineExceeded("not yet");
  while (!accepted.ok() && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    accepted = listener_->Accept(Deadline::AfterMillis(10));  // the secondary's short polls
  }
  auto waited = std::chrono::steady_clock::now() - start;
  dialer.join();
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ((*accepted)->peer_identity().substr(0, 8), "primary@");
  EXPECT_LT(waited, std::chrono::seconds(1)) << "a valid peer waited behind idle connections";
}

TEST_F(TlsChannelTest, AThousandRefusedPeersLeakNoDescriptors) {
  // Warm up OpenSSL's lazily created state before counting.
  std::thread warm([&] { (void)Dial(Uri(), client_options_, Deadline::AfterMillis(3000)); });
  ASSERT_TRUE(listener_->Accept(Deadline::AfterMillis(3000)).ok());
  warm.join();
  int before = OpenFdCount();
  StderrCapture quiet;
  std::thread attackers([&] {
    for (int i = 0; i < 1000; ++i) {
      auto socket = ConnectRawTcp("127.0.0.1", port_, Deadline::AfterMillis(2000));
      if (socket.ok()) (void)WriteAll(socket->get(), "GET / HTTP/1.0\r\n\r\n", Deadline::AfterMillis(500));
    }
    (void)Dial(Uri(), client_options_, Deadline::AfterMillis(5000));  // finally a real peer
  });
  auto accepted = listener_->Accept(Deadline::AfterMillis(120000));
  attackers.join();
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  accepted->reset();
  std::string log = quiet.Text();
  quiet.Restore();
  size_t refusals = 0;
  for (size_t at = log.find("refused TLS peer"); at != std::string::npos; at = log.find("refused TLS peer", at + 1)) ++refusals;
  EXPECT_EQ(refusals, 1000u) << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
  EXPECT_LE(OpenFdCount(), before + 2) << "descriptors leaked across 1000 refused peers";
}

}  // namespace
}  // namespace understudy::transport

namespace understudy::transport {
namespace {

// The operator's tool, deploy/make-certs.sh, produces certificates these channels accept.
TEST(MakeCertsScriptTest, ItsCertificatesCarryAMutuallyAuthenticatedChannel) {
  Result<TestScratchDir> scratch = TestScratchDir::Create("make-certs");
  ASSERT_TRUE(scratch.ok()) << scratch.status();
  std::string dir = scratch->File("pki");
  std::string script = std::string(std::getenv("TEST_SRCDIR")) + "/understudy/deploy/make-certs.sh";
  ASSERT_EQ(std::system((script + " " + dir + " primary secondary > /dev/null").c_str()), 0);
  ChannelOptions server, client;
  server.tls = {dir + "/ca.pem", dir + "/secondary.pem", dir + "/secondary.key", "", ""};
  client.tls = {dir + "/ca.pem", dir + "/primary.pem", dir + "/primary.key", "secondary", ""};
  auto listener = Listen("tls://127.0.0.1:0", server);
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::thread dialer([&] {
    auto channel = Dial((*listener)->address(), client, Deadline::AfterMillis(5000));
    ASSERT_TRUE(channel.ok()) << channel.status();
    ASSERT_TRUE((*channel)->Send(std::as_bytes(std::span("ping", 4)), Deadline::AfterMillis(5000)).ok());
  });
  auto accepted = (*listener)->Accept(Deadline::AfterMillis(5000));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  std::vector<std::byte> message;
  ASSERT_TRUE((*accepted)->Receive(message, Deadline::AfterMillis(5000)).ok());
  EXPECT_EQ(message.size(), 4u);
  dialer.join();
}

}  // namespace
}  // namespace understudy::transport
