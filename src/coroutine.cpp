#include <pyco/coroutine.hpp>

#include <string>

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

void refuse_await(const coro_frame& c, bool done, const coro_frame* awaiting) {
    // CPython's order: a finished coroutine cannot be reused; one that is
    // inside an await (ours: anywhere in the chain down to the running
    // frame, which CPython calls executing) is being awaited.
    if (done) throw runtime_error("cannot reuse already awaited coroutine");
    if (awaiting != nullptr) {
        for (const coro_frame* f = &c; f != nullptr; f = f->child_) {
            if (f == awaiting) throw value_error("coroutine already executing");
        }
    }
    throw runtime_error("coroutine is being awaited already");
}

}  // namespace pyco::detail
