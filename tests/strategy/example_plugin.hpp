// Builds examples/strategies as a user would: `cmake --install` of this
// build's SDK into a temporary prefix, then the example configured and built
// out of tree against it with find_package(TradingPipelineSdk). The
// compiler, ccache and sanitizer flags are this build's, so the plugin
// matches the program that loads it. Header only; for the tests that need
// the example built (the paths come from tests/strategy/CMakeLists.txt).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "test_support/child.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"

namespace tp::test {

// Runs a command to its end; a test failure with its output when it does not
// exit 0 within `timeout`. Returns the output (stdout and stderr).
inline std::string run_command(const TempDir& dir, const std::string& name, std::vector<std::string> args,
                               std::chrono::milliseconds timeout = std::chrono::minutes(3)) {
  const auto out = dir.file(name + ".out");
  Child c(std::move(args), {.stdout_path = out, .stderr_path = out});
  EXPECT_TRUE(c.started()) << name;
  auto rc = c.wait_exit(timeout);
  auto text = read_text(out);
  EXPECT_EQ(rc, 0) << name << " failed (nullopt: still running after the timeout):\n" << text;
  return text;
}

struct ExamplePlugin {
  std::string prefix;      // where the SDK was installed
  std::string configured;  // the example's configure output
  std::string plugin;      // the built libema_trend.so
};

// Installs the SDK into dir/sdk and builds the example in dir/build.
inline ExamplePlugin build_example_plugin(const TempDir& dir) {
  ExamplePlugin out{dir.file("sdk"), "", ""};
  const auto build = dir.file("build");
  run_command(dir, "install",
              {CMAKE_COMMAND, "--install", TP_BUILD_DIR, "--prefix", out.prefix, "--component", "sdk"});
  std::vector<std::string> configure{CMAKE_COMMAND,
                                     "-S",
                                     TP_SOURCE_DIR "/examples/strategies",
                                     "-B",
                                     build,
                                     "-G",
                                     TP_GENERATOR,
                                     "-DCMAKE_PREFIX_PATH=" + out.prefix,
                                     "-DCMAKE_CXX_COMPILER=" TP_CXX_COMPILER,
                                     "-DCMAKE_COMPILE_WARNING_AS_ERROR=ON"};
  if (std::string(TP_CXX_LAUNCHER).size())
    configure.push_back("-DCMAKE_CXX_COMPILER_LAUNCHER=" TP_CXX_LAUNCHER);
  if (std::string(TP_SANITIZE).size()) {
    configure.push_back("-DCMAKE_CXX_FLAGS=-fsanitize=" TP_SANITIZE " -fno-omit-frame-pointer");
    configure.push_back("-DCMAKE_MODULE_LINKER_FLAGS=-fsanitize=" TP_SANITIZE);
  }
  out.configured = run_command(dir, "configure", configure);
  run_command(dir, "build", {CMAKE_COMMAND, "--build", build});
  out.plugin = build + "/libema_trend.so";
  return out;
}

}  // namespace tp::test
