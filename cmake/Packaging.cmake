# Installation of everything a host runs, and the Debian package made from it
# (CPack, DEB generator): `cmake --build build/release --target package`, or
# `cpack` in the build directory, writes trading-pipeline_<version>_amd64.deb.
#
# One layout for `cmake --install BUILD --prefix P` and for the package
# (P = /usr):
#   P/lib/trading-pipeline/bin/      the programs, libsim_broker.so beside dll_gateway
#                                    (CMakeLists.txt)
#   P/lib/trading-pipeline/          supervisor.py, tpctl, tp_report.py, tp_units.py, tp_proto.py,
#                                    tp_supervisor/, tp_strategy/ (the Python strategy runtime)
#   P/bin/                           tp-supervisor, tpctl, tp-report, tp-units: symlinks into the above
#   P/include/tp, P/lib[/<multiarch>]  the strategy SDK (strategy/CMakeLists.txt)
#   /etc/trading-pipeline/default.toml  (P/etc/... for any prefix other than /usr)
#   P/share/doc/trading-pipeline/    README, docs/, examples/, config samples
# The programs stay out of P/bin: names such as `gateway` or `strategy` would
# claim commands every host shares. The supervisor finds them by bin/ beside
# itself (scripts/tp_supervisor/layout.py), so an installed supervisor needs
# no --bin-dir.

set(TP_INSTALL_HOME lib/trading-pipeline)
set(TP_INSTALL_DOC share/doc/trading-pipeline)

# -- the scripts and the Python strategy runtime --------------------------------
install(PROGRAMS scripts/supervisor.py scripts/tpctl scripts/tp_report.py scripts/tp_units.py
        DESTINATION ${TP_INSTALL_HOME} COMPONENT scripts)
install(FILES scripts/tp_proto.py DESTINATION ${TP_INSTALL_HOME} COMPONENT scripts)
install(DIRECTORY scripts/tp_supervisor strategy/python/tp_strategy
        DESTINATION ${TP_INSTALL_HOME} COMPONENT scripts
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)

# The commands, as relative symlinks so that any prefix works; each script
# finds its package through its own resolved path.
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/install-links)
foreach(link tp-supervisor:supervisor.py tpctl:tpctl tp-report:tp_report.py tp-units:tp_units.py)
  string(REPLACE ":" ";" link ${link})
  list(GET link 0 command)
  list(GET link 1 target)
  file(CREATE_LINK ../${TP_INSTALL_HOME}/${target} ${CMAKE_BINARY_DIR}/install-links/${command} SYMBOLIC)
  install(FILES ${CMAKE_BINARY_DIR}/install-links/${command} DESTINATION bin COMPONENT scripts)
endforeach()

# -- the default deployment file ------------------------------------------------
# /etc, not /usr/etc, when the prefix is /usr (the package's), as
# GNUInstallDirs' CMAKE_INSTALL_FULL_SYSCONFDIR; decided at install time
# because cpack installs with its own prefix, not this tree's. A conffile in
# the package: dpkg keeps the operator's edits across upgrades.
install(CODE "set(tp_default_config \"${CMAKE_CURRENT_SOURCE_DIR}/config/default.toml\")" COMPONENT config)
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(tp_etc /etc/trading-pipeline)
  else()
    set(tp_etc "${CMAKE_INSTALL_PREFIX}/etc/trading-pipeline")
  endif()
  file(INSTALL "${tp_default_config}" DESTINATION "${tp_etc}")
]] COMPONENT config)

# -- documentation ----------------------------------------------------------------
install(FILES README.md DESTINATION ${TP_INSTALL_DOC} COMPONENT docs)
install(FILES strategy/python/README.md RENAME README.python-runtime.md
        DESTINATION ${TP_INSTALL_DOC} COMPONENT docs)
install(DIRECTORY docs DESTINATION ${TP_INSTALL_DOC} COMPONENT docs)
install(DIRECTORY examples DESTINATION ${TP_INSTALL_DOC} COMPONENT docs
        PATTERN "build" EXCLUDE PATTERN "__pycache__" EXCLUDE)
install(DIRECTORY config DESTINATION ${TP_INSTALL_DOC} COMPONENT docs
        PATTERN "default.toml" EXCLUDE)

# -- the Debian package -----------------------------------------------------------
set(TP_PACKAGE_MAINTAINER "zmq-trading-pipeline maintainers <maintainers@users.noreply.b-seed-d13ca7d3.example>"
    CACHE STRING "The Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME trading-pipeline)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${TP_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "low-latency trading pipeline over ZeroMQ (programs, supervisor, strategy SDK)")
# The extended description; CPack puts the summary above it as the synopsis.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Separate processes turn market ticks into orders, talking only through
ZeroMQ with msgpack payloads: gateway, strategy, executor, dll_gateway and
dead_letter in /usr/lib/trading-pipeline/bin, started and watched by
tp-supervisor from one TOML deployment file and controlled with tpctl.
Also the Python strategy runtime, the C++ strategy SDK (headers, static
library, CMake package TradingPipelineSdk) and the default configuration
in /etc/trading-pipeline/default.toml.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # trading-pipeline_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
# The libraries the programs link (libzmq5, libsqlite3-0, ...) come from
# dpkg-shlibdeps; the scripts' needs are written here: tomllib (3.11), and
# pyzmq and msgpack for tpctl's trading commands, the portfolio watch and
# the Python strategy runtime.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3 (>= 3.11), python3-zmq, python3-msgpack")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-matplotlib")   # tp-report's figures
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cmake, g++")              # building strategy plugins against the SDK
set(CPACK_STRIP_FILES ON)

# conffiles; postinst/prerm compile and remove the scripts' bytecode, which
# Python would otherwise write into /usr/lib at a root's first run and dpkg
# would leave behind.
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/conffiles ${CMAKE_BINARY_DIR}/debian/conffiles COPYONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/postinst ${CMAKE_BINARY_DIR}/debian/postinst COPYONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/prerm ${CMAKE_BINARY_DIR}/debian/prerm COPYONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian/conffiles ${CMAKE_BINARY_DIR}/debian/postinst ${CMAKE_BINARY_DIR}/debian/prerm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
