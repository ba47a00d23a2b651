// FrameAllocator: recycles coroutine frames and task states, per thread, by size.
//
// Every coroutine call allocates a frame, and every task a small state object.
// Both are short-lived and come in a handful of sizes, so instead of going to
// the heap each time they are kept, once freed, on a per-thread free list for
// their size class (64-byte granules up to kMaxRecycledSize). A steady-state
// cycle of create-task / await / complete then allocates nothing, as Boost.Asio
// does for its awaitable frames. Larger blocks go straight to operator new.
//
// A block freed on another thread than the one that allocated it goes on the
// freeing thread's list, which is fine: all blocks come from operator new.
// Each list keeps at most kMaxCachedPerClass blocks, so a burst of coroutines
// does not pin its peak memory forever; the lists are freed at thread exit.
//
// Thread-safety: each thread has its own lists; nothing is shared.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>

namespace tulip::detail {

class FrameAllocator {
 public:
  static constexpr std::size_t kGranule = 64;
  static constexpr std::size_t kMaxRecycledSize = 4096;
  static constexpr std::size_t kClasses = kMaxRecycledSize / kGranule;
  static constexpr std::size_t kMaxCachedPerClass = 1024;

  static void* allocate(std::size_t size) {
    std::size_t index = class_of(size);
    if (index < kClasses) {
      Lists& lists = local();
      if (FreeBlock* block = lists.heads[index]) {
        lists.heads[index] = block->next;
        --lists.counts[index];
        return block;
      }
      return ::operator new((index + 1) * kGranule);
    }
    return ::operator new(size);
  }

  /// `size` must be the size given to allocate() (sized deallocation).
  static void deallocate(void* pointer, std::size_t size) noexcept {
    std::size_t index = class_of(size);
    if (index < kClasses) {
      Lists& lists = local();
      if (lists.counts[index] < kMaxCachedPerClass) {
        auto* block = static_cast<FreeBlock*>(pointer);
        block->next = lists.heads[index];
        lists.heads[index] = block;
        ++lists.counts[index];
        return;
      }
      ::operator delete(pointer);
      return;
    }
    ::operator delete(pointer);
  }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };

  struct Lists {
    std::array<FreeBlock*, kClasses> heads{};
    std::array<std::size_t, kClasses> counts{};
    Lists() = default;
    Lists(const Lists&) = delete;
    Lists& operator=(const Lists&) = delete;
    ~Lists() {
      for (std::size_t i = 0; i < kClasses; ++i) {
        while (FreeBlock* block = heads[i]) {
          heads[i] = block->next;
          ::operator delete(block);
        }
      }
    }
  };

  static std::size_t class_of(std::size_t size) noexcept {
    return size == 0 ? 0 : (size - 1) / kGranule;
  }

  static Lists& local() noexcept {
    thread_local Lists lists;
    return lists;
  }
};

}  // namespace tulip::detail
