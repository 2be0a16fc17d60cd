// pyco/outcome.hpp — a value or the exception that came instead.
//
// What gather(return_exceptions, ...) gives for each awaitable: Python puts
// the result or the exception object in one list; C++ needs a type that can
// hold either. outcome<void> holds nothing or an exception. A cancelled
// child's entry holds its cancelled_error (with the cancel message), as
// CPython puts a CancelledError in the list.
//
// Thread rule: a plain value type, no loop involved.
#pragma once

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include <pyco/errors.hpp>

namespace pyco {

template <class T>
class outcome {
    static_assert(!std::is_same_v<std::remove_cv_t<T>, std::exception_ptr>,
                  "outcome<std::exception_ptr> could not tell a value from a failure");
    static_assert(!std::is_reference_v<T>, "outcome holds values");

public:
    using value_type = T;

    template <class U = T>
        requires std::is_constructible_v<T, U&&>
    outcome(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}  // NOLINT: implicit, like a result
    outcome(std::exception_ptr e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    // The value, or the exception rethrown.
    T& value() & {
        rethrow_if_failed();
        return std::get<0>(v_);
    }
    const T& value() const& {
        rethrow_if_failed();
        return std::get<0>(v_);
    }
    T&& value() && {
        rethrow_if_failed();
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    T* operator->() { return &value(); }

    // The exception, or null when there is a value.
    std::exception_ptr exception() const noexcept { return has_value() ? nullptr : std::get<1>(v_); }
    // True when the exception is an E (or derives from one).
    template <class E>
    bool holds_exception() const {
        return !has_value() && exception_group::matches<E>(std::get<1>(v_));
    }

private:
    void rethrow_if_failed() const {
        if (!has_value()) std::rethrow_exception(std::get<1>(v_));
    }
    std::variant<T, std::exception_ptr> v_;
};

template <>
class outcome<void> {
public:
    using value_type = void;

    outcome() noexcept = default;
    outcome(std::exception_ptr e) noexcept : e_(std::move(e)) {}  // NOLINT

    bool has_value() const noexcept { return !e_; }
    explicit operator bool() const noexcept { return has_value(); }
    void value() const {
        if (e_) std::rethrow_exception(e_);
    }
    std::exception_ptr exception() const noexcept { return e_; }
    template <class E>
    bool holds_exception() const {
        return e_ && exception_group::matches<E>(e_);
    }

private:
    std::exception_ptr e_;
};

}  // namespace pyco
