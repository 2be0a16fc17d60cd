// pyco/detail/cancel_walk.hpp — cancelling a structure of any depth
// without recursion.
//
// Cancelling a task cancels the future it waits on; when that is another
// task, or a gather, cancelling it cancels what *it* waits on, and so on
// down. CPython (and pyco before) recurse: one C++ frame per level, so a
// chain of 70,000 tasks each awaiting the next, or gathers nested 50,000
// deep, overflowed the stack. The walk does the very same visits in the
// same order — depth first, a gather's children in order (duplicates
// included), a task's waited-on future after its own count went up — with
// its own stack of pending levels instead of the C++ one.
//
// Protocol. task_base::cancel and gather_base::cancel, once they know they
// have something below them to cancel, call cancel_walk::run(). If no walk
// is running on this thread, that starts one and runs it to the end, and
// returns the node's answer. If one is running (this cancel() was called
// by the walk itself, on a child), it only pushes the node and returns; the
// running walk goes on from that node, and gives the node's answer to its
// parent when the node is finished. So only the outermost cancel() has a
// C++ frame, and every cancel() below it is one entry in the walk.
//
// What a node does after its children ("finish"): a task whose waited-on
// future refused the cancel keeps the request for its next step
// (must_cancel); a gather any of whose children took it remembers that.
//
// Nothing a cancel() does runs user code (callbacks are queued, not run),
// so the nodes on the walk's stack stay alive: each is held by its parent.
// One message for the whole walk: every level passes on the one it got.
//
// Thread rule: loop thread only; the walk's state is per thread.
#pragma once

#include <cstddef>
#include <string>

namespace pyco::detail {

class future_base;

struct cancel_walk {
    enum class kind : unsigned char { task, gather };
    // Cancel what `node` (a task_base or gather_base, by `k`) waits on and
    // finish it; its cancel()'s answer, when this call ran the walk.
    static bool run(future_base* node, kind k, const std::string& msg);
};

}  // namespace pyco::detail
