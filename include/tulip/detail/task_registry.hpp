// TaskRegistry: a loop's tasks, for current_task(), all_tasks() and close().
//
// Each EventLoop owns one, made by the first create_task. It keeps every task
// that is scheduled and not yet done in an intrusive list (no allocation per
// task) and holds one reference on each: the loop owns a pending task, as it
// owns a live transport, so a task nobody else refers to still runs to the end
// (asyncio only keeps a weak reference, and tasks can vanish mid-flight there).
// When the task finishes it leaves the list and the reference is dropped.
//
// close() (called by EventLoop::close) destroys the coroutine frame of every
// task still pending: the frames' destructors run, the tasks become cancelled,
// and their done callbacks are dropped without running (the loop is closing).
//
// Thread-safety: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tulip/export.hpp"

namespace tulip::detail {

class TaskBase;

class TULIP_API TaskRegistry {
 public:
  TaskRegistry() = default;
  TaskRegistry(const TaskRegistry&) = delete;
  TaskRegistry& operator=(const TaskRegistry&) = delete;
  ~TaskRegistry();

  /// Links `task` and takes a reference on it.
  void add(TaskBase* task) noexcept;
  /// Unlinks `task` and drops the registry's reference (which may delete it).
  void remove(TaskBase* task) noexcept;

  /// Destroys the frames of all pending tasks (see above).
  void close() noexcept;

  TaskBase* first() const noexcept { return head_; }
  std::size_t size() const noexcept { return size_; }

  /// The task whose step is running on this loop, or null.
  TaskBase* current = nullptr;

  /// Numbers default task names, "Task-1", "Task-2", ...
  std::uint64_t next_task_number() noexcept { return ++task_counter_; }

 private:
  TaskBase* head_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t task_counter_ = 0;
};

}  // namespace tulip::detail
