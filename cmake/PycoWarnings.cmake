# Warnings for pyco's own targets (never forced on consumers).
function(pyco_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wimplicit-fallthrough)
  if(PYCO_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
