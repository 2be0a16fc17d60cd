// pyco/detail/gather_base.hpp — the untyped half of gather's future
// (CPython's _GatheringFuture and gather's _done_callback).
//
// The gathering future watches its children through one done callback per
// distinct child (a child passed twice counts once, as in CPython). It
// never becomes cancelled itself: cancel() cancels the children and, if
// any took the request, remembers it, so that the gather ends with
// cancelled_error once every child is done, whatever return_exceptions.
// Cancelling the children goes through a cancel_walk
// (detail/cancel_walk.hpp), never by recursion: gathers nest to any depth.
//
// Ownership: the derived gather_state holds the children (their results are
// read at the end). The children's callbacks reach the gather through a
// small shared gather_link, not a reference: a reference would make a
// child that never completes and its gather keep each other alive for
// ever. A gather dropped clears the link. If it was done, later failures
// are marked retrieved, as the done gather would have; if it was pending,
// a failed child reports its own unretrieved exception.
//
// Thread rule: loop thread only.
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

#include <pyco/detail/cancel_walk.hpp>
#include <pyco/detail/future_base.hpp>
#include <pyco/detail/intrusive.hpp>

namespace pyco::detail {

class gather_base;

struct gather_link final : refcounted {
    explicit gather_link(gather_base* g) noexcept : gather(g) {}
    gather_base* gather;  // null once the gather is gone
    bool gather_was_done = false;
};

class gather_base : public future_base {
public:
    gather_base(event_loop& loop, bool return_exceptions);

    // _GatheringFuture.cancel: false when done or when no child could be
    // cancelled ("gather refuses cancel once children are done").
    bool cancel(std::string msg = {}) override;

protected:
    ~gather_base() override;
    // Start watching `children` (in argument order, duplicates kept; the
    // derived class owns them). No children: done at once.
    void watch(std::vector<future_base*> children);
    // Every child is done and the gather takes their results: set_result.
    virtual void set_results() = 0;

private:
    friend struct cancel_walk;
    static void child_done(void* link, void* fut, bool run);
    void on_child_done(future_base& child);

    std::vector<future_base*> children_;
    intrusive_ptr<gather_link> link_;
    std::size_t nfuts_ = 0;
    std::size_t nfinished_ = 0;
    bool return_exceptions_;
    bool cancel_requested_ = false;
};

}  // namespace pyco::detail
