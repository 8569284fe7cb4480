// Engine.IO 4 / Socket.IO 5 packet codec: the frames a stock socket.io-client sends and expects,
// and malformed or oversized input rejected without a crash.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "protocol/socketio.hpp"

namespace al::notifier::sio {
namespace {
namespace bj = boost::json;

template <class T>
const T& ok(const std::variant<T, DecodeError>& v) {
  if (auto* e = std::get_if<DecodeError>(&v)) ADD_FAILURE() << e->message;
  return std::get<T>(v);
}
template <class T>
bool failed(const std::variant<T, DecodeError>& v) {
  return std::holds_alternative<DecodeError>(v);
}

TEST(EngineIo, DecodesEveryTextPacketType) {
  EXPECT_EQ(ok(decode_engine("2")).type, EngineType::Ping);
  EXPECT_EQ(ok(decode_engine("3")).type, EngineType::Pong);
  EXPECT_EQ(ok(decode_engine("3probe")).data, "probe");
  EXPECT_EQ(ok(decode_engine("1")).type, EngineType::Close);
  auto m = ok(decode_engine("42[\"hi\",1]"));
  EXPECT_EQ(m.type, EngineType::Message);
  EXPECT_EQ(m.data, "2[\"hi\",1]");
}

TEST(EngineIo, RejectsMalformedAndOversized) {
  EXPECT_TRUE(failed(decode_engine("")));
  EXPECT_TRUE(failed(decode_engine("9")));
  EXPECT_TRUE(failed(decode_engine("x")));
  EXPECT_TRUE(failed(decode_engine("bAAAA")));  // base64 binary
  EXPECT_TRUE(failed(decode_engine("4" + std::string(kMaxPacket, 'x'))));
}

TEST(EngineIo, OpenFrameAnnouncesWebSocketOnly) {
  std::string frame = open_frame("abc", 25000, 20000);
  ASSERT_EQ(frame[0], '0');
  auto o = bj::parse(frame.substr(1)).as_object();
  EXPECT_EQ(o.at("sid").as_string(), "abc");
  EXPECT_TRUE(o.at("upgrades").as_array().empty());
  EXPECT_EQ(o.at("pingInterval").as_int64(), 25000);
  EXPECT_EQ(o.at("pingTimeout").as_int64(), 20000);
  EXPECT_EQ(o.at("maxPayload").as_int64(), static_cast<long long>(kMaxPacket));
}

TEST(SocketIo, DecodesConnectWithAuth) {
  auto p = ok(decode_socket("0{\"apiKey\":\"alk.k1.agt_x.sig\",\"since\":12}"));
  EXPECT_EQ(p.type, SocketType::Connect);
  EXPECT_EQ(p.nsp, "/");
  EXPECT_EQ(p.payload.at("apiKey").as_string(), "alk.k1.agt_x.sig");
  EXPECT_EQ(p.payload.at("since").as_int64(), 12);
  auto bare = ok(decode_socket("0"));
  EXPECT_TRUE(bare.payload.is_null());
  auto nsp = ok(decode_socket("0/admin,{\"token\":\"t\"}"));
  EXPECT_EQ(nsp.nsp, "/admin");
  EXPECT_EQ(nsp.payload.at("token").as_string(), "t");
}

TEST(SocketIo, DecodesEventsAcksAndDisconnect) {
  auto e = ok(decode_socket("2[\"hello\",{\"a\":1}]"));
  EXPECT_EQ(e.type, SocketType::Event);
  EXPECT_EQ(e.payload.as_array()[0].as_string(), "hello");
  EXPECT_FALSE(e.ack_id);
  auto with_ack = ok(decode_socket("2/chat,13[\"hello\"]"));
  EXPECT_EQ(with_ack.nsp, "/chat");
  EXPECT_EQ(with_ack.ack_id, 13);
  auto ack = ok(decode_socket("313[\"bar\"]"));
  EXPECT_EQ(ack.type, SocketType::Ack);
  EXPECT_EQ(ack.ack_id, 13);
  EXPECT_EQ(ok(decode_socket("1")).type, SocketType::Disconnect);
}

TEST(SocketIo, RejectsMalformed) {
  for (const std::string& bad : std::vector<std::string>{"", "7", "2", "2{}", "2[]", "2[1]", "2[\"x\"", "0[1]", "3[\"x\"]",
                          "51-[\"x\",{\"_placeholder\":true,\"num\":0}]", "21234567890123456[\"x\"]",
                          "2" + std::string(100, '[') + std::string(100, ']'), "0/" + std::string(300, 'n') + ",{}"}) {
    EXPECT_TRUE(failed(decode_socket(bad))) << bad.substr(0, 40);
  }
}

TEST(SocketIo, EncodesWhatTheServerSends) {
  EXPECT_EQ(connect_ok_frame("s1"), "40{\"sid\":\"s1\"}");
  EXPECT_EQ(connect_error_frame("Invalid API key"), "44{\"message\":\"Invalid API key\"}");
  EXPECT_EQ(connect_error_frame("Invalid API key", "unauthorized"),
            "44{\"message\":\"Invalid API key\",\"data\":{\"code\":\"unauthorized\"}}");
  EXPECT_EQ(connect_error_frame("Invalid namespace", "invalid_namespace", "/admin"),
            "44/admin,{\"message\":\"Invalid namespace\",\"data\":{\"code\":\"invalid_namespace\"}}");
  EXPECT_EQ(event_frame("onNewTask", bj::object{{"event_id", 12}}, 12), "4212[\"onNewTask\",{\"event_id\":12}]");
  EXPECT_EQ(event_frame("roomJoined", bj::object{}, 0), "420[\"roomJoined\",{}]");
  // What we send, the decoder reads back (ack id included).
  auto back = ok(decode_socket(event_frame("x", 1, 7).substr(1)));
  EXPECT_EQ(back.ack_id, 7);
  EXPECT_EQ(event_frame("onNewTask", bj::object{{"event_id", 3}}), "42[\"onNewTask\",{\"event_id\":3}]");
  EXPECT_EQ(encode_socket({SocketType::Event, "/chat", 7, bj::array{"x"}}), "2/chat,7[\"x\"]");
  EXPECT_EQ(encode_engine(EngineType::Ping), "2");
}

TEST(SocketIo, RoundTrips) {
  SocketPacket p{SocketType::Event, "/", 42, bj::array{"onEvaluate", bj::object{{"event_id", 9}, {"job", bj::object{{"id", 1}}}}}};
  auto back = ok(decode_socket(encode_socket(p)));
  EXPECT_EQ(back.type, p.type);
  EXPECT_EQ(back.ack_id, p.ack_id);
  EXPECT_EQ(back.payload, p.payload);
}

}  // namespace
}  // namespace al::notifier::sio
