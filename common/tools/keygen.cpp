// tp_keygen: makes CurveZMQ key pairs for a deployment's [security] section.
//   tp_keygen --out keys server executor strategy ...
// writes keys/<name>.key (public) and keys/<name>.key_secret (mode 0600).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/security.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Makes CurveZMQ key pairs: <out>/<name>.key and <out>/<name>.key_secret (0600)", "tp_keygen"};
  std::string out = "keys";
  std::vector<std::string> names;
  app.add_option("--out", out, "Directory for the key files")->capture_default_str();
  app.add_option("names", names, "One key pair per name")->required();
  CLI11_PARSE(app, argc, argv);
  try {
    if (!tp::curve_available()) {
      std::fprintf(stderr, "tp_keygen: this libzmq was built without CURVE\n");
      return 1;
    }
    for (const auto& name : names) {
      auto keys = tp::generate_curve_keypair();
      tp::write_key_files(out, name, keys);
      std::printf("%s/%s.key %s\n", out.c_str(), name.c_str(), keys.public_key.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tp_keygen: %s\n", e.what());
    return 1;
  }
  return 0;
}
