// tulip-fuzz-tls: a libFuzzer target for the TLS layer (src/tls/).
//
// tulip's TLS layer runs on a MemoryTransport (start_tls); its peer is a bare
// OpenSSL object over memory BIOs, driven by this file. Each input is decoded
// into a script of events: the peer sends application data (encrypted for
// real, so that the script reaches every state after the handshake),
// close_notify, a key update, raw bytes from the input itself (garbage
// records), an EOF or a reset, all cut into fragments of a chosen size; the
// application writes, pauses and resumes reading, closes or aborts; the
// peer's window closes and opens; the loop runs one step. An input whose
// first byte asks for it skips the handshake and feeds its bytes raw from the
// start, so that the handshake's own parsing is fuzzed too.
//
// Afterwards the connection is ended and the invariants are checked:
//
//  * the application receives a prefix of what the peer sent, in order, and
//    all of it if nothing cut the connection short;
//  * the peer decrypts a prefix of what the application wrote, in order;
//  * eof_received at most once, never before data that was sent before the
//    close_notify, nothing after connection_lost; connection_lost exactly
//    once for a connection whose handshake finished, never for one whose
//    handshake did not; start_tls's Future always completes;
//  * pause_writing and resume_writing alternate;
//  * nothing leaks (ASan's leak check at exit).
//
// A broken invariant prints one line and aborts. See docs/fuzzing.md.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "harness.hpp"
#include "support/tls_pki.hpp"
#include "tulip/testing/memory_transport.hpp"
#include "tulip/tulip.hpp"

namespace {

using namespace tulip;
using fuzz::check;
using fuzz::fail;
using fuzz::Input;
using fuzz::is_prefix;
using fuzz::stream_bytes;
using tulip::testing::MemoryPeer;

constexpr std::size_t kMaxEvents = 128;

// The peer: an OpenSSL endpoint on memory BIOs (its contexts made once).
class Peer {
 public:
  Peer(SSL_CTX* ctx, bool server) : ssl_(SSL_new(ctx)) {
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
      SSL_set_tlsext_host_name(ssl_, "localhost");
    }
  }
  ~Peer() { SSL_free(ssl_); }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  void receive(std::string_view records) {
    if (!records.empty() && !failed)
      BIO_write(in_, records.data(), static_cast<int>(records.size()));
  }
  std::string take_output() {
    std::string records;
    char buffer[16384];
    int n;
    while ((n = BIO_read(out_, buffer, sizeof(buffer))) > 0) records.append(buffer, n);
    return records;
  }
  void handshake_step() {
    ERR_clear_error();
    int result = SSL_do_handshake(ssl_);
    if (result != 1 && SSL_get_error(ssl_, result) == SSL_ERROR_SSL) failed = true;
  }
  bool write(std::string_view data) {
    ERR_clear_error();
    if (failed || SSL_write(ssl_, data.data(), static_cast<int>(data.size())) <= 0) {
      failed = true;
      return false;
    }
    return true;
  }
  // Decrypts what is available into `received`.
  void read(std::string& received) {
    char buffer[16384];
    for (;;) {
      ERR_clear_error();
      int n = failed ? 0 : SSL_read(ssl_, buffer, sizeof(buffer));
      if (n <= 0) {
        if (SSL_get_error(ssl_, n) == SSL_ERROR_SSL) failed = true;
        ERR_clear_error();
        return;
      }
      received.append(buffer, n);
    }
  }
  SSL* ssl() const { return ssl_; }
  bool failed = false;

 private:
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

// The application's protocol: records, checks call order, acts on request.
class Probe : public Protocol {
 public:
  void data_received(std::string_view data) override {
    check(lost == 0, "data after connection_lost");
    check(!eof, "data after eof_received");
    check(!data.empty(), "empty data_received");
    received.append(data);
    if (pause_on_data && transport != nullptr) transport->pause_reading();
  }
  bool eof_received() override {
    check(!eof, "eof_received twice");
    check(lost == 0, "eof_received after connection_lost");
    eof = true;
    return keep_open;
  }
  void connection_lost(std::error_code) override {
    check(lost == 0, "connection_lost twice");
    ++lost;
  }
  void pause_writing() override {
    check(!paused, "pause_writing twice in a row");
    paused = true;
  }
  void resume_writing() override {
    check(paused, "resume_writing without pause_writing");
    paused = false;
  }

  Transport* transport = nullptr;  // the TLS transport, once start_tls completed
  std::string received;
  bool eof = false;
  bool keep_open = false;
  bool pause_on_data = false;
  bool paused = false;
  int lost = 0;
};

struct Contexts {
  Contexts() {
    const tulip::testing::TestPki& pki = tulip::testing::TestPki::get();
    tulip_server = SslContext(SslContext::Side::kServer);
    tulip_server->load_cert_chain(pki.cert("server"), pki.key("server"));
    tulip_client = SslContext(SslContext::Side::kClient);
    tulip_client->load_verify_locations(pki.ca());
    peer_client = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(peer_client, pki.ca().c_str(), nullptr);
    SSL_CTX_set_verify(peer_client, SSL_VERIFY_PEER, nullptr);
    peer_server = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(peer_server, pki.cert("server").c_str());
    SSL_CTX_use_PrivateKey_file(peer_server, pki.key("server").c_str(), SSL_FILETYPE_PEM);
  }
  std::optional<SslContext> tulip_server;
  std::optional<SslContext> tulip_client;
  SSL_CTX* peer_client;
  SSL_CTX* peer_server;
};

// Runs the loop until nothing is ready. The memory transport delivers one
// fragment per iteration, so the budget is what the largest input can queue
// while reading is paused: 128 events of up to 64 KiB in 1-byte fragments
// (run_until_idle's default of 100,000 is reached by two paused 61 KiB chunks
// in 5-byte fragments). A loop that never settles still ends in an error.
void settle(EventLoop& loop) {
  constexpr std::size_t kIterations = 128 * 64 * 1024 + 100000;
  tulip::testing::run_until_idle(loop, kIterations);
}

// Moves records both ways until neither side says more.
// Once the peer has sent its EOF (or reset), nothing more can be fed: its
// records are dropped, as a closed socket's would be.
bool g_input_closed = false;

void exchange(EventLoop& loop, Peer& peer, MemoryPeer& memory, std::size_t fragment,
              std::string& peer_received, bool handshake) {
  for (int round = 0; round < 64; ++round) {
    if (handshake) peer.handshake_step();
    std::string records = peer.take_output();
    if (g_input_closed) records.clear();
    if (!records.empty()) {
      if (fragment == 0) {
        memory.feed(records);
      } else {
        memory.feed(records, fragment);
      }
    }
    settle(loop);
    std::string written = memory.take_written();
    peer.receive(written);
    if (!handshake) peer.read(peer_received);
    if (records.empty() && written.empty()) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Contexts contexts;
  // Writes after close and ignored eof_received results are logged; the
  // fuzzer makes thousands of them on purpose.
  static const bool silenced = [] {
    set_log_sink([](LogLevel, std::string_view) {});
    return true;
  }();
  (void)silenced;
  Input input(data, size);
  std::uint8_t config = input.byte();
  bool tulip_is_server = config & 0x01;
  bool raw_from_start = config & 0x02;
  bool peer_tls12 = config & 0x04;
  static constexpr std::size_t kFragments[] = {0, 1, 2, 3, 5, 7, 100, 4096};
  std::size_t fragment = kFragments[(config >> 3) & 7];

  g_input_closed = false;
  EventLoop loop;
  // Errors of the peer's making are not bugs: nothing reaches the handler
  // but exceptions from the probe's own callbacks, which this probe never throws.
  bool handler_called = false;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { handler_called = true; });
  auto probe = std::make_shared<Probe>();
  auto memory = tulip::testing::MemoryTransport::connect(loop, probe);
  settle(loop);
  StartTlsOptions options;
  options.server_side = tulip_is_server;
  if (!tulip_is_server) options.server_hostname = "localhost";
  auto upgrade =
      loop.start_tls(*memory.transport, probe,
                     tulip_is_server ? *contexts.tulip_server : *contexts.tulip_client, options);
  SSL_CTX* peer_ctx = tulip_is_server ? contexts.peer_client : contexts.peer_server;
  Peer peer(peer_ctx, !tulip_is_server);
  if (peer_tls12) SSL_set_max_proto_version(peer.ssl(), TLS1_2_VERSION);

  std::string peer_sent;      // plaintext the peer encrypted for tulip
  std::string peer_received;  // plaintext the peer decrypted from tulip
  std::string app_written;    // what the application wrote while open
  bool irregular = false;     // garbage, reset, EOF without close_notify, or a failed peer
  bool app_closed = false;    // the application called close() or abort()

  if (raw_from_start) {
    // The handshake's own parsing: the input's bytes as the peer's records.
    settle(loop);
    while (!input.done()) memory.feed(input.bytes(1 + input.byte() % 64));
    settle(loop);
    memory.transport->abort();
    settle(loop);
    check(upgrade.done(), "start_tls never completed on raw input");
    check(probe->lost == 0, "connection_lost for a protocol whose handshake did not finish");
    return 0;
  }

  exchange(loop, peer, memory, fragment, peer_received, true);
  check(upgrade.done(), "start_tls did not complete after a full handshake");
  if (upgrade.exception()) fail("the handshake with a well-behaved peer failed");
  std::shared_ptr<Transport> tls = upgrade.result();
  probe->transport = tls.get();

  std::size_t stream_offset = 0;
  for (std::size_t event = 0; event < kMaxEvents && !input.done() && probe->lost == 0; ++event) {
    switch (input.byte() % 14) {
      case 0: {  // the peer sends data
        std::string chunk = stream_bytes(stream_offset, input.chunk(), 1);
        if (!peer.write(chunk)) break;
        stream_offset += chunk.size();
        peer_sent += chunk;
        exchange(loop, peer, memory, fragment, peer_received, false);
        break;
      }
      case 1:  // a new fragment size
        fragment = kFragments[input.byte() & 7];
        break;
      case 2: {  // garbage records from the input itself
        std::string_view garbage = input.bytes(1 + input.byte() % 64);
        if (!garbage.empty() && !g_input_closed) memory.feed(garbage);
        irregular = true;
        settle(loop);
        break;
      }
      case 3:  // the peer's close_notify
        SSL_shutdown(peer.ssl());
        exchange(loop, peer, memory, fragment, peer_received, false);
        break;
      case 4:  // a TLS 1.3 key update (a renegotiation attempt on TLS 1.2)
        if (SSL_version(peer.ssl()) == TLS1_3_VERSION) {
          SSL_key_update(peer.ssl(), SSL_KEY_UPDATE_REQUESTED);
        } else {
          SSL_renegotiate(peer.ssl());
          irregular = true;  // tulip refuses; OpenSSL's peer then gives up
        }
        peer.handshake_step();
        exchange(loop, peer, memory, fragment, peer_received, false);
        break;
      case 5:  // EOF without close_notify
        memory.feed_eof();
        g_input_closed = true;
        irregular = true;
        settle(loop);
        break;
      case 6:  // a reset
        memory.reset();
        g_input_closed = true;
        irregular = true;
        settle(loop);
        break;
      case 7: {  // the application writes
        std::string chunk = stream_bytes(app_written.size(), input.chunk(), 2);
        bool open = !tls->is_closing();
        tls->write(chunk);
        if (open) app_written += chunk;
        exchange(loop, peer, memory, fragment, peer_received, false);
        break;
      }
      case 8: {  // writelines
        std::string a = stream_bytes(app_written.size(), input.byte() % 50 + 1, 2);
        std::string b = stream_bytes(app_written.size() + a.size(), input.chunk(), 2);
        bool open = !tls->is_closing();
        tls->writelines({a, b});
        if (open) app_written += a + b;
        exchange(loop, peer, memory, fragment, peer_received, false);
        break;
      }
      case 9:
        tls->pause_reading();
        break;
      case 10:
        tls->resume_reading();
        settle(loop);
        break;
      case 11:
        app_closed = true;
        tls->close();
        exchange(loop, peer, memory, fragment, peer_received, false);
        break;
      case 12:
        app_closed = true;
        tls->abort();
        irregular = true;
        settle(loop);
        break;
      case 13:  // the peer's window
        memory.set_peer_accepting(input.byte() & 1);
        settle(loop);
        break;
    }
    check(is_prefix(probe->received, peer_sent), "the application got bytes the peer never sent");
    check(is_prefix(peer_received, app_written), "the peer got bytes the application never wrote");
  }

  // The orderly end: reading resumed, the peer's window open, the peer says
  // close_notify, and the application closes; whatever cut the connection
  // short has already ended it.
  memory.set_peer_accepting(true);
  tls->resume_reading();
  bool complete_expected = !irregular && !app_closed && !peer.failed && probe->lost == 0;
  SSL_shutdown(peer.ssl());
  exchange(loop, peer, memory, 0, peer_received, false);
  tls->close();
  exchange(loop, peer, memory, 0, peer_received, false);
  if (probe->lost == 0) {
    tls->abort();
    settle(loop);
  }
  check(probe->lost == 1, "connection_lost did not come exactly once");
  check(is_prefix(probe->received, peer_sent), "the application got bytes the peer never sent");
  check(is_prefix(peer_received, app_written), "the peer got bytes the application never wrote");
  if (complete_expected) {
    check(probe->received == peer_sent, "bytes the peer sent were lost");
    check(probe->eof, "the peer's close_notify was not eof_received");
    check(peer_received == app_written, "bytes the application wrote were lost");
  }
  check(!handler_called, "the exception handler was told of a peer's misbehaviour");
  return 0;
}
