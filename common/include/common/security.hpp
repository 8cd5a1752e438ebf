// CurveZMQ for tcp links, and the rules for where a program may listen.
//
// A Security is made once per process from the [security] config section
// and is then read-only. Its bind()/connect() replace plain bind/connect:
// on a tcp endpoint with curve = true they make the socket a CURVE server
// (secret key, ZAP domain, ZAP_ENFORCE_DOMAIN so that it fails closed) or a
// CURVE client (its key pair and the server's public key). ipc:// and
// inproc:// endpoints are left alone: the file system guards them.
//
// ZapAuthenticator answers libzmq's ZAP requests on its own thread: a CURVE
// client is served only when its public key is in the allowlist. It must live
// as long as the server sockets (construct it before them, destroy after).
//
// Secret keys are never logged.
#pragma once

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/config.hpp"

namespace tp {

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; empty when only the public half is known
};

// True when this libzmq was built with CURVE.
bool curve_available();

// Makes a new key pair.
CurveKeyPair generate_curve_keypair();

// Reads a key file (one Z85 key on the first non-comment line). For a secret
// key, refuses a file that group or others can read. Throws ConfigError
// naming the config key and the path.
std::string read_key_file(const std::string& path, const std::string& config_key, bool secret);

// Writes a key pair as <dir>/<name>.key and <dir>/<name>.key_secret (0600).
void write_key_files(const std::string& dir, const std::string& name, const CurveKeyPair& keys);

// The client public keys of an allowlist file, one per line ('#' comments).
std::set<std::string> read_authorized_clients(const std::string& path);

// True for tcp endpoints bound to loopback (127.x, ::1, localhost).
bool is_loopback_tcp(const std::string& endpoint);

class Security {
 public:
  // Loads the keys the config names. Throws ConfigError on an unreadable or
  // malformed key file, or when curve = true and libzmq lacks CURVE.
  explicit Security(const SecurityConfig& cfg);
  // No CURVE, loopback-only binds: the defaults, for tests and tools.
  static const Security& none();

  bool curve() const noexcept { return cfg_.curve; }
  const std::set<std::string>& authorized_clients() const noexcept { return authorized_; }

  // Binds `s`; a tcp endpoint becomes a CURVE server when curve = true. A tcp
  // endpoint beyond loopback without CURVE is refused unless
  // allow_public_bind = true, and then logged as a warning.
  void bind(zmq::socket_t& s, const std::string& endpoint) const;
  // Connects `s`; a tcp endpoint becomes a CURVE client when curve = true.
  void connect(zmq::socket_t& s, const std::string& endpoint) const;

 private:
  SecurityConfig cfg_;
  std::string server_public_;
  std::string server_secret_;
  std::string client_public_;
  std::string client_secret_;
  std::set<std::string> authorized_;
};

// The ZAP handler. Starts its thread in the constructor (bound before it
// returns, so no server socket can race it); stops it in the destructor.
class ZapAuthenticator {
 public:
  ZapAuthenticator(zmq::context_t& ctx, std::set<std::string> authorized_z85);
  ~ZapAuthenticator();
  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;

  std::uint64_t accepted() const noexcept { return accepted_.load(); }
  std::uint64_t refused() const noexcept { return refused_.load(); }

 private:
  void serve();

  zmq::socket_t socket_;
  std::set<std::string> authorized_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::thread thread_;
};

// The Security and, when CURVE is on, the ZAP handler of one process.
class SecureContext {
 public:
  SecureContext(zmq::context_t& ctx, const SecurityConfig& cfg);
  const Security& security() const noexcept { return security_; }

 private:
  Security security_;
  std::unique_ptr<ZapAuthenticator> zap_;
};

}  // namespace tp
