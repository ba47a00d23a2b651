// Queues between tasks: Queue, PriorityQueue, LifoQueue (asyncio's queues.py).
//
// A queue holds up to `maxsize` items (0 or less: unbounded). `co_await
// q.put(item)` waits while it is full and `co_await q.get()` while it is
// empty; put_nowait / get_nowait throw QueueFull / QueueEmpty instead.
// Waiting producers and consumers are served first in, first out; one that is
// cancelled after being woken passes its turn on, as in asyncio. task_done()
// and `co_await q.join()` count unfinished items.
//
// PriorityQueue hands out the smallest item first (a min-heap ordered by
// Compare, like heapq); LifoQueue the most recent.
//
// Items are moved in and out. put() copies its argument into the coroutine
// frame (pass an rvalue to move it).
//
// Lifetime: a queue must outlive every task waiting on it.
// Thread-safety: loop thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tulip/export.hpp"
#include "tulip/future.hpp"
#include "tulip/locks.hpp"
#include "tulip/task.hpp"

namespace tulip {

/// put_nowait() on a full queue (asyncio.QueueFull).
class TULIP_API QueueFull : public std::runtime_error {
 public:
  QueueFull() : std::runtime_error("queue is full") {}
};

/// get_nowait() on an empty queue (asyncio.QueueEmpty).
class TULIP_API QueueEmpty : public std::runtime_error {
 public:
  QueueEmpty() : std::runtime_error("queue is empty") {}
};

namespace detail {

template <class T>
struct FifoStorage {
  std::deque<T> items;
  void push(T item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.front());
    items.pop_front();
    return item;
  }
  std::size_t size() const noexcept { return items.size(); }
};

template <class T>
struct LifoStorage {
  std::vector<T> items;
  void push(T item) { items.push_back(std::move(item)); }
  T pop() {
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items.size(); }
};

template <class T, class Compare>
struct HeapStorage {
  std::vector<T> items;
  // std heaps are max-heaps: invert the order for heapq's smallest-first.
  struct Inverted {
    bool operator()(const T& a, const T& b) const { return Compare()(b, a); }
  };
  void push(T item) {
    items.push_back(std::move(item));
    std::push_heap(items.begin(), items.end(), Inverted());
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), Inverted());
    T item = std::move(items.back());
    items.pop_back();
    return item;
  }
  std::size_t size() const noexcept { return items.size(); }
};

}  // namespace detail

/// What Queue, PriorityQueue and LifoQueue share; `Storage` decides the order.
template <class T, class Storage>
class BasicQueue {
 public:
  /// At most `maxsize` items; 0 or less: unbounded.
  explicit BasicQueue(std::ptrdiff_t maxsize = 0) : maxsize_(maxsize) { finished_.set(); }
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  /// How many items are queued.
  std::size_t qsize() const noexcept { return storage_.size(); }
  /// The bound given to the constructor.
  std::ptrdiff_t maxsize() const noexcept { return maxsize_; }
  /// True if no item is queued.
  bool empty() const noexcept { return storage_.size() == 0; }
  /// True if maxsize items are queued (never for an unbounded queue).
  bool full() const noexcept {
    return maxsize_ > 0 && storage_.size() >= static_cast<std::size_t>(maxsize_);
  }

  /// Puts `item`, waiting while the queue is full.
  Task<void> put(T item) {
    while (full()) {
      Future<void> putter = detail::add_waiter(putters_);
      try {
        co_await putter;
      } catch (const CancelledError&) {
        putter.cancel();  // in case it was not done yet
        detail::remove_waiter(putters_, putter);
        // Woken by a get but cancelled: let the next producer have the slot.
        if (!full() && !putter.cancelled()) wakeup_next(putters_);
        throw;
      }
    }
    put_nowait(std::move(item));
  }

  /// Puts `item` now; QueueFull if the queue is full.
  void put_nowait(T item) {
    if (full()) throw QueueFull();
    storage_.push(std::move(item));
    ++unfinished_tasks_;
    finished_.clear();
    wakeup_next(getters_);
  }

  /// Removes and returns an item, waiting while the queue is empty.
  Task<T> get() {
    while (empty()) {
      Future<void> getter = detail::add_waiter(getters_);
      try {
        co_await getter;
      } catch (const CancelledError&) {
        getter.cancel();
        detail::remove_waiter(getters_, getter);
        // Woken by a put but cancelled: let the next consumer have the item.
        if (!empty() && !getter.cancelled()) wakeup_next(getters_);
        throw;
      }
    }
    co_return get_nowait();
  }

  /// Removes and returns an item now; QueueEmpty if there is none.
  T get_nowait() {
    if (empty()) throw QueueEmpty();
    T item = storage_.pop();
    wakeup_next(putters_);
    return item;
  }

  /// Marks one item taken by get() as processed; std::invalid_argument if
  /// called more times than items were put.
  void task_done() {
    if (unfinished_tasks_ == 0) throw std::invalid_argument("task_done() called too many times");
    if (--unfinished_tasks_ == 0) finished_.set();
  }

  /// Waits until every item put has been marked task_done().
  Task<void> join() {
    if (unfinished_tasks_ > 0) co_await finished_.wait();
  }

 private:
  // Wakes the first waiter still waiting; the woken one removes itself.
  static void wakeup_next(detail::Waiters& waiters) {
    while (!waiters.empty()) {
      Future<void> waiter = std::move(waiters.front());
      waiters.pop_front();
      if (!waiter.done()) {
        waiter.set_result();
        break;
      }
    }
  }

  std::ptrdiff_t maxsize_;
  Storage storage_;
  detail::Waiters getters_;
  detail::Waiters putters_;
  std::size_t unfinished_tasks_ = 0;
  Event finished_;
};

/// First in, first out (asyncio.Queue).
template <class T>
using Queue = BasicQueue<T, detail::FifoStorage<T>>;
/// Smallest first by Compare (asyncio.PriorityQueue).
template <class T, class Compare = std::less<T>>
using PriorityQueue = BasicQueue<T, detail::HeapStorage<T, Compare>>;
/// Last in, first out (asyncio.LifoQueue).
template <class T>
using LifoQueue = BasicQueue<T, detail::LifoStorage<T>>;

}  // namespace tulip
