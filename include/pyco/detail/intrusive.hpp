// pyco/detail/intrusive.hpp — a reference-counted pointer for loop objects.
//
// Futures, tasks and handles are shared between the user's handles and the
// loop's queues. All of them live on one loop thread, so the count is a
// plain integer: cheaper than shared_ptr's atomics and its control block.
#pragma once

#include <cstdint>
#include <utility>

namespace pyco::detail {

// Base for objects counted by intrusive_ptr; starts at one reference.
class refcounted {
public:
    refcounted() = default;
    refcounted(const refcounted&) = delete;
    refcounted& operator=(const refcounted&) = delete;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) destroy();
    }
    std::uint32_t use_count() const noexcept { return refs_; }

protected:
    virtual ~refcounted() = default;
    virtual void destroy() noexcept { delete this; }

private:
    std::uint32_t refs_ = 1;
};

template <class T>
class intrusive_ptr {
public:
    intrusive_ptr() noexcept = default;
    // Adopts a reference the caller already holds.
    static intrusive_ptr adopt(T* p) noexcept {
        intrusive_ptr r;
        r.p_ = p;
        return r;
    }
    // Takes a new reference.
    explicit intrusive_ptr(T* p) noexcept : p_(p) {
        if (p_) p_->add_ref();
    }
    intrusive_ptr(const intrusive_ptr& o) noexcept : intrusive_ptr(o.p_) {}
    intrusive_ptr(intrusive_ptr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    template <class U>
    intrusive_ptr(intrusive_ptr<U>&& o) noexcept : p_(o.detach()) {}
    intrusive_ptr& operator=(intrusive_ptr o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~intrusive_ptr() {
        if (p_) p_->release();
    }

    T* get() const noexcept { return p_; }
    T* operator->() const noexcept { return p_; }
    T& operator*() const noexcept { return *p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    T* detach() noexcept { return std::exchange(p_, nullptr); }
    friend bool operator==(const intrusive_ptr& a, const intrusive_ptr& b) noexcept {
        return a.p_ == b.p_;
    }

private:
    T* p_ = nullptr;
};

// A link in an intrusive circular list (the loop's live tasks). A lone
// link points at itself; unlinking twice is harmless.
struct list_link {
    list_link* prev = this;
    list_link* next = this;
    list_link() = default;
    list_link(const list_link&) = delete;
    list_link& operator=(const list_link&) = delete;
    void push_back(list_link& n) noexcept {  // called on the sentinel
        n.prev = prev;
        n.next = this;
        prev->next = &n;
        prev = &n;
    }
    void unlink() noexcept {
        prev->next = next;
        next->prev = prev;
        prev = next = this;
    }
    bool linked() const noexcept { return next != this; }
};

}  // namespace pyco::detail
