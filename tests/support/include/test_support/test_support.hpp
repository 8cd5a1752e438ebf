// Everything in tp::test_support at once, for a test that uses most of it.
#pragma once

#include "test_support/builders.hpp"
#include "test_support/capture_sink.hpp"
#include "test_support/child.hpp"
#include "test_support/fake_clock.hpp"
#include "test_support/stats.hpp"
#include "test_support/temp_dir.hpp"
#include "test_support/wait.hpp"
