// pyco/pyco.hpp — everything pyco offers, in one include.
#pragma once

#include <pyco/errors.hpp>
#include <pyco/generator.hpp>
#include <pyco/unraisable.hpp>
