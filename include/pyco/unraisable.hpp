// pyco/unraisable.hpp — where exceptions go when nothing can receive them.
//
// Python's sys.unraisablehook: a destructor (a generator's close() run by its
// destructor, later a dropped task) must never let an exception out, so it
// hands it here instead. The default hook prints
//   Exception ignored in: <object>
//   <type>: <message>
// to stderr. Thread rule: the hook is one process-wide atomic pointer; it may
// be swapped from any thread and is called on whichever thread raised.
#pragma once

#include <atomic>
#include <exception>
#include <string>
#include <string_view>

namespace pyco {

struct unraisable {
    std::exception_ptr exception;  // never null
    std::string_view err_msg;      // "Exception ignored in" unless more is known
    std::string_view object;       // what raised it, e.g. "<generator object at 0x...>"
};

using unraisable_hook_fn = void (*)(const unraisable&);

// Prints as CPython's default hook does.
void default_unraisable_hook(const unraisable& u) noexcept;

// Assign to replace; `pyco::unraisable_hook = pyco::default_unraisable_hook;`
// restores the default.
extern std::atomic<unraisable_hook_fn> unraisable_hook;

// The one place that calls the hook. A hook that throws is itself ignored.
void report_unraisable(std::exception_ptr e, std::string_view object,
                       std::string_view err_msg = "Exception ignored in") noexcept;

// A short "type: message" description of any exception, for reports.
std::string describe_exception(const std::exception_ptr& e);

}  // namespace pyco
