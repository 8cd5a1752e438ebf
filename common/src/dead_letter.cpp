#include "common/dead_letter.hpp"

#include <spdlog/spdlog.h>

#include "common/zmq_util.hpp"

namespace tp {

DeadLetterSender::DeadLetterSender(zmq::context_t& ctx, const std::string& endpoint, std::string source,
                                   const Clock& clock, const Security& security)
    : socket_(make_socket(ctx, zmq::socket_type::push,
                          SocketOptions{.linger_ms = 1000, .sndhwm = 10000, .rcvhwm = 1000,
                                        .max_msg_size = static_cast<std::int64_t>(proto::max_dead_letter_bytes)})),
      source_(std::move(source)),
      clock_(clock) {
  security.connect(socket_, endpoint);
}

void DeadLetterSender::send(std::string_view reason, std::string_view detail, std::string_view original) {
  auto now = clock_.now_ns();
  auto it = by_reason_.find(reason);
  if (it == by_reason_.end()) it = by_reason_.emplace(std::string(reason), 0).first;
  ++it->second;

  std::uint64_t suppressed = 0;
  if (limiter_.allow(reason, now, suppressed)) {
    spdlog::warn("dead letter ({}): {} [{} bytes]{}", reason, detail, original.size(),
                 suppressed ? fmt::format(" ({} more of this kind suppressed)", suppressed) : "");
  }

  proto::DeadLetter dl;
  dl.source = source_;
  dl.reason = std::string(reason);
  dl.detail = std::string(detail.substr(0, proto::max_text_length));
  dl.ts_ns = now;
  dl.original = std::string(original.substr(0, proto::max_payload_bytes));
  auto payload = encoder_.encode(dl);
  auto ok = socket_.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
  if (ok) ++sent_;
  else ++dropped_;
}

}  // namespace tp
