// pyco/pyco.hpp — everything pyco offers, in one include.
#pragma once

#include <pyco/async_generator.hpp>
#include <pyco/async_with.hpp>
#include <pyco/barrier.hpp>
#include <pyco/condition.hpp>
#include <pyco/coroutine.hpp>
#include <pyco/errors.hpp>
#include <pyco/event.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/executor.hpp>
#include <pyco/file.hpp>
#include <pyco/future.hpp>
#include <pyco/gather.hpp>
#include <pyco/generator.hpp>
#include <pyco/generator_task.hpp>
#include <pyco/lock.hpp>
#include <pyco/outcome.hpp>
#include <pyco/queue.hpp>
#include <pyco/run.hpp>
#include <pyco/semaphore.hpp>
#include <pyco/shield.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/task_group.hpp>
#include <pyco/threads.hpp>
#include <pyco/timeout.hpp>
#include <pyco/unraisable.hpp>
#include <pyco/wait.hpp>

// Networking (include/pyco/net/).
#include <pyco/net/address.hpp>
#include <pyco/net/connection.hpp>
#include <pyco/net/datagram.hpp>
#include <pyco/net/os_error.hpp>
#include <pyco/net/protocol.hpp>
#include <pyco/net/server.hpp>
#include <pyco/net/socket.hpp>
#include <pyco/net/stream_reader.hpp>
#include <pyco/net/streams.hpp>
#include <pyco/net/transport.hpp>

// Subprocesses.
#include <pyco/subprocess.hpp>
#include <pyco/subprocess_transport.hpp>
