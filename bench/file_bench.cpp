// 4 KiB random reads from one file: pyco's file paths beside a plain pread
// loop, at queue depth 1 and 32, from the page cache and with O_DIRECT.
//
//   file_bench [--dir DIR] [--size-mib N] [--reads N] [--direct-reads N]
//              [--repetitions N] [--json FILE] [--filter TEXT]
//
// The file (1 GiB by default) is written in DIR (default: a fresh directory
// under /var/tmp, which is disk, not tmpfs), fsync'ed, read once so that it
// is in the page cache, and removed at the end. Every 4 KiB block starts
// with its own offset and ends with its complement, so a read that returns
// the wrong block, a short block or stale bytes is caught: every read is
// checked, and a wrong one fails the run instead of printing a number.
//
// The reads: aligned offsets drawn with a fixed seed, the same list for
// every case. QD1 is one coroutine reading one block after another; QD32 is
// 32 coroutines (gather) taking the next offset from the same list, so the
// total is the same. Cases run round-robin, --repetitions times (default
// 3), and each line gives the median with the slowest and fastest run, and
// the median CPU time per read of the whole process (all its threads).
//
// The cases:
//   pread                   a plain loop on the calling thread (the floor)
//   open_file read_at       pyco::async_file::read_at, on the epoll loop
//                           (from the page cache: preadv2(RWF_NOWAIT) on the
//                           loop thread, else the default executor) and the
//                           io_uring loop
//   seam read_at            one io_op (io_opcode::read_at) into a
//                           4096-aligned buffer, submitted to the io_uring
//                           loop's backend: the ring without open_file's
//                           layers (its string, task and shield)
//   to_thread pread         pread on the default executor, on the epoll loop
//                           (and, with O_DIRECT, on an executor of 32 threads)
// With O_DIRECT (open_file has no such option, and its string is not
// aligned) only pread, seam and to_thread run.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <pyco/detail/io_backend.hpp>
#include <pyco/file.hpp>
#include <pyco/pyco.hpp>

namespace {

using pyco::coroutine;
using offsets = std::vector<std::uint64_t>;
constexpr std::size_t block = 4096;

[[noreturn]] void fail_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// --- The file ---------------------------------------------------------------

void fill_block(char* p, std::uint64_t off) {
    const std::uint64_t tail = ~off;
    std::memset(p, static_cast<int>((off / block) & 0xff), block);
    std::memcpy(p, &off, sizeof off);
    std::memcpy(p + block - sizeof tail, &tail, sizeof tail);
}

// Throws unless p[0, n) is the whole block written at off.
void check_block(const void* p, long n, std::uint64_t off) {
    if (n != static_cast<long>(block))
        throw std::runtime_error("read at " + std::to_string(off) + " returned " + std::to_string(n) +
                                 " (expected 4096)");
    std::uint64_t head = 0;
    std::uint64_t tail = 0;
    std::memcpy(&head, p, sizeof head);
    std::memcpy(&tail, static_cast<const char*>(p) + block - sizeof tail, sizeof tail);
    if (head != off || tail != ~off)
        throw std::runtime_error("read at " + std::to_string(off) + " returned the block of " +
                                 std::to_string(head));
}

struct aligned_free {
    void operator()(std::byte* p) const noexcept { std::free(p); }
};
using aligned_buffer = std::unique_ptr<std::byte[], aligned_free>;
aligned_buffer make_buffer(std::size_t n) {
    auto* p = static_cast<std::byte*>(std::aligned_alloc(block, n));
    if (p == nullptr) throw std::bad_alloc();
    return aligned_buffer(p);
}

void create_file(const std::string& path, std::uint64_t size) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail_errno("open " + path);
    constexpr std::size_t chunk = 1 << 20;
    std::vector<char> buf(chunk);
    for (std::uint64_t at = 0; at < size; at += chunk) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - at));
        for (std::size_t b = 0; b < n; b += block) fill_block(buf.data() + b, at + b);
        if (::pwrite(fd, buf.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n)) fail_errno("write");
    }
    // On disk before any O_DIRECT read (else the first ones wait for writeback).
    if (::fsync(fd) != 0) fail_errno("fsync");
    ::close(fd);
}

// Reads the whole file (into the page cache); the share of it resident after.
double warm_cache(const std::string& path, std::uint64_t size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno("open " + path);
    std::vector<char> buf(1 << 20);
    for (std::uint64_t at = 0; at < size; at += buf.size())
        if (::pread(fd, buf.data(), buf.size(), static_cast<off_t>(at)) < 0) fail_errno("read");
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) fail_errno("mmap");
    const long page = ::sysconf(_SC_PAGESIZE);
    std::vector<unsigned char> in((size + static_cast<std::uint64_t>(page) - 1) / static_cast<std::uint64_t>(page));
    if (::mincore(map, size, in.data()) != 0) fail_errno("mincore");
    ::munmap(map, size);
    ::close(fd);
    const auto resident = std::count_if(in.begin(), in.end(), [](unsigned char c) { return (c & 1) != 0; });
    return static_cast<double>(resident) / static_cast<double>(in.size());
}

// An O_DIRECT fd, or -1 with why (EINVAL: the filesystem refuses O_DIRECT).
int open_direct(const std::string& path, std::string& why) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
        why = errno == EINVAL ? "O_DIRECT refused by this filesystem" : std::strerror(errno);
        return -1;
    }
    auto buf = make_buffer(block);
    if (::pread(fd, buf.get(), block, 0) < 0) {  // some refuse only at the first read
        why = errno == EINVAL ? "O_DIRECT refused by this filesystem" : std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

// --- The readers ------------------------------------------------------------

// Wall time, and CPU time of the whole process (every thread: the
// executor's, io_uring's io-wq workers), which a shared machine disturbs less.
struct timing {
    double wall = 0, cpu = 0;
};
struct stopwatch {
    static double cpu_now() {
        timespec t{};
        ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
    }
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    double c0 = cpu_now();
    timing elapsed() const {
        return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), cpu_now() - c0};
    }
};

// The offsets the workers of one case share: each takes the next one. A
// wrong read stops them all (no new reads; those in flight finish), and the
// case then fails: throwing out of one worker would cancel the others with
// their reads still in the kernel.
struct work {
    const offsets* offs;
    std::size_t next = 0;
    std::string error;
    bool take(std::uint64_t& off) {
        if (next == offs->size() || !error.empty()) return false;
        off = (*offs)[next++];
        return true;
    }
    // n: the read's result (-errno on failure).
    void check(const void* p, long n, std::uint64_t off) {
        try {
            if (n < 0) throw std::system_error(static_cast<int>(-n), std::generic_category(), "read");
            check_block(p, n, off);
        } catch (const std::exception& e) {
            if (error.empty()) error = e.what();
        }
    }
};

timing run_pread(int fd, const offsets& offs) {
    auto buf = make_buffer(block);
    const stopwatch sw;
    for (const std::uint64_t off : offs) {
        long n;
        do n = ::pread(fd, buf.get(), block, static_cast<off_t>(off));
        while (n < 0 && errno == EINTR);
        if (n < 0) fail_errno("pread");
        check_block(buf.get(), n, off);
    }
    return sw.elapsed();
}

coroutine<void> file_worker(pyco::async_file& f, work& w) {
    std::uint64_t off;
    while (w.take(off)) {
        const std::string b = co_await f.read_at(off, block);
        w.check(b.data(), static_cast<long>(b.size()), off);
    }
}

// One io_op, reused for each read; its buffer and the op belong to the
// backend from a pending submit until the completion.
struct seam_read {
    pyco::detail::io_op op;
    pyco::future<long> done;
};

void seam_complete(pyco::detail::io_op& op, const pyco::detail::io_result& r) {
    if (!r.more) static_cast<seam_read*>(op.user)->done.set_result(r.res);
}

coroutine<void> seam_worker(int fd, work& w) {
    pyco::event_loop& loop = pyco::get_running_loop();
    auto buf = make_buffer(block);
    seam_read s;
    s.op.on_complete = &seam_complete;
    s.op.user = &s;
    s.op.fd = fd;
    s.op.code = pyco::detail::io_opcode::read_at;
    s.op.buf = buf.get();
    s.op.len = block;
    std::uint64_t off;
    while (w.take(off)) {
        s.op.offset = off;
        long n;
        if (loop.backend().submit(s.op) == pyco::detail::io_status::done) {
            n = s.op.result;
        } else {
            s.done = loop.create_future<long>();
            pyco::future<long> f = s.done;
            n = co_await f;
        }
        w.check(buf.get(), n, off);
    }
}

// pread on the default executor (pool == nullptr), or on pool.
coroutine<void> thread_worker(int fd, work& w, pyco::executor* pool) {
    auto buf = make_buffer(block);
    std::byte* p = buf.get();
    std::uint64_t off;
    while (w.take(off)) {
        auto job = [fd, p, off]() -> long {
            long n;
            do n = ::pread(fd, p, block, static_cast<off_t>(off));
            while (n < 0 && errno == EINTR);
            return n < 0 ? -errno : n;
        };
        long n;
        if (pool == nullptr) {
            n = co_await pyco::to_thread(job);
        } else {
            auto f = pyco::get_running_loop().run_in_executor(*pool, job);
            n = co_await f;
        }
        w.check(p, n, off);
    }
}

enum class method { file, seam, thread, pool32 };

coroutine<void> run_workers(method m, int fd, pyco::async_file& f, work& w, int qd, pyco::executor* pool) {
    std::vector<coroutine<void>> ws;
    for (int i = 0; i < qd; ++i) {
        if (m == method::file) ws.push_back(file_worker(f, w));
        else if (m == method::seam) ws.push_back(seam_worker(fd, w));
        else ws.push_back(thread_worker(fd, w, pool));
    }
    co_await pyco::gather(std::move(ws));
}

// Wall and CPU time for all of offs at queue depth qd, after a short
// warm-up (the executor starts its threads as work arrives).
coroutine<timing> run_pyco(method m, int fd, std::string path, int qd, const offsets& offs) {
    pyco::async_file f;
    if (m == method::file) f = co_await pyco::open_file(path, "rb");
    if (m == method::seam && !pyco::get_running_loop().backend().supports(pyco::detail::io_opcode::read_at))
        throw std::runtime_error("this loop's backend does not take read_at");
    const offsets warm(offs.begin(), offs.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(256, offs.size())));
    // The default executor has min(32, cores + 4) threads; pool32 gives each
    // of 32 readers a thread.
    std::unique_ptr<pyco::thread_pool_executor> pool;
    if (m == method::pool32) pool = std::make_unique<pyco::thread_pool_executor>(32);
    work w0{&warm, 0, {}};
    co_await run_workers(m, fd, f, w0, qd, pool.get());
    work w{&offs, 0, {}};
    const stopwatch sw;
    co_await run_workers(m, fd, f, w, qd, pool.get());
    const timing t = sw.elapsed();
    if (!w0.error.empty() || !w.error.empty()) throw std::runtime_error(w0.error.empty() ? w.error : w0.error);
    if (w.next != offs.size()) throw std::runtime_error("not every read was done");
    if (m == method::file) co_await f.close();
    co_return t;
}

// --- The cases --------------------------------------------------------------

struct bench_case {
    std::string level;  // "page cache" or "O_DIRECT"
    std::string name;
    int qd;
    bool direct;
    bool uring;  // on an io_uring loop (else epoll; pread: no loop)
    method m;
    bool plain;  // the plain pread loop
    std::vector<double> rates;       // reads per second
    std::vector<double> cpu_us;      // CPU microseconds per read
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string with_commas(double x) {
    std::string s = std::to_string(static_cast<long long>(x + 0.5));
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
}

struct options {
    std::string dir;
    std::uint64_t size_mib = 1024;
    std::size_t reads = 100000;
    std::size_t direct_reads = 20000;
    int repetitions = 3;
    std::string json;
    std::string filter;  // only the cases whose "level name QDn" contains it
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--dir") o.dir = value();
        else if (a == "--size-mib") o.size_mib = std::stoull(value());
        else if (a == "--reads") o.reads = std::stoull(value());
        else if (a == "--direct-reads") o.direct_reads = std::stoull(value());
        else if (a == "--repetitions") o.repetitions = std::stoi(value());
        else if (a == "--json") o.json = value();
        else if (a == "--filter") o.filter = value();
        else
            throw std::runtime_error("usage: file_bench [--dir DIR] [--size-mib N] [--reads N] "
                                     "[--direct-reads N] [--repetitions N] [--json FILE] [--filter TEXT]");
    }
    if (o.size_mib == 0 || o.reads == 0 || o.direct_reads == 0 || o.repetitions < 1)
        throw std::runtime_error("sizes, counts and repetitions must be positive");
    return o;
}

offsets random_offsets(std::size_t n, std::uint64_t size, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::uint64_t> pick(0, size / block - 1);
    offsets v(n);
    for (auto& o : v) o = pick(rng) * block;
    return v;
}

// Removes what the run made, however it ends.
struct cleanup {
    std::string file, dir;
    ~cleanup() {
        std::error_code ec;
        if (!file.empty()) std::filesystem::remove(file, ec);
        if (!dir.empty()) std::filesystem::remove(dir, ec);
    }
};

void write_json(const options& o, const std::vector<bench_case>& cases, const std::string& notes) {
    utsname u{};
    ::uname(&u);
    std::ofstream out(o.json);
    out << "{\n  \"kernel\": \"" << u.release << "\", \"size_mib\": " << o.size_mib << ", \"reads\": " << o.reads
        << ", \"direct_reads\": " << o.direct_reads << ", \"repetitions\": " << o.repetitions
        << ",\n  \"notes\": \"" << notes << "\",\n  \"cases\": [\n";
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const bench_case& c = cases[i];
        out << "    {\"level\": \"" << c.level << "\", \"name\": \"" << c.name << "\", \"qd\": " << c.qd
            << ", \"reads_per_s_median\": " << static_cast<long long>(median(c.rates))
            << ", \"cpu_us_per_read_median\": " << median(c.cpu_us) << ", \"runs\": [";
        for (std::size_t r = 0; r < c.rates.size(); ++r)
            out << (r ? ", " : "") << "[" << static_cast<long long>(c.rates[r]) << ", " << c.cpu_us[r] << "]";
        out << "]}" << (i + 1 < cases.size() ? "," : "") << "\n";
    }
    out << "  ]\n}\n";
    if (!out) throw std::runtime_error("cannot write " + o.json);
}

int run_main(int argc, char** argv) {
    const options o = parse(argc, argv);
    cleanup clean;
    std::string dir = o.dir;
    if (dir.empty()) {
        char tmpl[] = "/var/tmp/pyco-filebench-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) fail_errno("mkdtemp");
        dir = clean.dir = tmpl;
    }
    const std::string path = dir + "/file_bench." + std::to_string(::getpid()) + ".dat";
    const std::uint64_t size = o.size_mib << 20;
    clean.file = path;
    std::printf("file: %s, %llu MiB; 4 KiB random reads, %zu per case (O_DIRECT: %zu), median of %d\n",
                path.c_str(), static_cast<unsigned long long>(o.size_mib), o.reads, o.direct_reads, o.repetitions);
    create_file(path, size);
    const double resident = warm_cache(path, size);
    std::printf("page cache: %.1f %% of the file resident after one read\n", resident * 100);
    if (resident < 0.99) throw std::runtime_error("the file does not stay in the page cache");

    std::string notes;
    const std::string& no_uring = pyco::detail::io_uring_unavailable_reason();
    if (!no_uring.empty()) {
        std::printf("io_uring unavailable (%s): its cases are skipped\n", no_uring.c_str());
        notes += "io_uring unavailable: " + no_uring + ". ";
    }
    std::string why;
    const int dfd = open_direct(path, why);
    if (dfd < 0) {
        std::printf("%s: the O_DIRECT cases are skipped\n", why.c_str());
        notes += why + ". ";
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_errno("open " + path);

    const offsets cached = random_offsets(o.reads, size, 20240901);
    const offsets direct = random_offsets(o.direct_reads, size, 20240902);
    std::vector<bench_case> cases;
    auto add = [&](const char* level, const char* name, int qd, bool d, bool uring, method m, bool plain) {
        if (uring && !no_uring.empty()) return;
        if (d && dfd < 0) return;
        if ((std::string(level) + " " + name + " QD" + std::to_string(qd)).find(o.filter) == std::string::npos) return;
        cases.push_back({level, name, qd, d, uring, m, plain, {}, {}});
    };
    add("page cache", "pread loop", 1, false, false, method::file, true);
    for (const int qd : {1, 32}) {
        add("page cache", "open_file read_at, epoll", qd, false, false, method::file, false);
        add("page cache", "open_file read_at, io_uring", qd, false, true, method::file, false);
        add("page cache", "seam read_at, io_uring", qd, false, true, method::seam, false);
        add("page cache", "to_thread pread, epoll", qd, false, false, method::thread, false);
    }
    add("O_DIRECT", "pread loop", 1, true, false, method::file, true);
    for (const int qd : {1, 32}) {
        add("O_DIRECT", "seam read_at, io_uring", qd, true, true, method::seam, false);
        add("O_DIRECT", "to_thread pread, epoll", qd, true, false, method::thread, false);
    }
    add("O_DIRECT", "pread, 32-thread executor, epoll", 32, true, false, method::pool32, false);

    for (int rep = 0; rep < o.repetitions; ++rep) {
        for (bench_case& c : cases) {
            const offsets& offs = c.direct ? direct : cached;
            const int cfd = c.direct ? dfd : fd;
            timing t;
            if (c.plain) {
                t = run_pread(cfd, offs);
            } else {
                pyco::loop_options lo;
                lo.backend = c.uring ? pyco::io_backend_kind::io_uring : pyco::io_backend_kind::epoll;
                t = pyco::run(run_pyco(c.m, cfd, path, c.qd, offs), lo);
            }
            c.rates.push_back(static_cast<double>(offs.size()) / t.wall);
            c.cpu_us.push_back(t.cpu * 1e6 / static_cast<double>(offs.size()));
        }
    }
    for (const bench_case& c : cases) {
        const auto [lo, hi] = std::minmax_element(c.rates.begin(), c.rates.end());
        std::printf("%-10s  %-36s QD%-3d %11s reads/s  (%s..%s)  %6.2f us CPU/read\n", c.level.c_str(),
                    c.name.c_str(), c.qd, with_commas(median(c.rates)).c_str(), with_commas(*lo).c_str(),
                    with_commas(*hi).c_str(), median(c.cpu_us));
    }
    if (!o.json.empty()) write_json(o, cases, notes);
    ::close(fd);
    if (dfd >= 0) ::close(dfd);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run_main(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "file_bench: FAILED: %s\n", e.what());
        return 1;
    }
}
