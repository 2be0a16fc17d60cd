// Helpers shared by the stream_reader tests.
#pragma once

#include <pyco/net/stream_reader.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <pyco/event_loop.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::stream_reader;
using strings = std::vector<std::string>;

// test_utils.run_briefly: one iteration of the loop.
void run_briefly(pyco::event_loop& loop) {
    loop.stop();
    loop.run_forever();
}

// A transport that records flow control.
struct fake_transport : pyco::detail::reading_control {
    strings calls;
    bool paused = false;
    std::function<void()> on_resume;
    void pause_reading() override {
        EXPECT_FALSE(paused);
        paused = true;
        calls.emplace_back("pause");
    }
    void resume_reading() override {
        EXPECT_TRUE(paused);
        paused = false;
        calls.emplace_back("resume");
        if (on_resume) on_resume();
    }
};

template <class E, class F>
E expect_raises(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e;
    } catch (...) {
        ADD_FAILURE() << "raised something else";
        throw;
    }
    ADD_FAILURE() << "did not raise";
    throw std::logic_error("did not raise");
}

}  // namespace
