# Compiles misuse.cpp (-DMODE=clean: as is, which must build; -DMODE=misuse:
# with PYCO_MISUSE, which must fail) and checks that every case in -DCASES
# drew a diagnostic at its own line (the one ending in "// CASE <name>"), and
# that the expected words (-DEXPECT, and each of -DEXPECT_ALSO) appear among
# the diagnostics.
#   -DCXX= -DCXX_ID= -DSOURCE= -DINCLUDE= -DMODE= -DCASES= -DEXPECT= -DEXPECT_ALSO=
# -Werror: a user's warnings-as-errors build (clang reports a discarded
# [[nodiscard]] temporary as -Wunused-value, GCC as -Wunused-result); no cap
# on the number of errors reported (clang stops at 20 by default).
set(args -std=c++20 -fsyntax-only -Wall -Wextra -Werror "-I${INCLUDE}" "${SOURCE}")
if(CXX_ID STREQUAL "Clang")
  list(APPEND args -ferror-limit=0)
else()
  list(APPEND args -fmax-errors=0)
endif()
if(MODE STREQUAL "misuse")
  list(APPEND args -DPYCO_MISUSE)
endif()
execute_process(COMMAND "${CXX}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(MODE STREQUAL "clean")
  if(rc)
    message(FATAL_ERROR "misuse.cpp does not compile without PYCO_MISUSE:\n${out}")
  endif()
  return()
endif()
if(NOT rc)
  message(FATAL_ERROR "misuse.cpp compiled with PYCO_MISUSE: the compiler should refuse every case")
endif()
# Each case's line number: its diagnostic names it as misuse.cpp:<line>:
# (a static_assert's "required from here" quotes no source line).
file(READ "${SOURCE}" source)
set(missing "")
foreach(case IN LISTS CASES)
  string(FIND "${source}" "// CASE ${case}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "misuse.cpp has no case ${case}")
  endif()
  string(SUBSTRING "${source}" 0 ${at} before)
  string(REGEX MATCHALL "\n" newlines "${before}")
  list(LENGTH newlines line)
  math(EXPR line "${line} + 1")
  if(NOT out MATCHES "misuse\\.cpp:${line}:[0-9]+:")
    list(APPEND missing "${case} (line ${line})")
  endif()
endforeach()
if(missing)
  message(FATAL_ERROR "no diagnostic for: ${missing}\n${out}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "the diagnostics lack \"${EXPECT}\":\n${out}")
endif()
foreach(extra IN LISTS EXPECT_ALSO)
  if(NOT out MATCHES "${extra}")
    message(FATAL_ERROR "the diagnostics lack \"${extra}\":\n${out}")
  endif()
endforeach()
list(LENGTH CASES n)
message(STATUS "all ${n} cases refused")
