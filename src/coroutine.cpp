#include <pyco/coroutine.hpp>

#include <string>
#include <utility>

namespace pyco::detail {

void warn_never_awaited(const std::source_location& where) noexcept {
    try {
        // CPython: RuntimeWarning: coroutine 'f' was never awaited
        log_warning(std::string("RuntimeWarning: coroutine '") + where.function_name() +
                    "' was never awaited\nCoroutine defined at " + where.file_name() + ":" +
                    std::to_string(where.line()));
    } catch (...) {
    }
}

void destroy_frame(std::coroutine_handle<> h, coro_frame* f) noexcept {
    // Down the chain of owned frames, turning each child_ link into a link
    // to the parent (the frames are about to go; nothing follows their
    // links again), so that the climb back needs no memory.
    coro_frame* below = f->child_;
    f->child_ = nullptr;
    coro_frame* deepest = nullptr;
    while (below != nullptr && below->owner_ != nullptr) {
        coro_frame* next = below->child_;
        below->child_ = deepest;
        deepest = below;
        below = next;
    }
    // Up again, destroying: each frame finds its child gone and its own
    // coroutine object (in the frame above) already emptied.
    while (deepest != nullptr) {
        coro_frame* above = deepest->child_;
        deepest->child_ = nullptr;
        std::coroutine_handle<> fh = std::exchange(*deepest->owner_, nullptr);
        deepest->owner_ = nullptr;
        fh.destroy();
        deepest = above;
    }
    h.destroy();
}

}  // namespace pyco::detail
