# tp_set_warnings(target): the project's warning set, applied per target.
#
# -Wconversion and -Wsign-conversion are off: the code converts between
# size_t, int and the fixed-width wire types on purpose (msgpack, SQLite and
# ZeroMQ APIs), and silencing each with a cast is a clean-up of its own.
option(TP_WARNINGS_AS_ERRORS "Treat compiler warnings as errors (-Werror); ON in CI presets" OFF)

function(tp_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wdouble-promotion -Wformat=2
    -Wimplicit-fallthrough
    # Designated initializers that leave fields at their defaults are intended.
    -Wno-missing-field-initializers
    # GCC 12 reports std::string copies inside libstdc++ at -O3 (GCC bug 105329).
    $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
  if(TP_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
