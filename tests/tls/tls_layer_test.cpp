// The TLS layer on a MemoryTransport, against a bare OpenSSL peer the test
// drives byte by byte: records cut into 1-byte reads, garbage, a reset in the
// middle of a record, renegotiation, timeouts, flow control in both
// directions, and the application's callbacks misbehaving. Nothing here
// depends on the kernel or on timing, except the two timeouts.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "support/loopback.hpp"
#include "tls/openssl_peer.hpp"
#include "tls/tls_support.hpp"
#include "tulip/testing/memory_transport.hpp"

namespace tulip::testing {
namespace {

// A BufferedProtocol that records what it was given.
class RecordingBufferedProtocol : public BufferedProtocol {
 public:
  std::span<std::byte> get_buffer(std::size_t size_hint) override {
    ++buffers;
    hint = size_hint;
    return std::span<std::byte>(storage, sizeof(storage));
  }
  void buffer_updated(std::size_t bytes) override {
    received.append(reinterpret_cast<const char*>(storage), bytes);
  }
  void connection_lost(std::error_code error) override {
    ++lost;
    lost_error = error;
  }
  std::byte storage[100];
  std::string received;
  std::size_t hint = 0;
  int buffers = 0;
  int lost = 0;
  std::error_code lost_error;
};

// tulip's TLS layer on one end of a MemoryTransport, the OpenSSL peer on the other.
template <class P = RecordingProtocol>
struct LayerOnMemory {
  LayerOnMemory(EventLoop& event_loop, bool server_side, std::size_t fragment_size = 0,
                StartTlsOptions options = {}, int peer_max_version = 0)
      : loop(event_loop),
        app(std::make_shared<P>()),
        memory(MemoryTransport::connect(loop, app)),
        peer(server_side ? OpenSslPeer::Role::kClient : OpenSslPeer::Role::kServer,
             peer_max_version),
        fragment(fragment_size) {
    run_until_idle(loop);  // the plain connection_made
    options.server_side = server_side;
    if (!server_side && !options.server_hostname) options.server_hostname = "localhost";
    upgrade = loop.start_tls(*memory.transport, app,
                             server_side ? server_context() : client_context(), options);
  }

  // Runs the handshake to its end; true if start_tls completed with a transport.
  bool handshake() {
    exchange(loop, peer, memory, fragment, [this] { peer.handshake_step(); });
    if (!upgrade.done() || upgrade.exception()) return false;
    tls = upgrade.result();
    return true;
  }
  // The peer sends `data` as application data; the layer reads it.
  void peer_sends(std::string_view data) {
    peer.write(data);
    exchange(loop, peer, memory, fragment, [] {});
  }
  // What the layer sent since the last call, decrypted by the peer.
  std::string peer_reads() {
    run_until_idle(loop);
    peer.receive(memory.take_written());
    std::string data = peer.read_available();
    exchange(loop, peer, memory, fragment, [] {});
    return data;
  }

  EventLoop& loop;
  std::shared_ptr<P> app;
  MemoryConnection<P> memory;
  OpenSslPeer peer;
  std::size_t fragment;
  Future<std::shared_ptr<Transport>> upgrade;
  std::shared_ptr<Transport> tls;
};

TEST(TlsLayer, AServerHandshakeAndDataInOneByteFragments) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, /*server_side=*/true, /*fragment_size=*/1);
  ASSERT_TRUE(layer.handshake());
  // start_tls connects an already connected protocol: no second connection_made.
  EXPECT_EQ(layer.app->made, 1);
  layer.peer_sends("one byte at a time");
  EXPECT_EQ(layer.app->received, "one byte at a time");
  layer.tls->write("and back");
  EXPECT_EQ(layer.peer_reads(), "and back");
  EXPECT_EQ(layer.tls->get_extra_info<std::string>("server_hostname"), "localhost");
}

TEST(TlsLayer, AClientHandshakeAndDataInOneByteFragments) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, /*server_side=*/false, /*fragment_size=*/1);
  ASSERT_TRUE(layer.handshake());
  layer.peer_sends("from the server");
  EXPECT_EQ(layer.app->received, "from the server");
  layer.tls->write("from the client");
  EXPECT_EQ(layer.peer_reads(), "from the client");
}

TEST(TlsLayer, ManyRecordsInOneReadAreOneDataReceived) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  std::string big = pattern(100 * 1024);
  layer.peer.write(big);  // seven records, fed as one read
  layer.memory.feed(layer.peer.take_output());
  std::size_t chunks_before = layer.app->chunks;
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received, big);
  EXPECT_EQ(layer.app->chunks - chunks_before, 1u);
}

TEST(TlsLayer, ABufferedProtocolIsFilledThroughItsOwnBuffer) {
  EventLoop loop;
  LayerOnMemory<RecordingBufferedProtocol> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  std::string data = pattern(1000);
  layer.peer_sends(data);
  EXPECT_EQ(layer.app->received, data);
  EXPECT_GE(layer.app->buffers, 10);  // a 100-byte buffer at a time
}

TEST(TlsLayer, GarbageAfterTheHandshakeEndsTheConnectionWithTheTlsReason) {
  EventLoop loop;
  bool handler_called = false;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { handler_called = true; });
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  // A record header that claims application data, then bytes that are not
  // what the key encrypted.
  layer.memory.feed(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'g'));
  run_until_idle(loop);
  ASSERT_EQ(layer.app->lost, 1);
  EXPECT_EQ(&layer.app->lost_error.category(), &ssl_category());
  EXPECT_EQ(layer.app->lost_error.message(), "decryption failed or bad record mac");
  // A hostile peer is not a bug in the program: the handler is not told.
  EXPECT_FALSE(handler_called);
}

TEST(TlsLayer, PlainTextInsteadOfAHandshakeFailsStartTls) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  run_until_idle(loop);
  layer.memory.feed("EHLO example.org\r\n");
  run_until_idle(loop);
  ASSERT_TRUE(layer.upgrade.done());
  try {
    layer.upgrade.result();
    ADD_FAILURE() << "start_tls succeeded on plain text";
  } catch (const SslError& error) {
    EXPECT_EQ(std::string(error.what()), "wrong version number");
  }
  EXPECT_TRUE(layer.memory.connection_lost());
  EXPECT_EQ(layer.app->lost, 0) << "a protocol whose handshake failed hears nothing (asyncio)";
}

TEST(TlsLayer, AResetInTheMiddleOfARecordIsTheConnectionsError) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.peer.write(pattern(4000));
  std::string records = layer.peer.take_output();
  layer.memory.feed(records.substr(0, records.size() / 2));
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received, "");  // half a record decrypts to nothing
  layer.memory.reset();
  run_until_idle(loop);
  ASSERT_EQ(layer.app->lost, 1);
  EXPECT_EQ(layer.app->lost_error, std::make_error_code(std::errc::connection_reset));
}

TEST(TlsLayer, ThePeersCloseNotifyIsEofThenTheLayerAnswersAndCloses) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.peer.write("bye");
  layer.peer.shutdown();
  layer.memory.feed(layer.peer.take_output());
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received, "bye");
  EXPECT_TRUE(layer.app->eof);
  ASSERT_EQ(layer.app->lost, 1);
  EXPECT_FALSE(layer.app->lost_error);
  // Our close_notify reached the peer, then the transport below closed.
  layer.peer.receive(layer.memory.take_written());
  layer.peer.read_available();
  EXPECT_TRUE(layer.peer.close_notify_seen);
  EXPECT_TRUE(layer.memory.peer_eof_seen());
}

TEST(TlsLayer, AfterThePeersCloseNotifyTheTransportIsClosing) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  // The peer stops reading, so our answering close_notify cannot leave yet.
  layer.memory.set_peer_accepting(false);
  layer.peer.shutdown();
  layer.memory.feed(layer.peer.take_output());
  run_until_idle(loop);
  EXPECT_TRUE(layer.app->eof);
  EXPECT_EQ(layer.app->lost, 0);
  EXPECT_TRUE(layer.tls->is_closing());
  EXPECT_FALSE(layer.tls->is_reading());
  layer.tls->write("refused");  // dropped with a warning, never encrypted
  layer.memory.set_peer_accepting(true);
  run_until_idle(loop);
  layer.peer.receive(layer.memory.take_written());
  EXPECT_EQ(layer.peer.read_available(), "");
  EXPECT_TRUE(layer.peer.close_notify_seen);
  EXPECT_EQ(layer.app->lost, 1);
}

TEST(TlsLayer, APeerThatClosesWithoutCloseNotifyIsAnOrdinaryEof) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.peer_sends("truncated?");
  layer.memory.feed_eof();
  run_until_idle(loop);
  EXPECT_TRUE(layer.app->eof);
  ASSERT_EQ(layer.app->lost, 1);
  EXPECT_FALSE(layer.app->lost_error) << "asyncio reports a ragged EOF as a clean close";
  EXPECT_EQ(layer.tls->get_extra_info<bool>("close_notify_received"), false);
}

TEST(TlsLayer, ClosingWaitsForThePeersCloseNotifyUpToTheShutdownTimeout) {
  EventLoop loop;
  StartTlsOptions options;
  options.ssl_shutdown_timeout = 0.05;
  LayerOnMemory<> layer(loop, true, 0, options);
  ASSERT_TRUE(layer.handshake());
  layer.tls->close();
  // The peer reads our close_notify and never answers.
  run_until_idle(loop);
  layer.peer.receive(layer.memory.take_written());
  layer.peer.read_available();
  EXPECT_TRUE(layer.peer.close_notify_seen);
  EXPECT_EQ(layer.app->lost, 0);
  ASSERT_TRUE(run_until(
      loop, [&] { return layer.app->lost == 1; }, 10));
  EXPECT_EQ(layer.app->lost_error, make_error_code(Error::kSslShutdownTimeout));
}

TEST(TlsLayer, DataArrivingAfterCloseIsDroppedWhileWaitingForCloseNotify) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.tls->close();
  run_until_idle(loop);
  layer.peer.receive(layer.memory.take_written());
  layer.peer.read_available();
  layer.peer.write("too late");
  layer.peer.shutdown();
  layer.memory.feed(layer.peer.take_output(), 3);
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received, "");
  ASSERT_EQ(layer.app->lost, 1);
  EXPECT_FALSE(layer.app->lost_error);
}

TEST(TlsLayer, AStalledHandshakeTimesOutAndTheLoopGoesOn) {
  EventLoop loop;
  StartTlsOptions options;
  options.ssl_handshake_timeout = 0.05;
  LayerOnMemory<> layer(loop, true, 0, options);
  // The peer never says anything.
  ASSERT_TRUE(run_until(
      loop, [&] { return layer.upgrade.done(); }, 10));
  try {
    layer.upgrade.result();
    ADD_FAILURE() << "the handshake did not time out";
  } catch (const ConnectionError& error) {
    EXPECT_EQ(error.code(), make_error_code(Error::kSslHandshakeTimeout));
    EXPECT_EQ(std::string(error.what()),
              "SSL handshake is taking longer than 0.05 seconds: aborting the connection");
  }
  run_until_idle(loop);
  EXPECT_TRUE(layer.memory.connection_lost());
  // The loop is fine: another connection completes its handshake.
  LayerOnMemory<> next(loop, true);
  EXPECT_TRUE(next.handshake());
}

TEST(TlsLayer, TheServerRefusesAClientRenegotiation) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true, 0, {}, TLS1_2_VERSION);
  ASSERT_TRUE(layer.handshake());
  EXPECT_EQ(layer.tls->get_extra_info<CipherInfo>("cipher")->protocol, "TLSv1.2");
  ASSERT_EQ(SSL_renegotiate(layer.peer.ssl()), 1);
  exchange(
      loop, layer.peer, layer.memory, 0, [&] { layer.peer.handshake_step(true); }, 5);
  // The server answered with a no_renegotiation alert; OpenSSL's client
  // gives up on that, and so the connection ends with its alert.
  EXPECT_EQ(layer.peer.last_error, "no renegotiation");
  ASSERT_TRUE(run_until(loop, [&] { return layer.app->lost == 1; }));
  EXPECT_EQ(&layer.app->lost_error.category(), &ssl_category());
  EXPECT_EQ(layer.app->lost_error.message(), "sslv3 alert handshake failure");
  // No renegotiated session was ever established.
  EXPECT_EQ(SSL_renegotiate_pending(layer.peer.ssl()), 1);
}

TEST(TlsLayer, TheClientRefusesAServersRenegotiationRequest) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, false, 0, {}, TLS1_2_VERSION);
  ASSERT_TRUE(layer.handshake());
  ASSERT_EQ(SSL_renegotiate(layer.peer.ssl()), 1);
  layer.peer.handshake_step();  // the HelloRequest
  layer.peer.write("data after the request");
  layer.memory.feed(layer.peer.take_output());
  run_until_idle(loop);
  // tulip's client declined (a no_renegotiation warning) and kept reading.
  EXPECT_EQ(layer.app->received, "data after the request");
  EXPECT_EQ(layer.app->lost, 0);
  layer.peer.receive(layer.memory.take_written());
  layer.peer.read_available();
}

TEST(TlsLayer, WriteFlowControlFollowsTheBufferBelow) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.memory.set_peer_accepting(false);
  layer.tls->set_write_buffer_limits(64 * 1024, 16 * 1024);
  EXPECT_EQ(layer.tls->get_write_buffer_limits(),
            (std::pair<std::size_t, std::size_t>{16384, 65536}));
  std::string chunk = pattern(32 * 1024);
  layer.tls->write(chunk);
  EXPECT_EQ(layer.app->pauses, 0);
  layer.tls->write(chunk);
  layer.tls->write(chunk);
  // Over 64 KiB of records wait below: pause_writing came inside write().
  EXPECT_EQ(layer.app->pauses, 1);
  EXPECT_GT(layer.tls->get_write_buffer_size(), 64u * 1024);
  layer.memory.set_peer_accepting(true);
  std::string records;
  while (layer.app->resumes == 0) {
    run_one_iteration(loop);
    records += layer.memory.take_written();
  }
  run_until_idle(loop);
  records += layer.memory.take_written();
  layer.peer.receive(records);
  EXPECT_EQ(layer.peer.read_available(), chunk + chunk + chunk);
  EXPECT_EQ(layer.tls->get_write_buffer_size(), 0u);
}

TEST(TlsLayer, PauseReadingStopsTheTransportBelowAndResumeDeliversWhatWaited) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.tls->pause_reading();
  EXPECT_FALSE(layer.tls->is_reading());
  EXPECT_FALSE(layer.memory.transport->is_reading()) << "pause_reading propagates down";
  layer.peer.write("waited");
  layer.memory.feed(layer.peer.take_output());
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received, "");
  EXPECT_GT(layer.memory.unread_size(), 0u);
  layer.tls->resume_reading();
  EXPECT_EQ(layer.app->received, "") << "never inside resume_reading()";
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received, "waited");
}

TEST(TlsLayer, PausingInsideDataReceivedKeepsTheRestForLater) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  // 300 KiB: more than one delivery (256 KiB at most), in one read.
  std::string big = pattern(300 * 1024);
  layer.app->on_data = [&](std::string_view) { layer.tls->pause_reading(); };
  layer.peer.write(big);
  layer.memory.feed(layer.peer.take_output());
  run_until_idle(loop);
  std::size_t first = layer.app->received.size();
  EXPECT_LT(first, big.size());
  layer.app->on_data = nullptr;
  layer.tls->resume_reading();
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received, big);
}

TEST(TlsLayer, EofWhileReadingIsPausedWaitsForTheApplication) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.app->on_data = [&](std::string_view) { layer.tls->pause_reading(); };
  layer.peer.write(pattern(300 * 1024));
  layer.memory.feed(layer.peer.take_output());
  layer.memory.feed_eof();
  run_until_idle(loop);
  EXPECT_FALSE(layer.app->eof);
  layer.app->on_data = nullptr;
  layer.tls->resume_reading();
  run_until_idle(loop);
  EXPECT_EQ(layer.app->received.size(), 300u * 1024);
  EXPECT_TRUE(layer.app->eof);
  EXPECT_EQ(layer.app->lost, 1);
}

TEST(TlsLayer, ACallbackThatThrowsClosesThisConnectionThroughTheHandler) {
  EventLoop loop;
  std::vector<std::string> reported;
  loop.set_exception_handler(
      [&](EventLoop&, const ExceptionContext& context) { reported.push_back(context.message); });
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  layer.app->on_data = [](std::string_view) { throw std::runtime_error("bad data"); };
  layer.peer_sends("boom");
  ASSERT_EQ(layer.app->lost, 1);
  EXPECT_EQ(layer.app->lost_error, make_error_code(Error::kCallbackRaised));
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0], "Fatal error: protocol.data_received() call failed.");
}

TEST(TlsLayer, CloseAndAbortFromInsideDataReceived) {
  for (bool abort : {false, true}) {
    SCOPED_TRACE(abort ? "abort" : "close");
    EventLoop loop;
    LayerOnMemory<> layer(loop, true);
    ASSERT_TRUE(layer.handshake());
    layer.app->on_data = [&](std::string_view) {
      if (abort) {
        layer.tls->abort();
      } else {
        layer.tls->close();
      }
      layer.tls->write("dropped");
    };
    layer.peer.write("first");
    layer.peer.write("second");  // a second record in the same read
    layer.memory.feed(layer.peer.take_output());
    run_until_idle(loop);
    EXPECT_EQ(layer.app->received, "firstsecond");  // one delivery, then nothing
    if (!abort) {
      layer.peer.receive(layer.memory.take_written());
      EXPECT_EQ(layer.peer.read_available(), "");
      EXPECT_TRUE(layer.peer.close_notify_seen);
      layer.peer.shutdown();
      layer.memory.feed(layer.peer.take_output());
      run_until_idle(loop);
    }
    EXPECT_EQ(layer.app->lost, 1);
    EXPECT_FALSE(layer.app->lost_error);
  }
}

TEST(TlsLayer, SetProtocolSwitchesTheApplicationsProtocol) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  ASSERT_TRUE(layer.handshake());
  auto next = std::make_shared<RecordingProtocol>();
  next->made = 1;  // as asyncio, set_protocol does not call connection_made
  layer.app->on_data = [&](std::string_view) { layer.tls->set_protocol(next); };
  layer.peer_sends("to the first");
  EXPECT_EQ(layer.tls->get_protocol(), next.get());
  layer.peer_sends("to the second");
  EXPECT_EQ(layer.app->received, "to the first");
  EXPECT_EQ(next->received, "to the second");
}

TEST(TlsLayer, ClosingTheLoopEndsALiveTlsConnection) {
  auto loop = std::make_unique<EventLoop>();
  auto app = std::make_shared<RecordingProtocol>();
  std::weak_ptr<Transport> weak_tls;
  {
    LayerOnMemory<> layer(*loop, true);
    ASSERT_TRUE(layer.handshake());
    weak_tls = layer.tls;
    app = layer.app;
  }
  loop->close();
  EXPECT_EQ(app->lost, 1);
  EXPECT_EQ(app->lost_error, std::make_error_code(std::errc::connection_aborted));
  loop.reset();
  EXPECT_TRUE(weak_tls.expired()) << "the layer and its transport were freed";
}

TEST(TlsLayer, CancellingStartTlsAbortsTheConnection) {
  EventLoop loop;
  LayerOnMemory<> layer(loop, true);
  run_until_idle(loop);
  layer.upgrade.cancel();
  run_until_idle(loop);
  EXPECT_TRUE(layer.memory.connection_lost());
  EXPECT_EQ(layer.app->lost, 0);
}

TEST(TlsLayer, TlsInsideTls) {
  EventLoop loop;
  LayerOnMemory<> outer(loop, true);
  ASSERT_TRUE(outer.handshake());
  // A second TLS session inside the first: the layer only needs a Transport.
  auto inner_app = std::make_shared<RecordingProtocol>();
  inner_app->made = 1;  // start_tls is given a protocol that is already connected
  StartTlsOptions options;
  options.server_side = true;
  auto inner = loop.start_tls(*outer.tls, inner_app, server_context(), options);
  OpenSslPeer inner_peer(OpenSslPeer::Role::kClient);
  for (int round = 0; round < 20 && !inner.done(); ++round) {
    inner_peer.handshake_step();
    std::string records = inner_peer.take_output();
    if (!records.empty()) outer.peer.write(records);
    outer.memory.feed(outer.peer.take_output());
    run_until_idle(loop);
    outer.peer.receive(outer.memory.take_written());
    inner_peer.receive(outer.peer.read_available());
  }
  ASSERT_TRUE(inner.done());
  std::shared_ptr<Transport> inner_tls = inner.result();
  inner_peer.write("nested");
  outer.peer.write(inner_peer.take_output());
  outer.memory.feed(outer.peer.take_output());
  run_until_idle(loop);
  EXPECT_EQ(inner_app->received, "nested");
  EXPECT_EQ(inner_tls->get_extra_info<CipherInfo>("cipher")->protocol, "TLSv1.3");
}

}  // namespace
}  // namespace tulip::testing
