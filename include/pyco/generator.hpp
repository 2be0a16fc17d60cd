// pyco/generator.hpp — Python generators: PEP 255, PEP 342, PEP 380.
//
//   pyco::generator<Y, S = void, R = void>
//     Y  the type yielded (an object type)
//     S  the type send() delivers as the value of `co_yield`; next() delivers
//        S{} (Python's None). void: the generator takes no sends.
//     R  the type `co_return` gives back; void: none.
//
// A generator is lazy: nothing runs until the first next()/send()/begin().
// It is a move-only std::ranges::view and input_range. The consumer drives it
// from one thread at a time; a generator may be handed to another thread
// between resumptions.
//
// Delegation: `R2 r = co_yield pyco::from(sub);` runs `sub` inside this
// generator as `yield from` does. From an rvalue the delegator owns `sub`;
// from an lvalue it borrows it, and the caller keeps it alive until the
// delegation ends. While delegated to, a generator belongs to its delegator:
// driving it directly is a value_error (CPython would let it advance; we do
// not, because the chain is resumed at its leaf). Resuming costs O(1) at any
// depth (see detail/generator_node.hpp for the chain and its invariants).
//
// Destruction closes a suspended generator, as gen.__del__ does; what close()
// raises then goes to pyco::unraisable_hook, never out of the destructor.
//
// Destroyed from inside its own body. A body can drop the last owner of its
// own generator (`holder.reset()` from inside it), or of a generator it is
// delegating to through a borrowed `from(g)`. Freeing the frame then would
// free the code that is running. CPython cannot get there (the call that
// runs a generator holds a reference to it), so pyco does what that
// reference would do: the destructor only marks the frame orphaned, and the
// frame lives until the call that runs it is over — the consumer's
// next()/send()/throw_()/close(), or the delegator's `co_yield from` for a
// borrowed sub-generator. Then it is finalised as a dropped generator is:
// that call's result is handed back first, then a suspended body gets
// generator_exit (errors to pyco::unraisable_hook) and the frame is freed.
// Nothing is refused and nothing terminates; no code after the resume
// touches the destroyed generator object, only the frame's promise. A
// range-for whose generator is destroyed this way ends at that step (its
// iterator points into the frame, so the value just yielded is not seen).
// Why not refuse: a destructor cannot throw into the body, and terminating
// would punish a program CPython runs correctly.
#pragma once

#include <algorithm>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <ranges>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <pyco/detail/generator_node.hpp>
#include <pyco/errors.hpp>
#include <pyco/unraisable.hpp>

namespace pyco {

// inspect.getgeneratorstate
enum class gen_state { created, running, suspended, closed };

template <class Y, class S = void, class R = void>
class generator;

template <class T>
inline constexpr bool is_generator_v = false;
template <class Y, class S, class R>
inline constexpr bool is_generator_v<generator<Y, S, R>> = true;

namespace detail {

struct generator_access;

// What `pyco::from(x)` makes: a request to delegate, taken apart by the
// delegating generator's promise.
template <class Y, class S, class R, bool Owned>
class generator_delegation {
public:
    using gen_type = generator<Y, S, R>;
    explicit generator_delegation(gen_type&& g) noexcept
        requires Owned
        : gen_(std::move(g)) {}
    explicit generator_delegation(gen_type& g) noexcept
        requires(!Owned)
        : gen_(&g) {}

    gen_type& get() noexcept {
        if constexpr (Owned) {
            return gen_;
        } else {
            return *gen_;
        }
    }

private:
    std::conditional_t<Owned, gen_type, gen_type*> gen_;
};

template <class Rg>
class range_delegation {
public:
    explicit range_delegation(Rg&& r) : range_(std::forward<Rg>(r)) {}
    Rg&& get() noexcept { return std::forward<Rg>(range_); }

private:
    Rg range_;  // a reference for lvalues, the range itself for rvalues
};

// An item from a delegated range Rg: yielded like any value, but a send()
// of anything but None to it is refused, as CPython's `yield from` refuses
// one to an iterator without send().
// (A constructor, not an aggregate: GCC 12 destroys a brace-built aggregate
// in a co_yield full-expression twice.)
template <class Y, class Rg>
struct range_item {
    explicit range_item(Y v) : value(std::move(v)) {}
    Y value;
};

template <class T>
inline constexpr bool is_optional_v = false;
template <class T>
inline constexpr bool is_optional_v<std::optional<T>> = true;

// Python's None among sent values: S{}, what next() delivers. An S that
// cannot be compared has no None but an empty optional.
template <class S>
bool is_none(const S& v) {
    if constexpr (is_optional_v<S>) {
        return !v.has_value();
    } else if constexpr (std::equality_comparable<S>) {
        return v == S{};
    } else {
        return false;
    }
}

// The name of T as the compiler spells it, for messages ("std::vector<int>").
template <class T>
const std::string& type_name() {
    static const std::string name = [](std::string_view f) {
        // GCC: "... [with T = X; ...]", clang: "... [T = X]"
        std::size_t at = f.find("T = ");
        if (at == std::string_view::npos) return std::string("range");
        at += 4;
        std::size_t end = std::min(f.find(';', at), f.rfind(']'));
        std::string n(f.substr(at, end - at));
        for (std::size_t p; (p = n.find("std::__cxx11::")) != std::string::npos;) n.erase(p + 5, 9);
        return n;
    }(std::source_location::current().function_name());
    return name;
}

}  // namespace detail

template <class Y, class S, class R>
class generator : public std::ranges::view_base {
    static_assert(std::is_object_v<Y> && !std::is_const_v<Y>,
                  "pyco::generator<Y>: Y must be a non-const object type");
    static_assert(std::is_void_v<S> || std::default_initializable<S>,
                  "pyco::generator<Y, S>: next() delivers S{}, so S must be default-constructible");

    using node = detail::gen_node<Y, S>;

public:
    using yield_type = Y;
    using send_type = S;
    using return_type = R;

    class promise_type;
    class iterator;
    using handle_type = std::coroutine_handle<promise_type>;

    generator() noexcept = default;
    generator(generator&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
    generator& operator=(generator&& other) noexcept {
        if (this != &other) {
            release();
            h_ = std::exchange(other.h_, nullptr);
        }
        return *this;
    }
    ~generator() { release(); }

    // next(g): the next value, or empty when the generator is finished.
    // After the resume only the frame (n) is used: the body may have
    // destroyed *this (see the header comment).
    std::optional<Y> next() {
        if (!h_) return std::nullopt;
        node& n = promise();
        if (!prepare_resume(n)) return std::nullopt;
        n.run();
        return finish_step(n);
    }

    // g.send(v): resume with `co_yield` evaluating to v. S{} is Python's
    // None: sending it to a just-started generator starts it, as next() does.
    template <class SS = S>
        requires(!std::is_void_v<SS>)
    std::optional<Y> send(std::type_identity_t<SS> value) {
        if (!h_) return std::nullopt;
        node& n = promise();
        if (!prepare_resume(n)) return std::nullopt;
        if (!n.started_) [[unlikely]] {
            if (!detail::is_none(value)) throw type_error(detail::msg_send_just_started);
            return next();
        }
        n.sent_ = &value;
        n.run();
        n.sent_ = nullptr;
        return finish_step(n);
    }

    // g.throw(e): raise e at the suspended co_yield (innermost delegate first).
    template <class E>
        requires(!std::same_as<std::remove_cvref_t<E>, std::exception_ptr>)
    std::optional<Y> throw_(E&& e) {
        return throw_(std::make_exception_ptr(std::forward<E>(e)));
    }

    std::optional<Y> throw_(std::exception_ptr e) {
        if (!e) throw type_error("throw_() needs an exception");
        if (!h_) std::rethrow_exception(e);
        node& n = promise();
        n.check_not_running();
        if (!n.started_ || n.closed()) {
            // Never run: it raises at its start, so the body never runs.
            n.mark_closed();
            std::rethrow_exception(e);
        }
        std::uint64_t token = 0;
        if (n.child_ != nullptr && exception_is<generator_exit>(e)) {
            // CPython closes the sub-iterators, then throws into this one.
            token = detail::next_close_token();
            for (node* c = n.child_; c != nullptr; c = c->child_) c->closing_token_ = token;
        }
        n.close_token_ = token;
        n.thrown_ = std::move(e);
        n.run();
        // A pending throw or close token never outlives the call.
        n.close_token_ = 0;
        n.thrown_ = nullptr;
        return finish_step(n);
    }

    // g.close(): raise generator_exit at the suspended co_yield. A body that
    // yields instead is a runtime_error; one that returns leaves its value in
    // return_value() (Python 3.13).
    void close() {
        if (!h_) return;
        node& n = promise();
        orphan_guard guard(n);
        n.close();
    }

    gen_state state() const noexcept {
        if (!h_) return gen_state::closed;
        const node& n = promise();
        if (n.closed()) return gen_state::closed;
        if (n.chain_running()) return gen_state::running;
        if (!n.started_) return gen_state::created;
        return gen_state::suspended;
    }

    // StopIteration.value: what the body returned.
    template <class RR = R>
        requires(!std::is_void_v<RR>)
    RR& return_value() & {
        auto& p = h_ ? h_.promise() : throw invalid_state_error("generator is empty");
        if (!p.result_) throw invalid_state_error("generator has not returned a value");
        return *p.result_;
    }
    template <class RR = R>
        requires(!std::is_void_v<RR>)
    RR&& return_value() && {
        return std::move(return_value());
    }

    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

    // Range interface: `for (auto& x : gen)`. begin() resumes the generator
    // (as iter() of a started generator continues where it is).
    iterator begin() {
        if (!h_) return iterator(nullptr);
        node& n = promise();
        if (!advance(n)) [[unlikely]] {
            end_orphan(n);
            return iterator(nullptr);
        }
        return iterator(&n);
    }
    std::default_sentinel_t end() const noexcept { return std::default_sentinel; }

private:
    friend struct detail::generator_access;
    explicit generator(handle_type h) noexcept : h_(h) {}

    node& promise() const noexcept { return h_.promise(); }

    using orphan_guard = detail::orphan_guard<Y, S>;

    // False when there is nothing to resume (finished). One test on the
    // fast path: the consumer holds a root, so its own flags say it all.
    static bool prepare_resume(node& n) {
        if (n.blocked_ == 0) [[likely]] return true;
        n.check_not_running();
        return false;
    }

    // After a run: the value yielded, or empty; or what escaped the root's
    // body, rethrown. Nothing escapes run(), so this is the only way out.
    // (An orphaned root has orphan_mark() or the body's exception there.)
    static std::optional<Y> finish_step(node& n) {
        if (n.exception_) [[unlikely]] {
            raise_escaped(n);
            // The body destroyed its generator: hand the value back, then
            // free the frame.
            orphan_guard guard(n);
            return take_value(n);
        }
        return take_value(n);
    }
    // Rethrows what escaped the body, freeing the frame first if orphaned;
    // returns if there is only orphan_mark().
    [[gnu::noinline]] static void raise_escaped(node& n) {
        std::exception_ptr e = std::exchange(n.exception_, nullptr);
        if (e == detail::orphan_mark()) return;
        if (n.orphaned_) n.finalise();
        std::rethrow_exception(std::move(e));
    }

    // One step of iteration: afterwards value_ is the next item or null.
    // False when the body destroyed its generator: the caller lets go of
    // the frame, then calls end_orphan(). (A bool, not the iterator's
    // pointer by reference, so that the pointer stays in a register.)
    static bool advance(node& n) {
        if (!prepare_resume(n)) {
            n.value_ = nullptr;
            return true;
        }
        n.run();
        if (n.exception_) [[unlikely]] {
            if (n.orphaned_) return false;
            raise_escaped(n);
        }
        return true;
    }
    // The iteration ends with the frame (the iterator would point into it);
    // what escaped the body is rethrown after.
    [[gnu::noinline]] static void end_orphan(node& n) {
        std::exception_ptr e = std::exchange(n.exception_, nullptr);
        n.finalise();
        if (e != detail::orphan_mark()) std::rethrow_exception(std::move(e));
    }

    static std::optional<Y> take_value(node& n) {
        if (n.value_ == nullptr) return std::nullopt;
        return std::optional<Y>(std::move(*n.value_));
    }

    void release() noexcept {
        if (!h_) return;
        node& n = promise();
        h_ = nullptr;
        if (n.parent_ != nullptr || (n.blocked_ & node::k_running)) [[unlikely]] {
            // Destroyed from inside its running chain, or while delegated
            // to: whoever runs it or delegates to it frees it (see above).
            n.orphaned_ = true;
            if (n.parent_ == nullptr) n.exception_ = detail::orphan_mark();
            return;
        }
        n.finalise();
    }

    handle_type h_;
};

// ---------------------------------------------------------------------------

template <class Y, class S, class R>
class generator<Y, S, R>::iterator {
public:
    using value_type = Y;
    using difference_type = std::ptrdiff_t;

    iterator() noexcept = default;

    Y& operator*() const noexcept { return *node_->value_; }
    Y* operator->() const noexcept { return node_->value_; }
    iterator& operator++() {
        if (!generator::advance(*node_)) [[unlikely]] generator::end_orphan(*std::exchange(node_, nullptr));
        return *this;
    }
    void operator++(int) { ++*this; }

    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
        return it.node_ == nullptr || it.node_->value_ == nullptr;
    }

private:
    friend class generator;
    explicit iterator(node* n) noexcept : node_(n) {}
    node* node_ = nullptr;
};

// ---------------------------------------------------------------------------

namespace detail {

struct generator_access {
    template <class G>
    static auto& node_of(G& g) noexcept {
        return g.promise();
    }
    template <class G>
    static bool empty(const G& g) noexcept {
        return !g.h_;
    }
};

// `co_yield pyco::from(gen)`: link, run the sub-generator, then take its
// return value or its exception. After await_ready() only the child's node
// is used, never the generator object: a borrowed one may be destroyed
// while it is delegated to (it is then orphaned, and freed here).
template <class Y, class S, class R2, bool Owned>
class delegate_awaiter {
public:
    delegate_awaiter(gen_node<Y, S>* self, generator_delegation<Y, S, R2, Owned>&& d) noexcept
        : self_(self), delegation_(std::move(d)) {}
    delegate_awaiter(const delegate_awaiter&) = delete;

    ~delegate_awaiter() {
        if (child_ == nullptr) return;
        // Our frame is destroyed in the middle of the delegation.
        if (child_->parent_ == self_) [[unlikely]] self_->unlink_child();
        // (An owned child is then finalised by delegation_'s destructor.)
        if (child_->orphaned_) [[unlikely]] child_->finalise();
    }

    bool await_ready() {
        auto& g = delegation_.get();
        if (generator_access::empty(g)) throw value_error("cannot delegate to an empty generator");
        gen_node<Y, S>& child = generator_access::node_of(g);
        if (child.chain_running()) throw value_error(msg_already_executing);
        if (child.parent_ != nullptr) {
            throw value_error("generator is already being delegated to");
        }
        child_ = &child;
        exhausted_ = child.closed();  // `yield from` ends at once, with None
        return exhausted_;
    }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
        return self_->attach(child_);
    }

    R2 await_resume() {
        self_->raise_thrown();  // the sub-generator ignored GeneratorExit
        gen_node<Y, S>& child = *child_;
        if (child.exception_) {
            std::exception_ptr e = std::move(child.exception_);
            child.exception_ = nullptr;
            std::rethrow_exception(std::move(e));
        }
        const std::uint64_t token = self_->root_->close_token_;
        if (token != 0 && child.closing_token_ == token) {
            // It was closed and finished quietly: CPython now raises
            // GeneratorExit in the delegator.
            throw generator_exit();
        }
        if constexpr (!std::is_void_v<R2>) {
            auto& p = static_cast<typename generator<Y, S, R2>::promise_type&>(child);
            if (!exhausted_ && p.result_) return std::move(*p.result_);
            // An exhausted generator's StopIteration carries None, not the
            // value it returned the first time.
            if constexpr (std::default_initializable<R2>) {
                return R2{};
            } else {
                throw invalid_state_error("delegated generator is exhausted; it has no value");
            }
        }
    }

private:
    gen_node<Y, S>* self_;
    gen_node<Y, S>* child_ = nullptr;
    generator_delegation<Y, S, R2, Owned> delegation_;
    bool exhausted_ = false;
};

// The sub-generator that walks a delegated range.
template <class Y, class S, class Rg>
generator<Y, S> walk_range(Rg range) {
    for (auto&& item : range) {
        co_yield range_item<Y, Rg>(Y(std::forward<decltype(item)>(item)));
    }
}

}  // namespace detail

// ---------------------------------------------------------------------------

template <class Y, class S, class R>
class generator<Y, S, R>::promise_type : public detail::gen_node<Y, S>,
                                         public detail::gen_result<R> {
    using node = detail::gen_node<Y, S>;

    struct initial_awaiter {
        promise_type* p;
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<>) const noexcept {}
        void await_resume() const noexcept { p->started_ = true; }
    };

    struct final_awaiter {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(handle_type h) const noexcept {
            return h.promise().finish();
        }
        void await_resume() const noexcept {}
    };

public:
    promise_type() noexcept { this->handle_ = handle_type::from_promise(*this); }

    generator get_return_object() noexcept { return generator(handle_type::from_promise(*this)); }
    initial_awaiter initial_suspend() noexcept { return {this}; }
    final_awaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { this->exception_ = std::current_exception(); }

    detail::yield_awaiter<Y, S> yield_value(Y&& value) noexcept {
        return {this, std::addressof(value)};
    }
    detail::yield_copy_awaiter<Y, S> yield_value(const Y& value) { return {this, value}; }
    template <class U>
        requires(!std::same_as<std::remove_cvref_t<U>, Y> && std::constructible_from<Y, U &&>)
    detail::yield_copy_awaiter<Y, S> yield_value(U&& value) {
        return {this, std::forward<U>(value)};
    }

    template <class Y2, class S2, class R2, bool Owned>
    detail::delegate_awaiter<Y, S, R2, Owned> yield_value(
        detail::generator_delegation<Y2, S2, R2, Owned>&& d) noexcept {
        static_assert(std::same_as<Y2, Y> && std::same_as<S2, S>,
                      "co_yield pyco::from(g): g must yield the same type and take the same "
                      "send type as the delegating generator; wrap it in a view to convert");
        return {this, std::move(d)};
    }

    template <class Rg>
    detail::delegate_awaiter<Y, S, void, true> yield_value(detail::range_delegation<Rg>&& d) {
        auto walker = detail::walk_range<Y, S, Rg>(d.get());
        return {this, detail::generator_delegation<Y, S, void, true>(std::move(walker))};
    }

    // A delegated range's item. PEP 380: a None sent advances the range (as
    // next() does); any other value is refused, raised in the delegator.
    // CPython raises AttributeError ("'list_iterator' object has no
    // attribute 'send'"); pyco has no AttributeError, so it is a type_error
    // with the same words, naming the range's type.
    template <class Rg>
    struct range_item_awaiter : detail::yield_awaiter<Y, S> {
        using detail::yield_awaiter<Y, S>::yield_awaiter;
        void await_resume() const {
            this->self_->raise_thrown();
            if constexpr (!std::is_void_v<S>) {
                const S* sent = this->self_->root_->sent_;
                if (sent != nullptr && !detail::is_none(*sent)) [[unlikely]] {
                    throw type_error("'" + detail::type_name<std::remove_cvref_t<Rg>>() +
                                     "' object has no attribute 'send'");
                }
            }
        }
    };
    template <class Rg>
    range_item_awaiter<Rg> yield_value(detail::range_item<Y, Rg>&& item) noexcept {
        return {this, std::addressof(item.value)};
    }

    // A generator cannot await: that is what pyco::coroutine is for.
    template <class T>
    void await_transform(T&&) = delete;
};

// ---------------------------------------------------------------------------

// `co_yield pyco::from(sub)`: yield from a generator (owned when an rvalue,
// borrowed when an lvalue) ...
template <class Y, class S, class R>
detail::generator_delegation<Y, S, R, true> from(generator<Y, S, R>&& g) noexcept {
    return detail::generator_delegation<Y, S, R, true>(std::move(g));
}
template <class Y, class S, class R>
detail::generator_delegation<Y, S, R, false> from(generator<Y, S, R>& g) noexcept {
    return detail::generator_delegation<Y, S, R, false>(g);
}
// ... or from any input range, whose values are converted to Y.
template <std::ranges::input_range Rg>
    requires(!is_generator_v<std::remove_cvref_t<Rg>>)
detail::range_delegation<Rg> from(Rg&& range) {
    return detail::range_delegation<Rg>(std::forward<Rg>(range));
}

// The priming decorator: run a generator to its first co_yield, so that it is
// ready for send().
template <class Y, class S, class R>
generator<Y, S, R> primed(generator<Y, S, R> g) {
    g.next();
    return g;
}

}  // namespace pyco

