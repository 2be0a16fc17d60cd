// Part one of the tour: generators, send, throw_, close, yield from.
#include "tour.hpp"

#include <string>
#include <vector>

namespace {

using tour::name;


// --- 1. A generator: lazy, suspended at each co_yield ----------------------

pyco::generator<int> countdown(int n) {
    std::printf("  countdown: starting at %d\n", n);
    while (n > 0) {
        co_yield n;
        --n;
    }
    std::printf("  countdown: done\n");
}

void simple_generator() {
    tour::section("1. A simple generator and its states");
    auto g = countdown(2);
    std::printf("  created, nothing ran yet: %s\n", name(g.state()));
    while (auto v = g.next()) {
        std::printf("  next() -> %d, now %s\n", *v, name(g.state()));
    }
    std::printf("  next() -> (finished), now %s\n", name(g.state()));
    for (int x : countdown(3)) std::printf("  range-for got %d\n", x);
}

// --- 2. A coroutine that receives values with send() -----------------------

// Python's classic `grep` coroutine: `line = (yield)`. Lines come in with
// send(); `co_yield` evaluates to each one.
pyco::generator<bool, std::string> grep(std::string pattern) {
    std::printf("  grep: looking for \"%s\"\n", pattern.c_str());
    while (true) {
        std::string line;
        try {
            line = co_yield false;
        } catch (const pyco::generator_exit&) {
            std::printf("  grep: generator_exit raised at co_yield; cleaning up\n");
            throw;
        }
        if (line == "") break;  // the sentinel ends it
        if (line.find(pattern) != std::string::npos) {
            std::printf("  grep: match: %s\n", line.c_str());
        }
    }
    std::printf("  grep: sentinel seen, returning\n");
}

void receiving_values() {
    tour::section("2. A coroutine receiving values with send()");
    auto g = grep("python");
    try {
        g.send("too early");
    } catch (const pyco::type_error& e) {
        std::printf("  send() before starting: type_error: %s\n", e.what());
    }
    g.next();  // run to the first co_yield
    g.send("yeah, but no, but yeah");
    g.send("python generators rock!");
    g.send("");  // the sentinel: grep returns
    std::printf("  after the sentinel: %s\n", name(g.state()));

    tour::section("3. Priming, and ending with close()");
    auto h = pyco::primed(grep("coroutine"));  // next() already called
    std::printf("  primed: %s\n", name(h.state()));
    h.send("a coroutine is a generator that receives");
    h.close();  // generator_exit at the co_yield; grep lets it unwind
    std::printf("  after close(): %s\n", name(h.state()));
}

// --- 4. throw_() with the exception caught inside ---------------------------

pyco::generator<std::string> resilient_worker() {
    int done = 0;
    while (true) {
        std::string report;
        try {
            co_yield "worked " + std::to_string(done++);
        } catch (const pyco::value_error& e) {
            report = std::string("recovered from: ") + e.what();
        }
        // C++ has no co_yield inside a catch block: catch, remember, yield.
        if (!report.empty()) co_yield report;
    }
}

void throwing_in() {
    tour::section("4. throw_() into a generator that handles it");
    auto w = resilient_worker();
    std::printf("  next()   -> %s\n", w.next()->c_str());
    std::printf("  throw_() -> %s\n", w.throw_(pyco::value_error("bad input"))->c_str());
    std::printf("  next()   -> %s\n", w.next()->c_str());
    auto plain = countdown(3);
    plain.next();
    try {
        plain.throw_(pyco::runtime_error("not handled"));
    } catch (const pyco::runtime_error& e) {
        std::printf("  unhandled throw_ comes back out: %s; generator is %s\n", e.what(),
                    name(plain.state()));
    }
}

// --- 5. A running average returned through yield from -----------------------

// Receives numbers; yields the average so far; returns it when sent -1.
pyco::generator<double, double, double> averager() {
    double total = 0, average = 0;
    int count = 0;
    while (true) {
        double x = co_yield average;
        if (x < 0) break;
        total += x;
        ++count;
        average = total / count;
    }
    co_return average;
}

// Delegates to a fresh averager per group; `co_yield pyco::from(...)` is
// `yield from`: sends go straight through, and it evaluates to the return.
pyco::generator<double, double> grouper(std::vector<double>& results) {
    while (true) {
        double avg = co_yield pyco::from(averager());
        results.push_back(avg);
    }
}

void running_average() {
    tour::section("5. A running average returned through co_yield pyco::from(...)");
    std::vector<double> results;
    auto g = pyco::primed(grouper(results));
    for (double kg : {40.9, 38.5, 44.3}) {
        std::printf("  send(%.1f) -> average so far %.2f\n", kg, *g.send(kg));
    }
    g.send(-1);  // ends this averager; the grouper starts a new one
    for (double m : {1.38, 1.5, 1.32}) g.send(m);
    g.send(-1);
    std::printf("  group results: %.2f kg, %.2f m\n", results[0], results[1]);
}

// --- 6. A main generator driving sub-generators in turn ---------------------

// Stand-ins for I/O steps: each co_yield is "waiting for the outside world".
pyco::generator<std::string, void, std::string> file_read(std::string path) {
    co_yield "open " + path;
    co_yield "read block 1 of " + path;
    co_yield "read block 2 of " + path;
    co_return "<contents of " + path + ">";
}

pyco::generator<std::string, void, int> http_request(std::string url, std::string body) {
    co_yield "connect " + url;
    co_yield "send " + std::to_string(body.size()) + " bytes";
    co_yield "await response";
    co_return 200;
}

pyco::generator<std::string> upload(std::string path, std::string url) {
    std::string data = co_yield pyco::from(file_read(path));
    int status = co_yield pyco::from(http_request(url, data));
    co_yield "uploaded " + path + ": HTTP " + std::to_string(status);
}

void delegation() {
    tour::section("6. Delegation: a main generator drives a file read, then an HTTP request");
    // The driver sees one flat stream of steps; it neither knows nor cares
    // which sub-generator produced each.
    int step = 0;
    for (const std::string& s : upload("report.csv", "https://example.invalid/up")) {
        std::printf("  step %d: %s\n", ++step, s.c_str());
    }
}

}  // namespace

void tour::part_one() {
    std::printf("\n######## Part one: generators (PEP 255, 342, 380)\n"
                "######## examples/tour/part_one.cpp\n");
    simple_generator();
    receiving_values();
    throwing_in();
    running_average();
    delegation();
}
