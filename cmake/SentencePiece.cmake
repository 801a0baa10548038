# Static SentencePiece (built with -fPIC by build.sh from the pinned PyPI sdist), so the native
# library needs no system package at run time.
# An empty prefix builds without it (the SentencePiece tokenizer then throws saying so): for
# benchmarks/gpu-check.sh on GPU machines that have no network to fetch its sources.
set(GPTFAST_SPM_PREFIX "" CACHE PATH "prefix with include/sentencepiece_processor.h and lib/libsentencepiece.a")
add_library(gptfast_sentencepiece INTERFACE)
if(GPTFAST_SPM_PREFIX STREQUAL "")
  message(STATUS "SentencePiece: none (GPTFAST_SPM_PREFIX is empty); the SentencePiece tokenizer is unavailable")
  target_compile_definitions(gptfast_sentencepiece INTERFACE GPTFAST_WITH_SENTENCEPIECE=0)
  return()
endif()
find_path(SPM_INCLUDE_DIR sentencepiece_processor.h PATHS "${GPTFAST_SPM_PREFIX}/include" NO_DEFAULT_PATH)
find_library(SPM_STATIC_LIB NAMES libsentencepiece.a PATHS "${GPTFAST_SPM_PREFIX}/lib" NO_DEFAULT_PATH)
if(NOT SPM_INCLUDE_DIR OR NOT SPM_STATIC_LIB)
  message(FATAL_ERROR "static SentencePiece not found under '${GPTFAST_SPM_PREFIX}'. Run ./build.sh.")
endif()
target_compile_definitions(gptfast_sentencepiece INTERFACE GPTFAST_WITH_SENTENCEPIECE=1)
target_include_directories(gptfast_sentencepiece SYSTEM INTERFACE "${SPM_INCLUDE_DIR}")
target_link_libraries(gptfast_sentencepiece INTERFACE "${SPM_STATIC_LIB}")
