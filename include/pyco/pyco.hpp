// pyco/pyco.hpp — everything pyco offers, in one include.
#pragma once

#include <pyco/async_generator.hpp>
#include <pyco/async_with.hpp>
#include <pyco/coroutine.hpp>
#include <pyco/errors.hpp>
#include <pyco/event_loop.hpp>
#include <pyco/executor.hpp>
#include <pyco/future.hpp>
#include <pyco/gather.hpp>
#include <pyco/generator.hpp>
#include <pyco/generator_task.hpp>
#include <pyco/outcome.hpp>
#include <pyco/run.hpp>
#include <pyco/shield.hpp>
#include <pyco/sleep.hpp>
#include <pyco/task.hpp>
#include <pyco/task_group.hpp>
#include <pyco/threads.hpp>
#include <pyco/timeout.hpp>
#include <pyco/unraisable.hpp>
#include <pyco/wait.hpp>
