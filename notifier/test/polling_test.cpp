// Engine.IO 4 long-polling framing (packets joined by the record separator) and the node tag a
// session id carries for the gateway's sticky routing.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "protocol/socketio.hpp"

namespace al::notifier::sio {
namespace {
namespace bj = boost::json;

std::vector<EnginePacket> packets_of(std::string_view body) {
  auto decoded = decode_payload(body);
  if (auto* e = std::get_if<DecodeError>(&decoded)) {
    ADD_FAILURE() << e->message;
    return {};
  }
  return std::get<std::vector<EnginePacket>>(decoded);
}

bool payload_refused(std::string_view body) { return std::holds_alternative<DecodeError>(decode_payload(body)); }

TEST(Payload, SplitsPacketsOnTheRecordSeparator) {
  // What socket.io-client POSTs after OPEN: CONNECT with auth, then a pong, in one request.
  auto packets = packets_of("40{\"apiKey\":\"k\",\"since\":0}\x1e" "3");
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(packets[0].type, EngineType::Message);
  EXPECT_EQ(packets[0].data, "0{\"apiKey\":\"k\",\"since\":0}");
  EXPECT_EQ(packets[1].type, EngineType::Pong);
  EXPECT_EQ(packets[1].data, "");
}

TEST(Payload, OnePacketWithoutSeparator) {
  auto packets = packets_of("1");
  ASSERT_EQ(packets.size(), 1u);
  EXPECT_EQ(packets[0].type, EngineType::Close);
}

TEST(Payload, RefusesEmptyPacketsBinaryAndOversizedBodies) {
  EXPECT_TRUE(payload_refused(""));
  EXPECT_TRUE(payload_refused("3\x1e"));         // a trailing separator: an empty last packet
  EXPECT_TRUE(payload_refused("\x1e" "3"));      // an empty first packet
  EXPECT_TRUE(payload_refused("3\x1e\x1e" "3"));  // an empty one between
  EXPECT_TRUE(payload_refused("3\x1e" "bAQID"));  // base64 binary
  EXPECT_TRUE(payload_refused("3\x1e" "9"));      // an unknown type after a good one
  EXPECT_TRUE(payload_refused("4" + std::string(kMaxPacket, 'x')));
  EXPECT_FALSE(payload_refused("4" + std::string(kMaxPacket - 1, 'x')));  // exactly maxPayload
}

TEST(Payload, EncodesAndDecodesBackInOrder) {
  std::vector<std::string> sent = {"2", "40{\"sid\":\"p1.ab\"}", "42[\"roomJoined\",{\"head_event_id\":3}]", "1"};
  std::string body = encode_payload({sent[0], sent[1], sent[2], sent[3]});
  EXPECT_EQ(body, "2\x1e" "40{\"sid\":\"p1.ab\"}\x1e" "42[\"roomJoined\",{\"head_event_id\":3}]\x1e" "1");
  auto packets = packets_of(body);
  ASSERT_EQ(packets.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(encode_engine(packets[i].type, packets[i].data), sent[i]);
  EXPECT_EQ(encode_payload({"6"}), "6");
  EXPECT_EQ(encode_payload({}), "");
}

TEST(Payload, AnEventTextMayHoldAnythingButTheSeparator) {
  // JSON escapes control characters, so an event's text never carries a raw \x1e.
  std::string frame = event_frame("note", bj::value("a\x1e" "b"));
  EXPECT_EQ(frame.find('\x1e'), std::string::npos);
  auto packets = packets_of(encode_payload({frame, frame}));
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(packets[1].data, frame.substr(1));
}

TEST(OpenFrame, LongPollingOffersTheWebSocketUpgrade) {
  auto o = bj::parse(open_frame("p8081.abc", 25000, 20000, {"websocket"}).substr(1)).as_object();
  ASSERT_EQ(o.at("upgrades").as_array().size(), 1u);
  EXPECT_EQ(o.at("upgrades").as_array()[0].as_string(), "websocket");
  EXPECT_EQ(o.at("sid").as_string(), "p8081.abc");
  auto ws = bj::parse(open_frame("p8081.abc", 25000, 20000).substr(1)).as_object();
  EXPECT_TRUE(ws.at("upgrades").as_array().empty());
}

TEST(SessionId, CarriesTheNodeTag) {
  std::string sid = make_sid("notifier-1", "0123456789abcdef0123");
  EXPECT_EQ(sid, "notifier-1.0123456789abcdef0123");
  EXPECT_EQ(sid_node_tag(sid), "notifier-1");
  EXPECT_EQ(sid_node_tag(make_sid("p8081", "ff")), "p8081");
}

TEST(SessionId, NoTagInForeignOrMalformedIds) {
  EXPECT_EQ(sid_node_tag("0123456789abcdef"), "");  // engine.io's own ids have no tag
  EXPECT_EQ(sid_node_tag(".abc"), "");
  EXPECT_EQ(sid_node_tag("p1."), "");
  EXPECT_EQ(sid_node_tag("p_1.abc"), "");
  EXPECT_EQ(sid_node_tag(std::string(33, 'a') + ".abc"), "");
  EXPECT_EQ(sid_node_tag(std::string(32, 'a') + ".abc"), std::string(32, 'a'));
}

TEST(SessionId, ValidTagsAreShortAndUrlSafe) {
  EXPECT_TRUE(valid_node_tag("p8081"));
  EXPECT_TRUE(valid_node_tag("notifier-0"));
  EXPECT_FALSE(valid_node_tag(""));
  EXPECT_FALSE(valid_node_tag("a.b"));   // the separator
  EXPECT_FALSE(valid_node_tag("a b"));
  EXPECT_FALSE(valid_node_tag("a/b"));
  EXPECT_FALSE(valid_node_tag("ä"));
  EXPECT_FALSE(valid_node_tag(std::string(33, 'a')));
}

}  // namespace
}  // namespace al::notifier::sio
