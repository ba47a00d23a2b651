// A protocol callback that throws, closes or aborts, from inside every callback
// a transport makes. Whatever it does: no crash, connection_lost exactly once
// and last, no data after the connection was given up, the exception (and only
// an exception) reaches the loop's exception handler, and another connection on
// the same loop is not disturbed.
#include <gtest/gtest.h>

#include <future>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fault/fault_support.hpp"

namespace tulip::testing {
namespace {

enum class Callback {
  kConnectionMade,
  kDataReceived,
  kGetBuffer,
  kBufferUpdated,
  kEofReceived,
  kPauseWriting,
  kResumeWriting,
  kConnectionLost,
};
enum class Action { kThrow, kClose, kAbort };
enum class Kind { kProtocol, kBufferedProtocol };

const char* name_of(Callback callback) {
  switch (callback) {
    case Callback::kConnectionMade:
      return "connection_made";
    case Callback::kDataReceived:
      return "data_received";
    case Callback::kGetBuffer:
      return "get_buffer";
    case Callback::kBufferUpdated:
      return "buffer_updated";
    case Callback::kEofReceived:
      return "eof_received";
    case Callback::kPauseWriting:
      return "pause_writing";
    case Callback::kResumeWriting:
      return "resume_writing";
    case Callback::kConnectionLost:
      return "connection_lost";
  }
  return "?";
}

const char* name_of(Action action) {
  switch (action) {
    case Action::kThrow:
      return "Throws";
    case Action::kClose:
      return "Closes";
    case Action::kAbort:
      return "Aborts";
  }
  return "?";
}

bool delivers_data(Callback callback) {
  return callback == Callback::kDataReceived || callback == Callback::kGetBuffer ||
         callback == Callback::kBufferUpdated || callback == Callback::kEofReceived;
}

// What the faulty protocol does and what happened to it. It outlives the loop.
struct Script {
  Callback where = Callback::kConnectionMade;
  Action action = Action::kThrow;
  Transport* transport = nullptr;
  std::vector<Callback> calls;  // every callback, in order
  std::size_t acted_at = 0;     // calls.size() when the fault happened; 0: not yet
  int lost = 0;
  std::error_code lost_error;
  std::string received;

  // Records `callback` and, the first time it is the scripted one, misbehaves.
  void hit(Callback callback) {
    calls.push_back(callback);
    if (callback != where || acted_at != 0) return;
    acted_at = calls.size();
    if (action == Action::kThrow)
      throw std::runtime_error(std::string("fault in ") + name_of(callback));
    if (action == Action::kClose) {
      transport->close();
    } else {
      transport->abort();
    }
    transport->write("dropped");  // after close: ignored, with a warning
  }
};

// The callbacks both kinds of protocol share, each reporting to the script.
template <class Base>
class ScriptedCallbacks : public Base {
 public:
  explicit ScriptedCallbacks(Script& script) : script_(script) {}
  void connection_made(Transport& t) override {
    script_.transport = &t;
    script_.hit(Callback::kConnectionMade);
  }
  bool eof_received() override {
    script_.hit(Callback::kEofReceived);
    return false;
  }
  void pause_writing() override { script_.hit(Callback::kPauseWriting); }
  void resume_writing() override { script_.hit(Callback::kResumeWriting); }
  void connection_lost(std::error_code error) override {
    ++script_.lost;
    script_.lost_error = error;
    script_.hit(Callback::kConnectionLost);
  }

 protected:
  Script& script_;
};

class ScriptedProtocol final : public ScriptedCallbacks<Protocol> {
 public:
  using ScriptedCallbacks::ScriptedCallbacks;
  void data_received(std::string_view data) override {
    script_.received.append(data);
    script_.hit(Callback::kDataReceived);
  }
};

class ScriptedBufferedProtocol final : public ScriptedCallbacks<BufferedProtocol> {
 public:
  using ScriptedCallbacks::ScriptedCallbacks;
  std::span<std::byte> get_buffer(std::size_t) override {
    script_.hit(Callback::kGetBuffer);
    return std::span<std::byte>(buffer_, sizeof(buffer_));
  }
  void buffer_updated(std::size_t bytes) override {
    script_.received.append(reinterpret_cast<const char*>(buffer_), bytes);
    script_.hit(Callback::kBufferUpdated);
  }

 private:
  std::byte buffer_[1024];
};

struct Case {
  Kind kind;
  Callback where;
  Action action;
};

void PrintTo(const Case& c, std::ostream* out) {
  *out << (c.kind == Kind::kProtocol ? "Protocol " : "BufferedProtocol ") << name_of(c.where) << " "
       << name_of(c.action);
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string name = info.param.kind == Kind::kProtocol ? "Protocol_" : "Buffered_";
  name += name_of(info.param.where);
  name += "_";
  name += name_of(info.param.action);
  return name;
}

std::vector<Case> every_case() {
  std::vector<Case> cases;
  for (Kind kind : {Kind::kProtocol, Kind::kBufferedProtocol}) {
    for (Callback where :
         {Callback::kConnectionMade, Callback::kDataReceived, Callback::kGetBuffer,
          Callback::kBufferUpdated, Callback::kEofReceived, Callback::kPauseWriting,
          Callback::kResumeWriting, Callback::kConnectionLost}) {
      bool buffered_only = where == Callback::kGetBuffer || where == Callback::kBufferUpdated;
      if (kind == Kind::kProtocol && buffered_only) continue;
      if (kind == Kind::kBufferedProtocol && where == Callback::kDataReceived) continue;
      for (Action action : {Action::kThrow, Action::kClose, Action::kAbort}) {
        cases.push_back({kind, where, action});
      }
    }
  }
  return cases;
}

class CallbackFault : public ::testing::TestWithParam<Case> {};

// More than the kernel's buffers hold for a peer with a small receive buffer.
constexpr std::size_t kFlood = 4 * 1024 * 1024;

TEST_P(CallbackFault, OnlyThatConnectionEndsAndExactlyOnce) {
  const Case c = GetParam();
  Script script;
  script.where = c.where;
  script.action = c.action;
  CapturedLog log;
  EventLoop loop;
  ExceptionLog exceptions(loop);

  // A bystander connection on the same loop, opened first.
  auto bystander = std::make_shared<RecordingProtocol>();
  auto [other, other_peer] = connect_to_raw_peer(loop, bystander);

  std::shared_ptr<StreamProtocol> victim;
  if (c.kind == Kind::kProtocol) {
    victim = std::make_shared<ScriptedProtocol>(script);
  } else {
    victim = std::make_shared<ScriptedBufferedProtocol>(script);
  }
  BaseProtocol* victim_protocol = victim.get();
  auto [connection, peer] = connect_to_raw_peer(loop, victim, "127.0.0.1", kSmallReceiveBuffer);
  Transport& transport = *connection.transport;

  // Make the transport call the scripted callback.
  std::future<std::string> drained;
  switch (c.where) {
    case Callback::kConnectionMade:
      break;  // already called
    case Callback::kDataReceived:
    case Callback::kGetBuffer:
    case Callback::kBufferUpdated:
      peer.send_all("payload");
      break;
    case Callback::kEofReceived:
      peer.shutdown_write();
      break;
    case Callback::kPauseWriting:
    case Callback::kResumeWriting:
      transport.set_write_buffer_limits(1024);
      transport.write(pattern(kFlood));
      // Reading lets the buffer drain (resume_writing) and a close flush.
      drained = std::async(std::launch::async, [&peer = peer] { return peer.read_to_eof(); });
      break;
    case Callback::kConnectionLost:
      transport.close();
      break;
  }
  ASSERT_TRUE(run_until(loop, [&] { return script.acted_at != 0; }));

  bool fatal = c.action != Action::kThrow || delivers_data(c.where) ||
               c.where == Callback::kConnectionMade || c.where == Callback::kConnectionLost;
  if (!fatal) {
    // A throwing pause_writing / resume_writing is reported; the transport goes on.
    EXPECT_FALSE(transport.is_closing());
    transport.close();
  }
  ASSERT_TRUE(run_until(loop, [&] { return script.lost == 1; }));
  const bool had_reader = drained.valid();
  std::string flushed = had_reader ? drained.get() : std::string();
  run_iterations(loop, 20);

  // connection_lost exactly once, and last.
  EXPECT_EQ(script.lost, 1);
  ASSERT_FALSE(script.calls.empty());
  EXPECT_EQ(script.calls.front(), Callback::kConnectionMade);
  EXPECT_EQ(script.calls.back(), Callback::kConnectionLost);
  // Once the protocol gave the connection up (or failed), no data reaches it.
  if (fatal) {
    for (std::size_t i = script.acted_at; i < script.calls.size(); ++i) {
      EXPECT_FALSE(delivers_data(script.calls[i]))
          << name_of(script.calls[i]) << " after the fault in " << name_of(c.where);
    }
  }
  // The cause.
  bool raised = c.action == Action::kThrow &&
                (delivers_data(c.where) || c.where == Callback::kConnectionMade);
  if (raised) {
    EXPECT_EQ(script.lost_error, Error::kCallbackRaised);
  } else {
    EXPECT_FALSE(script.lost_error) << script.lost_error.message();
  }
  // Only an exception is reported, and with the right subject.
  if (c.action == Action::kThrow) {
    ASSERT_EQ(exceptions.reports.size(), 1u);
    const ExceptionContext& report = exceptions.reports[0];
    EXPECT_NE(report.message.find(name_of(c.where)), std::string::npos) << report.message;
    EXPECT_EQ(report.transport, connection.transport.get());
    EXPECT_EQ(report.protocol, victim_protocol);
    EXPECT_NE(describe(report).find(std::string("fault in ") + name_of(c.where)), std::string::npos)
        << describe(report);
    EXPECT_EQ(log.count(LogLevel::kWarning), 0u);
  } else {
    EXPECT_TRUE(exceptions.reports.empty());
    EXPECT_EQ(log.count(LogLevel::kWarning), 1u);  // the write after close
  }
  EXPECT_EQ(log.count(LogLevel::kError), 0u);
  // What a close (or a surviving transport) flushed arrives intact.
  if (had_reader) {
    EXPECT_TRUE(flushed == pattern(kFlood).substr(0, flushed.size()));
    if (c.action == Action::kClose || !fatal) {
      EXPECT_EQ(flushed.size(), kFlood);
    }
  }

  // The other connection still works.
  EXPECT_EQ(bystander->lost, 0);
  EXPECT_FALSE(other.transport->is_closing());
  other_peer.send_all("still here");
  ASSERT_TRUE(run_until(loop, [&] { return bystander->received == "still here"; }));
  other.transport->write("and answering");
  other.transport->close();
  ASSERT_TRUE(run_until(loop, [&] { return bystander->lost == 1; }));
  EXPECT_FALSE(bystander->lost_error);
  EXPECT_EQ(other_peer.read_to_eof(), "and answering");
}

INSTANTIATE_TEST_SUITE_P(EveryCallback, CallbackFault, ::testing::ValuesIn(every_case()),
                         case_name);

// An exception handler that itself throws must not change what the failing
// connection goes through, nor take the loop down.
TEST(CallbackFault, AThrowingExceptionHandlerIsLoggedAndTheConnectionStillEndsOnce) {
  CapturedLog log;
  EventLoop loop;
  int handled = 0;
  loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) {
    ++handled;
    throw std::logic_error("handler bug");
  });
  auto protocol = std::make_shared<RecordingProtocol>();
  protocol->on_data = [](std::string_view) { throw std::runtime_error("protocol bug"); };
  auto [connection, peer] = connect_to_raw_peer(loop, protocol);
  peer.send_all("boom");
  ASSERT_TRUE(run_until(loop, [&] { return protocol->lost == 1; }));
  run_iterations(loop, 10);
  EXPECT_EQ(protocol->lost, 1);
  EXPECT_EQ(protocol->lost_error, Error::kCallbackRaised);
  EXPECT_EQ(handled, 1);
  // The default handler reports both the handler's failure and the original error.
  ASSERT_EQ(log.count(LogLevel::kError), 2u);
  EXPECT_NE(log.lines[0].second.find("handler bug"), std::string::npos) << log.lines[0].second;
  EXPECT_NE(log.lines[1].second.find("protocol bug"), std::string::npos) << log.lines[1].second;
  loop.set_exception_handler(nullptr);
}

}  // namespace
}  // namespace tulip::testing
