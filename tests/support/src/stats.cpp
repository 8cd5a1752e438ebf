#include "test_support/stats.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

namespace tp::test {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int count_lines_with(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

nlohmann::json parse_json(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::optional<nlohmann::json> read_json(const std::string& path) {
  auto j = parse_json(read_text(path));
  if (j.is_discarded()) return std::nullopt;
  return j;
}

namespace {

// The value at `key` (a top-level key, or a JSON pointer such as "/a/b");
// nullptr when absent.
const nlohmann::json* lookup(const nlohmann::json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  if (!key.empty() && key[0] == '/') {
    nlohmann::json::json_pointer ptr;
    try {
      ptr = nlohmann::json::json_pointer(key);
    } catch (const nlohmann::json::exception&) {
      return nullptr;
    }
    return j.contains(ptr) ? &j.at(ptr) : nullptr;
  }
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

}  // namespace

double json_number(const std::string& text, const std::string& key) {
  const auto j = parse_json(text);
  const auto* v = lookup(j, key);
  if (v == nullptr) return std::nan("");
  if (v->is_boolean()) return v->get<bool>() ? 1 : 0;
  if (v->is_number()) return v->get<double>();
  return std::nan("");
}

std::optional<std::string> json_string(const std::string& text, const std::string& key) {
  const auto j = parse_json(text);
  const auto* v = lookup(j, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

}  // namespace tp::test
