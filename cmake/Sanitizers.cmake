# MXGW_SANITIZE=ON builds everything with ASan and UBSan; CI uses it for every suite.
if(MXGW_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=address,undefined)
endif()

# MXGW_FUZZ=ON builds libFuzzer targets; it needs clang.
if(MXGW_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MXGW_FUZZ needs clang: configure with CC=clang")
  endif()
  # Coverage instrumentation for every library, so the fuzzer sees inside the parsers.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
