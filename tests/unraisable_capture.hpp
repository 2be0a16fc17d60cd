// Test helper: while alive, reports to pyco::unraisable_hook are recorded
// here ("type: message" and the object) instead of printed.
#pragma once

#include <pyco/unraisable.hpp>

#include <string>
#include <vector>

struct unraisable_capture {
    std::vector<std::string> reports;
    std::vector<std::string> objects;

    unraisable_capture() : previous_(pyco::unraisable_hook.exchange(&record)) { current() = this; }
    ~unraisable_capture() {
        pyco::unraisable_hook.store(previous_);
        current() = nullptr;
    }
    unraisable_capture(const unraisable_capture&) = delete;
    unraisable_capture& operator=(const unraisable_capture&) = delete;

private:
    static unraisable_capture*& current() {
        static unraisable_capture* c = nullptr;
        return c;
    }
    static void record(const pyco::unraisable& u) {
        if (unraisable_capture* c = current()) {
            c->reports.push_back(pyco::describe_exception(u.exception));
            c->objects.emplace_back(u.object);
        }
    }
    pyco::unraisable_hook_fn previous_;
};
