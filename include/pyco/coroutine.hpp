// pyco/coroutine.hpp — `async def`: pyco::coroutine<T>.
//
// A coroutine is lazy: nothing runs until it is awaited or made a task.
// Awaiting one runs it inline, as awaiting a coroutine does in Python: the
// awaiter transfers control into it and it transfers back when it ends (by
// symmetric transfer, so a long loop of coroutines that finish at once does
// not grow the stack). A coroutine can be awaited once. Awaiting it again
// is, as in CPython: runtime_error("cannot reuse already awaited
// coroutine") once it finished; runtime_error("coroutine is being awaited
// already") while it is suspended, awaited by someone else; and
// value_error("coroutine already executing") from inside it (a coroutine
// awaiting itself, or one of those awaiting it, in the running chain).
//
// Awaiting, the rule (detail::adapt_awaitable, every pyco coroutine's and
// async generator's await_transform). Inside a task, a coroutine awaits
// whatever a C++ coroutine can, and it behaves as C++ users expect:
//   - pyco's own awaitables (coroutine, future, task, sleep, ...; they carry
//     pyco_awaitable_tag) suspend the task through its step protocol
//     (detail/task_base.hpp). This is the hot path: nothing is added to it.
//   - A type of the user's whose operator co_await (member or free) gives
//     one of pyco's awaiters (a coroutine's, a future's: tagged too) is
//     awaited exactly as that awaiter. One whose operator co_await gives
//     one of pyco's awaitables itself — a coroutine made on the spot,
//     `return run();` — has it kept alive for the await and awaited.
//     (Return the coroutine, not `run().operator co_await()`: that awaiter
//     would outlive the coroutine it refers to.)
//   - Any other awaiter, whatever its await_suspend returns (void, bool, a
//     handle to go to), is given a handle that, when resumed (from any
//     thread), queues a step of the task that resumes the coroutine that
//     awaited it — so the task still runs only from the loop, and a
//     cancellation requested meanwhile is raised when it resumes. What the
//     awaiter runs before that (a pyco coroutine it wraps, a coroutine type
//     of the user's own that awaits pyco's sleep) runs inside the task and
//     may suspend it at points of its own; those do not confuse the task
//     (see foreign_resume_ in detail/task_base.hpp). The task's stack
//     (get_stack) ends at such an awaiter: pyco cannot see past it.
//
// A coroutine destroyed without ever being awaited (or made a task) says so
// on stderr, always, as CPython's RuntimeWarning does: "RuntimeWarning:
// coroutine 'f' was never awaited"; debug mode (loop.set_debug(true) or
// PYCO_DEBUG=1) adds where the coroutine is defined. The class is
// [[nodiscard]], so the usual cause — a call whose co_await was forgotten,
// `f();` — is a compiler warning before it is a run-time one.
//
// Destruction. A coroutine object destroyed while its frame is suspended
// destroys the frame, and so the coroutine that frame awaits, and so on
// down: pyco does that from the bottom of the chain up, in a loop
// (detail::destroy_frame), so that a chain of any depth — a task abandoned
// by a closing loop at the bottom of 100,000 awaits — is torn down in
// constant stack, in the order recursion would give. To find each frame's
// owner, a frame points back at the handle in its coroutine object, which
// moves keep up to date. A coroutine awaited through a reference that is
// suspended in a chain being destroyed goes with the chain (it could never
// be resumed: whoever awaited it is gone), and its object is left empty.
//
// Thread rule: a coroutine runs on the thread of the task that runs it.
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <optional>
#include <source_location>
#include <type_traits>
#include <utility>

#include <pyco/detail/task_base.hpp>
#include <pyco/errors.hpp>

namespace pyco {

template <class T = void>
class coroutine;

namespace detail {

struct coroutine_access;

// pyco's own awaitables, and the awaiters their operator co_await gives,
// carry this tag: they know the task protocol.
template <class A>
concept pyco_awaitable = requires { typename std::remove_cvref_t<A>::pyco_awaitable_tag; };

template <class A>
decltype(auto) get_awaiter(A&& a) {
    if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
        return std::forward<A>(a).operator co_await();
    } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
        return operator co_await(std::forward<A>(a));
    } else {
        return std::forward<A>(a);
    }
}

template <class A>
concept has_awaiter = requires(A&& a) { get_awaiter(std::forward<A>(a)).await_ready(); };

// What operator co_await gives, as stored (a reference if it gives one).
template <class A>
using awaiter_of_t = decltype(get_awaiter(std::declval<A>()));

// A user's operator co_await that gives one of pyco's awaitables, not an
// awaiter (see the header comment).
template <class A>
concept gives_pyco_awaitable = !has_awaiter<A> && pyco_awaitable<awaiter_of_t<A>> && has_awaiter<awaiter_of_t<A>>;

template <class A>
concept awaitable = has_awaiter<A> || gives_pyco_awaitable<A>;

template <class A>
struct await_result {
    using type = decltype(get_awaiter(std::declval<A>()).await_resume());
};
template <gives_pyco_awaitable A>
struct await_result<A> {
    using type = typename await_result<awaiter_of_t<A>>::type;
};
// The type `co_await a` gives.
template <class A>
using await_result_t = typename await_result<A>::type;

// Keeps the pyco awaitable a user's operator co_await gave for the await,
// and awaits it as pyco's own (with the awaiting coroutine's handle).
template <class A>
class held_awaitable {
    using object_t = awaiter_of_t<A>;
    using awaiter_t = std::remove_cvref_t<awaiter_of_t<object_t>>;

public:
    explicit held_awaitable(A&& a)
        : a_(std::forward<A>(a)),
          object_(get_awaiter(std::forward<A>(a_))),
          inner_(get_awaiter(std::forward<object_t>(object_))) {}

    bool await_ready() { return inner_.await_ready(); }
    template <class P>
    decltype(auto) await_suspend(std::coroutine_handle<P> h) {
        return inner_.await_suspend(h);
    }
    decltype(auto) await_resume() { return inner_.await_resume(); }

private:
    A a_;  // the awaitable itself (a reference for lvalues)
    object_t object_;
    awaiter_t inner_;
};

// Wraps an awaiter that knows nothing of tasks (see the header comment):
// it is handed the task's resumer, which goes on at this await's coroutine.
template <class A>
class foreign_awaiter {
    using awaiter_t = std::remove_cvref_t<awaiter_of_t<A>>;
    static_assert(has_awaiter<A>,
                  "co_await needs an awaitable: a type with await_ready, await_suspend and await_resume, or whose "
                  "operator co_await gives one");

public:
    explicit foreign_awaiter(A&& a) : a_(std::forward<A>(a)), inner_(get_awaiter(std::forward<A>(a_))) {}

    bool await_ready() { return inner_.await_ready(); }

    template <class P>
    auto await_suspend(std::coroutine_handle<P> h) {
        task_ = task_base::current();
        if (!task_) return inner_.await_suspend(std::coroutine_handle<>(h));
        std::coroutine_handle<> resumer = task_->wait_foreign(h, shadowed_);
        try {
            return inner_.await_suspend(resumer);
        } catch (...) {
            task_->end_foreign(shadowed_);  // resumed with the error: no await_resume
            throw;
        }
    }

    decltype(auto) await_resume() {
        if (task_) {
            task_->end_foreign(shadowed_);
            task_->raise_throw_in();
        }
        return inner_.await_resume();
    }

private:
    A a_;  // the awaitable itself (a reference for lvalues)
    awaiter_t inner_;
    task_base* task_ = nullptr;
    std::coroutine_handle<> shadowed_;  // the enclosing foreign await's, if any
};

void warn_never_awaited(const std::source_location& where) noexcept;

// Why `c`, already awaited, cannot be awaited by `awaiting` (the running
// coroutine's frame, or null when unknown). `done`: c finished.
[[noreturn]] void refuse_await(const coro_frame& c, bool done, const coro_frame* awaiting);

// A coroutine object's handle: typed for the object, a plain
// std::coroutine_handle<> underneath, at which its frame points back
// (coro_frame::owner_) so that destroy_frame can empty it.
template <class P>
struct owning_handle : std::coroutine_handle<> {
    owning_handle() noexcept = default;
    owning_handle(std::coroutine_handle<P> h) noexcept : std::coroutine_handle<>(h) {}
    using std::coroutine_handle<>::operator=;
    std::coroutine_handle<P> typed() const noexcept { return std::coroutine_handle<P>::from_address(address()); }
    operator std::coroutine_handle<P>() const noexcept { return typed(); }
    P& promise() const noexcept { return typed().promise(); }
};

}  // namespace detail

template <class T>
class [[nodiscard("a coroutine does nothing until it is awaited: co_await it, or make it a task")]] coroutine {
public:
    class promise_type;
    using handle_type = std::coroutine_handle<promise_type>;
    using value_type = T;
    using pyco_awaitable_tag = void;

    coroutine() noexcept = default;
    coroutine(coroutine&& o) noexcept : h_(std::exchange(o.h_, nullptr)) { own(); }
    coroutine& operator=(coroutine&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
            own();
        }
        return *this;
    }
    ~coroutine() { reset(); }

    bool done() const noexcept { return h_ && h_.done(); }
    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

    class awaiter {
    public:
        using pyco_awaitable_tag = void;
        explicit awaiter(handle_type h) noexcept : h_(h) {}
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
            h_.promise().continuation_ = parent;
            if constexpr (std::derived_from<P, detail::coro_frame>) {
                parent_ = &parent.promise();
                parent_->child_ = &h_.promise();
            }
            return h_;
        }
        T await_resume() {
            if (parent_) parent_->child_ = nullptr;
            auto& p = h_.promise();
            if (p.exception_) std::rethrow_exception(p.exception_);
            if constexpr (!std::is_void_v<T>) return std::move(*p.result_);
        }

    private:
        handle_type h_;
        detail::coro_frame* parent_ = nullptr;
    };

    awaiter operator co_await() & { return awaiter(start()); }
    awaiter operator co_await() && { return awaiter(start()); }

private:
    // The frame points back at the handle that owns it.
    void own() noexcept {
        if (h_) h_.promise().owner_ = &h_;
    }
    handle_type start() {
        if (!h_) throw runtime_error("cannot await an empty coroutine");
        auto& p = h_.promise();
        if (p.started_) [[unlikely]] detail::refuse_await(p, h_.done(), nullptr);
        p.started_ = true;
        return h_;
    }
    void reset() noexcept {
        if (!h_) return;
        if (!h_.promise().started_ && !h_.promise().unawaited_ok_) {
            detail::warn_never_awaited(h_.promise().created_);
        }
        auto& p = h_.promise();
        p.owner_ = nullptr;
        // Not destroy(): the chain this frame awaits goes first, in a loop.
        detail::destroy_frame(std::exchange(h_, nullptr), &p);
    }

    explicit coroutine(handle_type h) noexcept : h_(h) { own(); }
    detail::owning_handle<promise_type> h_;

    friend struct detail::coroutine_access;
};

namespace detail {

struct coroutine_access {
    // Hand a coroutine's frame to a task: the coroutine object lets go.
    template <class T>
    static typename coroutine<T>::handle_type take(coroutine<T>& c) {
        auto h = c.start();
        h.promise().owner_ = nullptr;
        c.h_ = nullptr;
        return h;
    }
    // A coroutine the library made for the user, who may rightly never
    // await it (each of as_completed's: CPython makes them one at a time,
    // so one never asked for never exists): it goes without a warning.
    template <class T>
    static void unawaited_ok(coroutine<T>& c) noexcept {
        if (c.h_) c.h_.promise().unawaited_ok_ = true;
    }
    // Before `awaiting` awaits c: refuse with the message that says why.
    template <class A>
    static void check_await(const A&, const coro_frame*) noexcept {}
    template <class T>
    static void check_await(const coroutine<T>& c, const coro_frame* awaiting) {
        if (c.h_ && c.h_.promise().started_) [[unlikely]] {
            refuse_await(c.h_.promise(), c.h_.done(), awaiting);
        }
    }
};

// A pyco coroutine's (or async generator's) await_transform: the rule at
// the top of this file. `awaiting` is the frame that awaits.
template <class A>
decltype(auto) adapt_awaitable(A&& a, const coro_frame* awaiting) {
    if constexpr (pyco_awaitable<A>) {
        coroutine_access::check_await(a, awaiting);
        return std::forward<A>(a);
    } else if constexpr (has_awaiter<A> && pyco_awaitable<awaiter_of_t<A>>) {
        return std::forward<A>(a);  // its operator co_await gives pyco's awaiter
    } else if constexpr (gives_pyco_awaitable<A>) {
        return held_awaitable<A>(std::forward<A>(a));
    } else {
        return foreign_awaiter<A>(std::forward<A>(a));
    }
}

template <class T>
struct coro_result {
    std::optional<T> result_;
    template <class U>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& v) {
        result_.emplace(std::forward<U>(v));
    }
};
template <>
struct coro_result<void> {
    void return_void() noexcept {}
};

}  // namespace detail

template <class T>
class coroutine<T>::promise_type : public detail::coro_frame, public detail::coro_result<T> {
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            auto c = h.promise().continuation_;
            return c ? c : std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

public:
    // The default argument is evaluated inside the coroutine: it names it.
    explicit promise_type(std::source_location loc = std::source_location::current()) noexcept {
        created_ = loc;
    }
    coroutine get_return_object() noexcept { return coroutine(handle_type::from_promise(*this)); }
    bool unawaited_ok_ = false;  // see coroutine_access::unawaited_ok
    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    // Every co_await passes here: remember where, for task stacks.
    template <class A>
    decltype(auto) await_transform(A&& a, std::source_location loc = std::source_location::current()) {
        waiting_at_ = loc;
        waited_somewhere_ = true;
        return detail::adapt_awaitable(std::forward<A>(a), this);
    }
};

template <class T>
inline constexpr bool is_coroutine_v = false;
template <class T>
inline constexpr bool is_coroutine_v<coroutine<T>> = true;

}  // namespace pyco
