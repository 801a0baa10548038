# cmake -DLIBRARY=<built libgptfast.so> -DOUT_DIR=<dir> -P PackagedLibrary.cmake (a POST_BUILD step
# of native/CMakeLists.txt): the copy of libgptfast.so that goes into the natives jar, with RUNPATH
# $ORIGIN only. The build tree's library keeps the build machine's libtorch and CUDA directories
# (~/.cache/gptfast4j/...) on its RUNPATH, which the native test executables rely on; in a jar
# those paths would name directories of the machine that built it. At run time libtorch is loaded
# before libgptfast.so (JavaCPP or a GPTFAST_LIBTORCH directory) and is found by soname.
cmake_minimum_required(VERSION 3.21)  # file(COPY_FILE), file(RPATH_SET)
get_filename_component(name "${LIBRARY}" NAME)
file(MAKE_DIRECTORY "${OUT_DIR}")
file(COPY_FILE "${LIBRARY}" "${OUT_DIR}/${name}.tmp")
file(RPATH_SET FILE "${OUT_DIR}/${name}.tmp" NEW_RPATH "$ORIGIN")
file(RENAME "${OUT_DIR}/${name}.tmp" "${OUT_DIR}/${name}")
