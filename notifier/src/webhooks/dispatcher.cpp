#include "webhooks/dispatcher.hpp"

#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include "common/log/log.hpp"
#include "common/trace/trace_context.hpp"
#include "common/util/ids.hpp"

namespace al::notifier::webhooks {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::use_awaitable;

Resolution resolve_checked(const std::string& host, const std::vector<Cidr>& allowed) {
  Resolution r;
  boost::system::error_code ec;
  auto literal = asio::ip::make_address(host, ec);
  if (!ec) {
    r.addresses.push_back(literal);
  } else {
    asio::io_context io;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(host, "0", ec);
    if (ec || results.empty()) {
      r.unresolvable = true;
      r.error = "url_unresolvable";
      return r;
    }
    for (const auto& entry : results) r.addresses.push_back(entry.endpoint().address());
  }
  for (const auto& a : r.addresses)
    if (!reachable(a, allowed)) {
      r.refused = a.to_string();
      r.error = "url_not_allowed";
      return r;
    }
  return r;
}

namespace {
// The logged CloudEvent's traceparent ("" when it has none or the payload is not readable).
std::string traceparent_of(const std::string& payload) {
  boost::system::error_code ec;
  auto value = boost::json::parse(payload, ec);
  if (ec || !value.is_object()) return {};
  const auto* traceparent = value.get_object().if_contains("traceparent");
  return traceparent && traceparent->is_string() ? std::string(traceparent->get_string()) : std::string();
}

long long micros_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
}

std::string describe(const boost::system::error_code& ec, std::string_view step) {
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted) return "timeout";
  return std::string(step) + ": " + ec.message();
}

// The exchange on a connected stream (plain or TLS): the request, then the response's status.
template <class Stream>
asio::awaitable<void> exchange(Stream& stream, bhttp::request<bhttp::string_body>& request, Outcome& out,
                               std::chrono::steady_clock::time_point started) {
  boost::system::error_code ec;
  co_await bhttp::async_write(stream, request, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    out.error = describe(ec, "write");
    co_return;
  }
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024);  // the answer's body is not used: a receiver may say anything
  co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
  if (ec && !(ec == bhttp::error::body_limit && parser.is_header_done())) {
    out.error = describe(ec, "read");
    co_return;
  }
  unsigned status = parser.get().result_int();
  out.response_code = status;
  out.delivered = status >= 200 && status < 300;
  if (!out.delivered) out.error = "HTTP " + std::to_string(status);
  out.latency_us = micros_since(started);
}

asio::awaitable<Outcome> post_once(WebhookRequest req, const std::vector<Cidr>& allowed, std::chrono::milliseconds timeout,
                                   asio::ssl::context& tls) {
  Outcome out;
  auto started = std::chrono::steady_clock::now();
  auto finish = [&](std::string error) {
    out.error = std::move(error);
    out.latency_us = micros_since(started);
    return out;
  };
  auto target = parse_url(req.url);
  if (!target) co_return finish("invalid url");
  auto executor = co_await asio::this_coro::executor;
  boost::system::error_code ec;

  // Resolved here, for this request, and only the addresses checked are connected to: a name
  // that resolved to a public address at registration and to an internal one now is refused.
  tcp::resolver resolver(executor);
  asio::steady_timer resolve_deadline(executor, timeout);
  resolve_deadline.async_wait([&resolver](boost::system::error_code e) {
    if (!e) resolver.cancel();
  });
  auto results = co_await resolver.async_resolve(target->host, target->port, asio::redirect_error(use_awaitable, ec));
  resolve_deadline.cancel();
  if (ec) co_return finish(ec == asio::error::operation_aborted ? "timeout" : "url_unresolvable: " + ec.message());
  std::vector<tcp::endpoint> endpoints;
  for (const auto& entry : results) {
    auto address = entry.endpoint().address();
    if (!reachable(address, allowed))
      co_return finish("url_not_allowed: " + target->host + " resolves to " + address.to_string());
    endpoints.push_back(entry.endpoint());
  }
  if (endpoints.empty()) co_return finish("url_unresolvable");
  auto left = timeout - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  if (left <= std::chrono::milliseconds(0)) co_return finish("timeout");

  bhttp::request<bhttp::string_body> request{bhttp::verb::post, target->target, 11};
  bool default_port = target->port == (target->https ? "443" : "80");
  bool v6 = target->host.find(':') != std::string::npos;
  request.set(bhttp::field::host, (v6 ? "[" + target->host + "]" : target->host) + (default_port ? "" : ":" + target->port));
  request.set(bhttp::field::user_agent, req.user_agent);
  request.set(bhttp::field::content_type, "application/json");
  request.set("webhook-id", req.webhook_id);
  request.set("webhook-timestamp", std::to_string(req.timestamp));
  request.set("webhook-signature", req.signature);
  if (!req.traceparent.empty()) request.set("traceparent", req.traceparent);
  request.keep_alive(false);
  request.body() = std::move(req.body);
  request.prepare_payload();

  if (!target->https) {
    beast::tcp_stream stream(executor);
    stream.expires_after(left);  // one deadline for connect, write and read
    co_await stream.async_connect(endpoints, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return finish(describe(ec, "connect"));
    co_await exchange(stream, request, out, started);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  } else {
    beast::ssl_stream<beast::tcp_stream> stream(executor, tls);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), target->host.c_str())) co_return finish("tls: server name");
    stream.set_verify_callback(asio::ssl::host_name_verification(target->host));
    beast::get_lowest_layer(stream).expires_after(left);
    co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return finish(describe(ec, "connect"));
    co_await stream.async_handshake(asio::ssl::stream_base::client, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return finish(describe(ec, "tls"));
    co_await exchange(stream, request, out, started);
  }
  if (out.latency_us == 0) out.latency_us = micros_since(started);
  co_return out;
}

asio::ssl::context make_tls_context() {
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_default_verify_paths();
  tls.set_verify_mode(asio::ssl::verify_peer);
  return tls;
}
}  // namespace

Dispatcher::Dispatcher(storage::Database& db, WorkerPool& workers, const Clock& clock, Settings settings,
                       Metrics& metrics, RenderRow render, OnDisabled on_disabled)
    : db_(db),
      workers_(workers),
      clock_(clock),
      settings_(std::move(settings)),
      metrics_(metrics),
      render_(std::move(render)),
      on_disabled_(std::move(on_disabled)),
      tls_(std::make_unique<asio::ssl::context>(make_tls_context())),
      poll_timer_(io_) {}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::start() {
  if (running_.exchange(true)) return;
  arm_poll();
  thread_ = std::thread([this] { io_.run(); });
}

void Dispatcher::stop() {
  if (!running_.exchange(false)) return;
  // Requests in flight are abandoned: their leases run out and the events are sent again
  // (at-least-once), by this replica after a restart or by another one.
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // Scans and units of work already handed to the workers or the database call back into this
  // object: they finish first (bounded; a stopped worker pool runs none of them anyway).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (pending_.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Dispatcher::wake() {
  if (!running_) return;
  asio::post(io_, [this] {
    if (scanning_.exchange(true)) {
      rescan_ = true;
      return;
    }
    ++pending_;
    workers_.post([this] { scan(); });
  });
}

void Dispatcher::arm_poll() {
  poll_timer_.expires_after(settings_.poll_interval);
  poll_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || !running_) return;
    if (!scanning_.exchange(true)) {
      ++pending_;
      workers_.post([this] { scan(); });
    }
    arm_poll();
  });
}

// On a worker: the due endpoints, as many as there are free slots, each claimed in its own unit.
void Dispatcher::scan() {
  int free = settings_.max_concurrency - in_flight_.load();
  std::vector<std::string> ids;
  if (free > 0 && running_) {
    try {
      Millis now = clock_.now_ms();
      ids = db_.read([&](storage::Connection& c) { return webhook_store::due(c, now, free); });
    } catch (const std::exception& e) {
      log::warn("webhook scan failed", {{"what", e.what()}});
    }
  }
  for (const auto& id : ids) {
    ++in_flight_;
    claim(id);
  }
  scanning_ = false;
  if (rescan_.exchange(false)) wake();
  --pending_;
}

void Dispatcher::claim(const std::string& id) {
  auto job = std::make_shared<std::shared_ptr<Job>>();
  std::string lease = random_hex(12);
  ++pending_;
  db_.write(
      [this, id, lease, job](storage::Connection& c) {
        job->reset();
        Millis now = clock_.now_ms();
        Millis until = now + settings_.timeout.count() + 5'000;
        if (!webhook_store::claim(c, id, lease, until, now)) return;
        auto endpoint = webhook_store::by_id(c, id);
        if (!endpoint) return;
        // The next entry after the cursor this endpoint wants; entries it does not want are
        // stepped over (the cursor moves past them), and so are entries the log no longer holds.
        long long skipped_to = endpoint->cursor;
        bool any = false;
        {
          auto q = c.query("SELECT event_id, cloudevent_id, type, payload FROM agent_events WHERE agent_id = ? AND event_id > ? "
                           "ORDER BY event_id LIMIT 100",
                           endpoint->agent_id, endpoint->cursor);
          while (q.next()) {
            any = true;
            std::string type = q.text(2);
            if (!endpoint->wants(type)) {
              skipped_to = q.int64(0);
              continue;
            }
            auto j = std::make_shared<Job>();
            j->event_id = q.int64(0);
            j->webhook_id = q.text(1);
            j->type = std::move(type);
            std::string payload = q.text(3);
            j->body = render_(payload, j->event_id);
            j->traceparent = traceparent_of(payload);
            *job = j;
            break;
          }
        }
        if (!any) skipped_to = std::max(skipped_to, webhook_store::log_head(c, endpoint->agent_id));
        if (skipped_to != endpoint->cursor) {
          endpoint->cursor = skipped_to;
          endpoint->attempt = 0;
        }
        if (!*job) {  // nothing to send: the lease is given back at once
          endpoint->lease.clear();
          endpoint->lease_until = 0;
        }
        webhook_store::save(c, *endpoint);
        if (*job) (*job)->endpoint = std::move(*endpoint);
      },
      [this, job](std::exception_ptr error) {
        if (error || !*job) {
          --in_flight_;
          if (error) {
            try {
              std::rethrow_exception(error);
            } catch (const std::exception& e) {
              log::warn("webhook claim failed", {{"what", e.what()}});
            }
          }
        } else {
          send(*job);
        }
        --pending_;
      });
}

void Dispatcher::send(std::shared_ptr<Job> job) {
  Millis now = clock_.now_ms();
  long long timestamp = now / 1000;
  WebhookRequest request;
  request.url = job->endpoint.url;
  request.body = job->body;
  request.user_agent = settings_.user_agent;
  request.webhook_id = job->webhook_id;
  request.timestamp = timestamp;
  request.signature = sign(job->endpoint.secret, job->webhook_id, timestamp, job->body);
  if (!job->traceparent.empty()) request.traceparent = trace::continue_from(job->traceparent);
  if (job->endpoint.previous_secret && job->endpoint.previous_secret_until > now)
    request.signature += " " + sign(*job->endpoint.previous_secret, job->webhook_id, timestamp, job->body);
  asio::post(io_, [this, job, request = std::move(request)]() mutable {
    asio::co_spawn(io_, post_once(std::move(request), settings_.allowed, settings_.timeout, *tls_),
                   [this, job](std::exception_ptr error, Outcome outcome) {
                     if (error) {
                       try {
                         std::rethrow_exception(error);
                       } catch (const std::exception& e) {
                         outcome = Outcome{};
                         outcome.error = e.what();
                       }
                     }
                     ++pending_;
                     workers_.post([this, job, outcome = std::move(outcome)] { finish(job, outcome); });
                   });
  });
}

// On a worker: the attempt is recorded and the endpoint moves on (delivered), waits for its next
// attempt (failed) or is disabled (failing for too long). A lease that is no longer this
// attempt's (a replay, a re-enable, a delete meanwhile) keeps only the record.
void Dispatcher::finish(std::shared_ptr<Job> job, Outcome outcome) {
  auto after = std::make_shared<std::function<void()>>();
  auto disabled = std::make_shared<bool>(false);
  db_.write(
      [this, job, outcome, after, disabled](storage::Connection& c) {
        *after = nullptr;
        *disabled = false;
        Millis now = clock_.now_ms();
        auto endpoint = webhook_store::by_id(c, job->endpoint.id);
        if (!endpoint) return;
        webhook_store::record(c, {endpoint->id, job->event_id, job->webhook_id, job->type, job->endpoint.attempt + 1,
                                  outcome.delivered, outcome.response_code, outcome.latency_us, outcome.error, now});
        if (endpoint->lease != job->endpoint.lease) return;
        endpoint->lease.clear();
        endpoint->lease_until = 0;
        if (outcome.delivered) {
          endpoint->cursor = job->event_id;
          endpoint->attempt = 0;
          endpoint->failing_since.reset();
          endpoint->last_error.reset();
          endpoint->next_attempt_at = now;
        } else {
          endpoint->attempt += 1;
          if (!endpoint->failing_since) endpoint->failing_since = now;
          endpoint->last_error = outcome.error;
          endpoint->next_attempt_at = now + wait_before_attempt(settings_.schedule, endpoint->attempt + 1);
          if (now - *endpoint->failing_since >= settings_.disable_after) {
            endpoint->enabled = false;
            endpoint->disabled_reason = "failing";
            *disabled = true;
            *after = on_disabled_(c, *endpoint, now);
          }
        }
        endpoint->updated_at = now;
        webhook_store::save(c, *endpoint);
      },
      [this, job, outcome, after, disabled](std::exception_ptr error) {
        --in_flight_;
        if (error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            log::warn("webhook attempt could not be recorded", {{"webhook", job->endpoint.id}, {"what", e.what()}});
          }
        } else {
          metrics_.add_counter(outcome.delivered ? "webhook_deliveries_delivered_total" : "webhook_deliveries_failed_total",
                               outcome.delivered ? "Webhook requests answered 2xx." : "Webhook requests that failed (non-2xx, timeout, refused).");
          metrics_.add_counter("webhook_delivery_seconds_sum", "Total time of webhook requests (s).",
                               static_cast<double>(outcome.latency_us) / 1e6);
          metrics_.add_counter("webhook_delivery_seconds_count", "Webhook requests made.");
          if (*disabled) {
            metrics_.add_counter("webhook_endpoints_disabled_total", "Webhook endpoints disabled for failing too long.");
            log::warn("webhook endpoint disabled after failing", {{"webhook", job->endpoint.id}});
          }
          if (*after) (*after)();
        }
        wake();
        --pending_;
      });
}

}  // namespace al::notifier::webhooks
