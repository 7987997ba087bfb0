// `conduit rules check` and `conduit rules explain`: the admin's tools for the rules file,
// built on exactly the loader and evaluator the daemon uses.
#pragma once

#include <string_view>
#include <vector>

namespace conduit::app {

// Returns the exit code: 0 fine, 1 a file could not be read, 2 usage or rules errors.
int RunRulesCommand(const std::vector<std::string_view>& args);

}  // namespace conduit::app
