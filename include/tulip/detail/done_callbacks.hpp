// DoneCallbacks: a Future's done callbacks, in the order they were added.
//
// Most futures get one or two callbacks (the task or run_until_complete
// waiting for it, a cancellation link of create_connection), so the first two
// live inside the future's state and only a third and later ones go to the
// heap: a plain vector allocated once per future, twice when it grew to two,
// which was a fifth of a client connection's allocations.
//
// Positions are handed out in order and never reused until the list is taken:
// a removed callback leaves an empty slot behind, so that the order of the
// others never changes.
//
// Thread-safety: none (a Future's state belongs to its loop's thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tulip::detail {

template <class Callback>
class DoneCallbacks {
 public:
  using Id = std::uint64_t;

  bool empty() const noexcept { return live_ == 0; }

  void add(Id id, Callback callback) {
    if (used_ < kInline) {
      inline_[used_] = Entry{id, std::move(callback)};
    } else {
      more_.emplace_back(id, std::move(callback));
    }
    ++used_;
    ++live_;
  }

  /// Removes the callbacks added with `id`; returns how many.
  std::size_t remove(Id id) {
    std::size_t removed = 0;
    for_each_entry([&](Entry& entry) {
      if (entry.second && entry.first == id) {
        entry.second = nullptr;
        ++removed;
      }
    });
    live_ -= removed;
    return removed;
  }

  /// Moves every callback out, in order; the list is empty afterwards.
  DoneCallbacks take() noexcept {
    DoneCallbacks taken = std::move(*this);
    used_ = 0;
    live_ = 0;
    more_.clear();
    return taken;
  }

  /// Calls `visit(callback)` for every callback still present, in order.
  template <class Visit>
  void for_each(Visit&& visit) {
    for_each_entry([&](Entry& entry) {
      if (entry.second) visit(entry.second);
    });
  }

 private:
  static constexpr std::size_t kInline = 2;
  using Entry = std::pair<Id, Callback>;

  template <class Visit>
  void for_each_entry(Visit&& visit) {
    std::size_t in_place = used_ < kInline ? used_ : kInline;
    for (std::size_t i = 0; i < in_place; ++i) visit(inline_[i]);
    for (Entry& entry : more_) visit(entry);
  }

  Entry inline_[kInline];
  std::vector<Entry> more_;
  std::size_t used_ = 0;  // positions handed out: inline_ first, then more_
  std::size_t live_ = 0;  // of those, not removed
};

}  // namespace tulip::detail
