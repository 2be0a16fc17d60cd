// pyco/subprocess.hpp — asyncio.subprocess: create_subprocess_exec,
// create_subprocess_shell and pyco::process.
//
//   pyco::subprocess_options o;
//   o.stdout = pyco::subprocess::PIPE;
//   pyco::process p = co_await pyco::create_subprocess_exec("ls", {"-l", "/"}, o);
//   while (auto line = co_await p.stdout->anext()) use(*line);
//   int code = co_await p.wait();
//
//   auto [out, err] = co_await p.communicate("input");   // feeds stdin, reads both
//
// Spawning, watching and the lifetime of children: see
// <pyco/subprocess_transport.hpp> (posix_spawn; pidfd or a waitpid thread;
// never a SIGCHLD handler; no zombie when every handle is dropped).
//
// pyco::process is a shared handle: copies refer to the same child (as
// Python references to one Process object do). The child's life does not
// depend on it: dropping the last copy neither kills the child nor leaves
// a zombie (CPython: the watcher holds the transport until the child exits).
//
// Streams: stdin is a stream_writer (empty unless stdin was PIPE; check
// with has_stdin()); stdout and stderr are stream_readers (null unless PIPE).
//
// Cancellation: cancelling wait() or communicate() leaves the child running
// and watched; a later wait() returns its code. A cancelled communicate()
// loses no output: its reads to EOF leave every byte in stdout/stderr until
// EOF (stream_reader's read() rule; CPython's would drop what it gathered),
// so a later read gets them; part of the input may have been written, and
// stdin is then left open.
//
// GCC 12: a braced list written as an argument inside a co_await
// full-expression is rejected by GCC 12 ("array used as initializer",
// -O2 and -O3 alike; toolchain.md), e.g.
// `co_await create_subprocess_exec("echo", {"hi"})`. Write the arguments
// as a local vector first, or pass them one by one, as Python does:
//   auto p = co_await pyco::create_subprocess_exec("echo", "hi", "there");
//
// Thread rule: loop thread only.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <pyco/coroutine.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/stream_reader.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/subprocess_transport.hpp>

namespace pyco {

class process {
public:
    process() = default;

    int pid() const noexcept;
    // nullopt while running; exit status, or -N if killed by signal N.
    std::optional<int> returncode() const noexcept;

    stream_writer stdin;                    // transport-less unless stdin was PIPE
    std::shared_ptr<stream_reader> stdout;  // null unless PIPE
    std::shared_ptr<stream_reader> stderr;  // null unless PIPE
    bool has_stdin() const noexcept { return has_stdin_; }

    // Until the child exits and its pipes are closed (asyncio 3.12); the
    // returncode.
    [[nodiscard]] coroutine<int> wait();
    // Writes input (if any) to stdin and closes it; reads stdout and stderr
    // to their end at the same time (no deadlock, however large); then
    // wait(). An output that is not PIPE reads as "" (Python: None). A
    // broken pipe or reset on stdin is ignored, and input is dropped when
    // stdin is not PIPE, as CPython does.
    [[nodiscard]] coroutine<std::pair<std::string, std::string>> communicate(
        std::optional<std::string> input = std::nullopt);
    // Nothing once the child has exited (not yet waited for);
    // process_lookup_error once wait() has completed (CPython 3.12).
    void send_signal(int sig);
    void terminate();
    void kill();

    // The transport underneath (asyncio's Process._transport).
    const std::shared_ptr<subprocess_transport>& transport() const noexcept { return transport_; }

private:
    friend struct process_access;
    std::shared_ptr<subprocess_transport> transport_;
    std::shared_ptr<subprocess_protocol> protocol_;
    bool has_stdin_ = false;
};

// argv = {program, args...}; program is searched in PATH unless it has a '/'.
// Exec failures raise file_not_found_error / permission_error:
// "exec 'nosuch': No such file or directory" (Python: "[Errno 2] No such
// file or directory: 'nosuch'"), a bad cwd names the directory.
[[nodiscard]] coroutine<process> create_subprocess_exec(std::string program, std::vector<std::string> args = {},
                                                        subprocess_options options = {});
// /bin/sh -c cmd.
[[nodiscard]] coroutine<process> create_subprocess_shell(std::string cmd, subprocess_options options = {});

// Python's create_subprocess_exec(program, *args): the arguments as
// separate strings, default options. Also the form GCC 12 compiles (see
// above).
template <class... A>
    requires(sizeof...(A) > 0 && (std::is_convertible_v<A, std::string_view> && ...))
[[nodiscard]] coroutine<process> create_subprocess_exec(std::string program, A&&... args) {
    std::vector<std::string> v;
    v.reserve(sizeof...(A));
    (v.emplace_back(std::string_view(args)), ...);
    return create_subprocess_exec(std::move(program), std::move(v));
}

}  // namespace pyco
