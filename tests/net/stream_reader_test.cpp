// pyco::stream_reader: the StreamReader cases of CPython's
// Lib/test/test_asyncio/test_streams.py (3.13, fed by feed_data/feed_eof),
// then pyco's own checks of the API, the one-waiter rule, errors racing
// wake-ups, and the remembered separator search. Cancel safety, flow
// control and scale are in stream_reader_safety_test.cpp.
// Left out as Python-only: repr, pickling, loop= arguments, bytearray
// separators; test_read_all_from_pipe_reader needs a subprocess.
#include <pyco/net/stream_reader.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <pyco/async_generator.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/task.hpp>
#include <pyco/wait.hpp>

#include "net/stream_reader_util.hpp"

namespace {

const std::string DATA = "line1\nline2\nline3\n";

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

}  // namespace
