// pyco/async_with.hpp — `async with cm as x: body` (PEP 492).
//
//   co_await pyco::async_with(cm, body);
//
// cm.aenter() is awaited and its value passed to body (body takes no
// argument when aenter gives void); body's result is awaited if it is
// awaitable (a coroutine, say); then cm.aexit(e) is awaited with the
// exception that escaped body, or null. A true result from aexit
// suppresses that exception, as a true __aexit__ does; void counts as
// false. An exception from aenter propagates and aexit is not called.
//
// The result: void for a void body; otherwise std::optional of the body's
// value, empty when aexit suppressed an exception.
//
// cm and body are held by reference: await the result in the same
// statement that makes it. On GCC 12, name a capturing lambda in an earlier
// statement, never inside the co_await expression (a GCC bug destroys it
// twice):
//   auto body = [&](auto& x) -> pyco::coroutine<void> { ... };
//   co_await pyco::async_with(cm, body);
// The everyday context managers also have a scoped form that needs no body
// at all (task_group, timeout: enter()/exit(); lock, semaphore, condition:
// `auto held = co_await x.scoped();`): see their headers.
//
// Detecting the GCC 12 bug. The object destroyed twice is a bitwise copy
// GCC makes of the closure in the caller's frame; both destructor calls are
// the closure's own, compiler-written, and run after async_with is over, on
// objects it never sees — async_with only ever sees the genuine closure,
// destroyed once. So no canary of pyco's can observe it at run time (a
// canary would have to be one of the lambda's captures). It is refused at
// compile time instead: on GCC 12 and older, a body passed as an rvalue
// whose type is not trivially destructible and not assignable (a lambda
// that captures by value something with a destructor — exactly what GCC
// duplicates; `[&]` lambdas pass) is a static_assert. An rvalue body could
// only be awaited in the same statement anyway, since it is held by
// reference; std::move(named) is refused too: pass the name.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include <pyco/coroutine.hpp>

namespace pyco {

namespace detail {

template <class T, bool = awaitable<T>>
struct awaited_value {
    using type = T;
};
template <class T>
struct awaited_value<T, true> {
    using type = await_result_t<T>;
};

template <class CM>
using enter_value_t = typename awaited_value<decltype(std::declval<CM&>().aenter())>::type;

template <class CM, class Body>
struct with_types {
    using x_type = enter_value_t<CM>;
    using call_t = std::conditional_t<std::is_void_v<x_type>, std::invoke_result<Body&>,
                                      std::invoke_result<Body&, std::add_lvalue_reference_t<x_type>>>;
    using value_t = typename awaited_value<typename call_t::type>::type;
    using result_t = std::conditional_t<std::is_void_v<value_t>, void, std::optional<value_t>>;
};

// Holds aenter's value: an object, a reference (as pointer), or nothing.
template <class T>
struct value_slot {
    std::optional<T> v;
    template <class U>
    void set(U&& u) {
        v.emplace(std::forward<U>(u));
    }
    T& get() { return *v; }
};
template <class T>
struct value_slot<T&> {
    T* p = nullptr;
    void set(T& u) { p = &u; }
    T& get() { return *p; }
};
template <>
struct value_slot<void> {};

template <class A>
auto await_or_value(A&& a) -> coroutine<typename awaited_value<A>::type> {
    if constexpr (awaitable<A>) {
        co_return co_await std::forward<A>(a);
    } else {
        co_return std::forward<A>(a);
    }
}

// As await_or_value, for an aenter that gives a reference: a coroutine
// cannot return T&, so the address travels instead.
template <class A>
auto await_or_pointer(A&& a) -> coroutine<std::remove_reference_t<typename awaited_value<A>::type>*> {
    if constexpr (awaitable<A>) {
        co_return std::addressof(co_await std::forward<A>(a));
    } else {
        co_return std::addressof(a);
    }
}

// aexit's answer as a bool.
template <class CM>
coroutine<bool> call_aexit(CM& cm, std::exception_ptr e) {
    using R = decltype(cm.aexit(e));
    if constexpr (awaitable<R>) {
        if constexpr (std::is_void_v<await_result_t<R>>) {
            co_await cm.aexit(e);
            co_return false;
        } else {
            co_return static_cast<bool>(co_await cm.aexit(e));
        }
    } else if constexpr (std::is_void_v<R>) {
        cm.aexit(e);
        co_return false;
    } else {
        co_return static_cast<bool>(cm.aexit(e));
    }
}

// True for a callable that, passed as an rvalue inside a co_await
// expression, GCC 12 destroys twice (see the top of this file).
template <class F>
inline constexpr bool gcc12_destroys_twice_v =
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ <= 12
    !std::is_lvalue_reference_v<F> && !std::is_trivially_destructible_v<std::remove_cvref_t<F>> &&
    !std::is_copy_assignable_v<std::remove_cvref_t<F>>;
#else
    false;
#endif

}  // namespace detail

template <class CM, class Body>
auto async_with(CM&& cm, Body&& body) -> coroutine<typename detail::with_types<CM, Body>::result_t> {
    static_assert(!detail::gcc12_destroys_twice_v<Body>,
                  "GCC 12 destroys a lambda that captures by value twice when it is made inside a co_await "
                  "expression: name it first (auto body = [...](...) {...}; co_await pyco::async_with(cm, body);) "
                  "or use the scoped form (enter()/exit(), scoped())");
    using types = detail::with_types<CM, Body>;
    using value_t = typename types::value_t;
    // async with: aenter first; its failure skips aexit.
    using x_t = typename types::x_type;
    detail::value_slot<x_t> x;
    if constexpr (std::is_void_v<decltype(cm.aenter())>) {
        cm.aenter();  // a plain void aenter: nothing to await
    } else if constexpr (std::is_void_v<x_t>) {
        co_await detail::await_or_value(cm.aenter());
    } else if constexpr (std::is_lvalue_reference_v<x_t>) {
        x.set(*co_await detail::await_or_pointer(cm.aenter()));
    } else {
        x.set(co_await detail::await_or_value(cm.aenter()));
    }
    auto call = [&]() -> decltype(auto) {
        if constexpr (std::is_void_v<x_t>) {
            return std::invoke(body);
        } else {
            return std::invoke(body, x.get());
        }
    };
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<value_t>, int, std::optional<value_t>> value{};
    try {
        if constexpr (std::is_void_v<value_t>) {
            if constexpr (std::is_void_v<decltype(call())>) {
                call();  // a plain void body: nothing to await
            } else {
                co_await detail::await_or_value(call());
            }
        } else {
            value.emplace(co_await detail::await_or_value(call()));
        }
    } catch (...) {
        error = std::current_exception();
    }
    // (No co_await inside a handler in C++: aexit runs after it.)
    const bool suppress = co_await detail::call_aexit(cm, error);
    if (error && !suppress) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<value_t>) {
        if (error) co_return std::nullopt;
        co_return std::move(value);
    }
}

}  // namespace pyco
