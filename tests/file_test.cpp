// Async files: every method and mode, the errors Python raises (with its
// messages), async_with, cancellation, large files, concurrent read_at, and
// files that cannot seek. Nothing here assumes where the work runs: the same
// tests pass on epoll (the default executor) and on io_uring (the backend),
// PYCO_BACKEND=io_uring — except the page-cache fast path's, which ask for
// an epoll loop and count where each read ran. Label "threads": the
// executor's threads run it.
#include <pyco/file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <pyco/async_with.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/gather.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/run.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>

#include "io/file_hooks.hpp"
#include <pyco/detail/faults.hpp>
#include <pyco/detail/io_backend.hpp>

namespace {

using namespace std::chrono_literals;
using pyco::async_file;
using pyco::coroutine;

class File : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (std::filesystem::temp_directory_path() / "pyco-files-test.XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir); }

    std::string path(const std::string& name) const { return (std::filesystem::path(dir) / name).string(); }
    static void put(const std::string& p, const std::string& data) {
        std::ofstream(p, std::ios::binary) << data;
    }
    static std::string get(const std::string& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    std::string dir;
};

// A patterned payload, so a misplaced byte shows.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return s;
}

template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    return "(nothing raised)";
}

// --- modes -------------------------------------------------------------------

TEST_F(File, BadModesRaiseCPythonsValueErrors) {
    const std::string p = path("f");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "q"); }), "invalid mode: 'q'");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "rr"); }), "invalid mode: 'rr'");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "U"); }), "invalid mode: 'U'");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "rw"); }),
              "must have exactly one of create/read/write/append mode");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "wx"); }),
              "must have exactly one of create/read/write/append mode");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "rbt"); }),
              "can't have text and binary mode at once");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "b"); }),
              "Must have exactly one of create/read/write/append mode and at most one plus");
    EXPECT_EQ(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, ""); }),
              "Must have exactly one of create/read/write/append mode and at most one plus");
    // Text is out of scope: said so, not silently taken as binary.
    EXPECT_NE(message_of<pyco::value_error>([&] { (void)pyco::open_file(p, "rt"); }).find("binary only"),
              std::string::npos);
}

TEST_F(File, EveryModeOpensAsPythonsOpenDoes) {
    put(path("r"), "0123456789");
    pyco::run([&]() -> coroutine<void> {
        struct row {
            const char* mode;
            const char* file_mode;  // FileIO.mode
            bool readable, writable;
        };
        const row rows[] = {{"r", "rb", true, false},   {"rb", "rb", true, false},  {"r+", "rb+", true, true},
                            {"rb+", "rb+", true, true}, {"r+b", "rb+", true, true}, {"w", "wb", false, true},
                            {"wb", "wb", false, true},  {"w+", "rb+", true, true},  {"a", "ab", false, true},
                            {"ab", "ab", false, true},  {"a+", "ab+", true, true},  {"x", "xb", false, true},
                            {"xb", "xb", false, true},  {"x+", "xb+", true, true}};
        for (const row& r : rows) {
            const std::string p = r.mode[0] == 'x' ? path(std::string("new-") + r.mode) : path("r");
            async_file f = co_await pyco::open_file(p, r.mode);
            EXPECT_EQ(f.mode(), r.file_mode) << r.mode;
            EXPECT_EQ(f.readable(), r.readable) << r.mode;
            EXPECT_EQ(f.writable(), r.writable) << r.mode;
            EXPECT_EQ(f.name(), p);
            co_await f.close();
            if (r.mode[0] == 'w') put(path("r"), "0123456789");  // "w" truncated it
        }
    }());
}

TEST_F(File, ReadModeReadsWithoutTruncating) {
    put(path("f"), "hello, world");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "r");
        EXPECT_EQ(f.tell(), 0u);
        EXPECT_EQ(co_await f.read(5), "hello");
        EXPECT_EQ(f.tell(), 5u);
        EXPECT_EQ(co_await f.read(0), "");
        EXPECT_EQ(co_await f.read(100), ", world");  // fewer only at EOF
        EXPECT_EQ(co_await f.read(), "");            // at EOF: empty
        EXPECT_EQ(co_await f.read(3), "");
        EXPECT_EQ(f.tell(), 12u);
        try {
            co_await f.write("x");
            ADD_FAILURE() << "wrote to a file open for reading";
        } catch (const pyco::unsupported_operation& e) {
            EXPECT_STREQ(e.what(), "File not open for writing");
        }
        co_await f.close();
    }());
    EXPECT_EQ(get(path("f")), "hello, world");
}

TEST_F(File, WriteModeTruncatesCreatesAndCannotRead) {
    put(path("f"), "old contents, longer than the new");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "wb");
        EXPECT_EQ(co_await f.write("new"), 3u);
        EXPECT_EQ(co_await f.write(""), 0u);
        EXPECT_EQ(co_await f.write(" data"), 5u);
        EXPECT_EQ(f.tell(), 8u);
        try {
            (void)co_await f.read();
            ADD_FAILURE() << "read a file open for writing";
        } catch (const pyco::unsupported_operation& e) {
            EXPECT_STREQ(e.what(), "File not open for reading");
        }
        try {
            (void)co_await f.read_at(0, 1);
            ADD_FAILURE() << "read_at a file open for writing";
        } catch (const pyco::unsupported_operation&) {
        }
        co_await f.close();
        async_file g = co_await pyco::open_file(path("created"), "w");
        co_await g.close();
    }());
    EXPECT_EQ(get(path("f")), "new data");
    EXPECT_TRUE(std::filesystem::exists(path("created")));
}

TEST_F(File, AppendModeWritesAtTheEnd) {
    put(path("f"), "hello");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "ab");
        EXPECT_EQ(f.tell(), 5u);  // opened at the end, as Python's "a"
        co_await f.write(", world");
        EXPECT_EQ(f.tell(), 12u);
        co_await f.write_at(0, "!");  // O_APPEND: at the end anyway (os.pwrite does the same)
        co_await f.close();
    }());
    EXPECT_EQ(get(path("f")), "hello, world!");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "a+");
        EXPECT_EQ(co_await f.read(), "");  // at the end
        EXPECT_EQ(co_await f.seek(0), 0u);
        EXPECT_EQ(co_await f.read(5), "hello");
        co_await f.write("?");  // still at the end
        EXPECT_EQ(f.tell(), 14u);
        co_await f.close();
        async_file g = co_await pyco::open_file(path("new"), "a");  // creates
        co_await g.write("x");
        co_await g.close();
    }());
    EXPECT_EQ(get(path("f")), "hello, world!?");
    EXPECT_EQ(get(path("new")), "x");
}

TEST_F(File, ExclusiveModeCreatesOrRaisesFileExistsError) {
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "x");
        co_await f.write("once");
        co_await f.close();
        try {
            (void)co_await pyco::open_file(path("f"), "xb");
            ADD_FAILURE() << "x opened an existing file";
        } catch (const pyco::file_exists_error& e) {
            EXPECT_EQ(e.code().value(), EEXIST);
            EXPECT_EQ(std::string(e.what()), "open '" + path("f") + "': File exists");
        }
    }());
    EXPECT_EQ(get(path("f")), "once");
}

TEST_F(File, UpdateModesReadAndWrite) {
    put(path("f"), "0123456789");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "r+b");
        EXPECT_EQ(co_await f.read(2), "01");
        co_await f.write("ab");  // at the position: replaces 2 and 3
        EXPECT_EQ(f.tell(), 4u);
        EXPECT_EQ(co_await f.read(), "456789");
        co_await f.close();
    }());
    EXPECT_EQ(get(path("f")), "01ab456789");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "w+");
        EXPECT_EQ(co_await f.read(), "");  // truncated
        co_await f.write("fresh");
        EXPECT_EQ(co_await f.seek(-3, SEEK_CUR), 2u);
        EXPECT_EQ(co_await f.read(), "esh");
        EXPECT_EQ(co_await f.seek(-1, SEEK_END), 4u);
        EXPECT_EQ(co_await f.read(), "h");
        co_await f.close();
    }());
    EXPECT_EQ(get(path("f")), "fresh");
}

TEST_F(File, SeekRaisesAsPythonDoes) {
    put(path("f"), "abc");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "rb");
        try {
            (void)co_await f.seek(0, 5);
            ADD_FAILURE();
        } catch (const pyco::value_error& e) {
            EXPECT_STREQ(e.what(), "whence value 5 unsupported");
        }
        try {
            (void)co_await f.seek(-1);
            ADD_FAILURE();
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), EINVAL);
        }
        EXPECT_EQ(co_await f.seek(10), 10u);  // past the end is fine
        EXPECT_EQ(co_await f.read(), "");
        co_await f.close();
    }());
}

// --- positional I/O ------------------------------------------------------------

TEST_F(File, ReadAtAndWriteAtLeaveThePositionAlone) {
    put(path("f"), "0123456789");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "rb+");
        EXPECT_EQ(co_await f.read(1), "0");
        EXPECT_EQ(co_await f.read_at(4, 3), "456");
        EXPECT_EQ(co_await f.read_at(8, 10), "89");   // fewer at EOF
        EXPECT_EQ(co_await f.read_at(10, 5), "");     // at EOF: empty
        EXPECT_EQ(co_await f.read_at(1000, 5), "");   // past EOF: empty
        EXPECT_EQ(co_await f.read_at(3, 0), "");
        EXPECT_EQ(co_await f.write_at(5, "XY"), 2u);
        EXPECT_EQ(co_await f.write_at(12, "Z"), 1u);  // past EOF: a hole of zeros
        EXPECT_EQ(f.tell(), 1u);
        EXPECT_EQ(co_await f.read(), std::string("1234XY789\0\0Z", 12));
        co_await f.close();
    }());
}

TEST_F(File, FsyncWorksOnEveryKindOfOpenFile) {
    put(path("f"), "data");
    pyco::run([&]() -> coroutine<void> {
        async_file w = co_await pyco::open_file(path("f"), "ab");
        co_await w.write("more");
        co_await w.fsync();
        async_file r = co_await pyco::open_file(path("f"), "rb");
        co_await r.fsync();
        EXPECT_EQ(co_await r.read(), "datamore");
        co_await w.close();
        co_await r.close();
    }());
}

// --- errors --------------------------------------------------------------------

TEST_F(File, MissingFileRaisesFileNotFoundError) {
    pyco::run([&]() -> coroutine<void> {
        try {
            (void)co_await pyco::open_file(path("nope"), "rb");
            ADD_FAILURE();
        } catch (const pyco::file_not_found_error& e) {
            EXPECT_EQ(e.code(), std::error_code(ENOENT, std::generic_category()));
            EXPECT_EQ(std::string(e.what()), "open '" + path("nope") + "': No such file or directory");
        }
        try {
            (void)co_await pyco::open_file(path("no-dir/f"), "wb");  // "w" creates files, not directories
            ADD_FAILURE();
        } catch (const std::system_error& e) {  // as OSError
            EXPECT_EQ(e.code().value(), ENOENT);
        }
    }());
}

TEST_F(File, DirectoriesRaiseIsADirectoryError) {
    put(path("f"), "x");
    pyco::run([&]() -> coroutine<void> {
        for (const char* mode : {"rb", "wb", "r+", "a"}) {
            try {
                (void)co_await pyco::open_file(dir, mode);
                ADD_FAILURE() << mode;
            } catch (const pyco::is_a_directory_error& e) {
                EXPECT_EQ(std::string(e.what()), "open '" + dir + "': Is a directory") << mode;
            }
        }
        try {
            (void)co_await pyco::open_file(path("f") + "/sub", "rb");
            ADD_FAILURE();
        } catch (const pyco::not_a_directory_error& e) {
            EXPECT_EQ(e.code().value(), ENOTDIR);
        }
    }());
}

TEST_F(File, PermissionErrorsAreNamed) {
    // Root passes every permission check, so the mapping is checked
    // directly; the real refusal when the tests do not run as root.
    EXPECT_THROW(std::rethrow_exception(pyco::make_file_os_error(EACCES, "open 'x'")), pyco::permission_error);
    EXPECT_THROW(std::rethrow_exception(pyco::make_file_os_error(EPERM, "open 'x'")), pyco::permission_error);
    EXPECT_THROW(std::rethrow_exception(pyco::make_file_os_error(ECONNRESET, "x")), pyco::connection_reset_error);
    if (::geteuid() == 0) return;
    put(path("f"), "secret");
    ::chmod(path("f").c_str(), 0);
    pyco::run([&]() -> coroutine<void> {
        try {
            (void)co_await pyco::open_file(path("f"), "rb");
            ADD_FAILURE();
        } catch (const pyco::permission_error& e) {
            EXPECT_EQ(std::string(e.what()), "open '" + path("f") + "': Permission denied");
        }
    }());
}

TEST_F(File, ClosedFilesRefuseEveryOperation) {
    put(path("f"), "abc");
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "r+");
        EXPECT_FALSE(f.closed());
        co_await f.close();
        EXPECT_TRUE(f.closed());
        co_await f.close();  // idempotent, as in Python
        const std::string closed = "I/O operation on closed file";
        auto expect_closed = [&](auto op) -> coroutine<void> {
            try {
                co_await op();
                ADD_FAILURE() << "no error";
            } catch (const pyco::value_error& e) {
                EXPECT_EQ(e.what(), closed);
            }
        };
        auto rd = [&]() -> coroutine<void> { (void)co_await f.read(); };
        auto rda = [&]() -> coroutine<void> { (void)co_await f.read_at(0, 1); };
        auto wr = [&]() -> coroutine<void> { (void)co_await f.write("x"); };
        auto wra = [&]() -> coroutine<void> { (void)co_await f.write_at(0, "x"); };
        auto sy = [&]() -> coroutine<void> { co_await f.fsync(); };
        auto sk = [&]() -> coroutine<void> { (void)co_await f.seek(0); };
        co_await expect_closed(rd);
        co_await expect_closed(rda);
        co_await expect_closed(wr);
        co_await expect_closed(wra);
        co_await expect_closed(sy);
        co_await expect_closed(sk);
        EXPECT_EQ(message_of<pyco::value_error>([&] { (void)f.tell(); }), closed);
        EXPECT_EQ(message_of<pyco::value_error>([&] { (void)f.fileno(); }), closed);
        async_file none;
        EXPECT_TRUE(none.closed());
        auto rn = [&]() -> coroutine<void> { (void)co_await none.read(); };
        co_await expect_closed(rn);
    }());
}

// --- async_with and lifetime ----------------------------------------------------

TEST_F(File, AsyncWithOpenFileClosesAtTheEnd) {
    int fd = -1;
    pyco::run([&]() -> coroutine<void> {
        auto body = [&](async_file& f) -> coroutine<void> {
            fd = f.fileno();
            co_await f.write("written in async with");
        };
        co_await pyco::async_with(pyco::open_file(path("f"), "wb"), body);
    }());
    EXPECT_EQ(get(path("f")), "written in async with");
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed
}

TEST_F(File, AsyncWithClosesWhenTheBodyThrows) {
    put(path("f"), "abc");
    pyco::run([&]() -> coroutine<void> {
        async_file kept;
        auto body = [&](async_file& f) -> coroutine<void> {
            kept = f;
            EXPECT_EQ(co_await f.read(1), "a");
            throw std::runtime_error("body failed");
        };
        try {
            co_await pyco::async_with(pyco::open_file(path("f"), "rb"), body);
            ADD_FAILURE();
        } catch (const std::runtime_error& e) {
            EXPECT_STREQ(e.what(), "body failed");
        }
        EXPECT_TRUE(kept.closed());
        // An open file is itself an async context manager too.
        async_file g = co_await pyco::open_file(path("f"), "rb");
        auto read_all = [](async_file& f) -> coroutine<std::string> { co_return co_await f.read(); };
        auto got = co_await pyco::async_with(g, read_all);
        EXPECT_EQ(got, std::optional<std::string>("abc"));
        EXPECT_TRUE(g.closed());
    }());
}

TEST_F(File, FilesAreCloseOnExecAndClosedWhenDropped) {
    put(path("f"), "abc");
    int fd = -1;
    pyco::run([&]() -> coroutine<void> {
        {
            async_file f = co_await pyco::open_file(path("f"), "rb");
            fd = f.fileno();
            EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
            async_file copy = f;  // copies share the file
            EXPECT_EQ(copy.fileno(), fd);
            EXPECT_EQ(co_await copy.read(1), "a");
            EXPECT_EQ(f.tell(), 1u);
        }  // dropped without close()
        EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
    }());
}

// --- large files and concurrency ------------------------------------------------

TEST_F(File, LargeFilesRoundTrip) {
    const std::string big = pattern(5 * 1024 * 1024 + 123);
    pyco::run([&]() -> coroutine<void> {
        async_file w = co_await pyco::open_file(path("big"), "wb");
        EXPECT_EQ(co_await w.write(big), big.size());
        co_await w.close();

        async_file r = co_await pyco::open_file(path("big"), "rb");
        std::string all = co_await r.read(-1);
        EXPECT_TRUE(all == big) << all.size();
        EXPECT_EQ(r.tell(), big.size());
        co_await r.seek(0);
        std::string chunked;
        for (;;) {
            std::string c = co_await r.read(100000);
            if (c.empty()) break;
            chunked += c;
        }
        EXPECT_TRUE(chunked == big);
        EXPECT_TRUE(co_await r.read_at(3 * 1024 * 1024 + 7, 1 << 20) == big.substr(3 * 1024 * 1024 + 7, 1 << 20));
        co_await r.close();
    }());
    EXPECT_TRUE(get(path("big")) == big);
}

TEST_F(File, ConcurrentReadAtFromSeveralTasks) {
    const std::size_t part = 256 * 1024;
    const std::string big = pattern(8 * part);
    put(path("big"), big);
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("big"), "rb");
        auto reader = [&f](std::uint64_t off, std::size_t n) -> coroutine<std::string> {
            co_return co_await f.read_at(off, n);
        };
        std::vector<coroutine<std::string>> reads;
        for (std::size_t i = 0; i < 8; ++i) reads.push_back(reader((7 - i) * part, part));
        std::vector<std::string> got = co_await pyco::gather(std::move(reads));
        for (std::size_t i = 0; i < 8; ++i) EXPECT_TRUE(got[i] == big.substr((7 - i) * part, part)) << i;
        co_await f.close();
    }());
}

TEST_F(File, ReadsAndWritesAtThePositionKeepCallOrder) {
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "w+b");
        std::vector<pyco::task<std::size_t>> writes;
        for (int i = 0; i < 10; ++i) writes.push_back(pyco::create_task(f.write(std::string(1000, char('0' + i)))));
        for (auto& t : writes) co_await t;
        EXPECT_EQ(f.tell(), 10000u);
        co_await f.close();
    }());
    std::string want;
    for (int i = 0; i < 10; ++i) want += std::string(1000, char('0' + i));
    EXPECT_TRUE(get(path("f")) == want);
}

// --- cancellation ----------------------------------------------------------------

TEST_F(File, CancelledReadStopsTheCallerAndMovesThePositionByWhatItRead) {
    const std::string data = pattern(1 << 20);
    put(path("f"), data);
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "rb");
        auto t = pyco::create_task(f.read(300000));
        co_await pyco::sleep(0s);  // t has started its read
        t.cancel();
        try {
            (void)co_await t;
            ADD_FAILURE() << "the read was not cancelled";
        } catch (const pyco::cancelled_error&) {
        }
        // The read ran to its end all the same (aiofiles: the thread read it);
        // its bytes are gone, and the next read starts after them.
        EXPECT_EQ(co_await f.read(10), data.substr(300000, 10));
        EXPECT_EQ(f.tell(), 300010u);
        co_await f.close();
    }());
}

TEST_F(File, CancelledReadStillWaitingForItsTurnDoesNothing) {
    const std::string data = pattern(1 << 20);
    put(path("f"), data);
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "rb");
        auto first = pyco::create_task(f.read(500000));
        auto second = pyco::create_task(f.read(10));
        co_await pyco::sleep(0s);  // first reads; second waits for it
        second.cancel();
        try {
            (void)co_await second;
            ADD_FAILURE();
        } catch (const pyco::cancelled_error&) {
        }
        EXPECT_TRUE(co_await first == data.substr(0, 500000));
        EXPECT_EQ(co_await f.read(10), data.substr(500000, 10));
        co_await f.close();
    }());
}

TEST_F(File, CancelledWriteStillWritesEverythingAndCloseWaitsForIt) {
    const std::string big = pattern(4 << 20);
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "wb");
        auto t = pyco::create_task(f.write(big));  // the bytes are the operation's now
        co_await pyco::sleep(0s);
        t.cancel();
        try {
            (void)co_await t;
            ADD_FAILURE();
        } catch (const pyco::cancelled_error&) {
        }
        co_await f.write("!");  // after the cancelled write, not over it
        co_await f.close();     // waits for what is in flight
    }());
    EXPECT_TRUE(get(path("f")) == big + "!");
}

TEST_F(File, CancelledReadAtAndFsyncLeaveTheFileUsable) {
    const std::string data = pattern(1 << 20);
    put(path("f"), data);
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(path("f"), "r+b");
        auto r = pyco::create_task(f.read_at(0, 1 << 20));
        auto s = pyco::create_task(f.fsync());
        co_await pyco::sleep(0s);
        r.cancel();
        s.cancel();
        try {
            (void)co_await r;
            ADD_FAILURE();
        } catch (const pyco::cancelled_error&) {
        }
        try {
            co_await s;
            ADD_FAILURE();
        } catch (const pyco::cancelled_error&) {
        }
        EXPECT_EQ(f.tell(), 0u);
        EXPECT_EQ(co_await f.read_at(100, 5), data.substr(100, 5));
        // close() is cancelled while the operation it waits for runs: the
        // file is closed all the same once that operation ends.
        auto w = pyco::create_task(f.write_at(0, std::string(1 << 20, 'w')));
        auto c = pyco::create_task(f.close());
        co_await pyco::sleep(0s);
        c.cancel();
        try {
            co_await c;
        } catch (const pyco::cancelled_error&) {
        }
        EXPECT_TRUE(f.closed());
        EXPECT_EQ(co_await w, std::size_t(1 << 20));
    }());
    EXPECT_TRUE(get(path("f")) == std::string(1 << 20, 'w'));
}

// An operation still in the kernel (or, here, a completion the fault
// injector holds back) when the loop closes: no completion will come, so
// the loop hands the request back and it lets go of the fd. It leaked the
// request, and the fd with it, before (a rare LSan report on CI, where the
// cancelled fsync was still in io-wq at loop close).
TEST_F(File, AnOperationInFlightAtLoopCloseLetsGoOfTheFd) {
    if (!pyco::detail::io_uring_unavailable_reason().empty()) {
        GTEST_SKIP() << "io_uring is unavailable: " << pyco::detail::io_uring_unavailable_reason();
    }
    put(path("f"), "data");
    pyco::detail::fault_config faults;
    faults.rate = 1.0;
    faults.kinds = pyco::detail::fk_delay;
    pyco::loop_options o;
    o.backend = pyco::io_backend_kind::io_uring;
    o.faults = &faults;
    int fd = -1;
    {
        pyco::event_loop loop(o);
        loop.run_until_complete([&]() -> coroutine<void> {
            async_file f = co_await pyco::open_file(path("f"), "r+b");
            fd = f.fileno();
            auto s = pyco::create_task(f.fsync());
            co_await pyco::sleep(0s);
            s.cancel();
            try {
                co_await s;
                ADD_FAILURE();
            } catch (const pyco::cancelled_error&) {
            }
        }());
        loop.close();
    }
    ASSERT_GE(fd, 0);
    errno = 0;
    EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
}

// --- the epoll path's page-cache fast path (file.hpp) ------------------------------
// These run on an epoll loop whatever PYCO_BACKEND says, and count through
// the file layer's hooks where each chunk was read: on the loop thread
// (taken), or on the executor.

pyco::loop_options on_epoll() {
    pyco::loop_options o;
    o.backend = pyco::io_backend_kind::epoll;
    return o;
}

// This thread's hooks, reset before and after a test.
struct Hooks {
    pyco::detail::file_nowait_hooks& h = pyco::detail::file_nowait_hooks_here();
    Hooks() { h = {}; }
    ~Hooks() { h = {}; }
    Hooks(const Hooks&) = delete;
    Hooks& operator=(const Hooks&) = delete;
};

// Every kind of read, at and across EOF; what each returned, and the position.
coroutine<std::vector<std::string>> read_everything(std::string p, std::size_t size) {
    std::vector<std::string> got;
    async_file f = co_await pyco::open_file(p, "rb");
    got.push_back(co_await f.read(4096));
    got.push_back(co_await f.read(100));
    got.push_back(co_await f.read_at(70000, 8192));     // across the "cached" edge below
    got.push_back(co_await f.read_at(size - 10, 100));  // across EOF: 10 bytes
    got.push_back(co_await f.read_at(size, 100));       // at EOF: empty
    got.push_back(co_await f.read_at(size + 5000, 1));  // past EOF: empty
    got.push_back(co_await f.read(100000));
    got.push_back(co_await f.read(-1));                 // the rest
    got.push_back(co_await f.read(1));                  // at EOF: empty
    got.push_back(std::to_string(f.tell()));
    co_await f.seek(-10, 2);
    got.push_back(co_await f.read(100));                // across EOF again, at the position
    got.push_back(std::to_string(f.tell()));
    co_await f.close();
    co_return got;
}

TEST_F(File, PageCacheFastPathGivesWhatTheExecutorGives) {
    const std::size_t size = 200000 + 37;
    const std::string data = pattern(size);
    put(path("f"), data);  // just written: in the page cache
    const std::vector<std::string> want = {data.substr(0, 4096),
                                           data.substr(4096, 100),
                                           data.substr(70000, 8192),
                                           data.substr(size - 10),
                                           "",
                                           "",
                                           data.substr(4196, 100000),
                                           data.substr(104196),
                                           "",
                                           std::to_string(size),
                                           data.substr(size - 10),
                                           std::to_string(size)};
    Hooks hooks;
    // Cached: every chunk on the loop thread, none on the executor.
    EXPECT_EQ(pyco::run(read_everything(path("f"), size), on_epoll()), want);
    EXPECT_GT(hooks.h.taken, 0u);
    EXPECT_EQ(hooks.h.executor, 0u);
    // Refused (as if nothing were cached): every chunk on the executor.
    hooks.h = {};
    hooks.h.enabled = false;
    EXPECT_EQ(pyco::run(read_everything(path("f"), size), on_epoll()), want);
    EXPECT_EQ(hooks.h.taken, 0u);
    EXPECT_GT(hooks.h.executor, 0u);
    // Half cached: short reads from the cache, the rest from the executor.
    hooks.h = {};
    hooks.h.cached_below = 75000;
    EXPECT_EQ(pyco::run(read_everything(path("f"), size), on_epoll()), want);
    EXPECT_GT(hooks.h.taken, 0u);
    EXPECT_GT(hooks.h.refused, 0u);
    EXPECT_GT(hooks.h.executor, 0u);
}

TEST_F(File, PageCacheFastPathReadsToEofWithoutTheExecutor) {
    const std::string data = pattern(100000);
    put(path("f"), data);
    Hooks hooks;
    pyco::run(
        [&]() -> coroutine<void> {
            async_file f = co_await pyco::open_file(path("f"), "rb");
            co_await f.seek(99990);
            EXPECT_EQ(co_await f.read(4096), data.substr(99990));  // a short read, then EOF
            EXPECT_EQ(f.tell(), 100000u);
            EXPECT_EQ(co_await f.read(4096), "");
            EXPECT_EQ(co_await f.read_at(99000, 4096), data.substr(99000));
            co_await f.seek(0);
            EXPECT_TRUE(co_await f.read() == data);
            co_await f.close();
        }(),
        on_epoll());
    EXPECT_EQ(hooks.h.executor, 0u);
    EXPECT_EQ(hooks.h.refused, 0u);
}

TEST_F(File, ReadAllOfAMultiMiBFileOnEitherPath) {
    const std::string data = pattern(3 * 1024 * 1024 + 5);
    put(path("big"), data);
    Hooks hooks;
    for (const bool fast : {true, false}) {
        hooks.h = {};
        hooks.h.enabled = fast;
        pyco::run(
            [&]() -> coroutine<void> {
                async_file f = co_await pyco::open_file(path("big"), "rb");
                EXPECT_TRUE(co_await f.read() == data) << fast;
                EXPECT_EQ(f.tell(), data.size());
                co_await f.seek(12345);
                std::string chunked;
                for (;;) {
                    std::string c = co_await f.read(65536);
                    if (c.empty()) break;
                    chunked += c;
                }
                EXPECT_TRUE(chunked == data.substr(12345)) << fast;
                co_await f.close();
            }(),
            on_epoll());
        // Chunks over 256 KiB always go to the executor (they would hold the loop).
        EXPECT_GT(hooks.h.executor, 0u);
        EXPECT_EQ(hooks.h.taken > 0, fast);
    }
}

TEST_F(File, PageCacheFastPathOnAFileTheKernelHalfDropped) {
    // The real thing, where the filesystem lets it be arranged (not tmpfs):
    // the second half of the file leaves the page cache, and RWF_NOWAIT
    // gives the first half short; the rest comes from the disk.
    const std::size_t size = 192 * 1024;
    const std::string data = pattern(size);
    put(path("f"), data);
    const int fd = ::open(path("f").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fsync(fd), 0);
    (void)::posix_fadvise(fd, size / 2, size / 2, POSIX_FADV_DONTNEED);
    ::close(fd);
    Hooks hooks;
    const std::string got = pyco::run(
        [&]() -> coroutine<std::string> {
            async_file f = co_await pyco::open_file(path("f"), "rb");
            std::string all = co_await f.read();
            co_await f.close();
            co_return all;
        }(),
        on_epoll());
    EXPECT_TRUE(got == data) << got.size();
    EXPECT_GT(hooks.h.taken, 0u);
}

TEST_F(File, FilesWithoutRwfNowaitStopTrying) {
    // procfs refuses RWF_NOWAIT (EOPNOTSUPP): one try, then the executor.
    Hooks hooks;
    const std::string got = pyco::run(
        []() -> coroutine<std::string> {
            async_file f = co_await pyco::open_file("/proc/self/status", "rb");
            std::string all = co_await f.read();
            EXPECT_EQ(co_await f.read_at(0, 5), "Name:");
            co_await f.close();
            co_return all;
        }(),
        on_epoll());
    EXPECT_EQ(got.rfind("Name:", 0), 0u) << got;
    EXPECT_EQ(hooks.h.taken, 0u);
    EXPECT_EQ(hooks.h.refused, 0u);
    EXPECT_GE(hooks.h.executor, 3u);  // the data, its EOF, the read_at
}

TEST_F(File, CancelledReadOnEitherPathMovesThePositionByWhatItRead) {
    const std::string data = pattern(1 << 20);
    put(path("f"), data);
    Hooks hooks;
    for (const bool fast : {true, false}) {
        hooks.h = {};
        hooks.h.enabled = fast;
        pyco::run(
            [&]() -> coroutine<void> {
                async_file f = co_await pyco::open_file(path("f"), "rb");
                co_await f.seek(1000);
                auto t = pyco::create_task(f.read(100000));
                co_await pyco::sleep(0s);  // t has handed its read to the inner task
                t.cancel();
                try {
                    (void)co_await t;
                    ADD_FAILURE() << "the read was not cancelled";
                } catch (const pyco::cancelled_error&) {
                }
                EXPECT_EQ(co_await f.read(10), data.substr(101000, 10)) << fast;
                EXPECT_EQ(f.tell(), 101010u);
                co_await f.close();
            }(),
            on_epoll());
        EXPECT_EQ(hooks.h.executor == 0, fast);
    }
}

// --- files that cannot seek --------------------------------------------------------

TEST_F(File, FifosAreReadAndWrittenInOrder) {
    const std::string fifo = path("fifo");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    // The other end, in a thread: two writes, then EOF.
    std::thread peer([&] {
        const int fd = ::open(fifo.c_str(), O_WRONLY);
        if (fd < 0) return;
        (void)!::write(fd, "abc", 3);
        std::this_thread::sleep_for(10ms);
        (void)!::write(fd, "def", 3);
        std::this_thread::sleep_for(10ms);
        (void)!::write(fd, "tail", 4);
        ::close(fd);
    });
    pyco::run([&]() -> coroutine<void> {
        async_file f = co_await pyco::open_file(fifo, "rb");
        EXPECT_EQ(co_await f.read(6), "abcdef");  // waits for all six (buffered read semantics)
        EXPECT_EQ(co_await f.read(), "tail");     // to EOF
        EXPECT_EQ(message_of<std::system_error>([&] { (void)f.tell(); }), "tell '" + fifo + "': Illegal seek");
        try {
            (void)co_await f.read_at(0, 1);
            ADD_FAILURE();
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), ESPIPE);
        }
        co_await f.close();
    }());
    peer.join();
}

}  // namespace
