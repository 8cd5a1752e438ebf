// Reading what a program wrote: whole text files, the JSON stats files
// (through nlohmann-json, so a value is read as JSON, never found by string
// search), and lines of a log. Pure functions; any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace tp::test {

// The file's whole content; empty when it cannot be read.
std::string read_text(const std::string& path);

// Lines of `text` that contain `needle`.
int count_lines_with(const std::string& text, const std::string& needle);

// `text` parsed; a discarded value (is_discarded()) when it is not JSON, e.g.
// a stats file caught half written.
nlohmann::json parse_json(const std::string& text);

// The file parsed; nullopt when missing or not (yet) JSON.
std::optional<nlohmann::json> read_json(const std::string& path);

// The number under `key` of the JSON `text` (true = 1, false = 0); NaN when
// the text is not JSON or the key is absent or not a number. `key` is a
// top-level key, or a JSON pointer ("/journals/strategy-0.journal") for a
// nested object.
double json_number(const std::string& text, const std::string& key);

// The string under `key` (as json_number reads it); nullopt when absent or
// not a string.
std::optional<std::string> json_string(const std::string& text, const std::string& key);

}  // namespace tp::test
