// The fake clock tests drive timers and expiry with: tp::FakeClock from
// common (the one the programs' Clock& seams take), named here so that tests
// find every double in one place. Not a second clock.
#pragma once

#include "common/clock.hpp"

namespace tp::test {

using tp::FakeClock;

}  // namespace tp::test
