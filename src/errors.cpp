#include <pyco/errors.hpp>

namespace pyco {

namespace {

std::string incomplete_read_message(std::size_t got, std::optional<std::size_t> expected) {
    // CPython: f'{len(partial)} bytes read on a total of {r_expected} expected bytes',
    // r_expected being 'undefined' when expected is None.
    return std::to_string(got) + " bytes read on a total of " +
           (expected ? std::to_string(*expected) : std::string("undefined")) + " expected bytes";
}

// isinstance(e, Exception): what `catch (const std::exception&)` catches.
bool is_exception(const std::exception_ptr& e) { return exception_is<std::exception>(e); }

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

namespace detail {

group_data::group_data(std::string message, std::vector<std::exception_ptr> exceptions)
    : message_(std::move(message)), exceptions_(std::move(exceptions)) {
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

const group_data* group_data::as_group(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const group_data& g) {
        // The object lives inside `e`, which the caller keeps alive.
        return &g;
    } catch (...) {
        return nullptr;
    }
}

}  // namespace detail

base_exception_group::base_exception_group(std::string message, std::vector<std::exception_ptr> exceptions)
    : base_exception(group_message(message, exceptions.size())),
      group_ops(std::move(message), std::move(exceptions)) {}

exception_group::exception_group(std::string message, std::vector<std::exception_ptr> exceptions)
    : error(group_message(message, exceptions.size())), group_ops(std::move(message), std::move(exceptions)) {
    for (const std::exception_ptr& e : exceptions_) {
        if (!is_exception(e)) throw type_error("Cannot nest BaseExceptions in an ExceptionGroup");
    }
}

std::exception_ptr make_exception_group(std::string message, std::vector<std::exception_ptr> exceptions) {
    bool all = true;
    for (const std::exception_ptr& e : exceptions) {
        if (e && !is_exception(e)) {
            all = false;
            break;
        }
    }
    if (all) return std::make_exception_ptr(exception_group(std::move(message), std::move(exceptions)));
    return std::make_exception_ptr(base_exception_group(std::move(message), std::move(exceptions)));
}

}  // namespace pyco
