// pyco/detail/unique_fn.hpp — a move-only `void()` callable.
//
// std::function needs copyable targets, and what crosses threads into a
// loop is often move-only (a coroutine, a promise). C++23's
// move_only_function would do; pyco stays C++20.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace pyco::detail {

class unique_fn {
public:
    unique_fn() = default;
    template <class F>
        requires(!std::same_as<std::remove_cvref_t<F>, unique_fn> && std::is_invocable_v<F&>)
    unique_fn(F&& f) : p_(std::make_unique<model<std::decay_t<F>>>(std::forward<F>(f))) {}

    void operator()() { p_->call(); }
    explicit operator bool() const noexcept { return static_cast<bool>(p_); }

private:
    struct concept_t {
        virtual ~concept_t() = default;
        virtual void call() = 0;
    };
    template <class F>
    struct model final : concept_t {
        explicit model(F&& f) : f_(std::move(f)) {}
        explicit model(const F& f) : f_(f) {}
        void call() override { f_(); }
        F f_;
    };
    std::unique_ptr<concept_t> p_;
};

}  // namespace pyco::detail
