// dead_letter: the dead-letter sink. Binds endpoints.dead_letters and appends
// each dead letter as one JSON line to dead_letter.path.
#include "common/clock.hpp"
#include "common/program.hpp"
#include "common/security.hpp"
#include "dead_letter/sink.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Dead-letter sink: appends every dead letter to a JSON-lines file", "dead_letter"};
  tp::CommonOptions opts;
  tp::add_common_options(app, opts);
  std::optional<std::string> path;
  app.add_option("--path", path, "JSON-lines file to append to (default <run-dir>/dead_letters.jsonl)");
  return tp::run_program(app, argc, argv, [&] {
    if (path) opts.overrides.push_back("dead_letter.path=\"" + *path + "\"");
    auto cfg = tp::load_program_config(opts, "dead_letter");
    zmq::context_t ctx(1);
    tp::SecureContext secure(ctx, cfg.security);
    tp::SystemClock clock;
    tp::dead_letter::SinkNode sink(ctx, cfg, clock, secure.security());
    return sink.run();
  });
}
