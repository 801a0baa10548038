// One exception type for every problem the engine reports; JavaCPP rethrows it in Java with
// what() as the message. libtorch's own c10::Error carries a C++ backtrace in what(), so the API
// layer shortens it to its first line (see guarded()).
#pragma once

#include <stdexcept>
#include <string>

namespace gptfast {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The first line of a message (libtorch's carry a backtrace after it).
inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace gptfast
