# Builds and runs tests/package/consumer against this build of pyco.
#   -DMODE=find_package|add_subdirectory|readme -DPYCO_SOURCE_DIR= -DPYCO_BINARY_DIR=
# readme: the first ```cpp block of README.md is the program, built through
# add_subdirectory, so the README's example cannot drift from the library.
#   -DWORK_DIR= -DCXX= -DCXX_FLAGS= -DLINKER_FLAGS= -DBUILD_TYPE=
file(REMOVE_RECURSE "${WORK_DIR}")
set(main "${PYCO_SOURCE_DIR}/tests/package/consumer/main.cpp")
if(MODE STREQUAL "readme")
  file(READ "${PYCO_SOURCE_DIR}/README.md" readme)
  string(FIND "${readme}" "```cpp\n" start)
  if(start EQUAL -1)
    message(FATAL_ERROR "README.md has no ```cpp block")
  endif()
  math(EXPR start "${start} + 7")
  string(SUBSTRING "${readme}" ${start} -1 rest)
  string(FIND "${rest}" "```" stop)
  string(SUBSTRING "${rest}" 0 ${stop} code)
  set(main "${WORK_DIR}/readme.cpp")
  file(WRITE "${main}" "${code}")
  set(MODE add_subdirectory)
endif()
set(args -G Ninja -S "${PYCO_SOURCE_DIR}/tests/package/consumer" -B "${WORK_DIR}/build"
  "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
  "-DPYCO_CONSUMER_MODE=${MODE}" "-DPYCO_SOURCE_DIR=${PYCO_SOURCE_DIR}"
  "-DPYCO_CONSUMER_MAIN=${main}")
if(MODE STREQUAL "find_package")
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${PYCO_BINARY_DIR}"
    --prefix "${WORK_DIR}/prefix" --config "${BUILD_TYPE}"
    RESULT_VARIABLE rc OUTPUT_QUIET)
  if(rc)
    message(FATAL_ERROR "cmake --install failed: ${rc}")
  endif()
  foreach(f include/pyco/pyco.hpp include/pyco/detail/generator_node.hpp)
    if(NOT EXISTS "${WORK_DIR}/prefix/${f}")
      message(FATAL_ERROR "not installed: ${f}")
    endif()
  endforeach()
  list(APPEND args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
endif()
foreach(step IN ITEMS configure build run)
  if(step STREQUAL "configure")
    execute_process(COMMAND "${CMAKE_COMMAND}" ${args} RESULT_VARIABLE rc)
  elseif(step STREQUAL "build")
    execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" RESULT_VARIABLE rc)
  else()
    execute_process(COMMAND "${WORK_DIR}/build/consumer" RESULT_VARIABLE rc)
  endif()
  if(rc)
    message(FATAL_ERROR "consumer (${MODE}) ${step} failed: ${rc}")
  endif()
endforeach()
