# Cross-compiling for arm64 (Raspberry Pi OS 64-bit, Debian 12) against an arm64 Debian 12 root that
# holds the -dev packages (tools/package --arm64 makes it): Debian's crossbuild-essential-arm64
# compiler, libraries and CMake/pkg-config files from the root, protoc from this machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
if(DEFINED ENV{EDGEBED_ARM64_ROOT})
  set(CMAKE_SYSROOT $ENV{EDGEBED_ARM64_ROOT})
else()
  set(CMAKE_SYSROOT /var/tmp/edgebed-arm64)
endif()
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH ${CMAKE_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${CMAKE_SYSROOT})
set(ENV{PKG_CONFIG_LIBDIR} ${CMAKE_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${CMAKE_SYSROOT}/usr/share/pkgconfig)
set(Protobuf_PROTOC_EXECUTABLE /usr/bin/protoc CACHE FILEPATH "the build machine's protoc")
set(EDGEBED_CROSS_ARM64 ON)
# libblas.so.3 and liblapack.so.3 are alternatives symlinks with absolute targets, which the linker
# would follow on this machine: point it at the root's copies for libtorch's own dependencies.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,-rpath-link,${CMAKE_SYSROOT}/usr/lib/aarch64-linux-gnu/blas -Wl,-rpath-link,${CMAKE_SYSROOT}/usr/lib/aarch64-linux-gnu/lapack")
