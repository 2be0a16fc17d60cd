// pyco/gather.hpp — asyncio.gather: pyco::gather.
//
//   auto [a, b] = co_await pyco::gather(f(), g());      // std::tuple
//   std::vector<int> v = co_await pyco::gather(coros);  // a range -> vector
//   auto r = co_await pyco::gather(pyco::return_exceptions, f(), g());
//                                 // std::tuple<outcome<A>, outcome<B>>
//
// Arguments: coroutines (as rvalues: each becomes a task, in argument
// order), tasks, futures, any_task, other gather_futures, or any awaitable
// (awaited by a task of its own). A void result is std::monostate in the
// tuple or vector (Python's None); with return_exceptions it is
// outcome<void>. All children share one loop, else value_error.
//
// gather() returns a gather_future at once (the children already
// scheduled); await it, or inspect it like a future.
//
// Failure: without return_exceptions the first failure (an exception, or
// a child's cancellation as its cancelled_error) becomes the gather's, and
// the other children keep running. With it, each failure takes its place
// in the results.
//
// Cancellation: cancelling the gather — or the task awaiting it — cancels
// every child not yet done; the gather then fails with cancelled_error once
// all are done, even with return_exceptions. cancel() returns false, and
// nothing is cancelled, when every child is done already (the gather then
// completes normally). A child cancelled by other means fails the gather
// with cancelled_error but the gather itself is not cancelled() (so the
// other children are not cancelled either).
//
// Thread rule: loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <pyco/detail/ensure_future.hpp>
#include <pyco/detail/gather_base.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/future.hpp>
#include <pyco/outcome.hpp>

namespace pyco {

// The tag of gather's return-exceptions form.
struct return_exceptions_t {
    explicit constexpr return_exceptions_t() = default;
};
inline constexpr return_exceptions_t return_exceptions{};

template <class R>
class gather_future;

namespace detail {
template <class R, class Children, bool ReturnExceptions>
class gather_maker;
template <class C>
inline constexpr bool is_vector_v = false;
template <class H>
inline constexpr bool is_vector_v<std::vector<H>> = true;
}  // namespace detail

// The future gather() returns (CPython's _GatheringFuture): a handle; copies
// share the state.
template <class R>
class [[nodiscard("co_await the gather, or keep it")]] gather_future {
    using state = detail::with_result<R, detail::gather_base>;

public:
    using value_type = R;
    using pyco_awaitable_tag = void;

    gather_future() noexcept = default;

    R& result() { return s_->result(); }
    std::exception_ptr exception() { return s_->exception(); }
    bool done() const noexcept { return s_->done(); }
    bool cancelled() const noexcept { return s_->cancelled(); }
    bool cancel(std::string msg = {}) { return s_->cancel(std::move(msg)); }
    event_loop& get_loop() const noexcept { return s_->get_loop(); }
    std::string describe() const { return s_->describe(); }

    std::uint32_t add_done_callback(std::function<void(gather_future&)> fn) {
        auto holder = std::make_unique<std::function<void(gather_future&)>>(std::move(fn));
        auto id = s_->add_callback(&detail::run_user_callback<gather_future, state>, holder.get());
        holder.release();
        return id;
    }
    std::size_t remove_done_callback(std::uint32_t id) { return s_->remove_callback(id); }

    detail::future_awaiter<state> operator co_await() const noexcept { return detail::future_awaiter<state>(s_.get()); }

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    friend bool operator==(const gather_future& a, const gather_future& b) noexcept { return a.s_ == b.s_; }
    detail::future_base* base() const noexcept { return s_.get(); }

private:
    template <class, class, bool>
    friend class detail::gather_maker;
    template <class, class>
    friend void detail::run_user_callback(void*, void*, bool);
    explicit gather_future(detail::intrusive_ptr<state> s) noexcept : s_(std::move(s)) {}
    detail::intrusive_ptr<state> s_;
};

namespace detail {

template <class R>
struct handle_traits<gather_future<R>> {
    using state = with_result<R, gather_base>;
    using value = R;
};

template <class T>
using or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// One entry of the results.
template <class H, bool ReturnExceptions>
using gather_entry_t =
    std::conditional_t<ReturnExceptions, outcome<handle_value_t<H>>, or_monostate_t<handle_value_t<H>>>;

template <class H, bool ReturnExceptions>
gather_entry_t<H, ReturnExceptions> gather_entry(const H& h) {
    using T = handle_value_t<H>;
    future_base& b = *h.base();
    if constexpr (ReturnExceptions) {
        if (b.cancelled()) return outcome<T>(cancellation_of(b));
        if (std::exception_ptr e = b.exception()) return outcome<T>(std::move(e));
        if constexpr (std::is_void_v<T>) {
            return outcome<void>();
        } else {
            return outcome<T>(take_result<H>(b));
        }
    } else if constexpr (std::is_void_v<T>) {
        take_result<H>(b);
        return std::monostate{};
    } else {
        return take_result<H>(b);
    }
}

// Children: std::tuple<H...> or std::vector<H>.
template <class R, class Children, bool ReturnExceptions>
class gather_state final : public with_result<R, gather_base> {
public:
    gather_state(event_loop& loop, Children children)
        : with_result<R, gather_base>(loop, ReturnExceptions), children_(std::move(children)) {}

    void start() {
        std::vector<future_base*> ptrs;
        if constexpr (is_vector_v<Children>) {
            ptrs.reserve(children_.size());
            for (const auto& h : children_) ptrs.push_back(h.base());
        } else {
            std::apply([&](const auto&... h) { (ptrs.push_back(h.base()), ...); }, children_);
        }
        this->watch(std::move(ptrs));
    }

private:
    void set_results() override {
        if constexpr (is_vector_v<Children>) {
            R out;
            out.reserve(children_.size());
            for (const auto& h : children_) out.push_back(gather_entry<typename Children::value_type, ReturnExceptions>(h));
            this->set_result(std::move(out));
        } else {
            this->set_result(std::apply(
                [](const auto&... h) {
                    return R(gather_entry<std::remove_cvref_t<decltype(h)>, ReturnExceptions>(h)...);
                },
                children_));
        }
    }

    Children children_;
};

// Builds gather futures; a friend of gather_future.
template <class R, class Children, bool ReturnExceptions>
class gather_maker {
public:
    static gather_future<R> make(event_loop& loop, Children children) {
        auto* s = new gather_state<R, Children, ReturnExceptions>(loop, std::move(children));
        gather_future<R> out(intrusive_ptr<with_result<R, gather_base>>::adopt(s));
        s->start();
        return out;
    }
};

// The children's loop. A child whose loop is gone (destroyed) is not on
// the common loop either: its loop is never dereferenced.
inline event_loop& common_loop(const std::vector<future_base*>& children) {
    if (children.empty()) return get_running_loop();
    event_loop* loop = children.front()->loop_if_alive();
    for (future_base* c : children) {
        if (c->loop_if_alive() != loop || loop == nullptr) {
            throw value_error("The future belongs to a different loop than the one specified as the loop argument");
        }
    }
    return *loop;
}

template <bool ReturnExceptions, class... A>
auto gather_args(A&&... aws) {
    using children_t = std::tuple<ensured_t<A>...>;
    using result_t = std::tuple<gather_entry_t<ensured_t<A>, ReturnExceptions>...>;
    // Braced: the children are made left to right, as CPython schedules them.
    children_t children{ensure_future(std::forward<A>(aws))...};
    std::vector<future_base*> ptrs;
    std::apply([&](const auto&... h) { (ptrs.push_back(h.base()), ...); }, children);
    event_loop& loop = common_loop(ptrs);
    return gather_maker<result_t, children_t, ReturnExceptions>::make(loop, std::move(children));
}

template <bool ReturnExceptions, class Range>
auto gather_range(Range&& range) {
    using elem_t = std::ranges::range_reference_t<Range>;
    using handle_t = ensured_t<elem_t>;
    using children_t = std::vector<handle_t>;
    using result_t = std::vector<gather_entry_t<handle_t, ReturnExceptions>>;
    children_t children;
    if constexpr (std::ranges::sized_range<Range>) children.reserve(std::ranges::size(range));
    for (auto&& a : range) {
        if constexpr (is_coroutine_v<std::remove_cvref_t<elem_t>>) {
            children.push_back(ensure_future(std::move(a)));  // the range's coroutines are consumed
        } else {
            children.push_back(ensure_future(a));
        }
    }
    std::vector<future_base*> ptrs;
    for (const auto& h : children) ptrs.push_back(h.base());
    event_loop& loop = common_loop(ptrs);
    return gather_maker<result_t, children_t, ReturnExceptions>::make(loop, std::move(children));
}

template <class R>
concept gather_range_arg = std::ranges::input_range<R> && !ensurable<R> &&
                           ensurable<std::ranges::range_reference_t<R>>;

}  // namespace detail

// gather(aws...) -> gather_future<std::tuple<...>>; gather() is done at once.
template <class... A>
    requires(detail::ensurable<A> && ...)
auto gather(A&&... aws) {
    return detail::gather_args<false>(std::forward<A>(aws)...);
}

// gather(return_exceptions, aws...) -> gather_future<std::tuple<outcome<...>...>>
template <class... A>
    requires(detail::ensurable<A> && ...)
auto gather(return_exceptions_t, A&&... aws) {
    return detail::gather_args<true>(std::forward<A>(aws)...);
}

// gather(range) -> gather_future<std::vector<...>>; an empty range is done
// at once. Coroutines in the range are moved out of it.
template <detail::gather_range_arg R>
auto gather(R&& range) {
    return detail::gather_range<false>(std::forward<R>(range));
}

template <detail::gather_range_arg R>
auto gather(return_exceptions_t, R&& range) {
    return detail::gather_range<true>(std::forward<R>(range));
}

}  // namespace pyco
