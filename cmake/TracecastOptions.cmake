# Per-target options for tracecast's own targets only (never global CMAKE_CXX_FLAGS):
# warnings (as errors with TRACECAST_WERROR) and the sanitizer build chosen by
# TRACECAST_SANITIZE.
function(tracecast_target_options target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
    -Woverloaded-virtual -Wimplicit-fallthrough -Wformat=2)
  if(TRACECAST_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  tracecast_sanitize(${target})
endfunction()

# Sanitizer flags alone (for test, tool and bench targets that link third-party code).
function(tracecast_sanitize target)
  if(TRACECAST_BUILD_FUZZ)
    # Coverage instrumentation for libFuzzer in our own code; the fuzzer targets add the
    # driver (-fsanitize=fuzzer) themselves.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  elseif(TRACECAST_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${TRACECAST_SANITIZE} -fno-omit-frame-pointer
      -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${TRACECAST_SANITIZE})
    if(TRACECAST_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # moodycamel's queues use standalone fences, which GCC's TSan does not model; it warns
      # at compile time (-Wtsan). The race reports that matter come from our own accesses.
      target_compile_options(${target} PRIVATE -Wno-tsan)
    endif()
  endif()
endfunction()
