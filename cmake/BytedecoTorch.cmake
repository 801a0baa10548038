# Locates libtorch for the native engine without find_package(Torch), which would silently pick
# a system libtorch. Headers: $LIBTORCH/include or the torch wheel's include/ extracted by build.sh
# (GPTFAST_TORCH_INCLUDE). Libraries: $LIBTORCH/lib or the .so files extracted from the bytedeco
# pytorch jar (GPTFAST_TORCH_LIBDIR), which are the very files loaded at run time.
set(GPTFAST_TORCH_INCLUDE "" CACHE PATH "libtorch include dir (has torch/ and ATen/)")
set(GPTFAST_TORCH_LIBDIR "" CACHE PATH "dir holding libtorch_cpu.so and libc10.so")

if(DEFINED ENV{LIBTORCH} AND GPTFAST_TORCH_INCLUDE STREQUAL "")
  # Cached, so that Ninja's automatic re-configure finds them without the environment variable.
  set(GPTFAST_TORCH_INCLUDE "$ENV{LIBTORCH}/include" CACHE PATH "libtorch include dir (has torch/ and ATen/)" FORCE)
  set(GPTFAST_TORCH_LIBDIR "$ENV{LIBTORCH}/lib" CACHE PATH "dir holding libtorch_cpu.so and libc10.so" FORCE)
endif()

if(NOT EXISTS "${GPTFAST_TORCH_INCLUDE}/ATen/ATen.h")
  message(FATAL_ERROR "libtorch headers not found in '${GPTFAST_TORCH_INCLUDE}'. Run ./build.sh, or set LIBTORCH=/path/to/libtorch.")
endif()
foreach(lib torch_cpu c10)
  if(NOT EXISTS "${GPTFAST_TORCH_LIBDIR}/lib${lib}.so")
    message(FATAL_ERROR "lib${lib}.so not found in '${GPTFAST_TORCH_LIBDIR}'. Run ./build.sh, or set LIBTORCH=/path/to/libtorch.")
  endif()
endforeach()

add_library(gptfast_torch INTERFACE)
target_include_directories(gptfast_torch SYSTEM INTERFACE
  "${GPTFAST_TORCH_INCLUDE}" "${GPTFAST_TORCH_INCLUDE}/torch/csrc/api/include")
target_link_libraries(gptfast_torch INTERFACE
  "${GPTFAST_TORCH_LIBDIR}/libtorch_cpu.so" "${GPTFAST_TORCH_LIBDIR}/libc10.so")
# libtorch_cpu.so needs libopenblas.so.0 and libgomp.so.1, which sit beside it (build.sh puts the
# bytedeco openblas .so there too); resolve them at link time only, JavaCPP loads them at run time.
target_link_options(gptfast_torch INTERFACE "-Wl,-rpath-link,${GPTFAST_TORCH_LIBDIR}")

# The libtorch version these headers declare: written beside libgptfast.so, packaged with it, and
# compared at load time (Java, NativeLibrary) with the version of the libtorch actually loaded.
set(GPTFAST_TORCH_VERSION "")
foreach(h torch/headeronly/version.h torch/csrc/api/include/torch/version.h)
  if(GPTFAST_TORCH_VERSION STREQUAL "" AND EXISTS "${GPTFAST_TORCH_INCLUDE}/${h}")
    file(STRINGS "${GPTFAST_TORCH_INCLUDE}/${h}" _v REGEX "#define TORCH_VERSION_(MAJOR|MINOR|PATCH) [0-9]+")
    string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*" "\\1.\\2.\\3" GPTFAST_TORCH_VERSION "${_v}")
  endif()
endforeach()
if(NOT GPTFAST_TORCH_VERSION MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+$")
  message(FATAL_ERROR "cannot read TORCH_VERSION_MAJOR/MINOR/PATCH from the headers in '${GPTFAST_TORCH_INCLUDE}'")
endif()
message(STATUS "libtorch headers: ${GPTFAST_TORCH_VERSION}")
