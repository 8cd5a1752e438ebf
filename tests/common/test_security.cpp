// CURVE with a ZAP allowlist, over real tcp sockets on loopback: who gets
// served and who gets nothing.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/security.hpp"
#include "common/socket_monitor.hpp"
#include "test_support/capture_sink.hpp"
#include "test_support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;

class Curve : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = tp::generate_curve_keypair();
    client_ = tp::generate_curve_keypair();
    stranger_ = tp::generate_curve_keypair();
    tp::write_key_files(dir_.string(), "server", server_);
    tp::write_key_files(dir_.string(), "client", client_);
    std::ofstream(dir_ / "authorized") << "# allowlist\n" << client_.public_key << "\n";
  }
  tp::SecurityConfig config(const std::string& client = "client") const {
    tp::SecurityConfig c;
    c.curve = true;
    c.server_public_key = (dir_ / "server.key").string();
    c.server_secret_key = (dir_ / "server.key_secret").string();
    c.client_public_key = (dir_ / (client + ".key")).string();
    c.client_secret_key = (dir_ / (client + ".key_secret")).string();
    c.authorized_clients = (dir_ / "authorized").string();
    return c;
  }

  enum class Outcome { delivered, refused, neither };

  // Binds a PUSH server on a free loopback port, connects a PULL client set
  // up by `setup_client`, and sends until a message gets through
  // (delivered) or the server's handshake with that client fails (refused:
  // a SocketMonitor on the server counts it, so a refusal is proven, not
  // inferred from silence); `neither` after 10 s.
  template <class SetupClient>
  Outcome attempt(const tp::Security& server_side, SetupClient setup_client) {
    zmq::socket_t push(ctx_, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 0);
    tp::SocketMonitor monitor(ctx_, push);  // destroyed before `push`
    server_side.bind(push, "tcp://127.0.0.1:*");
    auto endpoint = push.get(zmq::sockopt::last_endpoint);
    zmq::socket_t pull(ctx_, zmq::socket_type::pull);
    pull.set(zmq::sockopt::linger, 0);
    setup_client(pull, endpoint);
    // A PUSH socket has no peer until a handshake completes, so a send
    // fails with EAGAIN before that; an unauthorized peer never completes it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      (void)push.send(zmq::str_buffer("order"), zmq::send_flags::dontwait);
      zmq::pollitem_t item{pull.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) > 0) {
        zmq::message_t m;
        const bool got = pull.recv(m, zmq::recv_flags::dontwait).has_value() && m.to_string() == "order";
        return got ? Outcome::delivered : Outcome::neither;
      }
      monitor.drain();
      if (monitor.counters().handshakes_failed > 0) return Outcome::refused;
    }
    return Outcome::neither;
  }

  tp::test::TempDir tmp_{"tp_curve_"};
  fs::path dir_ = tmp_.path();
  zmq::context_t ctx_;
  tp::CurveKeyPair server_, client_, stranger_;
};

TEST_F(Curve, AllowlistedClientIsServed) {
  tp::Security security(config());
  tp::ZapAuthenticator zap(ctx_, security.authorized_clients());
  EXPECT_EQ(attempt(security, [&](zmq::socket_t& s, const std::string& ep) { security.connect(s, ep); }),
            Outcome::delivered);
  EXPECT_EQ(zap.accepted(), 1u) << "refused " << zap.refused();
}

TEST_F(Curve, UnknownClientKeyGetsNothing) {
  tp::write_key_files(dir_.string(), "stranger", stranger_);
  tp::Security security(config());
  tp::Security stranger(config("stranger"));
  tp::ZapAuthenticator zap(ctx_, security.authorized_clients());
  // One attempt (no reconnect), so exactly one refusal.
  EXPECT_EQ(attempt(security,
                    [&](zmq::socket_t& s, const std::string& ep) {
                      s.set(zmq::sockopt::reconnect_ivl, -1);
                      stranger.connect(s, ep);
                    }),
            Outcome::refused);
  EXPECT_EQ(zap.refused(), 1u);
  EXPECT_EQ(zap.accepted(), 0u);
}

TEST_F(Curve, PlainClientGetsNothing) {
  tp::Security security(config());
  tp::ZapAuthenticator zap(ctx_, security.authorized_clients());
  EXPECT_EQ(attempt(security, [&](zmq::socket_t& s, const std::string& ep) { s.connect(ep); }),
            Outcome::refused);
}

TEST_F(Curve, ClientExpectingAnotherServerKeyGetsNothing) {
  tp::Security security(config());
  tp::ZapAuthenticator zap(ctx_, security.authorized_clients());
  EXPECT_EQ(attempt(security,
                    [&](zmq::socket_t& s, const std::string& ep) {
                      s.set(zmq::sockopt::curve_serverkey, stranger_.public_key);
                      s.set(zmq::sockopt::curve_publickey, client_.public_key);
                      s.set(zmq::sockopt::curve_secretkey, client_.secret_key);
                      s.connect(ep);
                    }),
            Outcome::refused);
}

TEST_F(Curve, FailsClosedWithoutAZapHandler) {
  tp::Security security(config());
  // No ZapAuthenticator: ZAP_ENFORCE_DOMAIN makes even a listed client fail.
  EXPECT_EQ(attempt(security, [&](zmq::socket_t& s, const std::string& ep) { security.connect(s, ep); }),
            Outcome::refused);
}

TEST_F(Curve, RefusesASecretKeyOthersCanRead) {
  fs::permissions(dir_ / "server.key_secret", fs::perms::group_read, fs::perm_options::add);
  try {
    tp::Security security(config());
    FAIL() << "accepted a group-readable secret key";
  } catch (const tp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("server_secret_key"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos);
  }
}

TEST_F(Curve, KeygenWritesSecretsOwnerOnly) {
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "client.key_secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(tp::read_key_file((dir_ / "client.key").string(), "client_public_key", false),
            client_.public_key);
}

TEST_F(Curve, UnreadableKeyFileNamesKeyAndPath) {
  auto c = config();
  c.client_public_key = "/nonexistent/client.key";
  try {
    tp::Security security(c);
    FAIL();
  } catch (const tp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("security.client_public_key"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/client.key"), std::string::npos);
  }
}

TEST_F(Curve, SecretsNeverReachTheLog) {
  tp::test::ScopedLogCapture log;
  {
    tp::Security security(config());
    zmq::socket_t s(ctx_, zmq::socket_type::pull);
    s.set(zmq::sockopt::linger, 0);
    security.bind(s, "tcp://127.0.0.1:*");
  }
  const auto& sink = log.sink();
  EXPECT_EQ(sink.count("server key " + server_.public_key), 1u) << sink.text();  // it did log, once
  EXPECT_EQ(sink.count(server_.secret_key), 0u) << sink.text();
  EXPECT_EQ(sink.count(client_.secret_key), 0u) << sink.text();
}

TEST(SafeDefaults, PublicBindWithoutCurveIsRefusedUnlessAllowed) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::pub);
  s.set(zmq::sockopt::linger, 0);
  tp::Security strict(tp::SecurityConfig{});
  EXPECT_THROW(strict.bind(s, "tcp://0.0.0.0:*"), tp::ConfigError);
  tp::SecurityConfig allow;
  allow.allow_public_bind = true;
  EXPECT_NO_THROW(tp::Security(allow).bind(s, "tcp://0.0.0.0:*"));
  EXPECT_TRUE(tp::is_loopback_tcp("tcp://127.0.0.1:7101"));
  EXPECT_TRUE(tp::is_loopback_tcp("tcp://[::1]:7101"));
  EXPECT_FALSE(tp::is_loopback_tcp("tcp://0.0.0.0:7101"));
  EXPECT_FALSE(tp::is_loopback_tcp("ipc:///tmp/x"));
}

}  // namespace
