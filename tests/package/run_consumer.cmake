# Builds and runs tests/package/consumer against this build of pyco, or
# configures pyco itself as a top-level project without GoogleTest.
#   -DMODE=find_package|add_subdirectory|no_gtest -DWORK_DIR=
#   -DPYCO_SOURCE_DIR= -DPYCO_BINARY_DIR= -DGENERATOR= -DCXX= -DLAUNCHER=
#   -DCXX_FLAGS= -DCXX_FLAGS_CONFIG= -DLINKER_FLAGS= -DBUILD_TYPE= -DWERROR=
#
# WORK_DIR is kept between runs. A consumer's tree is configured again only
# when the arguments below change (ninja itself re-runs CMake when a
# CMakeLists.txt changed) and is rebuilt incrementally, so that a re-run with
# nothing changed takes seconds while any change to pyco's sources, headers
# or CMake files is still built: add_subdirectory compiles them in place,
# and find_package reinstalls (cmake --install copies what changed).

# Runs a command; on failure, stops with its output.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "package.${MODE}: ${what} failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# Writes a file only when its content changes, so that ninja rebuilds
# nothing on an unchanged re-run.
function(write_if_changed path content)
  if(EXISTS "${path}")
    file(READ "${path}" old)
    if(old STREQUAL content)
      return()
    endif()
  endif()
  file(WRITE "${path}" "${content}")
endfunction()

string(TOUPPER "${BUILD_TYPE}" bt)
set(common -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
  "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" "-DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER}"
  "-DPYCO_WERROR=${WERROR}")
if(bt)
  list(APPEND common "-DCMAKE_CXX_FLAGS_${bt}=${CXX_FLAGS_CONFIG}")
endif()
set(build "${WORK_DIR}/build")
file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "no_gtest")
  # pyco as the top-level project on a machine without GoogleTest: the
  # configure succeeds, says why the tests are left out, and defines none.
  step("configure without GoogleTest" "${CMAKE_COMMAND}" -S "${PYCO_SOURCE_DIR}"
    -B "${build}" ${common} -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON
    -DPYCO_BUILD_TESTS=ON -DPYCO_BUILD_EXAMPLES=OFF)
  if(NOT step_output MATCHES "GoogleTest not found")
    message(FATAL_ERROR "no message about the missing GoogleTest:\n${step_output}")
  endif()
  if(EXISTS "${build}/tests")
    message(FATAL_ERROR "the tests were configured without GoogleTest")
  endif()
  return()
endif()

set(args ${common} -S "${PYCO_SOURCE_DIR}/tests/package/consumer" -B "${build}"
  "-DPYCO_CONSUMER_MODE=${MODE}" "-DPYCO_SOURCE_DIR=${PYCO_SOURCE_DIR}")
if(MODE STREQUAL "add_subdirectory")
  # README.md's first ```cpp block is a second program, so that the README's
  # example cannot drift from the library. GoogleTest is made unfindable: a
  # subproject must not need it.
  file(READ "${PYCO_SOURCE_DIR}/README.md" readme)
  string(FIND "${readme}" "```cpp\n" start)
  if(start EQUAL -1)
    message(FATAL_ERROR "README.md has no ```cpp block")
  endif()
  math(EXPR start "${start} + 7")
  string(SUBSTRING "${readme}" ${start} -1 rest)
  string(FIND "${rest}" "```" stop)
  string(SUBSTRING "${rest}" 0 ${stop} code)
  write_if_changed("${WORK_DIR}/readme.cpp" "${code}")
  list(APPEND args "-DPYCO_CONSUMER_README=${WORK_DIR}/readme.cpp"
    -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON)
elseif(MODE STREQUAL "find_package")
  step("cmake --install" "${CMAKE_COMMAND}" --install "${PYCO_BINARY_DIR}"
    --prefix "${WORK_DIR}/prefix" --config "${BUILD_TYPE}")
  foreach(f include/pyco/pyco.hpp include/pyco/detail/generator_node.hpp)
    if(NOT EXISTS "${WORK_DIR}/prefix/${f}")
      message(FATAL_ERROR "not installed: ${f}")
    endif()
  endforeach()
  list(APPEND args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()

string(JOIN "\n" stamp ${args})
set(stamp_file "${WORK_DIR}/configured-with.txt")
set(old_stamp "")
if(EXISTS "${stamp_file}" AND EXISTS "${build}/CMakeCache.txt")
  file(READ "${stamp_file}" old_stamp)
endif()
if(NOT old_stamp STREQUAL stamp)
  file(REMOVE "${stamp_file}")
  step(configure "${CMAKE_COMMAND}" ${args})
  file(WRITE "${stamp_file}" "${stamp}")
endif()
step(build "${CMAKE_COMMAND}" --build "${build}")
step(run "${build}/consumer")
# pyco::ssl's consumer, when pyco was built with OpenSSL.
if(EXISTS "${build}/consumer_ssl")
  step(run_ssl "${build}/consumer_ssl")
endif()
