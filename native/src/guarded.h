// Runs a call at the API boundary and turns any libtorch error into a gptfast::Error with a
// one-line message prefixed by what was being done, so Java sees a clear exception.
#pragma once

#include <c10/util/Exception.h>

#include <string>

#include "errors.h"

namespace gptfast {

template <class Fn>
auto guarded(const char* action, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(std::string(action) + ": " + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    throw Error(std::string(action) + ": out of memory");
  } catch (const std::exception& e) {
    throw Error(std::string(action) + ": " + e.what());
  }
}

}  // namespace gptfast
