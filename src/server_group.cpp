#include "tulip/server_group.hpp"

#include <pthread.h>
#include <sched.h>

#include <condition_variable>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "background_thread.hpp"
#include "tulip/errors.hpp"
#include "tulip/exception_context.hpp"

namespace tulip {
namespace {

// The group whose loop runs on this thread, if any: statistics() and stop()
// from there would wait for the thread they run on.
thread_local const ServerGroup* current_group = nullptr;

unsigned usable_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<unsigned>(count);
  }
  unsigned count = std::thread::hardware_concurrency();
  return count > 0 ? count : 1;
}

void pin_to_cpu(int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) {
    throw std::invalid_argument("ServerGroup: no such CPU: " + std::to_string(cpu));
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (int error = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); error != 0) {
    std::error_code code(error, std::generic_category());
    throw OSError(code, "ServerGroup: cannot pin a loop to CPU " + std::to_string(cpu) + ": " +
                            code.message());
  }
}

}  // namespace

// One loop's thread and what the controlling thread may see of it. The
// fields under `mutex` are shared; the others belong to the loop's thread.
struct ServerGroup::LoopSlot {
  enum class Phase { kStarting, kServing, kFailed, kFinished };

  explicit LoopSlot(std::size_t loop_index) : index(loop_index) {}

  const std::size_t index;  // the loop's place in the group
  std::thread thread;

  mutable std::mutex mutex;
  std::condition_variable changed;
  Phase phase = Phase::kStarting;        // under mutex
  std::exception_ptr error;              // under mutex: why the loop could not start
  EventLoop* loop = nullptr;             // under mutex: set while requests may be posted
  std::vector<SocketAddress> addresses;  // under mutex: what the server listens on
  LoopStatistics final_statistics;       // under mutex: the figures when the loop ended

  // The loop thread's own.
  std::shared_ptr<Server> server;
  Future<void>* stop_requested = nullptr;
  double stop_timeout = 0;
  ShutdownMode stop_mode = ShutdownMode::kLetFinish;

  LoopStatistics current_statistics() const {
    return LoopStatistics{server->accepted_count(), server->connection_count()};
  }
};

ServerGroup::ServerGroup(ServerOpener opener, std::uint16_t port, ServerGroupOptions options)
    : opener_(std::move(opener)), requested_port_(port), options_(std::move(options)) {
  if (!opener_) throw std::invalid_argument("ServerGroup needs a ServerOpener");
}

ServerGroup::~ServerGroup() {
  if (running_) stop(0, ShutdownMode::kLetFinish);
}

void ServerGroup::start() {
  if (running_) throw RuntimeError("ServerGroup::start(): the group is already running");
  if (current_group != nullptr) throw RuntimeError("ServerGroup::start() from a group's own loop");
  unsigned count = options_.threads != 0 ? options_.threads : usable_cpu_count();
  loops_.clear();
  addresses_.clear();
  bound_port_ = 0;
  for (unsigned i = 0; i < count; ++i) loops_.push_back(std::make_unique<LoopSlot>(i));

  // The first loop alone, so that for port 0 the others learn the port it got.
  auto failure = [](LoopSlot& slot) {
    std::lock_guard lock(slot.mutex);
    return slot.phase == LoopSlot::Phase::kFailed ? slot.error : nullptr;
  };
  launch(*loops_[0], requested_port_);
  wait_started(*loops_[0]);
  if (std::exception_ptr error = failure(*loops_[0])) {
    loops_[0]->thread.join();
    loops_.clear();
    std::rethrow_exception(error);
  }
  {
    std::lock_guard lock(loops_[0]->mutex);
    addresses_ = loops_[0]->addresses;
  }
  bound_port_ = addresses_.empty() ? requested_port_ : addresses_.front().port();

  for (std::size_t i = 1; i < loops_.size(); ++i) launch(*loops_[i], bound_port_);
  std::exception_ptr first_error;
  for (std::size_t i = 1; i < loops_.size(); ++i) {
    wait_started(*loops_[i]);
    if (!first_error) first_error = failure(*loops_[i]);
  }
  running_ = true;
  if (first_error) {
    stop(0, ShutdownMode::kLetFinish);
    std::rethrow_exception(first_error);
  }
}

void ServerGroup::launch(LoopSlot& slot, std::uint16_t port) {
  // Every signal blocked: they belong to the caller's thread (see
  // background_thread.hpp for what a stray signal costs).
  slot.thread = detail::start_background_thread([this, &slot, port] { run_loop(slot, port); });
}

void ServerGroup::wait_started(LoopSlot& slot) {
  std::unique_lock lock(slot.mutex);
  slot.changed.wait(lock, [&slot] { return slot.phase != LoopSlot::Phase::kStarting; });
}

void ServerGroup::run_loop(LoopSlot& slot, std::uint16_t port) {
  current_group = this;
  std::optional<EventLoop> loop;
  Future<void> stop_requested;
  try {
    if (!options_.cpus.empty()) pin_to_cpu(options_.cpus[slot.index % options_.cpus.size()]);
    loop.emplace();
    if (options_.on_loop_start) options_.on_loop_start(*loop);
    slot.server = opener_(*loop, port);
    if (!slot.server)
      throw std::invalid_argument("ServerGroup: the ServerOpener returned no server");
    stop_requested = loop->create_future();
  } catch (...) {
    // The server (if any) goes before the loop it runs on.
    slot.server.reset();
    std::lock_guard lock(slot.mutex);
    slot.phase = LoopSlot::Phase::kFailed;
    slot.error = std::current_exception();
    slot.changed.notify_all();
    return;
  }
  slot.stop_requested = &stop_requested;
  {
    std::lock_guard lock(slot.mutex);
    for (const ServerSocket& socket : slot.server->sockets()) {
      slot.addresses.push_back(socket.sockname);
    }
    slot.loop = &*loop;
    slot.phase = LoopSlot::Phase::kServing;
    slot.changed.notify_all();
  }

  // Serve until stop() asks otherwise. A protocol that stops the loop itself
  // does not stop the group (run_until_complete then throws RuntimeError, and
  // the loop runs on).
  while (!stop_requested.done()) {
    try {
      loop->run_until_complete(stop_requested);
    } catch (const RuntimeError&) {
    }
  }

  std::shared_ptr<Server> server = slot.server;
  server->close();
  if (slot.stop_mode == ShutdownMode::kCloseClients) server->close_clients();
  // Whatever has not ended by the deadline is cut off, so stop() always returns.
  TimerHandle deadline = loop->call_later(slot.stop_timeout, [server] { server->abort_clients(); });
  Future<void> closed = server->wait_closed();
  while (!closed.done()) {
    try {
      loop->run_until_complete(closed);
    } catch (const RuntimeError&) {
    }
  }
  deadline.cancel();

  {
    // From here on nothing may be posted to the loop: it is about to close.
    std::lock_guard lock(slot.mutex);
    slot.final_statistics = slot.current_statistics();
    slot.loop = nullptr;
  }
  slot.stop_requested = nullptr;
  try {
    if (options_.on_loop_finish) options_.on_loop_finish(*loop);
  } catch (...) {
    // The loop's thread has nobody to throw to: the handler hears of it.
    ExceptionContext context;
    context.message = "ServerGroup: on_loop_finish failed";
    context.exception = std::current_exception();
    loop->call_exception_handler(context);
  }
  slot.server.reset();
  loop.reset();
  std::lock_guard lock(slot.mutex);
  slot.phase = LoopSlot::Phase::kFinished;
}

void ServerGroup::stop(double timeout_seconds, ShutdownMode mode) {
  if (!running_) return;
  if (current_group == this) throw RuntimeError("ServerGroup::stop() from the group's own loop");
  stop_slots(timeout_seconds, mode);
  running_ = false;
}

void ServerGroup::stop_slots(double timeout_seconds, ShutdownMode mode) {
  for (auto& slot : loops_) {
    std::lock_guard lock(slot->mutex);
    if (slot->loop == nullptr) continue;
    LoopSlot* target = slot.get();
    slot->loop->call_soon_threadsafe([target, timeout_seconds, mode] {
      if (target->stop_requested == nullptr || target->stop_requested->done()) return;
      target->stop_timeout = timeout_seconds;
      target->stop_mode = mode;
      target->stop_requested->set_result();
    });
  }
  for (auto& slot : loops_) {
    if (slot->thread.joinable()) slot->thread.join();
  }
}

std::vector<LoopStatistics> ServerGroup::statistics() const {
  if (current_group == this) {
    throw RuntimeError("ServerGroup::statistics() from the group's own loop");
  }
  std::vector<std::future<LoopStatistics>> answers;
  std::vector<LoopStatistics> result(loops_.size());
  for (const auto& slot : loops_) {
    // A promise the loop fulfils on its thread; if the loop closes before the
    // request runs, the broken promise sends the reader to the final figures.
    auto promise = std::make_shared<std::promise<LoopStatistics>>();
    answers.push_back(promise->get_future());
    std::lock_guard lock(slot->mutex);
    if (slot->loop == nullptr) {
      promise->set_value(slot->final_statistics);
      continue;
    }
    LoopSlot* target = slot.get();
    slot->loop->call_soon_threadsafe(
        [target, promise] { promise->set_value(target->current_statistics()); });
  }
  for (std::size_t i = 0; i < answers.size(); ++i) {
    try {
      result[i] = answers[i].get();
    } catch (const std::future_error&) {
      std::lock_guard lock(loops_[i]->mutex);
      result[i] = loops_[i]->final_statistics;
    }
  }
  return result;
}

}  // namespace tulip
