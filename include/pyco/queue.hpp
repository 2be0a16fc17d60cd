// pyco/queue.hpp — asyncio.Queue, PriorityQueue, LifoQueue:
// pyco::queue<T>, pyco::priority_queue<T, Compare>, pyco::lifo_queue<T>.
//
//   pyco::queue<int> q(10);            // maxsize; <= 0: unbounded
//   co_await q.put(1);  int v = co_await q.get();
//   q.put_nowait(2);    q.get_nowait();  // queue_full / queue_empty
//   q.task_done();      co_await q.join();
//   q.shutdown();       q.shutdown(true);  // Python 3.13, queue_shut_down
//
// priority_queue gives the least item first (Python's heapq order, the same
// algorithm, so equal items come out as CPython gives them); Compare is the
// "less than". lifo_queue gives the newest first.
//
// Ordering and fairness (CPython's exactly): blocked getters and putters
// are served FIFO. put_nowait() stores the item and wakes the first getter
// not yet woken, popping it from the getters; the item stays in the queue
// until that getter runs, so qsize() counts it and a get_nowait() in
// between may take it — then the woken getter waits again (at the back).
// get_nowait() likewise wakes the first blocked putter. get() and put()
// return at once, without yielding, when they need not wait.
//
// Cancel safety: get() cancelled while it waits raises cancelled_error and
// takes no item; if a put_nowait() had already woken it, the wake-up passes
// to the next getter, so the item is not stranded (CPython's
// test_get_cancel_drop_*). put() cancelled likewise inserts nothing and
// passes a free slot on to the next putter. An item is never lost: it is
// either in the queue or returned by exactly one get().
//
// Shutdown (3.13): shutdown() makes put()/put_nowait() raise
// queue_shut_down at once, and get()/get_nowait() once the queue is empty;
// shutdown(true) also discards the items (counting each as task_done) so
// gets raise at once and join() can return. Every blocked put() and get()
// is woken to re-check.
//
// Errors: task_done() more often than items were put raises
// value_error("task_done() called too many times").
//
// Thread rule: loop thread only.
#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/detail/wait_queue.hpp>
#include <pyco/errors.hpp>
#include <pyco/event.hpp>

namespace pyco {

namespace detail {

template <class T>
struct fifo_store {
    std::deque<T> items;
    void push(T&& v) { items.push_back(std::move(v)); }
    T pop() {
        T v = std::move(items.front());
        items.pop_front();
        return v;
    }
};

template <class T>
struct lifo_store {
    std::vector<T> items;
    void push(T&& v) { items.push_back(std::move(v)); }
    T pop() {
        T v = std::move(items.back());
        items.pop_back();
        return v;
    }
};

// heapq.heappush / heappop, step for step (so ties come out as in CPython).
template <class T, class Compare>
struct heap_store {
    std::vector<T> items;
    [[no_unique_address]] Compare less{};

    void push(T&& v) {
        items.push_back(std::move(v));
        sift_down(0, items.size() - 1);
    }
    T pop() {
        T last = std::move(items.back());
        items.pop_back();
        if (items.empty()) return last;
        T top = std::move(items.front());
        items.front() = std::move(last);
        sift_up(0);
        return top;
    }

private:
    // heapq._siftdown: move items[pos] up towards start.
    void sift_down(std::size_t start, std::size_t pos) {
        T item = std::move(items[pos]);
        while (pos > start) {
            std::size_t parent = (pos - 1) >> 1;
            if (less(item, items[parent])) {
                items[pos] = std::move(items[parent]);
                pos = parent;
                continue;
            }
            break;
        }
        items[pos] = std::move(item);
    }
    // heapq._siftup: move the smaller child up until a leaf, then sift down.
    void sift_up(std::size_t pos) {
        const std::size_t end = items.size();
        const std::size_t start = pos;
        T item = std::move(items[pos]);
        std::size_t child = 2 * pos + 1;
        while (child < end) {
            std::size_t right = child + 1;
            if (right < end && !less(items[child], items[right])) child = right;
            items[pos] = std::move(items[child]);
            pos = child;
            child = 2 * pos + 1;
        }
        items[pos] = std::move(item);
        sift_down(start, pos);
    }
};

template <class T, class Store>
class basic_queue {
public:
    using value_type = T;
    class get_op;
    class put_op;
    class join_awaiter;

    explicit basic_queue(std::ptrdiff_t maxsize = 0) : maxsize_(maxsize) { finished_.set(); }
    basic_queue(const basic_queue&) = delete;
    basic_queue& operator=(const basic_queue&) = delete;

    std::ptrdiff_t maxsize() const noexcept { return maxsize_; }
    std::size_t qsize() const noexcept { return store_.items.size(); }
    bool empty() const noexcept { return store_.items.empty(); }
    bool full() const noexcept {
        return maxsize_ > 0 && qsize() >= static_cast<std::size_t>(maxsize_);
    }
    bool is_shutdown() const noexcept { return shutdown_; }

    // await Queue.get()
    get_op get() noexcept { return get_op(*this); }
    // await Queue.put(item)
    put_op put(T item) noexcept(std::is_nothrow_move_constructible_v<T>) { return put_op(*this, std::move(item)); }

    // Queue.get_nowait(): queue_empty (queue_shut_down once shut down).
    T get_nowait() {
        if (empty()) {
            if (shutdown_) throw queue_shut_down();
            throw queue_empty();
        }
        T item = store_.pop();
        putters_.pop_and_wake_next();
        return item;
    }
    // Queue.put_nowait(item): queue_full / queue_shut_down; the caller's
    // item is untouched when it raises.
    void put_nowait(const T& item) {
        check_put();
        T copy(item);
        store(std::move(copy));
    }
    void put_nowait(T&& item) {
        check_put();
        store(std::move(item));
    }

    // Queue.task_done()
    void task_done() {
        if (unfinished_ == 0) throw value_error("task_done() called too many times");
        if (--unfinished_ == 0) finished_.set();
    }
    // await Queue.join(): until every item put has been task_done().
    join_awaiter join() noexcept { return join_awaiter(finished_); }

    // Queue.shutdown(immediate=False)
    void shutdown(bool immediate = false) {
        shutdown_ = true;
        if (immediate) {
            while (!empty()) {
                (void)store_.pop();
                if (unfinished_ > 0) --unfinished_;
            }
            if (unfinished_ == 0) finished_.set();
        }
        // Every blocked getter and putter re-checks (and raises).
        getters_.pop_and_wake_all();
        putters_.pop_and_wake_all();
    }

    // Items put and not yet task_done() (asyncio's _unfinished_tasks).
    std::size_t unfinished_tasks() const noexcept { return unfinished_; }
    // Blocked get() / put() calls (woken ones that have not run excluded).
    std::size_t getters() const noexcept { return getters_.size(); }
    std::size_t putters() const noexcept { return putters_.size(); }

private:
    void check_put() const {
        if (shutdown_) throw queue_shut_down();
        if (full()) throw queue_full();
    }
    void store(T&& item) {
        store_.push(std::move(item));
        ++unfinished_;
        finished_.clear();
        getters_.pop_and_wake_next();
    }

    // Cleans up after a cancelled wait in get()/put() (CPython's except:
    // clause): the waiter leaves the queue, and a wake-up it got is passed on
    // if what it was woken for is still there.
    static void abandon_wait(waiter& w, wait_queue& q, bool still_possible) {
        w.cancel();  // in case it is not done yet
        q.remove(w);
        if (still_possible && !w.cancelled()) q.pop_and_wake_next();
    }

    coroutine<T> get_slow() {
        while (empty()) {
            if (shutdown_) throw queue_shut_down();
            wait_outcome o = co_await park_in(getters_, "Queue");
            if (o.error) {
                abandon_wait(*o.w, getters_, !empty());
                std::rethrow_exception(o.error);
            }
        }
        co_return get_nowait();
    }

    coroutine<void> put_slow(T item) {
        while (full()) {
            if (shutdown_) throw queue_shut_down();
            wait_outcome o = co_await park_in(putters_, "Queue");
            if (o.error) {
                abandon_wait(*o.w, putters_, !full());
                std::rethrow_exception(o.error);
            }
        }
        put_nowait(std::move(item));
    }

    Store store_;
    wait_queue getters_;
    wait_queue putters_;
    event finished_;
    std::ptrdiff_t maxsize_;
    std::size_t unfinished_ = 0;
    bool shutdown_ = false;
};

// get(): takes an item at once if there is one (no coroutine frame); else
// runs the waiting loop in a coroutine.
template <class T, class Store>
class [[nodiscard("get() does nothing until awaited: co_await it")]] basic_queue<T, Store>::get_op {
public:
    using pyco_awaitable_tag = void;
    explicit get_op(basic_queue& q) noexcept : q_(&q) {}

    bool await_ready() {
        if (q_->empty()) {
            if (q_->shutdown_) throw queue_shut_down();
            return false;
        }
        item_.emplace(q_->get_nowait());
        return true;
    }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
        slow_ = q_->get_slow();
        aw_.emplace(std::move(slow_).operator co_await());
        return aw_->await_suspend(h);
    }
    T await_resume() {
        if (item_) return std::move(*item_);
        return aw_->await_resume();
    }

private:
    basic_queue* q_;
    std::optional<T> item_;
    coroutine<T> slow_;
    std::optional<typename coroutine<T>::awaiter> aw_;
};

template <class T, class Store>
class [[nodiscard("put() does nothing until awaited: co_await it")]] basic_queue<T, Store>::put_op {
public:
    using pyco_awaitable_tag = void;
    put_op(basic_queue& q, T item) noexcept(std::is_nothrow_move_constructible_v<T>)
        : q_(&q), item_(std::move(item)) {}

    bool await_ready() {
        if (!q_->full() || q_->shutdown_) {
            q_->put_nowait(std::move(item_));  // raises if shut down
            return true;
        }
        return false;
    }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) {
        slow_ = q_->put_slow(std::move(item_));
        aw_.emplace(std::move(slow_).operator co_await());
        return aw_->await_suspend(h);
    }
    void await_resume() {
        if (aw_) aw_->await_resume();
    }

private:
    basic_queue* q_;
    T item_;
    coroutine<void> slow_;
    std::optional<typename coroutine<void>::awaiter> aw_;
};

template <class T, class Store>
class [[nodiscard("join() does nothing until awaited: co_await it")]] basic_queue<T, Store>::join_awaiter {
public:
    using pyco_awaitable_tag = void;
    explicit join_awaiter(event& e) noexcept : a_(e.wait()) {}
    bool await_ready() const noexcept { return a_.await_ready(); }
    void await_suspend(std::coroutine_handle<> h) { a_.await_suspend(h); }
    void await_resume() { a_.await_resume(); }

private:
    event::wait_awaiter a_;
};

}  // namespace detail

template <class T>
class queue : public detail::basic_queue<T, detail::fifo_store<T>> {
public:
    using detail::basic_queue<T, detail::fifo_store<T>>::basic_queue;
};

template <class T, class Compare = std::less<T>>
class priority_queue : public detail::basic_queue<T, detail::heap_store<T, Compare>> {
public:
    using detail::basic_queue<T, detail::heap_store<T, Compare>>::basic_queue;
};

template <class T>
class lifo_queue : public detail::basic_queue<T, detail::lifo_store<T>> {
public:
    using detail::basic_queue<T, detail::lifo_store<T>>::basic_queue;
};

}  // namespace pyco
