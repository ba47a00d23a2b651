// ThreadPoolExecutor (executor.hpp): worker threads started on demand.
//
// The queue, the threads and their bookkeeping live in a State that every
// worker shares, so a worker let go by shutdown(wait = false) (one inside a
// job that may block for a long time: a DNS lookup) keeps what it needs after
// the pool object is gone, and ends by itself once the queue is empty.
#include <sched.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "background_thread.hpp"
#include "tulip/errors.hpp"
#include "tulip/executor.hpp"

namespace tulip {

struct ThreadPoolExecutor::State {
  struct Worker {
    std::thread thread;
    std::thread::id id;
    bool busy = false;
  };

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job> queue;
  // Workers not yet joined or let go. A worker finds its entry by its id.
  std::vector<Worker> workers;
  std::size_t idle = 0;
  bool shut_down = false;

  Worker* find(std::thread::id id) {
    for (Worker& worker : workers) {
      if (worker.id == id) return &worker;
    }
    return nullptr;
  }

  static void work(std::shared_ptr<State> self) {
    std::thread::id me = std::this_thread::get_id();
    std::unique_lock lock(self->mutex);
    for (;;) {
      ++self->idle;
      self->wake.wait(lock, [&] { return self->shut_down || !self->queue.empty(); });
      --self->idle;
      if (self->queue.empty()) return;  // shut down and nothing left to run
      Job job = std::move(self->queue.front());
      self->queue.pop_front();
      // Our entry may be gone: shutdown(wait = false) lets busy workers go.
      if (Worker* entry = self->find(me)) entry->busy = true;
      lock.unlock();
      try {
        job();
      } catch (...) {
        // A job reports its own outcome (run_in_executor catches everything
        // into its Future); a raw job that throws must not end the worker.
      }
      // The job's captures die here, before the lock, on this thread.
      job = nullptr;
      lock.lock();
      if (Worker* entry = self->find(me)) entry->busy = false;
    }
  }
};

std::size_t ThreadPoolExecutor::default_max_workers() noexcept {
  // The CPUs this process may run on (os.process_cpu_count() in Python 3.13),
  // not every CPU of the machine.
  cpu_set_t usable;
  std::size_t cpus = 0;
  if (::sched_getaffinity(0, sizeof(usable), &usable) == 0) {
    cpus = static_cast<std::size_t>(CPU_COUNT(&usable));
  }
  if (cpus == 0) cpus = std::max(1u, std::thread::hardware_concurrency());
  return std::min<std::size_t>(32, cpus + 4);
}

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers)
    : max_workers_(max_workers), state_(std::make_shared<State>()) {
  if (max_workers == 0) throw std::invalid_argument("max_workers must be greater than 0");
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  try {
    shutdown(true);
  } catch (...) {
    // Destroyed by one of its own jobs: the threads cannot be waited for
    // from here; they are let go and end once the queue is empty.
    shutdown(false);
  }
}

void ThreadPoolExecutor::submit(Job job) {
  if (!job) throw std::invalid_argument("submit() needs a callable, not an empty one");
  std::lock_guard lock(state_->mutex);
  if (state_->shut_down) throw RuntimeError("cannot schedule new jobs after shutdown");
  state_->queue.push_back(std::move(job));
  // A thread per job while none is idle, up to the limit; more jobs than
  // threads wait in the queue.
  if (state_->idle < state_->queue.size() && state_->workers.size() < max_workers_) {
    State::Worker worker;
    worker.thread = detail::start_background_thread(&State::work, state_);
    worker.id = worker.thread.get_id();
    state_->workers.push_back(std::move(worker));
  } else {
    state_->wake.notify_one();
  }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_pending) {
  std::deque<Job> dropped;
  std::vector<State::Worker> workers;
  {
    std::lock_guard lock(state_->mutex);
    if (wait && state_->find(std::this_thread::get_id()) != nullptr) {
      throw RuntimeError("shutdown(wait = true) from a job of the same pool would wait for itself");
    }
    state_->shut_down = true;
    if (cancel_pending) dropped.swap(state_->queue);
    // The threads are taken out under the lock, so that a second, concurrent
    // shutdown finds nothing left to join or let go.
    workers.swap(state_->workers);
    if (!wait) {
      // A worker is waited for only if it is idle and the queue is empty: it
      // then ends at once. The others are let go and end by themselves.
      bool queue_empty = state_->queue.empty();
      for (State::Worker& worker : workers) {
        if (worker.busy || !queue_empty) worker.thread.detach();
      }
    }
  }
  state_->wake.notify_all();
  // Queued jobs that will never run are destroyed here, on the caller's thread.
  dropped.clear();
  for (State::Worker& worker : workers) {
    if (worker.thread.joinable()) worker.thread.join();
  }
}

std::size_t ThreadPoolExecutor::thread_count() const {
  std::lock_guard lock(state_->mutex);
  return state_->workers.size();
}

}  // namespace tulip
