// Private to src/: the loop's signal bookkeeping (see signals.cpp).
#pragma once

#include <signal.h>

#include <functional>
#include <map>

#include <pyco/event_loop.hpp>

namespace pyco {

struct event_loop::signal_state {
    int read_fd = -1;   // the loop watches it
    int write_fd = -1;  // the C handler writes signal numbers to it
    struct entry {
        std::function<void()> fn;
        struct sigaction previous;  // restored on removal
    };
    std::map<int, entry> handlers;
};

}  // namespace pyco
