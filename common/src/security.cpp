#include "common/security.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <array>
#include <filesystem>
#include <fstream>

#include "common/zmq_util.hpp"

// libzmq 4.3 declares this option only in its draft API, but Debian's build
// accepts it; Security::bind checks the call succeeds.
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

namespace tp {
namespace {

constexpr const char* zap_domain = "tp";

bool is_tcp(const std::string& endpoint) { return endpoint.rfind("tcp://", 0) == 0; }

bool valid_z85_key(const std::string& k) {
  if (k.size() != 40) return false;
  std::array<std::uint8_t, 32> raw{};
  return zmq_z85_decode(raw.data(), k.c_str()) != nullptr;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

bool curve_available() { return zmq_has("curve") != 0; }

CurveKeyPair generate_curve_keypair() {
  char pub[41] = {}, sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0)
    throw std::runtime_error("zmq_curve_keypair failed: libzmq lacks CURVE");
  return {pub, sec};
}

std::string read_key_file(const std::string& path, const std::string& config_key, bool secret) {
  if (path.empty()) throw ConfigError("security." + config_key + " must be set when curve = true");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw ConfigError("security." + config_key + ": cannot read key file " + path);
  if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)))
    throw ConfigError("security." + config_key + ": secret key file " + path +
                      " is readable by group or others (chmod 600 it)");
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (!valid_z85_key(line))
      throw ConfigError("security." + config_key + ": " + path + " does not hold a 40-character Z85 key");
    return line;
  }
  throw ConfigError("security." + config_key + ": " + path + " holds no key");
}

void write_key_files(const std::string& dir, const std::string& name, const CurveKeyPair& keys) {
  std::filesystem::create_directories(dir);
  auto base = std::filesystem::path(dir) / name;
  {
    std::ofstream pub(base.string() + ".key", std::ios::trunc);
    pub << "# CurveZMQ public key of " << name << "\n" << keys.public_key << "\n";
    if (!pub) throw std::runtime_error("cannot write " + base.string() + ".key");
  }
  auto secret_path = base.string() + ".key_secret";
  // Create it 0600 before writing a byte of the secret.
  std::filesystem::remove(secret_path);
  auto old_mask = ::umask(077);
  std::ofstream sec(secret_path, std::ios::trunc);
  ::umask(old_mask);
  sec << "# CurveZMQ SECRET key of " << name << ": keep it private\n" << keys.secret_key << "\n";
  if (!sec) throw std::runtime_error("cannot write " + secret_path);
  std::filesystem::permissions(secret_path,
                               std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

std::set<std::string> read_authorized_clients(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("security.authorized_clients: cannot read " + path);
  std::set<std::string> keys;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (!valid_z85_key(line))
      throw ConfigError("security.authorized_clients: " + path + " line " + std::to_string(n) +
                        " is not a 40-character Z85 public key");
    keys.insert(line);
  }
  return keys;
}

bool is_loopback_tcp(const std::string& endpoint) {
  if (!is_tcp(endpoint)) return false;
  auto host = endpoint.substr(6);
  if (!host.empty() && host[0] == '[') {
    return host.rfind("[::1]", 0) == 0;
  }
  host = host.substr(0, host.rfind(':'));
  return host.rfind("127.", 0) == 0 || host == "localhost";
}

Security::Security(const SecurityConfig& cfg) : cfg_(cfg) {
  if (!cfg_.curve) return;
  if (!curve_available()) throw ConfigError("security.curve = true, but this libzmq was built without CURVE");
  server_public_ = read_key_file(cfg_.server_public_key, "server_public_key", false);
  if (!cfg_.server_secret_key.empty())
    server_secret_ = read_key_file(cfg_.server_secret_key, "server_secret_key", true);
  if (!cfg_.client_public_key.empty())
    client_public_ = read_key_file(cfg_.client_public_key, "client_public_key", false);
  if (!cfg_.client_secret_key.empty())
    client_secret_ = read_key_file(cfg_.client_secret_key, "client_secret_key", true);
  if (!cfg_.authorized_clients.empty()) authorized_ = read_authorized_clients(cfg_.authorized_clients);
  spdlog::info("CURVE on for tcp links: server key {}, {} authorized client keys", server_public_,
               authorized_.size());
}

const Security& Security::none() {
  static const Security plain{SecurityConfig{}};
  return plain;
}

void Security::bind(zmq::socket_t& s, const std::string& endpoint) const {
  if (is_tcp(endpoint)) {
    if (cfg_.curve) {
      if (server_secret_.empty())
        throw ConfigError("security.server_secret_key must be set to bind " + endpoint + " with CURVE");
      s.set(zmq::sockopt::curve_server, true);
      s.set(zmq::sockopt::curve_secretkey, server_secret_);
      s.set(zmq::sockopt::zap_domain, zap_domain);
      int on = 1;
      if (zmq_setsockopt(s.handle(), ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on) != 0)
        throw std::runtime_error("cannot enforce ZAP on " + endpoint + ": " + zmq_strerror(zmq_errno()));
    } else if (!is_loopback_tcp(endpoint)) {
      if (!cfg_.allow_public_bind)
        throw ConfigError("refusing to listen on " + endpoint +
                          " without CURVE: turn security.curve on, or set security.allow_public_bind = true");
      spdlog::warn(
          "LISTENING ON {} WITHOUT ENCRYPTION OR AUTHENTICATION: anyone who can reach it can "
          "read and inject messages",
          endpoint);
    }
  }
  tp::bind(s, endpoint);
}

void Security::connect(zmq::socket_t& s, const std::string& endpoint) const {
  if (is_tcp(endpoint) && cfg_.curve) {
    if (client_secret_.empty() || client_public_.empty())
      throw ConfigError("security.client_public_key and client_secret_key must be set to connect to " +
                        endpoint + " with CURVE");
    s.set(zmq::sockopt::curve_serverkey, server_public_);
    s.set(zmq::sockopt::curve_publickey, client_public_);
    s.set(zmq::sockopt::curve_secretkey, client_secret_);
  }
  tp::connect(s, endpoint);
}

ZapAuthenticator::ZapAuthenticator(zmq::context_t& ctx, std::set<std::string> authorized_z85)
    : socket_(ctx, zmq::socket_type::rep), authorized_(std::move(authorized_z85)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] { serve(); });
}

ZapAuthenticator::~ZapAuthenticator() {
  stop_ = true;
  thread_.join();
}

void ZapAuthenticator::serve() {
  // Request frames (ZMQ RFC 27): version, request id, domain, address,
  // identity, mechanism, credentials...
  std::vector<zmq::message_t> frames;
  while (!stop_) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
    frames.clear();
    for (;;) {
      zmq::message_t m;
      if (!socket_.recv(m)) break;
      bool more = m.more();
      frames.push_back(std::move(m));
      if (!more) break;
    }
    // A REP socket must answer every request, even one that is not ZAP.
    std::string status = "400", text = "not authorized";
    if (frames.size() < 6) {
      status = "500";
      text = "malformed ZAP request";
    } else if (view_of(frames[5]) == "CURVE" && frames.size() >= 7 && frames[6].size() == 32) {
      char z85[41] = {};
      zmq_z85_encode(z85, static_cast<const std::uint8_t*>(frames[6].data()), 32);
      if (authorized_.count(z85)) {
        status = "200";
        text = "OK";
      }
    }
    (status == "200" ? accepted_ : refused_)++;
    std::array<zmq::const_buffer, 6> reply{
        zmq::buffer(std::string_view("1.0")),
        frames.size() > 1 ? zmq::buffer(frames[1].data(), frames[1].size()) : zmq::const_buffer(),
        zmq::buffer(std::string_view(status)),
        zmq::buffer(std::string_view(text)),
        zmq::buffer(std::string_view("")),
        zmq::buffer(std::string_view(""))};
    for (std::size_t i = 0; i < reply.size(); ++i)
      socket_.send(reply[i], i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

SecureContext::SecureContext(zmq::context_t& ctx, const SecurityConfig& cfg) : security_(cfg) {
  if (security_.curve()) zap_ = std::make_unique<ZapAuthenticator>(ctx, security_.authorized_clients());
}

}  // namespace tp
