// pyco/errors.hpp — Python's exception hierarchy, as C++ types.
//
//   base_exception                    (Python's BaseException)
//   ├── generator_exit                (GeneratorExit)    not a std::exception
//   ├── cancelled_error               (CancelledError)   not a std::exception
//   ├── keyboard_interrupt            (KeyboardInterrupt) not a std::exception
//   └── error : std::exception        (Exception)
//       ├── type_error, value_error, runtime_error (broken_barrier_error), timeout_error,
//       ├── invalid_state_error, incomplete_read_error, limit_overrun_error,
//       ├── queue_empty, queue_full, queue_shut_down
//       └── exception_group           (ExceptionGroup)
//
// Why generator_exit and cancelled_error stay outside std::exception: in
// Python they are BaseExceptions precisely so that `except Exception:` cannot
// swallow a close or a cancellation. `catch (const std::exception&)` is the
// C++ spelling of that handler, so the same guarantee needs the same split.
// OS failures are std::system_error with errno kept; they are not wrapped.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace pyco {

// The root. Carries the message; what() never throws.
class base_exception {
public:
    base_exception() = default;
    explicit base_exception(std::string message) : message_(std::move(message)) {}
    virtual ~base_exception() = default;
    base_exception(const base_exception&) = default;
    base_exception& operator=(const base_exception&) = default;

    virtual const char* what() const noexcept { return message_.c_str(); }

private:
    std::string message_;
};

// Raised at the suspended co_yield by generator::close().
class generator_exit : public base_exception {
public:
    generator_exit() = default;
    using base_exception::base_exception;
};

// Raised at a task's current co_await by task::cancel().
class cancelled_error : public base_exception {
public:
    cancelled_error() = default;
    using base_exception::base_exception;
};

// What pyco::run raises when Ctrl-C (SIGINT) ended main, as asyncio.run
// raises KeyboardInterrupt.
class keyboard_interrupt : public base_exception {
public:
    keyboard_interrupt() = default;
    using base_exception::base_exception;
};

// Python's Exception: catchable both as pyco::error and as std::exception.
// One what() overrides both bases, so either handler sees the same message.
class error : public base_exception, public std::exception {
public:
    error() = default;
    using base_exception::base_exception;
    const char* what() const noexcept override { return base_exception::what(); }
};

#define PYCO_DEFINE_ERROR(name)          \
    class name : public error {          \
    public:                              \
        name() = default;                \
        using error::error;              \
    }

PYCO_DEFINE_ERROR(type_error);
PYCO_DEFINE_ERROR(value_error);
PYCO_DEFINE_ERROR(runtime_error);
PYCO_DEFINE_ERROR(timeout_error);
PYCO_DEFINE_ERROR(invalid_state_error);

#undef PYCO_DEFINE_ERROR

// asyncio.BrokenBarrierError, a RuntimeError.
class broken_barrier_error : public runtime_error {
public:
    using runtime_error::runtime_error;
};

// asyncio.IncompleteReadError: EOF came before `expected` bytes (or, with no
// expected count, before the separator). The bytes read so far are kept.
// what(): "2 bytes read on a total of 5 expected bytes", and "... of
// undefined expected bytes" without a count (CPython's str()).
class incomplete_read_error : public error {
public:
    incomplete_read_error(std::string partial, std::optional<std::size_t> expected);
    const std::string& partial() const noexcept { return partial_; }
    std::optional<std::size_t> expected() const noexcept { return expected_; }

private:
    std::string partial_;
    std::optional<std::size_t> expected_;
};

// asyncio.LimitOverrunError: a line or chunk outgrew the reader's limit.
class limit_overrun_error : public error {
public:
    limit_overrun_error(std::string message, std::size_t consumed)
        : error(std::move(message)), consumed_(consumed) {}
    std::size_t consumed() const noexcept { return consumed_; }

private:
    std::size_t consumed_;
};

// CPython raises these without a message; ours say what happened.
class queue_empty : public error {
public:
    queue_empty() : error("queue is empty") {}
};
class queue_full : public error {
public:
    queue_full() : error("queue is full") {}
};
class queue_shut_down : public error {
public:
    queue_shut_down() : error("queue is shut down") {}
};

// isinstance(e, E) for an exception_ptr: true when e holds an E or
// something derived from it; false for null.
template <class E>
bool exception_is(const std::exception_ptr& e) noexcept {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

// ExceptionGroup: a message and the exceptions it groups, in order. Groups
// nest; split<E>() and subgroup<E>() keep the nesting, as `except*` does.
class exception_group : public error {
public:
    exception_group(std::string message, std::vector<std::exception_ptr> exceptions);

    const std::string& message() const noexcept { return message_; }
    const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

    // The leaves matching `match`, in a group of the same shape, or nothing.
    template <class Pred>
    std::optional<exception_group> subgroup_if(Pred match) const {
        return split_if(match).first;
    }

    // (matching, rest): each a group of the same shape as this one, or nothing
    // when no leaf falls on that side. A nested group that matches as a whole
    // is not taken apart.
    template <class Pred>
    std::pair<std::optional<exception_group>, std::optional<exception_group>>
    split_if(Pred match) const {
        std::vector<std::exception_ptr> yes, no;
        for (const auto& e : exceptions_) {
            if (match(e)) {
                yes.push_back(e);
                continue;
            }
            if (const exception_group* nested = as_group(e)) {
                auto [m, r] = nested->split_if(match);
                if (m) yes.push_back(std::make_exception_ptr(std::move(*m)));
                if (r) no.push_back(std::make_exception_ptr(std::move(*r)));
            } else {
                no.push_back(e);
            }
        }
        return {derive(std::move(yes)), derive(std::move(no))};
    }

    // except* E: a group that is itself an E is taken whole.
    template <class E>
    std::pair<std::optional<exception_group>, std::optional<exception_group>> split() const {
        if constexpr (std::is_base_of_v<E, exception_group>) {
            return {*this, std::nullopt};
        } else {
            return split_if(&matches<E>);
        }
    }
    template <class E>
    std::optional<exception_group> subgroup() const {
        return split<E>().first;
    }

    // True when `e` holds an E (or something derived from it).
    template <class E>
    static bool matches(const std::exception_ptr& e) {
        return exception_is<E>(e);
    }

private:
    static const exception_group* as_group(const std::exception_ptr& e);
    std::optional<exception_group> derive(std::vector<std::exception_ptr> excs) const;

    std::string message_;
    std::vector<std::exception_ptr> exceptions_;
};

}  // namespace pyco
