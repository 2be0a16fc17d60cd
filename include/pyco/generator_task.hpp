// pyco/generator_task.hpp — generator-based coroutines (the pre-PEP-492
// style of @asyncio.coroutine and Tornado's gen.coroutine).
//
// A generator that yields awaitables is driven as a coroutine: each yielded
// awaitable is awaited, its result sent back in as the value of `co_yield`
// (next() when it gives void), its failure thrown in at the `co_yield` with
// throw_(). The generator's return value is the coroutine's. Delegation
// with `co_yield pyco::from(sub)` works as `yield from` did for these.
//
// Cancellation: a cancelled task raises cancelled_error at the awaitable it
// waits on; that is thrown into the generator, which may catch it as any
// failure. Thread rule: that of the task running it.
#pragma once

#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <pyco/coroutine.hpp>
#include <pyco/generator.hpp>
#include <pyco/task.hpp>

namespace pyco {

// The generator as a coroutine: co_await it, or make it a task.
template <class Aw, class S, class R>
coroutine<R> drive(generator<Aw, S, R> gen) {
    using result_t = detail::await_result_t<Aw&>;
    static_assert(std::is_void_v<S> ? std::is_void_v<result_t> : std::is_convertible_v<result_t, S>,
                  "pyco::drive: the generator's send type must take what its awaitables give "
                  "(void for awaitables that give nothing)");
    std::optional<Aw> awaitable = gen.next();
    while (awaitable) {
        std::exception_ptr failure;
        std::optional<std::conditional_t<std::is_void_v<S>, int, S>> result;
        try {
            if constexpr (std::is_void_v<S>) {
                co_await *awaitable;
                result.emplace(0);
            } else {
                result.emplace(co_await *awaitable);
            }
        } catch (...) {
            failure = std::current_exception();
        }
        // (No co_await in a handler: the generator hears of it here.)
        awaitable.reset();
        if (failure) {
            awaitable = gen.throw_(failure);
        } else if constexpr (std::is_void_v<S>) {
            awaitable = gen.next();
        } else {
            awaitable = gen.send(std::move(*result));
        }
    }
    if constexpr (!std::is_void_v<R>) co_return std::move(gen.return_value());
}

template <class Aw, class S, class R>
task<R> create_task(event_loop& loop, generator<Aw, S, R> gen, std::string name = {}) {
    return create_task(loop, drive(std::move(gen)), std::move(name));
}

template <class Aw, class S, class R>
task<R> create_task(generator<Aw, S, R> gen, std::string name = {}) {
    return create_task(get_running_loop(), drive(std::move(gen)), std::move(name));
}

}  // namespace pyco
