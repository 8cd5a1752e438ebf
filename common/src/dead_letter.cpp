#include "common/dead_letter.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/zmq_util.hpp"

namespace tp {
namespace {

zmq::socket_t make_push(zmq::context_t& ctx, int hwm) {
  return make_socket(ctx, zmq::socket_type::push,
                     SocketOptions{.linger_ms = 1000,
                                   .sndhwm = hwm,
                                   .rcvhwm = 1,
                                   .max_msg_size = static_cast<std::int64_t>(proto::max_dead_letter_bytes)});
}

// Never below the real encoded size: the fields as cut plus the framing.
std::size_t encoded_bound(std::size_t source, std::size_t reason, std::size_t detail, std::size_t original,
                          std::size_t key) {
  return source + reason + detail + original + key + 64;
}

}  // namespace

bool SinkComeback::due(std::span<const ConnectionCounters> sockets) noexcept {
  std::uint64_t drops = 0;
  bool connected = true;
  for (const auto& s : sockets) {
    drops += s.dropped;
    // Each drop ends a connection made before it.
    connected = connected && s.accepted > s.dropped;
  }
  // The sockets lose a sink together and find it again a moment apart: one
  // answer once all are back, not one each (each answer means the stored
  // letters sent again).
  if (drops == drops_answered_ || !connected) return false;
  drops_answered_ = drops;
  return true;
}

DeadLetterSender::DeadLetterSender(zmq::context_t& ctx, const std::string& endpoint, std::string source,
                                   const Clock& clock, const Security& security, SinkWatch watch)
    : small_(make_push(ctx, small_queue_letters)),
      large_(make_push(ctx, large_queue_letters)),
      source_(std::move(source).substr(0, proto::max_id_length)),
      clock_(clock) {
  // Before the connect: a first connection not seen would make its drop
  // look like one without a connection to end.
  if (watch == SinkWatch::on) {
    small_monitor_ = std::make_unique<SocketMonitor>(ctx, small_);
    large_monitor_ = std::make_unique<SocketMonitor>(ctx, large_);
  }
  security.connect(small_, endpoint);
  security.connect(large_, endpoint);
}

bool DeadLetterSender::sink_back_after_loss() {
  if (!small_monitor_) return false;
  small_monitor_->drain();
  large_monitor_->drain();
  const ConnectionCounters sockets[] = {small_monitor_->counters(), large_monitor_->counters()};
  return comeback_.due(sockets);
}

zmq::socket_t& DeadLetterSender::lane(std::string_view reason, std::string_view detail,
                                      std::string_view original, std::string_view key, std::size_t& bound) {
  // The lane is chosen on an upper bound of the encoded size, so that every
  // letter on the small queue really is at most small_letter_bytes.
  bound = encoded_bound(source_.size(), std::min(reason.size(), proto::max_id_length),
                        std::min(detail.size(), proto::max_text_length),
                        std::min(original.size(), proto::max_payload_bytes),
                        std::min(key.size(), proto::max_id_length));
  return bound <= small_letter_bytes ? small_ : large_;
}

void DeadLetterSender::count_reason(std::string_view reason) {
  auto it = by_reason_.find(reason);
  if (it == by_reason_.end()) it = by_reason_.emplace(std::string(reason), 0).first;
  ++it->second;
}

bool DeadLetterSender::queue(std::string_view reason, std::string_view detail, std::string_view original,
                             std::string_view key, std::int64_t ts_ns, std::size_t& bound) {
  auto& socket = lane(reason, detail, original, key, bound);
  // A full queue is known before the letter is built: under a flood with the
  // sink away, dropping then costs no copy of the original.
  if ((socket.get(zmq::sockopt::events) & ZMQ_POLLOUT) == 0) return false;
  letter_.source = source_;
  letter_.reason.assign(reason);
  letter_.detail.assign(detail);
  letter_.ts_ns = ts_ns != 0 ? ts_ns : clock_.now_ns();
  letter_.original.assign(original);
  letter_.key.assign(key);
  auto payload = encoder_.encode(letter_);
  const bool ok =
      socket.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait).has_value();
  // Do not keep a 64 KiB original alive between letters.
  if (letter_.original.capacity() > small_letter_bytes) std::string().swap(letter_.original);
  return ok;
}

bool DeadLetterSender::send_if_room(std::string_view reason, std::string_view detail,
                                    std::string_view original, std::string_view key, std::int64_t ts_ns) {
  reason = reason.substr(0, proto::max_id_length);
  std::size_t bound = 0;
  if (!queue(reason, detail.substr(0, proto::max_text_length), original.substr(0, proto::max_payload_bytes),
             key.substr(0, proto::max_id_length), ts_ns, bound))
    return false;
  count_reason(reason);
  ++sent_;
  return true;
}

bool DeadLetterSender::send(std::string_view reason, std::string_view detail, std::string_view original,
                            std::string_view key, std::int64_t ts_ns) {
  const auto now = clock_.now_ns();
  reason = reason.substr(0, proto::max_id_length);
  key = key.substr(0, proto::max_id_length);
  detail = detail.substr(0, proto::max_text_length);
  original = original.substr(0, proto::max_payload_bytes);
  count_reason(reason);

  std::uint64_t suppressed = 0;
  // A resend (its own time given) was logged when it was first sent.
  if (ts_ns == 0 && limiter_.allow(reason, now, suppressed)) {
    spdlog::warn("dead letter ({}): {} [{} bytes]{}", reason, detail, original.size(),
                 suppressed ? fmt::format(" ({} more of this kind suppressed)", suppressed) : "");
  }
  std::size_t bound = 0;
  if (queue(reason, detail, original, key, ts_ns != 0 ? ts_ns : now, bound)) {
    ++sent_;
    return true;
  }
  ++dropped_;
  dropped_bytes_ += bound;
  if (limiter_.allow("(dead-letter queue full)", now, suppressed)) {
    spdlog::warn("dead-letter queue full (sink away or slow): {} letters ({} bytes) dropped so far", dropped_,
                 dropped_bytes_);
  }
  return false;
}

}  // namespace tp
