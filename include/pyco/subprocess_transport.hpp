// pyco/subprocess_transport.hpp — asyncio's SubprocessProtocol and
// SubprocessTransport, and the options every way of starting a child takes.
//
//   struct proto : pyco::subprocess_protocol {
//       void pipe_data_received(int fd, std::span<const std::byte> data) override { ... }
//       void process_exited() override { ... }
//   };
//   pyco::subprocess_options o;
//   o.stdout = pyco::subprocess::PIPE;
//   auto [tr, pr] = co_await loop.subprocess_exec([] { return std::make_shared<proto>(); }, {"ls", "-l"}, o);
//
// The callbacks run on the loop's thread, in asyncio's order:
// connection_made(transport) first; then pipe_data_received(fd, bytes) for
// fd 1 and 2 and pipe_connection_lost(fd, exc) once for each pipe (0, 1, 2
// that are PIPE) in whatever order they close; process_exited() once the
// child has been reaped (maybe before some pipe is lost: a grandchild may
// hold one open); connection_lost(null) last, once the child has exited
// AND every pipe is lost. pause_writing/resume_writing come from the stdin
// pipe's flow control (64 KiB / 16 KiB, as socket transports).
//
// SIGPIPE: the first child made with stdin=PIPE sets SIGPIPE to SIG_IGN if
// it is still at its default action (as the Python interpreter does at
// start): else a write to a stdin whose reader exited would kill this
// process. A handler of the application, or SIG_IGN, is left alone.
//
// Children: spawned with posix_spawn (vfork speed); the parent's ends of the
// pipes are close-on-exec and non-blocking; the child starts with an empty
// signal mask and default signal dispositions whatever the loop blocked.
// Each child is watched by a pidfd (Linux >= 5.3) on the loop, as
// CPython's PidfdChildWatcher; where pidfd_open is not there (ENOSYS) — or
// PYCO_CHILD_WATCHER=thread is set in the environment (tests use it) — by a
// thread per child blocked in waitpid, which posts the status to the loop
// (CPython's ThreadedChildWatcher). No SIGCHLD handler is ever installed:
// the application's stays as it was.
//
// Lifetime and zombies: the transport keeps itself alive until the child is
// reaped and connection_lost has run, whoever still holds it; dropping
// every handle neither kills nor leaks the child (it is reaped when it
// exits). close() closes the pipes and kills a child still running (as
// asyncio). If the loop closes first, the child is not killed: a detached
// thread waits for it and reaps it, so no zombie is left behind; no
// callback runs any more.
//
// Thread rule: loop thread only (the fallback watcher's thread touches
// nothing but its own child and the loop's thread-safe inbox).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <pyco/net/stream_reader.hpp>

namespace pyco {

class transport;

namespace subprocess {
// Python's asyncio.subprocess.PIPE, STDOUT, DEVNULL (same values).
inline constexpr int PIPE = -1;
inline constexpr int STDOUT = -2;
inline constexpr int DEVNULL = -3;
}  // namespace subprocess

// The keyword arguments of create_subprocess_exec / Popen that pyco has.
struct subprocess_options {
    // nullopt: inherited (Python's None); subprocess::PIPE, DEVNULL, STDOUT
    // (stderr only: where stdout goes), or an fd >= 0 (the caller's; not
    // closed).
    std::optional<int> stdin, stdout, stderr;
    // The stream_reader limit of process.stdout/stderr (create_subprocess_*).
    std::size_t limit = stream_reader::default_limit;
    std::optional<std::string> cwd;
    // The child's whole environment, "KEY=VALUE" each; nullopt: the parent's.
    // A program name without '/' is searched in this PATH (or the parent's),
    // as Python does.
    std::optional<std::vector<std::string>> env;
    bool start_new_session = false;          // setsid() in the child
    std::optional<pid_t> process_group;      // setpgid(0, pgid) (Python 3.11+)
    std::vector<int> pass_fds;               // kept open in the child, as numbered here
    bool close_fds = true;                   // close every other fd >= 3 in the child
};

class subprocess_transport;

// asyncio.SubprocessProtocol.
class subprocess_protocol {
public:
    virtual ~subprocess_protocol() = default;
    virtual void connection_made(subprocess_transport& t) { (void)t; }
    // fd 1 or 2; the bytes are valid during the call only.
    virtual void pipe_data_received(int fd, std::span<const std::byte> data) {
        (void)fd;
        (void)data;
    }
    virtual void pipe_connection_lost(int fd, std::exception_ptr exc) {
        (void)fd;
        (void)exc;
    }
    virtual void process_exited() {}
    virtual void connection_lost(std::exception_ptr exc) { (void)exc; }
    // The stdin pipe's flow control.
    virtual void pause_writing() {}
    virtual void resume_writing() {}
};

// asyncio.SubprocessTransport.
class subprocess_transport {
public:
    virtual ~subprocess_transport() = default;
    virtual int get_pid() const noexcept = 0;
    // nullopt while running; the exit status, or -N when killed by signal N.
    virtual std::optional<int> get_returncode() const noexcept = 0;
    // The pipe transport of fd 0, 1 or 2, or null if that fd is not a PIPE.
    virtual std::shared_ptr<transport> get_pipe_transport(int fd) const = 0;
    // No effect once the child has exited but the transport is still open;
    // process_lookup_error once the transport is finished (connection_lost
    // ran) or closed — CPython 3.12's ProcessLookupError.
    virtual void send_signal(int sig) = 0;
    void terminate();  // SIGTERM
    void kill();       // SIGKILL
    // Closes the pipes and kills the child if it still runs.
    virtual void close() = 0;
    virtual bool is_closing() const noexcept = 0;
    // Until the child has exited and connection_lost has run: its returncode
    // (asyncio's _wait). Cancelling leaves the child running.
    [[nodiscard]] virtual coroutine<int> wait() = 0;
};

using subprocess_protocol_factory = std::function<std::shared_ptr<subprocess_protocol>()>;
using subprocess_pair = std::pair<std::shared_ptr<subprocess_transport>, std::shared_ptr<subprocess_protocol>>;

}  // namespace pyco
