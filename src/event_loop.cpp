// The backend-neutral loop core: ready queue, timer heap, one iteration, errors.
#include "tulip/event_loop.hpp"

#include <time.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <thread>

#include "io_backend.hpp"
#include "loop_internals.hpp"
#include "tulip/detail/loop_token.hpp"
#include "tulip/detail/task_registry.hpp"

namespace tulip {
namespace {

// asyncio rebuilds the heap when more than this many timers are scheduled and
// more than half of them are cancelled (_MIN_SCHEDULED_TIMER_HANDLES and
// _MIN_CANCELLED_TIMER_HANDLES_FRACTION in base_events.py).
constexpr std::size_t kMinTimersForCompaction = 100;

// Orders the heap so that the earliest deadline, then the earliest scheduled, is on top.
bool fires_later(const detail::CallbackNode* a, const detail::CallbackNode* b) noexcept {
  if (a->when_ns != b->when_ns) return a->when_ns > b->when_ns;
  return a->sequence > b->sequence;
}

std::int64_t seconds_to_ns(double seconds) {
  if (std::isnan(seconds)) throw std::invalid_argument("timer delay or deadline is NaN");
  double ns = seconds * 1e9;
  if (ns >= 9.2e18) return INT64_MAX;
  if (ns <= -9.2e18) return INT64_MIN / 2;
  // Round half away from zero, as llround does but cheaper; the result matches
  // llround's exactly below 2^52 ns (52 days) and is within 1 ns beyond.
  return static_cast<std::int64_t>(ns >= 0 ? ns + 0.5 : ns - 0.5);
}

}  // namespace

EventLoop::EventLoop() : EventLoop(EventLoopOptions{}) {}

EventLoop::EventLoop(const EventLoopOptions& options)
    : EventLoop(detail::resolve_backend_kind(options.backend), options) {}

// The backend is chosen first, so that a bad choice throws before anything is allocated.
EventLoop::EventLoop(BackendKind resolved, const EventLoopOptions& options)
    : pool_(new detail::NodePool(this)),
      backend_(detail::make_backend(*this, resolved, options)),
      internals_(std::make_unique<detail::LoopInternals>(*this, *backend_)),
      token_(std::make_shared<detail::LoopToken>(this)) {}

EventLoop::~EventLoop() {
  if (!closed_) close();
  // Futures and Handles may outlive the loop; tell them it is gone. Under the
  // token's lock: another thread may be handing a Future's leftovers over.
  {
    std::lock_guard lock(token_->mutex);
    token_->loop = nullptr;
  }
  token_->gone.store(true, std::memory_order_release);
  pool_->orphan();
}

const char* EventLoop::backend_name() const noexcept { return backend_->name(); }

std::int64_t EventLoop::now_ns() const noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double EventLoop::time() const noexcept { return static_cast<double>(now_ns()) * 1e-9; }

// ---- Scheduling --------------------------------------------------------------

void EventLoop::call_soon_threadsafe(Callback callback) {
  if (!callback) throw_empty_callback("call_soon_threadsafe");
  std::lock_guard lock(threadsafe_mutex_);
  // closed_ is only written under this mutex once the loop is closing, so reading
  // it here is ordered with close() even from another thread.
  if (closed_) throw_closed();
  threadsafe_queue_.push_back(std::move(callback));
  // Only the first callback since the loop last drained needs to wake it; the
  // wakeup happens under the lock so close() cannot free the backend meanwhile.
  if (!threadsafe_pending_.exchange(true, std::memory_order_acq_rel)) backend_->wakeup();
}

// Called by run_once when threadsafe_pending_ is set.
void EventLoop::drain_threadsafe_queue() {
  std::vector<Callback> batch;
  {
    std::lock_guard lock(threadsafe_mutex_);
    batch.swap(threadsafe_queue_);
    threadsafe_pending_.store(false, std::memory_order_release);
  }
  for (Callback& callback : batch) {
    detail::CallbackNode* node = pool_->acquire();
    node->callback = std::move(callback);
    ready_.push(node);
  }
}

TimerHandle EventLoop::call_later(double delay_seconds, Callback callback) {
  return call_later_ns(seconds_to_ns(delay_seconds), std::move(callback));
}

TimerHandle EventLoop::call_later_ns(std::int64_t delay_ns, Callback callback) {
  std::int64_t now = now_ns();
  // Saturate: a delay past the end of time is "never", not a wrapped deadline.
  return call_at_ns(delay_ns > INT64_MAX - now ? INT64_MAX : now + delay_ns, std::move(callback));
}

TimerHandle EventLoop::call_at(double when, Callback callback) {
  return call_at_ns(seconds_to_ns(when), std::move(callback));
}

TimerHandle EventLoop::call_at_ns(std::int64_t when_ns, Callback callback) {
  if (!callback) throw_empty_callback("call_later/call_at");
  detail::CallbackNode* node = new_node();
  node->callback = std::move(callback);
  node->is_timer = true;
  node->when_ns = when_ns;
  node->sequence = ++timer_sequence_;
  // The heap keeps the node's first reference; the TimerHandle gets another.
  timers_.push_back(node);
  std::push_heap(timers_.begin(), timers_.end(), fires_later);
  detail::NodePool::add_ref(node);
  return TimerHandle(node);
}

void Handle::cancel() noexcept {
  if (node_ == nullptr || node_->state != detail::CallbackState::kPending) return;
  node_->state = detail::CallbackState::kCancelled;
  // asyncio drops the callback's references at cancel time; so do we.
  node_->callback.reset();
  if (node_->is_timer) {
    if (EventLoop* loop = node_->pool->loop()) loop->on_timer_cancelled(node_);
  }
}

void EventLoop::on_timer_cancelled(detail::CallbackNode* node) noexcept {
  // The timer scheduled last usually sits at the heap's end (a later deadline
  // than its parent: the common case of a timeout cancelled soon after it was
  // set): removing the last element keeps the heap valid, so it goes now.
  // Anywhere else it is dropped lazily, as asyncio does.
  if (!timers_.empty() && timers_.back() == node) {
    timers_.pop_back();
    node->is_timer = false;
    detail::NodePool::release(node);
    return;
  }
  ++cancelled_timers_;
}

// Called by run_once when cancelled_timers_ is not zero.
void EventLoop::drop_cancelled_timers() {
  if (timers_.size() > kMinTimersForCompaction && cancelled_timers_ * 2 > timers_.size()) {
    // Most of the heap is dead weight: rebuild it from the live timers only, so
    // schedule/cancel churn cannot grow memory without bound.
    auto live_end = std::partition(timers_.begin(), timers_.end(), [](detail::CallbackNode* n) {
      return n->state != detail::CallbackState::kCancelled;
    });
    for (auto it = live_end; it != timers_.end(); ++it) detail::NodePool::release(*it);
    timers_.erase(live_end, timers_.end());
    std::make_heap(timers_.begin(), timers_.end(), fires_later);
    cancelled_timers_ = 0;
    return;
  }
  while (!timers_.empty() && timers_.front()->state == detail::CallbackState::kCancelled) {
    std::pop_heap(timers_.begin(), timers_.end(), fires_later);
    detail::NodePool::release(timers_.back());
    timers_.pop_back();
    --cancelled_timers_;
  }
}

// ---- Running -----------------------------------------------------------------

// Runs a batch of nodes linked through `next`. Inlined into run_once: a chain
// of callbacks runs one batch per iteration, and the call would be a
// measurable part of each step.
[[gnu::always_inline]] inline void EventLoop::run_batch(detail::CallbackNode* node,
                                                        EventLoop& loop) {
  while (node != nullptr) {
    detail::CallbackNode* next = node->next;
    if (node->state == detail::CallbackState::kPending) {
      node->state = detail::CallbackState::kRunning;
      try {
        node->callback();
      } catch (...) {
        loop.call_exception_handler({"Exception in callback", std::current_exception()});
      }
      node->state = detail::CallbackState::kFinished;
      // A Handle may keep the node long after this; what the callback captured
      // must not live that long (an object holding its own timer's handle
      // would otherwise keep itself alive through the capture).
      node->callback.reset();
    }
    detail::NodePool::release(node);
    node = next;
  }
}

// One iteration, in asyncio's order (BaseEventLoop._run_once): poll; then run
// the callbacks that were ready, then the I/O handlers for what the poll saw,
// then the timers that were due. Anything these schedule runs next iteration.
[[gnu::always_inline]] inline void EventLoop::run_once() {
  // The checks that guard each step are inline so that an iteration that only
  // dispatches I/O pays for no function call it does not need.
  if (cancelled_timers_ != 0) drop_cancelled_timers();

  bool work_ready = !ready_.empty() || threadsafe_pending_.load(std::memory_order_acquire);
  detail::CallbackNode* ready = nullptr;
  bool dispatch_after_ready = false;
  if (!work_ready && !stopping_) {
    int timeout_ms = -1;
    if (!timers_.empty()) {
      std::int64_t wait_ns = timers_.front()->when_ns - now_ns();
      // Round up: waking a little late is harmless, waking early spins.
      timeout_ms =
          wait_ns <= 0
              ? 0
              : static_cast<int>(std::min<std::int64_t>((wait_ns + 999'999) / 1'000'000, INT_MAX));
    }
    // Nothing was ready, so the I/O handlers come first in this iteration's
    // order anyway: the backend delivers as soon as the poll returns. What
    // they schedule waits for the next iteration, with anything that arrived
    // from other threads meanwhile.
    backend_->poll_and_dispatch(timeout_ms);
    iterations_since_poll_ = 0;
  } else {
    if (stopping_ || ++iterations_since_poll_ >= kPollIntervalWhenBusy) {
      backend_->poll(0);
      iterations_since_poll_ = 0;
      dispatch_after_ready = true;
    }
    if (threadsafe_pending_.load(std::memory_order_acquire)) drain_threadsafe_queue();
    // The batch is taken before any of it runs: what it schedules waits for
    // the next iteration.
    ready = ready_.take_all();
  }

  detail::ReadyQueue due;
  if (!timers_.empty()) {
    std::int64_t now = now_ns();
    while (!timers_.empty() && timers_.front()->when_ns <= now) {
      std::pop_heap(timers_.begin(), timers_.end(), fires_later);
      detail::CallbackNode* node = timers_.back();
      timers_.pop_back();
      if (node->state == detail::CallbackState::kCancelled) {
        --cancelled_timers_;
        detail::NodePool::release(node);
        continue;
      }
      // It leaves the heap: a cancel from now on must not count it as a heap entry.
      node->is_timer = false;
      due.push(node);  // the heap's reference moves to the batch
    }
  }
  if (ready != nullptr) run_batch(ready, *this);
  if (dispatch_after_ready) backend_->dispatch();
  if (!due.empty()) run_batch(due.take_all(), *this);
}

void EventLoop::run_forever() {
  if (closed_) throw_closed();
  if (running_.exchange(true)) throw RuntimeError("This event loop is already running");
  // The running thread owns the loop from now on (Futures dropped elsewhere
  // hand their leftovers to it).
  token_->thread.store(std::this_thread::get_id(), std::memory_order_relaxed);
  struct Reset {
    EventLoop* loop;
    ~Reset() {
      loop->stopping_ = false;
      loop->running_.store(false);
    }
  } reset{this};
  for (;;) {
    run_once();
    if (stopping_) break;
  }
}

void EventLoop::close() {
  if (is_running()) throw RuntimeError("Cannot close a running event loop");
  if (closed_) return;
  // Coroutines first, while the loop still accepts calls: a frame's destructors
  // may close transports or cancel timers.
  if (task_registry_) task_registry_->close();
  internals_->shutdown();
  std::vector<Callback> never_run;
  {
    std::lock_guard lock(threadsafe_mutex_);
    closed_ = true;
    never_run.swap(threadsafe_queue_);
    threadsafe_pending_.store(false);
  }
  // Destroyed outside the lock: a capture's destructor may call into the loop.
  never_run.clear();
  // Pending callbacks will never run: mark them cancelled so their Handles say
  // so, and destroy what they captured now.
  auto discard = [](detail::CallbackNode* node) {
    if (node->state == detail::CallbackState::kPending) {
      node->state = detail::CallbackState::kCancelled;
      node->callback.reset();
    }
    detail::NodePool::release(node);
  };
  for (detail::CallbackNode* node = ready_.take_all(); node != nullptr;) {
    detail::CallbackNode* next = node->next;
    discard(node);
    node = next;
  }
  std::vector<detail::CallbackNode*> timers;
  timers.swap(timers_);
  for (detail::CallbackNode* node : timers) discard(node);
  cancelled_timers_ = 0;
}

}  // namespace tulip
