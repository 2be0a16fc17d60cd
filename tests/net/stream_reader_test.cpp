// pyco::stream_reader: the StreamReader cases of CPython's
// Lib/test/test_asyncio/test_streams.py (3.13, fed by feed_data/feed_eof),
// then pyco's own: cancel safety of every read method under random feeding
// and cancellation, flow control against a fake transport, and inputs that
// would be quadratic with a naive buffer or search.
// Left out as Python-only: repr, pickling, loop= arguments, bytearray
// separators; test_read_all_from_pipe_reader needs a subprocess.
#include <pyco/net/stream_reader.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <pyco/async_generator.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::coroutine;
using pyco::stream_reader;
using strings = std::vector<std::string>;

const std::string DATA = "line1\nline2\nline3\n";

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

// ---------------------------------------------------------------- CPython

TEST(StreamReader, FeedEmptyData) {
    stream_reader r;
    r.feed_data("");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, FeedNonemptyData) {
    stream_reader r;
    r.feed_data(DATA);
    EXPECT_EQ(r.buffer(), DATA);
    const std::byte raw[] = {std::byte{'x'}, std::byte{0}, std::byte{'y'}};
    r.feed_data(std::span<const std::byte>(raw));
    EXPECT_EQ(r.buffer(), DATA + std::string("x\0y", 3));
}

TEST(StreamReader, ReadZero) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data(DATA);
    EXPECT_EQ(loop.run_until_complete(r.read(0)), "");
    EXPECT_EQ(r.buffer(), DATA);
}

TEST(StreamReader, Read) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.read(30));
    loop.call_soon([&] { r.feed_data(DATA); });
    EXPECT_EQ(loop.run_until_complete(t), DATA);
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReadLineBreaks) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("line1");
    r.feed_data("line2");
    EXPECT_EQ(loop.run_until_complete(r.read(5)), "line1");
    EXPECT_EQ(r.buffer(), "line2");
}

TEST(StreamReader, ReadEof) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.read(1024));
    loop.call_soon([&] { r.feed_eof(); });
    EXPECT_EQ(loop.run_until_complete(t), "");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReadUntilEof) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.read(-1));
    loop.call_soon([&] {
        r.feed_data("chunk1\n");
        r.feed_data("chunk2");
        r.feed_eof();
    });
    EXPECT_EQ(loop.run_until_complete(t), "chunk1\nchunk2");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReadException) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("line\n");
    EXPECT_EQ(loop.run_until_complete(r.read(2)), "li");
    r.set_exception(std::make_exception_ptr(pyco::value_error("boom")));
    EXPECT_THROW(loop.run_until_complete(r.read(2)), pyco::value_error);
    // The exception comes first, even for read(0) (as CPython).
    EXPECT_THROW(loop.run_until_complete(r.read(0)), pyco::value_error);
}

TEST(StreamReader, InvalidLimit) {
    auto e = expect_raises<pyco::value_error>([] { stream_reader r(0); });
    EXPECT_STREQ(e.what(), "Limit cannot be <= 0");
    EXPECT_THROW(stream_reader(-1), pyco::value_error);
    EXPECT_EQ(stream_reader().limit(), 65536u);
}

TEST(StreamReader, ReadLimit) {
    pyco::event_loop loop;
    stream_reader r(3);
    r.feed_data("chunk");
    EXPECT_EQ(loop.run_until_complete(r.read(5)), "chunk");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, Readline) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("chunk1 ");
    auto t = pyco::create_task(loop, r.readline());
    loop.call_soon([&] {
        r.feed_data("chunk2 ");
        r.feed_data("chunk3 ");
        r.feed_data("\n chunk4");
    });
    EXPECT_EQ(loop.run_until_complete(t), "chunk1 chunk2 chunk3 \n");
    EXPECT_EQ(r.buffer(), " chunk4");
}

TEST(StreamReader, ReadlineLimitWithExistingData) {
    pyco::event_loop loop;
    {
        stream_reader r(3);
        r.feed_data("li");
        r.feed_data("ne1\nline2\n");
        EXPECT_THROW(loop.run_until_complete(r.readline()), pyco::value_error);
        EXPECT_EQ(r.buffer(), "line2\n");
    }
    {
        stream_reader r(3);
        r.feed_data("li");
        r.feed_data("ne1");
        r.feed_data("li");
        EXPECT_THROW(loop.run_until_complete(r.readline()), pyco::value_error);
        EXPECT_EQ(r.buffer(), "");
    }
}

TEST(StreamReader, AtEof) {
    pyco::event_loop loop;
    stream_reader r;
    EXPECT_FALSE(r.at_eof());
    r.feed_data("some data\n");
    EXPECT_FALSE(r.at_eof());
    loop.run_until_complete(r.readline());
    EXPECT_FALSE(r.at_eof());
    r.feed_data("some data\n");
    r.feed_eof();
    loop.run_until_complete(r.readline());
    EXPECT_TRUE(r.at_eof());
}

TEST(StreamReader, ReadlineLimit) {
    pyco::event_loop loop;
    {
        stream_reader r(7);
        loop.call_soon([&] {
            r.feed_data("chunk1");
            r.feed_data("chunk2");
            r.feed_data("chunk3\n");
            r.feed_eof();
        });
        EXPECT_THROW(loop.run_until_complete(r.readline()), pyco::value_error);
        EXPECT_EQ(r.buffer(), "");
    }
    {
        stream_reader r(7);
        loop.call_soon([&] {
            r.feed_data("chunk1");
            r.feed_data("chunk2\n");
            r.feed_data("chunk3\n");
            r.feed_eof();
        });
        EXPECT_THROW(loop.run_until_complete(r.readline()), pyco::value_error);
        EXPECT_EQ(r.buffer(), "chunk3\n");
    }
    // The limit is strict.
    stream_reader r(7);
    r.feed_data("1234567\n");
    EXPECT_EQ(loop.run_until_complete(r.readline()), "1234567\n");
    EXPECT_EQ(r.buffer(), "");

    r.feed_data("12345678\n");
    auto e = expect_raises<pyco::value_error>([&] { loop.run_until_complete(r.readline()); });
    EXPECT_STREQ(e.what(), "Separator is found, but chunk is longer than limit");
    EXPECT_EQ(r.buffer(), "");

    r.feed_data("12345678");
    e = expect_raises<pyco::value_error>([&] { loop.run_until_complete(r.readline()); });
    EXPECT_STREQ(e.what(), "Separator is not found, and chunk exceed the limit");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReadlineNolimitNowait) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data(DATA.substr(0, 6));
    r.feed_data(DATA.substr(6));
    EXPECT_EQ(loop.run_until_complete(r.readline()), "line1\n");
    EXPECT_EQ(r.buffer(), "line2\nline3\n");
}

TEST(StreamReader, ReadlineEof) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("some data");
    r.feed_eof();
    EXPECT_EQ(loop.run_until_complete(r.readline()), "some data");
}

TEST(StreamReader, ReadlineEmptyEof) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_eof();
    EXPECT_EQ(loop.run_until_complete(r.readline()), "");
}

TEST(StreamReader, ReadlineReadByteCount) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data(DATA);
    loop.run_until_complete(r.readline());
    EXPECT_EQ(loop.run_until_complete(r.read(7)), "line2\nl");
    EXPECT_EQ(r.buffer(), "ine3\n");
}

TEST(StreamReader, ReadlineException) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("line\n");
    EXPECT_EQ(loop.run_until_complete(r.readline()), "line\n");
    r.set_exception(std::make_exception_ptr(pyco::value_error("boom")));
    EXPECT_THROW(loop.run_until_complete(r.readline()), pyco::value_error);
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReaduntilSeparator) {
    pyco::event_loop loop;
    stream_reader r;
    auto e = expect_raises<pyco::value_error>([&] { loop.run_until_complete(r.readuntil("")); });
    EXPECT_STREQ(e.what(), "Separator should be at least one-byte string");
    e = expect_raises<pyco::value_error>([&] { loop.run_until_complete(r.readuntil(strings{""})); });
    EXPECT_STREQ(e.what(), "Separator should be at least one-byte string");
    e = expect_raises<pyco::value_error>([&] { loop.run_until_complete(r.readuntil(strings{})); });
    EXPECT_STREQ(e.what(), "Separator should contain at least one element");
    // Checked when awaited, before the stored exception (as CPython).
    r.set_exception(std::make_exception_ptr(pyco::runtime_error("x")));
    EXPECT_THROW(loop.run_until_complete(r.readuntil("")), pyco::value_error);
}

TEST(StreamReader, ReaduntilMultiChunks) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("lineAAA");
    EXPECT_EQ(loop.run_until_complete(r.readuntil("AAA")), "lineAAA");
    EXPECT_EQ(r.buffer(), "");
    r.feed_data("lineAAA");
    EXPECT_EQ(loop.run_until_complete(r.readuntil("AAA")), "lineAAA");
    EXPECT_EQ(r.buffer(), "");
    r.feed_data("lineAAAxxx");
    EXPECT_EQ(loop.run_until_complete(r.readuntil("AAA")), "lineAAA");
    EXPECT_EQ(r.buffer(), "xxx");
}

TEST(StreamReader, ReaduntilMultiChunks1) {
    pyco::event_loop loop;
    stream_reader r;
    auto feed = [&](std::initializer_list<const char*> parts) {
        for (const char* p : parts) r.feed_data(p);
    };
    feed({"QWEaa", "XYaa", "a"});
    EXPECT_EQ(loop.run_until_complete(r.readuntil("aaa")), "QWEaaXYaaa");
    EXPECT_EQ(r.buffer(), "");
    feed({"QWEaa", "XYa", "aa"});
    EXPECT_EQ(loop.run_until_complete(r.readuntil("aaa")), "QWEaaXYaaa");
    EXPECT_EQ(r.buffer(), "");
    feed({"aaa"});
    EXPECT_EQ(loop.run_until_complete(r.readuntil("aaa")), "aaa");
    EXPECT_EQ(r.buffer(), "");
    feed({"Xaaa"});
    EXPECT_EQ(loop.run_until_complete(r.readuntil("aaa")), "Xaaa");
    EXPECT_EQ(r.buffer(), "");
    feed({"XXX", "a", "a", "a"});
    EXPECT_EQ(loop.run_until_complete(r.readuntil("aaa")), "XXXaaa");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReaduntilEof) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("some dataAA");
    r.feed_eof();
    auto e = expect_raises<pyco::incomplete_read_error>([&] { loop.run_until_complete(r.readuntil("AAA")); });
    EXPECT_EQ(e.partial(), "some dataAA");
    EXPECT_FALSE(e.expected().has_value());
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReaduntilLimitFoundSep) {
    pyco::event_loop loop;
    stream_reader r(3);
    r.feed_data("some dataAA");
    auto e = expect_raises<pyco::limit_overrun_error>([&] { loop.run_until_complete(r.readuntil("AAA")); });
    EXPECT_STREQ(e.what(), "Separator is not found, and chunk exceed the limit");
    EXPECT_EQ(e.consumed(), 9u);
    EXPECT_EQ(r.buffer(), "some dataAA");
    // Again, with nothing new (the remembered search gives what a fresh one would).
    e = expect_raises<pyco::limit_overrun_error>([&] { loop.run_until_complete(r.readuntil("AAA")); });
    EXPECT_EQ(e.consumed(), 9u);

    r.feed_data("A");
    e = expect_raises<pyco::limit_overrun_error>([&] { loop.run_until_complete(r.readuntil("AAA")); });
    EXPECT_STREQ(e.what(), "Separator is found, but chunk is longer than limit");
    EXPECT_EQ(e.consumed(), 9u);
    EXPECT_EQ(r.buffer(), "some dataAAA");
}

TEST(StreamReader, ReaduntilMultiSeparator) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("line 1\nline 2\r");
    const strings crlf{"\r", "\n"};
    EXPECT_EQ(loop.run_until_complete(r.readuntil(crlf)), "line 1\n");
    EXPECT_EQ(loop.run_until_complete(r.readuntil(crlf)), "line 2\r");
    EXPECT_EQ(r.buffer(), "");
    // The first end position matches, even if that is a longer match.
    r.feed_data("ABCDEFG");
    EXPECT_EQ(loop.run_until_complete(r.readuntil(strings{"DEF", "BCDE"})), "ABCDE");
    EXPECT_EQ(r.buffer(), "FG");
}

TEST(StreamReader, ReaduntilMultiSeparatorLimit) {
    pyco::event_loop loop;
    stream_reader r(3);
    r.feed_data("some dataA");
    auto e = expect_raises<pyco::limit_overrun_error>(
        [&] { loop.run_until_complete(r.readuntil(strings{"A", "ome dataA"})); });
    EXPECT_STREQ(e.what(), "Separator is found, but chunk is longer than limit");
    EXPECT_EQ(r.buffer(), "some dataA");
}

// On a tie of end positions the shorter separator is the match (CPython
// sorts by length): consumed() is where "\n" starts, not "\r\n".
TEST(StreamReader, ReaduntilMultiSeparatorTieGoesToTheShorter) {
    pyco::event_loop loop;
    stream_reader r(1);
    r.feed_data("ab\r\nb");
    auto e = expect_raises<pyco::limit_overrun_error>(
        [&] { loop.run_until_complete(r.readuntil(strings{"\r\n", "\n"})); });
    EXPECT_EQ(e.consumed(), 3u);
}

TEST(StreamReader, ReaduntilMultiSeparatorNegativeOffset) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("data");
    auto t = pyco::create_task(loop, r.readuntil(strings{"A", "long sep"}));
    loop.call_soon([&] { r.feed_data("Z"); });
    loop.call_soon([&] { r.feed_data("Aaaa"); });
    EXPECT_EQ(loop.run_until_complete(t), "dataZA");
    EXPECT_EQ(r.buffer(), "aaa");
}

TEST(StreamReader, ReadexactlyZeroOrLess) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data(DATA);
    EXPECT_EQ(loop.run_until_complete(r.readexactly(0)), "");
    EXPECT_EQ(r.buffer(), DATA);
    auto e = expect_raises<pyco::value_error>([&] { loop.run_until_complete(r.readexactly(-1)); });
    EXPECT_STREQ(e.what(), "readexactly size can not be less than zero");
    EXPECT_EQ(r.buffer(), DATA);
}

TEST(StreamReader, Readexactly) {
    pyco::event_loop loop;
    stream_reader r;
    const auto n = static_cast<std::ptrdiff_t>(2 * DATA.size());
    auto t = pyco::create_task(loop, r.readexactly(n));
    loop.call_soon([&] {
        r.feed_data(DATA);
        r.feed_data(DATA);
        r.feed_data(DATA);
    });
    EXPECT_EQ(loop.run_until_complete(t), DATA + DATA);
    EXPECT_EQ(r.buffer(), DATA);
}

TEST(StreamReader, ReadexactlyLimit) {
    pyco::event_loop loop;
    stream_reader r(3);
    r.feed_data("chunk");
    EXPECT_EQ(loop.run_until_complete(r.readexactly(5)), "chunk");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReadexactlyEof) {
    pyco::event_loop loop;
    stream_reader r;
    const auto n = static_cast<std::ptrdiff_t>(2 * DATA.size());
    auto t = pyco::create_task(loop, r.readexactly(n));
    loop.call_soon([&] {
        r.feed_data(DATA);
        r.feed_eof();
    });
    auto e = expect_raises<pyco::incomplete_read_error>([&] { loop.run_until_complete(t); });
    EXPECT_EQ(e.partial(), DATA);
    EXPECT_EQ(e.expected(), std::optional<std::size_t>(36));
    EXPECT_STREQ(e.what(), "18 bytes read on a total of 36 expected bytes");
    EXPECT_EQ(r.buffer(), "");
}

TEST(StreamReader, ReadexactlyException) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("line\n");
    EXPECT_EQ(loop.run_until_complete(r.readexactly(2)), "li");
    r.set_exception(std::make_exception_ptr(pyco::value_error("boom")));
    EXPECT_THROW(loop.run_until_complete(r.readexactly(2)), pyco::value_error);
}

TEST(StreamReader, Exception) {
    stream_reader r;
    EXPECT_EQ(r.exception(), nullptr);
    auto e = std::make_exception_ptr(pyco::value_error("boom"));
    r.set_exception(e);
    EXPECT_EQ(r.exception(), e);
}

TEST(StreamReader, ExceptionWaiter) {
    pyco::event_loop loop;
    stream_reader r;
    auto t1 = pyco::create_task(loop, r.readline());
    auto set_err = [&]() -> coroutine<void> {
        r.set_exception(std::make_exception_ptr(pyco::value_error("boom")));
        co_return;
    };
    auto t2 = pyco::create_task(loop, set_err());
    loop.run_until_complete(t2);
    run_briefly(loop);
    ASSERT_TRUE(t1.done());
    EXPECT_THROW(t1.result(), pyco::value_error);
}

TEST(StreamReader, ExceptionCancel) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.readline());
    run_briefly(loop);
    EXPECT_TRUE(r.waiting());
    t.cancel();
    run_briefly(loop);
    r.set_exception(std::make_exception_ptr(pyco::runtime_error("message")));
    run_briefly(loop);
    EXPECT_FALSE(r.waiting());
    EXPECT_TRUE(t.cancelled());
}

// ---------------------------------------------------------------- pyco's own

TEST(StreamReader, OnlyOneTaskMayWait) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.readline());
    run_briefly(loop);
    auto e = expect_raises<pyco::runtime_error>([&] { loop.run_until_complete(r.read(3)); });
    EXPECT_STREQ(e.what(), "read() called while another coroutine is already waiting for incoming data");
    e = expect_raises<pyco::runtime_error>([&] { loop.run_until_complete(r.read()); });
    EXPECT_STREQ(e.what(), "read() called while another coroutine is already waiting for incoming data");
    e = expect_raises<pyco::runtime_error>([&] { loop.run_until_complete(r.readline()); });
    EXPECT_STREQ(e.what(), "readuntil() called while another coroutine is already waiting for incoming data");
    e = expect_raises<pyco::runtime_error>([&] { loop.run_until_complete(r.readexactly(2)); });
    EXPECT_STREQ(e.what(), "readexactly() called while another coroutine is already waiting for incoming data");
    // A read that need not wait does not conflict.
    r.feed_data("ab");
    EXPECT_EQ(loop.run_until_complete(r.read(1)), "a");
    r.feed_data("c\n");
    EXPECT_EQ(loop.run_until_complete(t), "bc\n");
}

TEST(StreamReader, FeedAfterEofIsAnError) {
    stream_reader r;
    r.feed_eof();
    auto e = expect_raises<pyco::runtime_error>([&] { r.feed_data("x"); });
    EXPECT_STREQ(e.what(), "feed_data after feed_eof");
    EXPECT_THROW(r.get_buffer(), pyco::runtime_error);
}

TEST(StreamReader, SetTransportTwiceIsAnError) {
    stream_reader r;
    fake_transport a, b;
    r.set_transport(&a);
    EXPECT_THROW(r.set_transport(&b), pyco::runtime_error);
    r.set_transport(nullptr);
    r.set_transport(&b);
}

// feed_data after the waiter was woken, then set_exception before the
// task ran: the wake-up stands and the read returns its data (CPython: the
// waiter is already gone when set_exception comes).
TEST(StreamReader, ExceptionAfterWakeupDoesNotTakeBackTheData) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.readline());
    run_briefly(loop);
    r.feed_data("ok\n");
    r.set_exception(std::make_exception_ptr(pyco::value_error("late")));
    EXPECT_EQ(loop.run_until_complete(t), "ok\n");
    EXPECT_THROW(loop.run_until_complete(r.readline()), pyco::value_error);
}

// A waiter failed by set_exception and then cancelled before it ran raises
// the cancellation, and its exception is not reported as never retrieved.
TEST(StreamReader, CancelledAfterSetExceptionReportsNothing) {
    pyco::event_loop loop;
    int reports = 0;
    loop.set_exception_handler([&](pyco::event_loop&, const pyco::exception_context&) { ++reports; });
    stream_reader r;
    r.feed_data("partial");
    {
        auto t = pyco::create_task(loop, r.readline());
        run_briefly(loop);
        r.set_exception(std::make_exception_ptr(pyco::value_error("boom")));
        t.cancel();
        run_briefly(loop);
        run_briefly(loop);
        EXPECT_TRUE(t.cancelled());
    }
    run_briefly(loop);
    EXPECT_EQ(reports, 0);
    EXPECT_EQ(r.buffer(), "partial");
}

// An error that comes after the wake-up, before the woken read ran: a read
// that still needs bytes raises it instead of waiting (CPython's
// readexactly would wait forever here: connection_lost sets the exception
// and feeds no EOF).
TEST(StreamReader, ErrorAfterWakeupIsRaisedNotWaitedOn) {
    pyco::event_loop loop(pyco::loop_options{.virtual_time = true});
    stream_reader r;
    auto t = pyco::create_task(loop, pyco::wait_for(r.readexactly(10), 10s));
    run_briefly(loop);
    r.feed_data("abc");
    r.set_exception(std::make_exception_ptr(pyco::value_error("lost")));
    EXPECT_THROW(loop.run_until_complete(t), pyco::value_error);
    EXPECT_EQ(r.buffer(), "abc");
}

// read(-1) raises an error that came with the EOF, as CPython's next
// read(limit) would; the bytes stay.
TEST(StreamReader, ReadAllRaisesAnErrorThatCameWithEof) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.read());
    run_briefly(loop);
    r.feed_data("abc");
    r.feed_eof();
    r.set_exception(std::make_exception_ptr(pyco::value_error("lost")));
    EXPECT_THROW(loop.run_until_complete(t), pyco::value_error);
    EXPECT_EQ(r.buffer(), "abc");
}

// A loop closed with a task waiting on a reader that died first: the
// frame's destruction must not touch the reader.
TEST(StreamReader, ReaderDestroyedBeforeTheWaitingFrame) {
    auto loop = std::make_unique<pyco::event_loop>();
    loop->set_exception_handler([](pyco::event_loop&, const pyco::exception_context&) {});
    auto r = std::make_unique<stream_reader>(2);
    fake_transport tr;
    r->set_transport(&tr);
    {
        auto t = pyco::create_task(*loop, r->read());
        run_briefly(*loop);
        r->feed_data("123456");
    }
    r.reset();
    loop.reset();
    EXPECT_EQ(tr.calls, strings{});
}

TEST(StreamReader, AnextAndAsyncFor) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("a\nbb\nccc");
    r.feed_eof();
    auto body = [&]() -> coroutine<strings> {
        strings got;
        auto first = co_await r.anext();
        got.push_back(first.value_or("<end>"));
        auto collect = [&](std::string line) { got.push_back(std::move(line)); };
        co_await pyco::async_for(r, collect);
        auto after = co_await r.anext();
        got.push_back(after.value_or("<end>"));
        co_return got;
    };
    EXPECT_EQ(loop.run_until_complete(body()), (strings{"a\n", "bb\n", "ccc", "<end>"}));
}

TEST(StreamReader, GetBufferAndBufferUpdatedFeedWithoutACopy) {
    pyco::event_loop loop;
    stream_reader r;
    auto t = pyco::create_task(loop, r.readline());
    run_briefly(loop);
    std::span<std::byte> space = r.get_buffer(10);
    ASSERT_GE(space.size(), 10u);
    std::memcpy(space.data(), "hel", 3);
    r.buffer_updated(3);
    space = r.get_buffer();
    EXPECT_GE(space.size(), 65536u);
    std::memcpy(space.data(), "lo\nrest", 7);
    r.buffer_updated(7);
    EXPECT_EQ(loop.run_until_complete(t), "hello\n");
    EXPECT_EQ(r.buffer(), "rest");
}

TEST(StreamReader, BufferUpdatedBeyondTheBufferIsRefused) {
    stream_reader r;
    const std::size_t n = r.get_buffer(16).size();
    EXPECT_THROW(r.buffer_updated(n + 1), pyco::value_error);
    EXPECT_EQ(r.buffer(), "");
}

// ---- the search resumes where it stopped, and stays right doing so

TEST(StreamReader, SearchResumedAfterCancelFindsAStraddlingSeparator) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("abcAA");
    auto t = pyco::create_task(loop, r.readuntil("AAA"));
    run_briefly(loop);
    t.cancel();
    run_briefly(loop);
    ASSERT_TRUE(t.cancelled());
    EXPECT_EQ(r.buffer(), "abcAA");
    r.feed_data("A");
    EXPECT_EQ(loop.run_until_complete(r.readuntil("AAA")), "abcAAA");
}

TEST(StreamReader, RememberedSearchIsForItsOwnSeparators) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("xxAyyB");
    auto t = pyco::create_task(loop, r.readuntil("C"));
    run_briefly(loop);
    t.cancel();
    run_briefly(loop);
    EXPECT_EQ(loop.run_until_complete(r.readuntil("A")), "xxA");
    EXPECT_EQ(loop.run_until_complete(r.readuntil(strings{"B", "C"})), "yyB");
}

TEST(StreamReader, SearchSurvivesAnotherReaderConsuming) {
    pyco::event_loop loop;
    stream_reader r;
    r.feed_data("ab");
    auto t = pyco::create_task(loop, r.readline());
    run_briefly(loop);
    EXPECT_EQ(loop.run_until_complete(r.read(1)), "a");
    r.feed_data("c\nd");
    EXPECT_EQ(loop.run_until_complete(t), "bc\n");
    EXPECT_EQ(r.buffer(), "d");
}

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
