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

}  // namespace pyco::detail
