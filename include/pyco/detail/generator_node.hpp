// pyco/detail/generator_node.hpp — the machinery behind pyco::generator.
//
// A chain of delegation. `co_yield pyco::from(sub)` links the delegator and
// the sub-generator into a chain whose top, the *root*, is the generator the
// consumer holds. PEP 380 describes a delegating generator as a pipe the
// values flow through; we do what the PEP calls path compression instead: the
// root remembers the innermost generator (the *leaf*) and resumes it directly,
// and the leaf writes what it yields straight into the root. Resuming is O(1)
// at any depth; only entering and leaving a sub-generator touches the links.
//
// Invariants of one chain (one thread drives it; nothing here is atomic):
//  - root_ of every node in the chain points at the root; a root points at
//    itself. parent_/child_ link neighbours; the root has no parent_, the
//    leaf no child_. root->leaf_ is the node to resume.
//  - Only the root's per-resume fields (value_, sent_, thrown_, k_running,
//    close_token_) are used; a node's own copies lie idle while it is linked.
//  - value_ points at the yielded value, which lives in the yielding frame (or
//    in its yield awaiter) until that frame is resumed again.
//  - thrown_ is set only between "the consumer asked for a throw/close" (or a
//    sub-generator ignored GeneratorExit) and the suspension point that takes
//    it: the leaf's co_yield, or the delegator's co_yield from.
//  - A node leaves the chain at its final suspend point (control goes to its
//    parent by symmetric transfer), or when it ignores GeneratorExit during a
//    close (then its parent receives runtime_error).
//  - close() stamps every node then in the chain with a fresh token, and sets
//    the same token in root->close_token_. A yield while the root holds a
//    token is checked against the stamps: the nearest stamped node at or
//    above the yielder is the one that "ignored GeneratorExit". Nodes that
//    join the chain during cleanup are not stamped, because CPython does not
//    close them: it closes only what was delegating when close() began.
//  - orphaned_: the owning generator object was destroyed while the frame
//    could not be freed (its chain was running, or it was delegated to).
//    Exactly one party still on the stack or in the chain then frees it:
//    the consumer call that is resuming the chain (a root), or the
//    delegator's `co_yield from` (a borrowed sub-generator). Nobody else
//    holds the node, so nobody else may touch it. A root orphaned while it
//    runs also gets orphan_mark() in exception_ (unless the body's own
//    exception replaces it), so that the consumer's one test after a run,
//    exception_, catches this case too and the fast path pays nothing.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <pyco/errors.hpp>
#include <pyco/unraisable.hpp>

namespace pyco::detail {

// CPython's messages, in one place.
inline constexpr const char* msg_already_executing = "generator already executing";
inline constexpr const char* msg_ignored_exit = "generator ignored GeneratorExit";
inline constexpr const char* msg_send_just_started =
    "can't send non-None value to a just-started generator";

// Fresh tokens for close(). Unique per process so that stale stamps on nodes
// that left a chain can never match a later close.
inline std::uint64_t next_close_token() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

// The stand-in exception_ of a root orphaned while it runs (see above).
struct orphan_marker {};
inline const std::exception_ptr& orphan_mark() {
    static const std::exception_ptr mark = std::make_exception_ptr(orphan_marker{});
    return mark;
}

template <class S>
struct sent_slot {
    S* sent_ = nullptr;  // the value passed to send(); null for next()
};
template <>
struct sent_slot<void> {};

template <class Y, class S>
struct gen_node : sent_slot<S> {
    // --- links (see the invariants above) ---
    gen_node* root_ = this;
    gen_node* parent_ = nullptr;
    gen_node* child_ = nullptr;
    gen_node* leaf_ = this;  // root only
    std::coroutine_handle<> handle_;

    // --- this node's own state ---
    std::exception_ptr exception_;    // escaped the body; taken by parent or consumer
    std::uint64_t closing_token_ = 0;  // stamped by close()
    bool started_ = false;
    bool orphaned_ = false;  // its generator object is gone (see above)
    // Why this node cannot be resumed by its consumer right now, if at all:
    // one byte, so that next() tests one thing on its fast path.
    enum : std::uint8_t { k_closed = 1, k_running = 2, k_delegated = 4 };
    std::uint8_t blocked_ = 0;  // k_running is meaningful on a root only

    bool closed() const noexcept { return blocked_ & k_closed; }
    void mark_closed() noexcept { blocked_ |= k_closed; }
    bool chain_running() const noexcept { return root_->blocked_ & k_running; }

    // --- root-only, per resume ---
    Y* value_ = nullptr;
    std::exception_ptr thrown_;
    std::uint64_t close_token_ = 0;

    gen_node() = default;
    gen_node(const gen_node&) = delete;
    gen_node& operator=(const gen_node&) = delete;

    // The node that ignored GeneratorExit when `yielder` yields during a
    // close, or null when the yield is an ordinary one (no close under way,
    // or the root itself is the one to answer).
    gen_node* ignorer_of(gen_node* yielder) const noexcept {
        for (gen_node* n = yielder; n != nullptr; n = n->parent_) {
            if (n->closing_token_ == close_token_) return n == this ? nullptr : n;
        }
        return nullptr;
    }

    // `ignorer` yielded while being closed: CPython's close() of it raises
    // RuntimeError, which its delegator receives at its `yield from`. The
    // ignorer leaves the chain, still suspended; its owner closes it again
    // when it is destroyed.
    std::coroutine_handle<> detach_ignorer(gen_node* ignorer) noexcept {
        gen_node* parent = ignorer->parent_;
        parent->child_ = nullptr;
        leaf_ = parent;
        for (gen_node* n = ignorer; n != nullptr; n = n->child_) n->root_ = ignorer;
        gen_node* old_leaf = ignorer;
        while (old_leaf->child_) old_leaf = old_leaf->child_;
        ignorer->leaf_ = old_leaf;
        ignorer->parent_ = nullptr;
        ignorer->blocked_ &= static_cast<std::uint8_t>(~k_delegated);
        thrown_ = std::make_exception_ptr(runtime_error(msg_ignored_exit));
        return parent->handle_;
    }

    // Link `child` (a root of its own, maybe already delegating further)
    // under `this` and return the node to resume.
    std::coroutine_handle<> attach(gen_node* child) noexcept {
        gen_node* root = root_;
        child_ = child;
        child->parent_ = this;
        child->blocked_ |= k_delegated;
        gen_node* leaf = child->leaf_;
        for (gen_node* n = child; n != nullptr; n = n->child_) n->root_ = root;
        root->leaf_ = leaf;
        if constexpr (!std::is_void_v<S>) root->sent_ = nullptr;  // PEP 380 starts with next()
        return leaf->handle_;
    }

    // This node finished; hand control to its delegator, or to the consumer.
    std::coroutine_handle<> finish() noexcept {
        blocked_ = k_closed;  // and no longer delegated to
        gen_node* parent = parent_;
        if (parent == nullptr) return std::noop_coroutine();
        root_->leaf_ = parent;
        parent->child_ = nullptr;
        parent_ = nullptr;
        root_ = this;
        leaf_ = this;
        return parent->handle_;
    }

    // At a co_yield or co_yield from, after resumption: a throw or close
    // addressed to this point is raised here.
    void raise_thrown() const {
        gen_node* root = root_;
        if (root->thrown_) [[unlikely]] {
            std::exception_ptr e = std::move(root->thrown_);
            root->thrown_ = nullptr;
            std::rethrow_exception(std::move(e));
        }
    }

    // This delegator's frame is destroyed while `child_` is still linked
    // (only after a close the root ignored): the child and what it delegates
    // to become a chain of their own, which its owner closes as usual.
    void unlink_child() noexcept {
        gen_node* child = child_;
        child_ = nullptr;
        root_->leaf_ = this;
        gen_node* leaf = child;
        for (gen_node* n = child; n != nullptr; n = n->child_) {
            n->root_ = child;
            leaf = n;
        }
        child->leaf_ = leaf;
        child->parent_ = nullptr;
        child->blocked_ &= static_cast<std::uint8_t>(~k_delegated);
    }

    // --- the consumer's side, on a root ---

    // Resume the chain at its leaf; whatever escapes stays in exception_.
    void run() noexcept {
        value_ = nullptr;
        blocked_ |= k_running;
        leaf_->handle_.resume();
        blocked_ &= static_cast<std::uint8_t>(~k_running);
    }

    void check_not_running() const {
        if (chain_running()) throw value_error(msg_already_executing);
        if (parent_ != nullptr) {
            throw value_error("generator is being delegated to; drive its delegator instead");
        }
    }

    // gen.close(), after CPython's gen_close (see the invariants above).
    void close() {
        check_not_running();
        if (!started_ || closed()) {
            mark_closed();
            return;
        }
        const std::uint64_t token = next_close_token();
        for (gen_node* c = this; c != nullptr; c = c->child_) c->closing_token_ = token;
        const std::exception_ptr exit = std::make_exception_ptr(generator_exit());
        close_token_ = token;
        thrown_ = exit;
        run();
        close_token_ = 0;
        thrown_ = nullptr;
        if (exception_ && exception_ != orphan_mark()) {
            std::exception_ptr e = std::move(exception_);
            exception_ = nullptr;
            // Usually the very generator_exit we sent comes back: compare
            // rather than rethrow, for a C++ throw costs about a microsecond.
            if (e == exit || exception_is<generator_exit>(e)) return;
            std::rethrow_exception(std::move(e));
        }
        exception_ = nullptr;  // orphan_mark()
        if (value_ != nullptr) throw runtime_error(msg_ignored_exit);
    }

    // gen.__del__ then the frame freed: a suspended generator is closed
    // first, and what the close raises goes to the unraisable hook. Only
    // for a root that is not running.
    [[gnu::noinline]] void finalise() noexcept {
        orphaned_ = false;
        if (started_ && !closed()) {
            try {
                close();
            } catch (...) {
                char object[64];
                describe(object, sizeof object);
                report_unraisable(std::current_exception(), object);
            }
        }
        handle_.destroy();
    }

    void describe(char* buf, std::size_t size) const noexcept {
        std::snprintf(buf, size, "<generator object at %p>", handle_.address());
    }
};

// Frees an orphaned generator when the call that was resuming it (or the
// delegation that borrowed it) is over, on every way out of that call. As
// CPython frees a generator whose last reference went while it ran when the
// call that ran it returns.
template <class Y, class S>
class orphan_guard {
public:
    explicit orphan_guard(gen_node<Y, S>& n) noexcept : n_(n) {}
    orphan_guard(const orphan_guard&) = delete;
    ~orphan_guard() {
        if (n_.orphaned_) [[unlikely]] n_.finalise();
    }

private:
    gen_node<Y, S>& n_;
};

// Where the yielded value lives between suspension and the consumer's read.
template <class Y, class S>
class yield_awaiter {
public:
    yield_awaiter(gen_node<Y, S>* self, Y* value) noexcept : self_(self), value_(value) {}

    bool await_ready() const noexcept { return false; }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
        gen_node<Y, S>* root = self_->root_;
        if (root->close_token_ != 0) [[unlikely]] return yield_while_closing(root);
        root->value_ = value_;
        return std::noop_coroutine();
    }

    decltype(auto) await_resume() const {
        gen_node<Y, S>* root = self_->root_;
        if (root->thrown_) [[unlikely]] self_->raise_thrown();
        if constexpr (!std::is_void_v<S>) {
            if (root->sent_) return S(std::move(*root->sent_));
            return S{};
        }
    }

protected:
    // Kept out of line: every co_yield would otherwise carry it.
    [[gnu::noinline, gnu::cold]] std::coroutine_handle<> yield_while_closing(gen_node<Y, S>* root) noexcept {
        if (gen_node<Y, S>* ignorer = root->ignorer_of(self_)) {
            // The ignorer becomes a root again and keeps what was yielded.
            ignorer->value_ = value_;
            return root->detach_ignorer(ignorer);
        }
        root->value_ = value_;
        return std::noop_coroutine();
    }

    gen_node<Y, S>* self_;
    Y* value_;
};

// co_yield of an lvalue or of another type: the value is copied (or
// converted) into the awaiter, which lives in the frame across the suspension.
template <class Y, class S>
class yield_copy_awaiter : public yield_awaiter<Y, S> {
public:
    template <class U>
    yield_copy_awaiter(gen_node<Y, S>* self, U&& v)
        : yield_awaiter<Y, S>(self, nullptr), copy_(std::forward<U>(v)) {
        this->value_ = &copy_;
    }
    yield_copy_awaiter(const yield_copy_awaiter&) = delete;

private:
    Y copy_;
};

// Where a generator's return value waits for its delegator or consumer.
template <class R>
struct gen_result {
    std::optional<R> result_;
    template <class U>
        requires std::is_convertible_v<U&&, R>
    void return_value(U&& v) {
        result_.emplace(std::forward<U>(v));
    }
};
template <>
struct gen_result<void> {
    void return_void() noexcept {}
};

}  // namespace pyco::detail
