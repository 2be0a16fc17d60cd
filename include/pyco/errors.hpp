// pyco/errors.hpp — Python's exception hierarchy, as C++ types.
//
//   base_exception                    (Python's BaseException)
//   ├── generator_exit                (GeneratorExit)    not a std::exception
//   ├── cancelled_error               (CancelledError)   not a std::exception
//   ├── keyboard_interrupt            (KeyboardInterrupt) not a std::exception
//   ├── base_exception_group          (BaseExceptionGroup) not a std::exception
//   └── error : std::exception        (Exception)
//       ├── type_error, value_error, runtime_error (broken_barrier_error), timeout_error,
//       ├── invalid_state_error, incomplete_read_error, limit_overrun_error,
//       ├── queue_empty, queue_full, queue_shut_down
//       └── exception_group           (ExceptionGroup)
//
// (CPython's ExceptionGroup is also a BaseExceptionGroup; in C++ that would
// make base_exception an ambiguous base of exception_group, so the two
// group types are siblings that share their interface, detail::group_ops.)
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

class base_exception_group;
class exception_group;

// BaseExceptionGroup(message, exceptions), as CPython's constructor decides
// the kind: an exception_group when every member is an Exception, else a
// base_exception_group. An Exception is what `catch (const std::exception&)`
// catches (pyco::error and the standard library's errors); the others are
// base_exceptions that are not errors (keyboard_interrupt, cancelled_error,
// generator_exit, a user's own), base_exception_groups, and anything else
// thrown. value_error when `exceptions` is empty or holds a null.
std::exception_ptr make_exception_group(std::string message, std::vector<std::exception_ptr> exceptions);

namespace detail {

// What both kinds of group hold, and how they split. Not an exception
// itself; each group type derives from it once, so a handler for it sees
// either kind.
class group_data {
public:
    const std::string& message() const noexcept { return message_; }
    const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

    // The group a member is, of either kind, or null.
    static const group_data* as_group(const std::exception_ptr& e);

protected:
    group_data(std::string message, std::vector<std::exception_ptr> exceptions);

    using parts = std::pair<std::vector<std::exception_ptr>, std::vector<std::exception_ptr>>;

    // The members matching `match` and the rest. A nested group that does
    // not match as a whole is split the same way, each side of it remade
    // with make_exception_group (so a side of a base_exception_group that
    // holds only Exceptions is an exception_group, as in CPython).
    template <class Pred>
    parts partition(Pred& match) const {
        parts out;
        for (const auto& e : exceptions_) {
            if (match(e)) {
                out.first.push_back(e);
            } else if (const group_data* nested = as_group(e)) {
                auto [m, r] = nested->partition(match);
                if (!m.empty()) out.first.push_back(make_exception_group(nested->message_, std::move(m)));
                if (!r.empty()) out.second.push_back(make_exception_group(nested->message_, std::move(r)));
            } else {
                out.second.push_back(e);
            }
        }
        return out;
    }

    std::string message_;
    std::vector<std::exception_ptr> exceptions_;
};

// split/subgroup for a group type G, whose parts are G's.
template <class G>
class group_ops : public group_data {
public:
    // (matching, rest): each a group of the same shape as this one, or
    // nothing when no leaf falls on that side. A nested group that matches
    // as a whole is not taken apart.
    template <class Pred>
    std::pair<std::optional<G>, std::optional<G>> split_if(Pred match) const {
        auto [yes, no] = partition(match);
        return {derive(std::move(yes)), derive(std::move(no))};
    }
    // The leaves matching `match`, in a group of the same shape, or nothing.
    template <class Pred>
    std::optional<G> subgroup_if(Pred match) const {
        return split_if(match).first;
    }

    // except* E: a group that is itself an E is taken whole.
    template <class E>
    std::pair<std::optional<G>, std::optional<G>> split() const {
        if constexpr (std::is_base_of_v<E, G>) {
            return {static_cast<const G&>(*this), std::nullopt};
        } else {
            return split_if(&matches<E>);
        }
    }
    template <class E>
    std::optional<G> subgroup() const {
        return split<E>().first;
    }

    // True when `e` holds an E (or something derived from it).
    template <class E>
    static bool matches(const std::exception_ptr& e) {
        return exception_is<E>(e);
    }

    // raise: throws this group as CPython would have made it (see
    // make_exception_group), which for a part of a base_exception_group
    // holding only Exceptions is an exception_group.
    [[noreturn]] void raise() const { std::rethrow_exception(make_exception_group(message_, exceptions_)); }

protected:
    using group_data::group_data;

private:
    std::optional<G> derive(std::vector<std::exception_ptr> excs) const {
        if (excs.empty()) return std::nullopt;
        return G(message_, std::move(excs));
    }
};

}  // namespace detail

// BaseExceptionGroup: a group that holds at least one exception that is not
// an Exception. A base_exception only, so that `catch (const
// std::exception&)` — `except Exception` — does not catch it, as CPython's
// except Exception does not catch a BaseExceptionGroup. A task_group
// raises one when a child (or the body) failed with such an exception.
//
// C++ types are static: a base_exception_group's split parts are
// base_exception_groups whatever they hold. `part.raise()` throws a part as
// CPython's split would have made it (an exception_group when it holds only
// Exceptions); `throw *part` throws a base_exception_group regardless.
// Nested groups inside parts are already of the right kind.
class base_exception_group : public base_exception, public detail::group_ops<base_exception_group> {
public:
    base_exception_group(std::string message, std::vector<std::exception_ptr> exceptions);
};

// ExceptionGroup: a message and the Exceptions it groups, in order. Groups
// nest; split<E>() and subgroup<E>() keep the nesting, as `except*` does.
// A member that is not an Exception is refused, as CPython refuses it:
// type_error("Cannot nest BaseExceptions in an ExceptionGroup"); use
// make_exception_group to get whichever kind fits.
class exception_group : public error, public detail::group_ops<exception_group> {
public:
    exception_group(std::string message, std::vector<std::exception_ptr> exceptions);
};

}  // namespace pyco
