// pyco::stream_reader beyond CPython's tests: cancel safety of every read
// method under random feeding, waking and cancelling; flow control against
// a fake transport at the 2 x limit / limit marks; and inputs that would be
// quadratic with a naive buffer or search (no timing asserts: a quadratic
// version would not finish within the test's timeout).
#include <pyco/net/stream_reader.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include <pyco/event_loop.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

#include "net/stream_reader_util.hpp"

namespace {

// ---- flow control

TEST(StreamReader, FeedPausesAboveTwiceTheLimitReadsResumeAtTheLimit) {
    pyco::event_loop loop;
    stream_reader r(4);
    fake_transport tr;
    r.set_transport(&tr);
    r.feed_data("12345678");  // 8 = 2 x limit: not over
    EXPECT_EQ(tr.calls, strings{});
    r.feed_data("9");
    EXPECT_EQ(tr.calls, strings{"pause"});
    r.feed_data("abcde");
    EXPECT_EQ(tr.calls, strings{"pause"});
    EXPECT_EQ(loop.run_until_complete(r.read(5)), "12345");
    EXPECT_EQ(tr.calls, strings{"pause"});  // 9 left
    EXPECT_EQ(loop.run_until_complete(r.readexactly(5)), "6789a");
    EXPECT_EQ(tr.calls, (strings{"pause", "resume"}));  // 4 left
}

TEST(StreamReader, ReadlineResumesWhenTheBufferFallsToTheLimit) {
    pyco::event_loop loop;
    stream_reader r(4);
    fake_transport tr;
    r.set_transport(&tr);
    r.feed_data("ab\ncd\nefgh\n");  // 11 > 8
    EXPECT_EQ(loop.run_until_complete(r.readline()), "ab\n");
    EXPECT_EQ(loop.run_until_complete(r.readline()), "cd\n");
    EXPECT_EQ(tr.calls, strings{"pause"});  // 5 left
    // An over-long line dropped by readline also resumes.
    r.set_transport(nullptr);
    stream_reader r2(2);
    fake_transport tr2;
    r2.set_transport(&tr2);
    r2.feed_data("abcdefg\n");
    EXPECT_THROW(loop.run_until_complete(r2.readline()), pyco::value_error);
    EXPECT_EQ(tr2.calls, (strings{"pause", "resume"}));
}

// _wait_for_data resumes a paused transport before waiting: readexactly(n)
// for n > 2 x limit would deadlock otherwise.
TEST(StreamReader, WaitingResumesAPausedTransport) {
    pyco::event_loop loop;
    stream_reader r(2);
    fake_transport tr;
    r.set_transport(&tr);
    r.feed_data("12345");
    EXPECT_EQ(tr.calls, strings{"pause"});
    auto t = pyco::create_task(loop, r.readexactly(10));
    run_briefly(loop);
    EXPECT_EQ(tr.calls, (strings{"pause", "resume"}));
    // While readexactly waits for more, feeding does not pause (CPython
    // pauses and resumes again at once); it ends with the buffer at <= limit.
    r.feed_data("678");
    r.feed_data("90");
    EXPECT_EQ(loop.run_until_complete(t), "1234567890");
    EXPECT_EQ(tr.calls, (strings{"pause", "resume"}));
}

// When readexactly ends with more than limit left of a buffer that went
// over 2 x limit, the transport is paused as CPython leaves it.
TEST(StreamReader, ReadexactlyLeavesThePauseCPythonWouldHave) {
    pyco::event_loop loop;
    stream_reader r(2);
    fake_transport tr;
    r.set_transport(&tr);
    auto t = pyco::create_task(loop, r.readexactly(3));
    run_briefly(loop);
    r.feed_data("12345678");
    EXPECT_EQ(tr.calls, strings{});
    EXPECT_EQ(loop.run_until_complete(t), "123");
    EXPECT_EQ(tr.calls, strings{"pause"});
}

TEST(StreamReader, ReadAllDoesNotPauseWhileWaitingAndPausesWhenCancelled) {
    pyco::event_loop loop;
    stream_reader r(2);
    fake_transport tr;
    r.set_transport(&tr);
    auto t = pyco::create_task(loop, r.read());
    run_briefly(loop);
    r.feed_data("12345");
    run_briefly(loop);
    r.feed_data("67890");
    run_briefly(loop);
    EXPECT_EQ(tr.calls, strings{});
    t.cancel();
    run_briefly(loop);
    ASSERT_TRUE(t.cancelled());
    EXPECT_EQ(tr.calls, strings{"pause"});
    EXPECT_EQ(r.buffer(), "1234567890");  // nothing lost
    auto t2 = pyco::create_task(loop, r.read());
    run_briefly(loop);
    EXPECT_EQ(tr.calls, (strings{"pause", "resume"}));
    r.feed_data("!");
    r.feed_eof();
    EXPECT_EQ(loop.run_until_complete(t2), "1234567890!");
    EXPECT_EQ(tr.calls, (strings{"pause", "resume"}));
}

TEST(StreamReader, ReadexactlyCancelledOverTwiceTheLimitPauses) {
    pyco::event_loop loop;
    stream_reader r(2);
    fake_transport tr;
    r.set_transport(&tr);
    auto t = pyco::create_task(loop, r.readexactly(100));
    run_briefly(loop);
    r.feed_data("123456");
    EXPECT_EQ(tr.calls, strings{});
    t.cancel();
    run_briefly(loop);
    EXPECT_EQ(tr.calls, strings{"pause"});
    EXPECT_EQ(r.buffer(), "123456");
}

// A transport may feed the reader from resume_reading(): the read must see
// those bytes instead of waiting for more.
TEST(StreamReader, ResumeReadingThatFeedsAtOnceIsNoticed) {
    pyco::event_loop loop(pyco::loop_options{.virtual_time = true});
    stream_reader r(2);
    fake_transport tr;
    r.set_transport(&tr);
    r.feed_data("12345");
    tr.on_resume = [&] { r.feed_data("6"); };
    auto timed = pyco::wait_for(r.readexactly(6), 10s);
    EXPECT_EQ(loop.run_until_complete(std::move(timed)), "123456");
    tr.on_resume = [&] { r.set_exception(std::make_exception_ptr(pyco::value_error("gone"))); };
    r.feed_data("abcdef");  // over 4: paused again
    auto failing = pyco::wait_for(r.readexactly(10), 10s);
    EXPECT_THROW(loop.run_until_complete(std::move(failing)), pyco::value_error);
}

// ---- cancel safety: random feeding, waking and cancelling; every byte fed
// is either returned by exactly one read or still in the buffer.

struct outcome {
    std::string data;
    bool end = false;
};

template <class Make, class Collect>
void chaos(unsigned seed, const std::string& data, Make make_read, Collect collect) {
    std::mt19937 rng(seed);
    pyco::event_loop loop;
    stream_reader r;
    std::size_t fed = 0;
    std::string got;
    int cancels = 0;
    auto feed = [&] {
        if (fed < data.size()) {
            const std::size_t n = std::min<std::size_t>(1 + rng() % 23, data.size() - fed);
            r.feed_data(std::string_view(data).substr(fed, n));
            fed += n;
        } else if (!r.at_eof() && rng() % 4 == 0) {
            r.feed_eof();
        }
    };
    auto t = pyco::create_task(loop, make_read(r));
    for (int step = 0; step < 1'000'000; ++step) {
        switch (rng() % 5) {
        case 0:
        case 1:
            feed();
            break;
        case 2:
            run_briefly(loop);
            break;
        case 3:
            if (rng() % 3 == 0) t.cancel();
            break;
        case 4:  // woken, then cancelled before it runs
            feed();
            t.cancel();
            break;
        }
        if (fed == data.size() && rng() % 8 == 0) r.feed_eof();
        if (t.done()) {
            if (t.cancelled()) {
                ++cancels;
            } else {
                outcome o = collect(t);
                got += o.data;
                if (o.end) break;
            }
            t = pyco::create_task(loop, make_read(r));
        }
        // Nothing lost, nothing duplicated.
        ASSERT_EQ(got + std::string(r.buffer()), data.substr(0, fed)) << "seed " << seed << " step " << step;
    }
    EXPECT_EQ(got, data) << "seed " << seed;
    EXPECT_GT(cancels, 0) << "seed " << seed;
    if (!t.done()) {
        t.cancel();
        run_briefly(loop);
    }
}

std::string random_text(unsigned seed, std::size_t n, const std::string& alphabet) {
    std::mt19937 rng(seed);
    std::string s(n, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
}

TEST(StreamReaderCancelSafety, Readline) {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        const std::string data = random_text(seed, 3000, "abcdefgh\n");
        chaos(
            seed, data, [](stream_reader& r) { return r.readline(); },
            [](pyco::task<std::string>& t) {
                std::string s = t.result();
                const bool end = s.empty();
                return outcome{std::move(s), end};
            });
    }
}

TEST(StreamReaderCancelSafety, Anext) {
    for (unsigned seed = 1; seed <= 10; ++seed) {
        const std::string data = random_text(seed, 3000, "abcdefgh\n");
        chaos(
            seed, data, [](stream_reader& r) { return r.anext(); },
            [](pyco::task<std::optional<std::string>>& t) {
                std::optional<std::string> s = t.result();
                return s ? outcome{std::move(*s), false} : outcome{{}, true};
            });
    }
}

TEST(StreamReaderCancelSafety, Readuntil) {
    const strings seps{"xyz", "zz", "qq"};
    for (unsigned seed = 1; seed <= 20; ++seed) {
        const std::string data = random_text(seed, 3000, "abxyzq");
        auto make = [&](stream_reader& r) {
            strings s = seps;
            return r.readuntil(std::move(s));
        };
        chaos(seed, data, make, [](pyco::task<std::string>& t) {
            try {
                return outcome{t.result(), false};
            } catch (const pyco::incomplete_read_error& e) {
                return outcome{e.partial(), true};
            }
        });
    }
}

TEST(StreamReaderCancelSafety, Readexactly) {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        const std::string data = random_text(seed, 3000, "0123456789");
        chaos(
            seed, data, [](stream_reader& r) { return r.readexactly(37); },
            [](pyco::task<std::string>& t) {
                try {
                    return outcome{t.result(), false};
                } catch (const pyco::incomplete_read_error& e) {
                    EXPECT_EQ(e.expected(), std::optional<std::size_t>(37));
                    return outcome{e.partial(), true};
                }
            });
    }
}

TEST(StreamReaderCancelSafety, ReadN) {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        const std::string data = random_text(seed, 3000, "0123456789");
        chaos(
            seed, data, [](stream_reader& r) { return r.read(11); },
            [](pyco::task<std::string>& t) {
                std::string s = t.result();
                const bool end = s.empty();
                return outcome{std::move(s), end};
            });
    }
}

TEST(StreamReaderCancelSafety, ReadAll) {
    for (unsigned seed = 1; seed <= 20; ++seed) {
        const std::string data = random_text(seed, 3000, "0123456789");
        chaos(
            seed, data, [](stream_reader& r) { return r.read(); },
            [](pyco::task<std::string>& t) {
                std::string s = t.result();
                const bool end = s.empty();
                return outcome{std::move(s), end};
            });
    }
}

// ---- no quadratic blow-up (no timing asserts: a quadratic version would
// not finish within the test's timeout)

coroutine<void> feed_bytewise(stream_reader& r, std::string data) {
    for (char c : data) {
        r.feed_data(std::string_view(&c, 1));
        co_await pyco::sleep(0s);
    }
}

TEST(StreamReaderScale, LongLineInOneByteChunks) {
    constexpr std::size_t mib = 1 << 20;
    pyco::event_loop loop;
    stream_reader r(static_cast<std::ptrdiff_t>(mib));
    // Every byte starts a near-match, so a search restarted from the front
    // at each byte would cost about 10^12 steps.
    std::string line(mib - 2, '\r');
    line += "\r\n";
    auto reader = pyco::create_task(loop, r.readuntil("\r\n"));
    auto feeder = pyco::create_task(loop, feed_bytewise(r, line + "tail"));
    EXPECT_EQ(loop.run_until_complete(reader), line);
    loop.run_until_complete(feeder);
    EXPECT_EQ(r.buffer(), "tail");
}

TEST(StreamReaderScale, LongLineMultiSeparatorInOneByteChunks) {
    constexpr std::size_t n = 1 << 19;
    pyco::event_loop loop;
    stream_reader r(static_cast<std::ptrdiff_t>(n));
    std::string line(n - 3, 'E');
    line += "END";
    auto reader = pyco::create_task(loop, r.readuntil(strings{"\n", "END", "ENDING"}));
    auto feeder = pyco::create_task(loop, feed_bytewise(r, line));
    EXPECT_EQ(loop.run_until_complete(reader), line);
    loop.run_until_complete(feeder);
}

TEST(StreamReaderScale, ManyLinesAreReadInLinearTime) {
    pyco::event_loop loop;
    stream_reader r;
    constexpr int lines = 1'000'000;
    std::string all;
    for (int i = 0; i < lines; ++i) all += "line " + std::to_string(i) + "\n";
    r.feed_data(all);
    r.feed_eof();
    auto body = [&]() -> coroutine<std::size_t> {
        std::size_t total = 0, count = 0;
        for (;;) {
            std::string line = co_await r.readline();
            if (line.empty()) break;
            total += line.size();
            ++count;
        }
        EXPECT_EQ(count, static_cast<std::size_t>(lines));
        co_return total;
    };
    EXPECT_EQ(loop.run_until_complete(body()), all.size());
}

// Small reads and small feeds interleaved forever on a buffer that never
// empties: compaction moves bytes only when as many were read before them.
TEST(StreamReaderScale, InterleavedFeedsAndReadsStayLinear) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data(std::string(1000, 'a'));
    auto body = [&]() -> coroutine<void> {
        for (int i = 0; i < 1'000'000; ++i) {
            r.feed_data("bcd");
            std::string s = co_await r.readexactly(3);
            if (s.size() != 3) ADD_FAILURE();
        }
    };
    loop.run_until_complete(body());
    EXPECT_EQ(r.buffer().size(), 1000u);
}

}  // namespace
