// pyco/async_generator.hpp — PEP 525 asynchronous generators.
//
//   pyco::async_generator<Y, S = void>
//     Y  the type yielded (an object type)
//     S  the type asend() delivers as the value of `co_yield`; anext()
//        delivers S{} (Python's None). void: the generator takes no sends.
//
//   async_generator<int> ticks(int n) {
//       for (int i = 0; i < n; ++i) {
//           co_await pyco::sleep(1s);
//           co_yield i;
//       }
//   }
//   while (auto x = co_await g.anext()) use(*x);      // async for x in g
//   co_await pyco::async_for(g, fn);                   // the same, fn(x)
//
// Operations, each an awaitable used once ("cannot reuse already awaited
// __anext__()/asend()" / "... aclose()/athrow()" on a second await):
//   anext()    -> std::optional<Y>; empty: StopAsyncIteration (finished)
//   asend(v)   -> std::optional<Y>; on a just-started generator type_error
//                 "can't send non-None value to a just-started async generator"
//   athrow(e)  -> std::optional<Y>; raises e at the co_yield. On a created
//                 generator e is raised at once and the body never runs; on
//                 a finished one nothing happens (empty), as in CPython 3.12.
//   aclose()   -> void; raises generator_exit at the co_yield. A body that
//                 yields again: runtime_error("async generator ignored
//                 GeneratorExit"). No-op on a created or finished generator.
//
// Invariants:
// - The body runs inside the consuming task, as an awaited coroutine does:
//   an operation transfers into the frame with the consumer as its
//   continuation (symmetric transfer), co_yield and the end transfer back.
//   A co_await in the body therefore suspends the consumer's task.
// - One operation at a time: starting one while another is inside the body
//   (from a second task, or from the body itself) is runtime_error
//   "anext(): asynchronous generator is already running" (athrow():/
//   aclose(): for those), and that awaitable is spent.
// - An exception escaping the body reaches the awaiting operation and the
//   generator is finished; later anext() gives empty.
// - The frame lives while the generator object or any operation awaitable
//   refers to it (CPython's references), so dropping the generator while a
//   consumer is inside it is safe.
//
// Cancellation: cancelling the consuming task while the body awaits raises
// cancelled_error inside the body, at its co_await (RAII and catch blocks
// run there). If the body lets it out, the generator is finished and the
// consumer's operation raises cancelled_error.
//
// Finalisation (CPython's asyncgen hooks, with pyco's lifetime rules):
// - Its first iteration links a generator into the running loop's
//   live_asyncgens() (sys.set_asyncgen_hooks' firstiter); finishing or
//   destruction unlinks it. shutdown_asyncgens(loop) acloses all of them
//   concurrently; pyco::run does that after cancelling leftover tasks.
// - A started, unfinished generator whose last reference goes while its
//   loop is running on this thread is not destroyed: the loop closes it, as
//   the finaliser hook does, with a task running aclose() that owns the
//   frame until then. As in CPython, that task is made by a callback on the
//   next iteration, so the close starts two iterations after the drop.
//   A failure there is reported as that task's
//   "Task exception was never retrieved".
// - Otherwise (no running loop, the loop closed, a created or finished or
//   already-closed generator) the frame is destroyed in place: destructors
//   of its locals run, but no code of the body does — no catch block, no
//   co_await. (CPython would instead schedule aclose on a loop that is not
//   running but not closed; pyco does not, because nothing guarantees that
//   loop will run again.)
//
// Thread rule: a generator is used on the thread of the loop that runs its
// consumer. Before its first iteration, or once unlinked and not running,
// it may move to another thread.
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <source_location>
#include <type_traits>
#include <utility>

#include <pyco/coroutine.hpp>
#include <pyco/detail/async_generator_base.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/generator.hpp>

namespace pyco {

template <class Y, class S = void>
class async_generator;

template <class T>
inline constexpr bool is_async_generator_v = false;
template <class Y, class S>
inline constexpr bool is_async_generator_v<async_generator<Y, S>> = true;

// loop.shutdown_asyncgens(): aclose every generator linked into the loop's
// live_asyncgens(), concurrently, and unlink them. A failure goes to
// loop.call_exception_handler: "an error occurred during closing of
// asynchronous generator <async_generator object ...>". Run it on `loop`.
coroutine<void> shutdown_asyncgens(event_loop& loop);

template <class Y, class S>
class async_generator {
    static_assert(std::is_object_v<Y> && !std::is_const_v<Y>,
                  "pyco::async_generator<Y>: Y must be a non-const object type");
    static_assert(std::is_void_v<S> || std::default_initializable<S>,
                  "pyco::async_generator<Y, S>: anext() delivers S{}, so S must be default-constructible");

public:
    using yield_type = Y;
    using send_type = S;
    class promise_type;
    using handle_type = std::coroutine_handle<promise_type>;

    // anext() and athrow(): the next value, or empty once finished.
    class [[nodiscard("co_await it")]] step_awaitable : public detail::asyncgen_op {
    public:
        detail::op_awaiter<step_awaitable> operator co_await() & noexcept { return {this}; }
        detail::op_awaiter<step_awaitable> operator co_await() && noexcept { return {this}; }

    protected:
        friend class async_generator;
        friend struct detail::op_awaiter<step_awaitable>;
        std::optional<Y> resume() {
            if (!finish_value()) return std::nullopt;
            return static_cast<promise_type*>(g_)->take();
        }
        step_awaitable(detail::asyncgen_base* g, detail::ag_op kind, std::exception_ptr e = nullptr) noexcept
            : asyncgen_op(g, kind, std::move(e)) {}
    };

    // asend(v): holds v until the body takes it.
    template <class SS>
    class [[nodiscard("co_await it")]] send_awaitable : public step_awaitable {
    public:
        detail::op_awaiter<send_awaitable> operator co_await() & noexcept { return {this}; }
        detail::op_awaiter<send_awaitable> operator co_await() && noexcept { return {this}; }

    private:
        friend class async_generator;
        friend struct detail::op_awaiter<send_awaitable>;
        template <class P>
        std::coroutine_handle<> suspend(std::coroutine_handle<P> h) noexcept {
            return this->enter(h, this->parent_of(h), &value_);
        }
        send_awaitable(detail::asyncgen_base* g, SS v)
            : step_awaitable(g, detail::ag_op::send), value_(std::move(v)) {}
        SS value_;
    };

    async_generator() noexcept = default;
    async_generator(async_generator&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    async_generator& operator=(async_generator&& o) noexcept {
        if (this != &o) {
            reset();
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }
    ~async_generator() { reset(); }

    // An empty async_generator behaves as a finished one.
    step_awaitable anext() noexcept { return step_awaitable(p_, detail::ag_op::next); }

    template <class SS = S>
        requires(!std::is_void_v<SS>)
    send_awaitable<SS> asend(std::type_identity_t<SS> v) {
        return send_awaitable<SS>(p_, std::move(v));
    }

    template <class E>
        requires(!std::same_as<std::remove_cvref_t<E>, std::exception_ptr>)
    step_awaitable athrow(E&& e) {
        return athrow(std::make_exception_ptr(std::forward<E>(e)));
    }
    step_awaitable athrow(std::exception_ptr e) {
        if (!e) throw type_error("athrow() needs an exception");
        return step_awaitable(p_, detail::ag_op::throw_, std::move(e));
    }

    detail::asyncgen_close aclose() noexcept { return detail::asyncgen_close(p_); }

    // inspect.getasyncgenstate; `running` is ag_running_async: an operation
    // is inside the body (which may itself be suspended at a co_await).
    gen_state state() const noexcept {
        if (!p_ || p_->frame_ == detail::ag_frame::finished) return gen_state::closed;
        if (p_->running_) return gen_state::running;
        if (p_->frame_ == detail::ag_frame::created) return gen_state::created;
        return gen_state::suspended;
    }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    explicit async_generator(promise_type* p) noexcept : p_(p) {}
    void reset() noexcept {
        if (p_) std::exchange(p_, nullptr)->release();
    }
    promise_type* p_ = nullptr;
};

template <class Y, class S>
class async_generator<Y, S>::promise_type : public detail::asyncgen_base {
    struct yield_awaiter {
        promise_type* p;
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept { return p->on_yield(); }
        S await_resume() const {
            p->on_resume();
            if constexpr (!std::is_void_v<S>) {
                if (void* v = std::exchange(p->sent_, nullptr)) return std::move(*static_cast<S*>(v));
                return S{};
            }
        }
    };
    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept { return h.promise().on_final(); }
        void await_resume() const noexcept {}
    };

public:
    // The default argument is evaluated inside the coroutine: it names it.
    explicit promise_type(std::source_location loc = std::source_location::current()) noexcept {
        created_ = loc;
        drop_value_ = &drop_value;
    }
    async_generator get_return_object() noexcept {
        self_ = handle_type::from_promise(*this);
        return async_generator(this);
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }
    void return_void() const noexcept {}

    template <class U>
        requires std::constructible_from<Y, U&&>
    yield_awaiter yield_value(U&& v) {
        value_.emplace(std::forward<U>(v));
        return yield_awaiter{this};
    }

    // As in coroutine<T>: remember where it waits; adapt foreign awaiters.
    template <class A>
    decltype(auto) await_transform(A&& a, std::source_location loc = std::source_location::current()) {
        waiting_at_ = loc;
        waited_somewhere_ = true;
        return detail::adapt_awaitable(std::forward<A>(a), this);
    }

    std::optional<Y> take() {
        std::optional<Y> r(std::move(value_));
        value_.reset();
        return r;
    }

private:
    static void drop_value(detail::asyncgen_base* b) noexcept { static_cast<promise_type*>(b)->value_.reset(); }
    std::optional<Y> value_;
};

// `async for x in ag: fn(x)`: awaits ag.anext() until it is empty and
// calls fn with each value (as an rvalue when fn takes one). fn's result:
// void: go on; bool: false breaks out (the generator stays suspended, as
// after `break`, and is closed when dropped); an awaitable (a coroutine,
// say) is awaited, and a bool it gives counts the same way.
// ag and fn are held by reference: await the result in the statement that
// makes it. On GCC 12 name a capturing lambda in an earlier statement.
template <class AG, class F>
    requires requires(AG& ag) { ag.anext(); }
coroutine<void> async_for(AG&& ag, F&& fn) {
    while (auto x = co_await ag.anext()) {
        using V = typename std::remove_reference_t<decltype(x)>::value_type;
        auto call = [&]() -> decltype(auto) {
            if constexpr (std::is_invocable_v<F&, V&&>) {
                return std::invoke(fn, std::move(*x));
            } else {
                return std::invoke(fn, *x);
            }
        };
        using R = decltype(call());
        if constexpr (detail::awaitable<R>) {
            if constexpr (std::is_same_v<detail::await_result_t<R>, bool>) {
                if (!co_await call()) break;
            } else {
                co_await call();
            }
        } else if constexpr (std::is_same_v<R, bool>) {
            if (!call()) break;
        } else {
            call();
        }
    }
}

}  // namespace pyco
