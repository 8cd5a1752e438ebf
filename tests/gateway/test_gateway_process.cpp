// Runs the real gateway binary (GATEWAY_BIN) against sockets in the test:
// a SUB on the ticks endpoint and a PULL as the dead-letter sink, both on
// ipc:// endpoints in a temporary directory.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "common/zmq_util.hpp"
#include "proto/codec.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A child process that is killed (SIGKILL) and reaped if the test leaves early.
class Child {
 public:
  Child(std::vector<std::string> args, const std::string& log_path) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) pid_ = -1;
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return pid_ > 0; }
  bool running() {
    int status = 0;
    return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == 0;
  }
  void terminate() { ::kill(pid_, SIGTERM); }

  // The exit code, or nullopt when it has not exited within `timeout` (or
  // died by a signal). Waits on a pidfd where the kernel has them.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        if (pidfd >= 0) ::close(pidfd);
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        return std::nullopt;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) break;
      if (pidfd >= 0) {
        pollfd p{pidfd, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(left.count()));
      } else {
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(10)));  // old kernel
      }
    }
    if (pidfd >= 0) ::close(pidfd);
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class GatewayProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gw_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ticks_ep_ = "ipc://" + (dir_ / "ticks.ipc").string();
    dl_ep_ = "ipc://" + (dir_ / "dl.ipc").string();
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "--- gateway log ---\n" << read_file(dir_ / "gateway.log") << "---\n";
    fs::remove_all(dir_);
  }

  std::vector<std::string> args(std::vector<std::string> extra) const {
    std::vector<std::string> a{GATEWAY_BIN,
                               "--run-dir", dir_.string(),
                               "--log-level", "warn",
                               "--set", "endpoints.ticks=" + ticks_ep_,
                               "--set", "endpoints.dead_letters=" + dl_ep_};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::string log_path() const { return (dir_ / "gateway.log").string(); }
  std::string stats() const { return read_file(dir_ / "gateway.stats.json"); }

  // A SUB for ticks and heartbeats, connected before the gateway binds; a
  // short reconnect interval so that it joins soon after the bind.
  zmq::socket_t make_sub() {
    auto s = tp::make_socket(ctx_, zmq::socket_type::sub);
    s.set(zmq::sockopt::reconnect_ivl, 10);
    s.set(zmq::sockopt::subscribe, "TICK.");
    s.set(zmq::sockopt::subscribe, std::string(proto::heartbeat_topic));
    tp::connect(s, ticks_ep_);
    return s;
  }

  // Receives one [topic, payload] message within `timeout`.
  static bool recv2(zmq::socket_t& s, std::string& topic, std::string& payload, std::chrono::milliseconds timeout) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) <= 0) return false;
    std::vector<zmq::message_t> frames;
    std::size_t total = 0;
    if (!tp::recv_message(s, frames, 2, total)) return false;
    EXPECT_EQ(total, 2u);
    topic = std::string(tp::view_of(frames[0]));
    payload = total > 1 ? std::string(tp::view_of(frames[1])) : "";
    return true;
  }

  fs::path dir_;
  std::string ticks_ep_, dl_ep_;
  zmq::context_t ctx_{1};
};

TEST_F(GatewayProcess, HelpWorksAndBadConfigExitsOne) {
  {
    Child help({GATEWAY_BIN, "--help"}, log_path());
    ASSERT_TRUE(help.started());
    EXPECT_EQ(help.wait_exit(10s), 0);
  }
  EXPECT_NE(read_file(dir_ / "gateway.log").find("--exit-when-done"), std::string::npos);
  Child bad(args({"--set", "gateway.rate=-1"}), log_path());
  EXPECT_EQ(bad.wait_exit(10s), 1);
  EXPECT_NE(read_file(dir_ / "gateway.log").find("gateway.rate"), std::string::npos);
}

TEST_F(GatewayProcess, SyntheticTicksArriveInOrderAndItExitsWhenDone) {
  auto sub = make_sub();
  // 200 ticks round-robin over the 4 default instruments: seq 1..50 each.
  Child gw(args({"--max-ticks", "200", "--rate", "400", "--set", "gateway.heartbeat_ms=50", "--exit-when-done"}),
           log_path());
  ASSERT_TRUE(gw.started());

  proto::Decoder dec;
  std::map<std::string, std::uint64_t> last_seq;
  std::size_t ticks = 0, heartbeats = 0;
  auto deadline = Clock::now() + 15s;
  auto all_done = [&] {
    if (last_seq.size() < 4) return false;
    for (auto& [sym, seq] : last_seq)
      if (seq < 50) return false;
    return true;
  };
  std::string topic, payload;
  while (!all_done() && Clock::now() < deadline && recv2(sub, topic, payload, 200ms)) {
    if (topic == proto::heartbeat_topic) {
      auto hb = dec.decode_heartbeat(proto::as_bytes(payload));
      ASSERT_TRUE(hb.ok()) << hb.error().message();
      EXPECT_EQ(hb->source, "gateway");
      ++heartbeats;
      continue;
    }
    auto t = dec.decode_tick(proto::as_bytes(payload));
    ASSERT_TRUE(t.ok()) << t.error().message();
    EXPECT_EQ(topic, proto::tick_topic(t->instrument));
    EXPECT_GT(t->source_ts_ns, 0);
    EXPECT_GE(t->gateway_ts_ns, t->source_ts_ns);
    // PUB drops what is sent before the subscription arrives, so the first
    // tick seen may be later than seq 1; from then on there is no gap.
    auto it = last_seq.find(t->instrument);
    if (it != last_seq.end()) {
      EXPECT_EQ(t->seq, it->second + 1) << t->instrument;
    }
    last_seq[t->instrument] = t->seq;
    ++ticks;
  }
  EXPECT_TRUE(all_done()) << "received " << ticks << " ticks";
  EXPECT_GE(ticks, 20u);
  EXPECT_GE(heartbeats, 1u);
  for (auto& [sym, seq] : last_seq) EXPECT_EQ(seq, 50u) << sym;

  EXPECT_EQ(gw.wait_exit(10s), 0);
  auto s = stats();
  EXPECT_NE(s.find("\"program\":\"gateway\""), std::string::npos) << s;
  EXPECT_NE(s.find("\"ticks_published\":200,"), std::string::npos) << s;
  EXPECT_NE(s.find("\"csv_rows_skipped\":0,"), std::string::npos) << s;
}

TEST_F(GatewayProcess, CsvBadRowsAreDeadLetteredWithLineNumbers) {
  auto sink = tp::make_socket(ctx_, zmq::socket_type::pull,
                              tp::SocketOptions{.max_msg_size = static_cast<std::int64_t>(proto::max_dead_letter_bytes)});
  tp::bind(sink, dl_ep_);
  const std::string csv = std::string(GATEWAY_TEST_DATA) + "/ticks_bad_rows.csv";
  Child gw(args({"--csv", csv, "--speed", "0", "--exit-when-done"}), log_path());
  ASSERT_TRUE(gw.started());

  // Rows 4..13 of the file are malformed, one kind each.
  std::vector<std::string> lines;
  {
    std::ifstream in(csv);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  proto::Decoder dec;
  for (std::size_t line = 4; line <= 13; ++line) {
    zmq::pollitem_t item{sink.handle(), 0, ZMQ_POLLIN, 0};
    ASSERT_EQ(zmq::poll(&item, 1, 10s), 1) << "no dead letter for line " << line;
    zmq::message_t m;
    ASSERT_TRUE(sink.recv(m, zmq::recv_flags::none));
    auto dl = dec.decode_dead_letter(tp::bytes_of(m));
    ASSERT_TRUE(dl.ok()) << dl.error().message();
    EXPECT_EQ(dl->source, "gateway");
    EXPECT_EQ(dl->reason, "bad_csv_row");
    EXPECT_NE(dl->detail.find("line " + std::to_string(line) + ":"), std::string::npos) << dl->detail;
    EXPECT_EQ(dl->original, lines[line - 1]);
  }
  EXPECT_EQ(gw.wait_exit(10s), 0);
  auto s = stats();
  EXPECT_NE(s.find("\"ticks_published\":4,"), std::string::npos) << s;
  EXPECT_NE(s.find("\"csv_rows_skipped\":10,"), std::string::npos) << s;
  EXPECT_NE(s.find("\"dead_letters\":10,"), std::string::npos) << s;
}

TEST_F(GatewayProcess, KeepsHeartbeatingAfterMaxTicksAndExitsZeroOnSigterm) {
  auto sub = make_sub();
  Child gw(args({"--max-ticks", "10", "--rate", "1000", "--set", "gateway.heartbeat_ms=50"}), log_path());
  ASSERT_TRUE(gw.started());

  // Heartbeats that report all 10 ticks sent: the source is done, the process
  // must stay up (the supervisor would see an exit as a crash).
  proto::Decoder dec;
  int done_heartbeats = 0;
  std::uint64_t last_hb_seq = 0;
  auto deadline = Clock::now() + 15s;
  std::string topic, payload;
  while (done_heartbeats < 3 && Clock::now() < deadline) {
    if (!recv2(sub, topic, payload, 500ms)) continue;
    if (topic != proto::heartbeat_topic) continue;
    auto hb = dec.decode_heartbeat(proto::as_bytes(payload));
    ASSERT_TRUE(hb.ok()) << hb.error().message();
    EXPECT_GT(hb->seq, last_hb_seq);
    last_hb_seq = hb->seq;
    if (hb->ticks_sent == 10) ++done_heartbeats;
  }
  ASSERT_EQ(done_heartbeats, 3);
  EXPECT_TRUE(gw.running());

  gw.terminate();
  EXPECT_EQ(gw.wait_exit(5s), 0);
  auto s = stats();
  EXPECT_NE(s.find("\"ticks_published\":10,"), std::string::npos) << s;
}

}  // namespace
