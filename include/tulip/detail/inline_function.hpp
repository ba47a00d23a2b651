// InlineFunction: a move-only, type-erased callable with small-buffer storage.
//
// This is what every callback in tulip is stored in. Callables whose size fits
// `InlineSize` bytes (and that are nothrow-movable) live inside the object, so
// scheduling a typical lambda (a few captured pointers) allocates nothing; larger
// callables fall back to one heap allocation. Unlike std::function it accepts
// move-only callables and never copies.
//
// Thread-safety: none; an InlineFunction is a value, owned by one thread at a time.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace tulip::detail {

template <class Signature, std::size_t InlineSize = 48>
class InlineFunction;

/// Callables that can be empty: pointers (to functions), std::function and
/// InlineFunction. Lambdas and other function objects are never empty.
template <class D>
concept NullableCallable = std::is_pointer_v<D> || std::is_member_pointer_v<D> ||
    requires(const D& f) {
  f == nullptr;
};

/// True if `f` is an empty callable (a null pointer, an empty std::function or
/// InlineFunction). Scheduling one is refused at once: calling it later would
/// crash far from the mistake (asyncio raises TypeError at the call too).
template <class F>
constexpr bool is_empty_callable(const F& f) noexcept {
  if constexpr (NullableCallable<std::decay_t<F>>) {
    return f == nullptr;
  } else {
    (void)f;
    return false;
  }
}

template <class R, class... Args, std::size_t InlineSize>
class InlineFunction<R(Args...), InlineSize> {
 public:
  InlineFunction() noexcept = default;
  InlineFunction(std::nullptr_t) noexcept {}

  template <class F, class D = std::decay_t<F>>
  requires(!std::is_same_v<D, InlineFunction> && std::is_invocable_r_v<R, D&, Args...>)
      InlineFunction(F&& f) {  // NOLINT(google-explicit-constructor): callables convert implicitly.
    emplace<D>(std::forward<F>(f));
  }

  InlineFunction(InlineFunction&& other) noexcept { take(other); }

  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }

  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;

  ~InlineFunction() { reset(); }

  explicit operator bool() const noexcept { return invoke_ != nullptr; }
  friend bool operator==(const InlineFunction& f, std::nullptr_t) noexcept {
    return f.invoke_ == nullptr;
  }

  /// Replaces the stored callable with `f`, constructed in place (no temporary).
  template <class F, class D = std::decay_t<F>>
  requires std::is_invocable_r_v<R, D&, Args...>
  void assign(F&& f) {
    reset();
    if constexpr (std::is_same_v<D, InlineFunction>) {
      static_assert(!std::is_lvalue_reference_v<F>, "assign() takes an InlineFunction by move");
      take(f);
    } else {
      emplace<D>(std::forward<F>(f));
    }
  }

  /// Calls the stored callable. Calling an empty InlineFunction is undefined.
  R operator()(Args... args) { return invoke_(storage_, std::forward<Args>(args)...); }

  /// Destroys the stored callable (and what it captured) and leaves this empty.
  void reset() noexcept {
    if (invoke_ == nullptr) return;
    // Clear first: the callable's destructor may release objects whose own
    // destructors look at this InlineFunction again.
    auto* manage = manage_;
    invoke_ = nullptr;
    manage_ = nullptr;
    if (manage != nullptr) manage(Op::kDestroy, storage_, nullptr);
  }

 private:
  enum class Op { kDestroy, kRelocate };
  using Invoker = R (*)(void*, Args&&...);
  // One function handles destroy and move, so an object carries two pointers only.
  // For trivially copyable inline callables it is null: moving is a memcpy and
  // destroying is nothing, which keeps the hot scheduling path short.
  using Manager = void (*)(Op, void* self, void* destination) noexcept;

  template <class D>
  static constexpr bool kStoredInline =
      sizeof(D) <= InlineSize &&
      alignof(D) <= alignof(std::max_align_t) && std::is_nothrow_move_constructible_v<D>;

  template <class D, class F>
  void emplace(F&& f) {
    // An empty source (null pointer, empty std::function) makes an empty
    // InlineFunction, so that emptiness is seen where the callback is scheduled.
    if (is_empty_callable(f)) return;
    if constexpr (kStoredInline<D>) {
      ::new (static_cast<void*>(storage_)) D(std::forward<F>(f));
      invoke_ = [](void* s, Args&&... args) -> R {
        return (*std::launder(reinterpret_cast<D*>(s)))(std::forward<Args>(args)...);
      };
      if constexpr (std::is_trivially_copyable_v<D> && std::is_trivially_destructible_v<D>) {
        manage_ = nullptr;
      } else {
        manage_ = [](Op op, void* self, void* destination) noexcept {
          D* object = std::launder(reinterpret_cast<D*>(self));
          if (op == Op::kRelocate) ::new (destination) D(std::move(*object));
          object->~D();
        };
      }
    } else {
      D* heap = new D(std::forward<F>(f));
      std::memcpy(storage_, &heap, sizeof(heap));
      invoke_ = [](void* s, Args&&... args) -> R {
        D* object;
        std::memcpy(&object, s, sizeof(object));
        return (*object)(std::forward<Args>(args)...);
      };
      manage_ = [](Op op, void* self, void* destination) noexcept {
        if (op == Op::kRelocate) {
          std::memcpy(destination, self, sizeof(D*));
        } else {
          D* object;
          std::memcpy(&object, self, sizeof(object));
          delete object;
        }
      };
    }
  }

  void take(InlineFunction& other) noexcept {
    if (other.invoke_ == nullptr) return;
    if (other.manage_ == nullptr) {
      // Copies the whole buffer, of which a small callable initialised only
      // part: the rest is never read. GCC cannot see that the empty case
      // returned above.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
      std::memcpy(storage_, other.storage_, InlineSize);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    } else {
      other.manage_(Op::kRelocate, other.storage_, storage_);
    }
    invoke_ = other.invoke_;
    manage_ = other.manage_;
    other.invoke_ = nullptr;
    other.manage_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char storage_[InlineSize];
  Invoker invoke_ = nullptr;
  Manager manage_ = nullptr;
};

}  // namespace tulip::detail
