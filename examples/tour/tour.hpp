// The pyco tour: Python's coroutine model, one idea at a time, in C++.
// Each part prints a trace of what happens, in the order it happens.
#pragma once

#include <pyco/pyco.hpp>

#include <cstdio>

namespace tour {

inline void section(const char* title) { std::printf("\n== %s\n", title); }

inline const char* name(pyco::gen_state s) {
    switch (s) {
        case pyco::gen_state::created: return "GEN_CREATED";
        case pyco::gen_state::running: return "GEN_RUNNING";
        case pyco::gen_state::suspended: return "GEN_SUSPENDED";
        case pyco::gen_state::closed: return "GEN_CLOSED";
    }
    return "?";
}

// Part one: generators (PEP 255), coroutines that receive values (PEP 342),
// delegation with `yield from` (PEP 380).
void part_one();
// Part two: async/await, tasks, cancellation, timeouts, task groups, async
// generators, task dumps (PEP 492, 525, asyncio).
void part_two();
// Part three: queues, threads, signals, and the pre-PEP-492 style.
void part_three();
// Part four: networking (a server and a client in one program) and async
// files: a file read, then an HTTP request, in both styles.
void part_four();
// Part five: subprocesses (a certificate made by `openssl req`, signals, a
// pipeline with back-pressure) and TLS (ssl=, a refused certificate,
// STARTTLS).
void part_five();

}  // namespace tour
