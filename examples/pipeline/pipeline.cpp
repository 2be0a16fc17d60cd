// pipeline [COUNT]
//
// producer | pyco filter | consumer: three programs and pyco in the middle.
//   producer  `seq 1 COUNT` (default 1000000), one number per line;
//   filter    this process: keeps the multiples of 7, a line at a time;
//   consumer  `awk` counting the lines and summing them.
// and prints what the consumer said, e.g. for 1000000:
//   consumer: 142857 numbers, sum 71428928571
//   producer exited 0, consumer exited 0
//   filter: 1000000 lines read, 142857 written, write buffer at most N bytes
//
// Back-pressure, end to end: the filter writes to the consumer and awaits
// drain(), which waits while the consumer's pipe and pyco's write buffer
// are full (above the 64 KiB high-water mark). While it waits it reads
// nothing more, so the producer's pipe fills and `seq` blocks in write().
// Memory stays bounded whatever COUNT is: the largest write buffer seen is
// printed. Run it with a slow consumer to watch it hold:
//   pipeline 1000000 slow     (the consumer sleeps 20 ms every 2000 lines)
// and the write buffer tops out at the high-water mark plus one line
// (65543 bytes), however far behind the consumer falls.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <pyco/pyco.hpp>
#include <pyco/subprocess.hpp>

namespace {

bool keep(const std::string& line) {
    // "123\n" -> 123; a line that is not a number is dropped.
    char* end = nullptr;
    const long n = std::strtol(line.c_str(), &end, 10);
    return end != line.c_str() && n % 7 == 0;
}

pyco::coroutine<int> pipeline(long count, bool slow) {
    pyco::subprocess_options out;
    out.stdout = pyco::subprocess::PIPE;
    std::vector<std::string> seq_args;
    seq_args.push_back("1");
    seq_args.push_back(std::to_string(count));
    pyco::process producer = co_await pyco::create_subprocess_exec("seq", std::move(seq_args), out);

    pyco::subprocess_options in_out;
    in_out.stdin = pyco::subprocess::PIPE;
    in_out.stdout = pyco::subprocess::PIPE;
    std::string awk = slow ? "NR % 2000 == 0 { system(\"sleep 0.02\") } { n++; s += $1 } "
                             "END { printf \"%d numbers, sum %.0f\\n\", n, s }"
                           : "{ n++; s += $1 } END { printf \"%d numbers, sum %.0f\\n\", n, s }";
    std::vector<std::string> awk_args;
    awk_args.push_back(std::move(awk));
    pyco::process consumer = co_await pyco::create_subprocess_exec("awk", std::move(awk_args), in_out);

    long read = 0, written = 0;
    std::size_t most_buffered = 0;
    for (;;) {
        std::string line = co_await producer.stdout->readline();
        if (line.empty()) break;  // the producer's EOF
        ++read;
        if (!keep(line)) continue;
        consumer.stdin.write(line);
        ++written;
        most_buffered = std::max(most_buffered, consumer.stdin.get_write_buffer_size());
        co_await consumer.stdin.drain();  // waits while the consumer is behind
    }
    consumer.stdin.close();  // the consumer's EOF: awk prints its END line
    std::string said = co_await consumer.stdout->read();
    const int producer_code = co_await producer.wait();
    const int consumer_code = co_await consumer.wait();
    std::printf("consumer: %s", said.c_str());
    std::printf("producer exited %d, consumer exited %d\n", producer_code, consumer_code);
    std::printf("filter: %ld lines read, %ld written, write buffer at most %zu bytes\n", read, written,
                most_buffered);
    co_return producer_code == 0 && consumer_code == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const long count = argc > 1 ? std::atol(argv[1]) : 1000000;
    const bool slow = argc > 2 && std::string(argv[2]) == "slow";
    if (count < 1 || (argc > 2 && !slow)) {
        std::fprintf(stderr, "usage: pipeline [COUNT] [slow]\n");
        return 2;
    }
    try {
        return pyco::run(pipeline(count, slow));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pipeline: %s\n", e.what());
        return 1;
    }
}
