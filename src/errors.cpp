#include <pyco/errors.hpp>

namespace pyco {

namespace {

std::string incomplete_read_message(std::size_t got, std::optional<std::size_t> expected) {
    // CPython: f'{len(partial)} bytes read on a total of {r_expected} expected bytes',
    // r_expected being 'undefined' when expected is None.
    return std::to_string(got) + " bytes read on a total of " +
           (expected ? std::to_string(*expected) : std::string("undefined")) + " expected bytes";
}

std::string group_message(const std::string& message, std::size_t n) {
    // CPython's str(ExceptionGroup): 'msg (2 sub-exceptions)'
    return message + " (" + std::to_string(n) + (n == 1 ? " sub-exception)" : " sub-exceptions)");
}

}  // namespace

incomplete_read_error::incomplete_read_error(std::string partial,
                                             std::optional<std::size_t> expected)
    : error(incomplete_read_message(partial.size(), expected)),
      partial_(std::move(partial)),
      expected_(expected) {}

exception_group::exception_group(std::string message, std::vector<std::exception_ptr> exceptions)
    : error(group_message(message, exceptions.size())),
      message_(std::move(message)),
      exceptions_(std::move(exceptions)) {
    if (exceptions_.empty()) {
        throw value_error("second argument (exceptions) must be a non-empty sequence");
    }
    for (std::size_t i = 0; i < exceptions_.size(); ++i) {
        if (!exceptions_[i]) {
            throw value_error("Item " + std::to_string(i) +
                              " of second argument (exceptions) is not an exception");
        }
    }
}

const exception_group* exception_group::as_group(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const exception_group& g) {
        // The object lives inside `e`, which the caller keeps alive.
        return &g;
    } catch (...) {
        return nullptr;
    }
}

std::optional<exception_group> exception_group::derive(std::vector<std::exception_ptr> excs) const {
    if (excs.empty()) return std::nullopt;
    return exception_group(message_, std::move(excs));
}

}  // namespace pyco
