// pyco/detail/async_generator_base.hpp — the untyped half of async_generator.
//
// The frame's promise derives from asyncgen_base: everything that does not
// depend on the yielded or sent type lives here, so that the loop (the
// finaliser, shutdown_asyncgens) can close any generator without knowing it.
//
// Ownership: the frame is reference-counted (CPython keeps an async
// generator alive while anything refers to it). References: the
// async_generator object, each operation awaitable (anext/asend/athrow/
// aclose, as CPython's asend/athrow objects hold the generator), the
// finaliser's callback and then its task, shutdown_asyncgens. When the last
// goes, last_ref_gone() either hands the frame to a callback that makes a
// task that closes it (the finaliser hook: CPython's
// call_soon_threadsafe(create_task, agen.aclose())) or destroys it in place.
//
// State (CPython's names in brackets):
//   frame_    created -> started -> finished   [gi_frame_state]
//   running_  an operation is inside the body  [ag_running_async]; it is
//             set when an awaitable transfers in and cleared when the body
//             transfers back (co_yield or the end). An awaitable destroyed
//             while inside (its awaiting frame destroyed) leaves it set: the
//             body can never be resumed again, only destroyed.
//   closed_   aclose() was started               [ag_closed]
//   hooked_   first iteration done: linked into the running loop's
//             live_asyncgens() if there was one  [ag_hooks_inited]
// While linked, loop_ is that loop; the loop unlinks every generator when
// it closes, so linked() means loop_ is alive.
//
// Thread rule: loop thread only while linked; an unlinked generator that
// is not running may move to another thread.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include <pyco/detail/intrusive.hpp>
#include <pyco/detail/task_base.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>

namespace pyco::detail {

enum class ag_frame : std::uint8_t { created, started, finished };

class asyncgen_base : public coro_frame, public list_link {
public:
    asyncgen_base() = default;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) last_ref_gone();
    }
    static asyncgen_base* from_link(list_link* l) noexcept { return static_cast<asyncgen_base*>(l); }
    // "<async_generator object NAME at 0x...>", as repr() says it.
    std::string describe() const;

    // ---- the body's side (the typed promise's awaiters call these) ----
    std::coroutine_handle<> on_yield() noexcept {
        running_ = false;
        yielded_ = true;
        return continuation_ ? continuation_ : std::noop_coroutine();
    }
    std::coroutine_handle<> on_final() noexcept {
        running_ = false;
        frame_ = ag_frame::finished;
        unlink();
        return continuation_ ? continuation_ : std::noop_coroutine();
    }
    // Resumed at a co_yield: raise what athrow/aclose brought.
    void on_resume() {
        if (thrown_) [[unlikely]] {
            sent_ = nullptr;
            std::rethrow_exception(std::exchange(thrown_, nullptr));
        }
    }

    std::coroutine_handle<> self_;
    event_loop* loop_ = nullptr;
    std::exception_ptr thrown_;  // raise at the co_yield on resumption
    void* sent_ = nullptr;       // an S* for the co_yield's value; null: S{}
    void (*drop_value_)(asyncgen_base*) noexcept = nullptr;
    std::uint32_t refs_ = 1;  // the async_generator's
    ag_frame frame_ = ag_frame::created;
    bool running_ = false;
    bool closed_ = false;
    bool hooked_ = false;
    bool yielded_ = false;  // the latest resumption ended at a co_yield

    void first_iter() noexcept;

protected:
    ~asyncgen_base() = default;

private:
    void last_ref_gone() noexcept;
};

// A counted reference to a generator frame.
class asyncgen_ref {
public:
    asyncgen_ref() noexcept = default;
    explicit asyncgen_ref(asyncgen_base* g) noexcept : g_(g) {
        if (g_) g_->add_ref();
    }
    static asyncgen_ref adopt(asyncgen_base* g) noexcept {
        asyncgen_ref r;
        r.g_ = g;
        return r;
    }
    asyncgen_ref(const asyncgen_ref& o) noexcept : asyncgen_ref(o.g_) {}
    asyncgen_ref(asyncgen_ref&& o) noexcept : g_(std::exchange(o.g_, nullptr)) {}
    asyncgen_ref& operator=(asyncgen_ref o) noexcept {
        std::swap(g_, o.g_);
        return *this;
    }
    ~asyncgen_ref() {
        if (g_) g_->release();
    }
    asyncgen_base* get() const noexcept { return g_; }
    asyncgen_base* operator->() const noexcept { return g_; }

private:
    asyncgen_base* g_ = nullptr;
};

enum class ag_op : std::uint8_t { next, send, throw_, close };

// What `co_await op` uses. The operation object keeps the state; this
// only points at it, because GCC 12 copies an lvalue awaitable that is its
// own awaiter (`auto n = g.anext(); co_await n;`), and the object must stay
// one (it is one-shot and counted).
template <class Op>
struct op_awaiter {
    using pyco_awaitable_tag = void;
    Op* op;
    bool await_ready() { return op->ready(); }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
        return op->suspend(h);
    }
    decltype(auto) await_resume() { return op->resume(); }
};

// One anext/asend/athrow/aclose: a one-shot awaitable (CPython's
// async_generator_asend / async_generator_athrow objects). The checks run
// when it is first awaited, not when it is made, as in CPython.
class asyncgen_op {
public:
    using pyco_awaitable_tag = void;

    asyncgen_op(const asyncgen_op&) = delete;
    asyncgen_op& operator=(const asyncgen_op&) = delete;
    // Only before it is awaited.
    asyncgen_op(asyncgen_op&& o) noexcept
        : g_(std::exchange(o.g_, nullptr)),
          exc_(std::move(o.exc_)),
          kind_(o.kind_),
          state_(o.state_),
          immediate_(o.immediate_) {}
    asyncgen_op& operator=(asyncgen_op&&) = delete;

protected:
    bool ready() { return begin(); }
    template <class P>
    std::coroutine_handle<> suspend(std::coroutine_handle<P> h) noexcept {
        return enter(h, parent_of(h), nullptr);
    }

    asyncgen_op(asyncgen_base* g, ag_op kind, std::exception_ptr e = nullptr) noexcept
        : g_(g), exc_(std::move(e)), kind_(kind) {
        if (g_) g_->add_ref();
    }
    ~asyncgen_op();

    template <class P>
    static coro_frame* parent_of(std::coroutine_handle<P> h) noexcept {
        if constexpr (std::derived_from<P, coro_frame>) {
            return &h.promise();
        } else {
            return nullptr;
        }
    }
    // True: the result is known without running the body.
    bool begin();
    std::coroutine_handle<> enter(std::coroutine_handle<> h, coro_frame* parent, void* sent) noexcept;
    // After the body transferred back: true if it yielded (the value waits
    // in the promise); false if it finished (its exception is rethrown).
    bool finish_value();
    // aclose's ending: GeneratorExit or a normal end is success.
    void finish_close();

    asyncgen_base* g_;
    coro_frame* parent_ = nullptr;
    std::exception_ptr exc_;  // athrow's exception until sent; an immediate result's
    ag_op kind_;
    enum class st : std::uint8_t { init, iter, done } state_ = st::init;
    bool immediate_ = false;  // begin() decided the result
    bool inside_ = false;     // suspended with the body running for us

private:
    void leave() noexcept;
};

// aclose(): raise generator_exit at the suspended co_yield and wait for the
// body to finish. Yielding instead is
// runtime_error("async generator ignored GeneratorExit").
class [[nodiscard("aclose() does nothing until awaited: co_await it")]] asyncgen_close : public asyncgen_op {
public:
    explicit asyncgen_close(asyncgen_base* g) noexcept : asyncgen_op(g, ag_op::close) {}
    op_awaiter<asyncgen_close> operator co_await() & noexcept { return {this}; }
    op_awaiter<asyncgen_close> operator co_await() && noexcept { return {this}; }

private:
    friend struct op_awaiter<asyncgen_close>;
    void resume() { finish_close(); }
};

}  // namespace pyco::detail
