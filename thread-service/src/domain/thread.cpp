#include "domain/thread.hpp"

namespace al::thread {

bool is_placeholder(std::string_view value) {
  if (value.size() < 3 || value.front() != '<' || value.back() != '>') return false;
  for (char c : value.substr(1, value.size() - 2))
    if (!(std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_'))
      return false;
  return true;
}

std::vector<std::string> missing_terms(const std::optional<Terms>& terms) {
  auto absent = [](const std::optional<std::string>& v) { return !v || v->empty() || is_placeholder(*v); };
  std::vector<std::string> missing;
  const Terms empty;
  const Terms& t = terms ? *terms : empty;
  const Budget no_budget;
  const Budget& b = t.budget ? *t.budget : no_budget;
  if (absent(t.deliverable)) missing.emplace_back(kRequiredTerms[0]);
  if (!b.amount) missing.emplace_back(kRequiredTerms[1]);
  if (absent(b.token)) missing.emplace_back(kRequiredTerms[2]);
  if (absent(b.network)) missing.emplace_back(kRequiredTerms[3]);
  if (absent(t.timeline)) missing.emplace_back(kRequiredTerms[4]);
  if (absent(t.acceptance_criteria)) missing.emplace_back(kRequiredTerms[5]);
  if (absent(t.revision_boundary)) missing.emplace_back(kRequiredTerms[6]);
  return missing;
}

std::string_view status_name(Status status) {
  switch (status) {
    case Status::Negotiating: return "negotiating";
    case Status::QuoteLocked: return "quote_locked";
    case Status::Offered: return "offered";
    case Status::Closed: return "closed";
  }
  return "negotiating";
}

std::optional<Status> parse_status(std::string_view name) {
  for (Status s : {Status::Negotiating, Status::QuoteLocked, Status::Offered, Status::Closed})
    if (status_name(s) == name) return s;
  return std::nullopt;
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::Requester: return "requester";
    case Role::Provider: return "provider";
    case Role::None: return "none";
  }
  return "none";
}

std::string_view message_type_name(MessageType type) {
  switch (type) {
    case MessageType::Text: return "text";
    case MessageType::Scope: return "scope";
    case MessageType::Quote: return "quote";
    case MessageType::Milestone: return "milestone";
  }
  return "text";
}

std::optional<MessageType> parse_message_type(std::string_view name) {
  for (MessageType t : {MessageType::Text, MessageType::Scope, MessageType::Quote, MessageType::Milestone})
    if (message_type_name(t) == name) return t;
  return std::nullopt;
}

Role role_of(const Thread& thread, std::string_view agent) {
  if (agent == thread.requester_id) return Role::Requester;
  if (agent == thread.provider_id) return Role::Provider;
  return Role::None;
}

bool latest_quote_is_requesters(const Thread& thread) {
  return thread.latest_quote_message_id && thread.latest_quote_message_id != thread.provider_quote_message_id;
}

namespace {
Change status_change(std::string type, Status from, Status to, std::string reason) {
  return Change{std::move(type), from, to, std::move(reason)};
}

void move_to(Thread& thread, Status to, Millis now) {
  thread.status = to;
  thread.updated_at = now;
}
}  // namespace

Outcome open_thread(Thread& thread, const Service& service, std::string_view requester, Message& first,
                    Millis now) {
  if (!service.active) return Outcome::fail(Verdict::Conflict, "Service is not active");
  if (requester == service.provider_id)
    return Outcome::fail(Verdict::Unprocessable, "Cannot open a thread on your own service");
  thread.service_id = service.id;
  thread.service_title = service.title;
  thread.service_terms = Terms{service.deliverable,
                               Budget{service.price_amount, service.price_token, service.price_network},
                               service.timeline, std::nullopt, std::nullopt};
  thread.requester_id = std::string(requester);
  thread.provider_id = service.provider_id;
  thread.mode = "quick_quote";
  thread.status = Status::Negotiating;
  thread.created_at = now;
  thread.updated_at = now;
  first.seq = 1;
  first.sender_id = thread.requester_id;
  first.sender_role = Role::Requester;
  first.type = MessageType::Text;
  first.terms.reset();
  first.created_at = now;
  thread.message_count = 1;
  Outcome out;
  out.changes.push_back(Change{"thread.opened", std::nullopt, Status::Negotiating, std::nullopt});
  return out;
}

Outcome post_message(Thread& thread, std::string_view actor, Message& message, long long max_messages,
                     Millis now) {
  Role role = role_of(thread, actor);
  if (role == Role::None) return Outcome::fail(Verdict::Forbidden, std::string(kNotMember));
  if (thread.status == Status::Closed) return Outcome::fail(Verdict::Conflict, "Thread is closed");
  bool negotiates = message.type == MessageType::Quote || message.type == MessageType::Scope;
  if (negotiates && thread.status != Status::Negotiating)
    return Outcome::fail(Verdict::Conflict, "Thread is " + std::string(status_name(thread.status)) +
                                                ": quote and scope messages are accepted only while negotiating");
  if (thread.message_count >= max_messages)
    return Outcome::fail(Verdict::Conflict,
                         "Thread has reached its limit of " + std::to_string(max_messages) + " messages");
  message.seq = ++thread.message_count;
  message.sender_id = std::string(actor);
  message.sender_role = role;
  message.created_at = now;
  if (message.type == MessageType::Quote) {
    thread.latest_quote_message_id = message.id;
    thread.latest_quote_seq = message.seq;
    thread.latest_quote_terms = message.terms;
    if (role == Role::Provider) {
      thread.provider_quote_message_id = message.id;
      thread.provider_quote_seq = message.seq;
      thread.provider_quote_terms = message.terms;
    }
  }
  thread.updated_at = now;
  Outcome out;
  out.changes.push_back(Change{"thread.message_posted", std::nullopt, std::nullopt, std::nullopt});
  return out;
}

Outcome lock_quote(Thread& thread, std::string_view actor, Millis now, std::optional<long long> message_seq,
                   const std::optional<Message>& named) {
  Role role = role_of(thread, actor);
  if (role == Role::None) return Outcome::fail(Verdict::Forbidden, std::string(kNotMember));
  if (role != Role::Provider) return Outcome::fail(Verdict::Forbidden, "Only the provider can lock the quote");
  if (thread.status == Status::QuoteLocked) {
    bool same = !message_seq || (named && named->id == thread.locked_quote_message_id);
    if (same) return Outcome::unchanged();
    std::string locked = thread.locked_quote_seq ? "the quote at seq " + std::to_string(*thread.locked_quote_seq)
                                                 : std::string("another quote");
    return Outcome::fail(Verdict::Conflict, "Thread is quote_locked: " + locked + " is already locked");
  }
  if (thread.status != Status::Negotiating)
    return Outcome::fail(Verdict::Conflict, "Thread is " + std::string(status_name(thread.status)) +
                                                ": only a negotiating thread's quote can be locked");
  std::string id;
  long long seq = 0;
  std::optional<Terms> terms;
  if (message_seq) {
    std::string at = "Message seq " + std::to_string(*message_seq);
    if (!named)
      return Outcome::refuse_lock(kLockMessageNotFound,
                                  "No message with seq " + std::to_string(*message_seq) + " in this thread");
    if (named->type != MessageType::Quote)
      return Outcome::refuse_lock(kLockNotAQuote, at + " is a " + std::string(message_type_name(named->type)) +
                                                      " message, not a quote: only a quote can be locked");
    if (named->sender_role != Role::Provider)
      return Outcome::refuse_lock(kLockNotProviderQuote,
                                  at + " is the requester's quote: a requester's quote is a counter-proposal and "
                                       "cannot be locked; only a quote the provider posted can (post your own quote, "
                                       "with the requester's terms if you agree to them)");
    id = named->id;
    seq = named->seq;
    terms = named->terms;
  } else {
    if (!thread.provider_quote_message_id) {
      std::string why = "No quote to lock: post a quote message with terms first";
      if (thread.latest_quote_message_id)
        why = "No quote to lock: the requester's quote (seq " + std::to_string(thread.latest_quote_seq.value_or(0)) +
              ") is a counter-proposal and cannot be locked; the provider posts its own quote message with terms "
              "first";
      Outcome out = Outcome::refuse_lock(kLockNoQuote, std::move(why));
      out.missing = missing_terms(std::nullopt);
      return out;
    }
    id = *thread.provider_quote_message_id;
    seq = thread.provider_quote_seq.value_or(0);
    terms = thread.provider_quote_terms;
  }
  auto missing = missing_terms(terms);
  if (!missing.empty()) {
    std::string names;
    for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    Outcome out = Outcome::refuse_lock(kLockMissingTerms, "Quote is missing required terms: " + names);
    out.missing = std::move(missing);
    return out;
  }
  thread.locked_quote_message_id = id;
  thread.locked_quote_seq = seq;
  thread.locked_terms = terms;
  thread.quote_locked_at = now;
  move_to(thread, Status::QuoteLocked, now);
  Outcome out;
  out.changes.push_back(status_change("thread.quote_locked", Status::Negotiating, Status::QuoteLocked, "quote_locked"));
  return out;
}

Outcome close_thread(Thread& thread, std::string_view actor, const std::optional<std::string>& reason,
                     Millis now) {
  Role role = role_of(thread, actor);
  if (role == Role::None) return Outcome::fail(Verdict::Forbidden, std::string(kNotMember));
  if (thread.status == Status::Closed) return Outcome::unchanged();
  if (thread.status == Status::Offered)
    return Outcome::fail(Verdict::Conflict,
                         "Thread has an offer in progress: it reopens when the offer is rejected or expires, "
                         "and closes when its contract ends");
  Status from = thread.status;
  thread.closed_reason = reason ? *reason : "closed_by_" + std::string(role_name(role));
  move_to(thread, Status::Closed, now);
  Outcome out;
  out.changes.push_back(status_change("thread.closed", from, Status::Closed, *thread.closed_reason));
  return out;
}

Outcome follow_offer(Thread& thread, std::string_view event_type, const std::string& offer_id, long long seq,
                     Millis now) {
  bool current = thread.offer && thread.offer->id == offer_id;
  if (current && seq <= thread.offer->seq) return Outcome::unchanged();  // redelivered or stale
  if (event_type == "offer.created") {
    if (current || thread.status == Status::Closed) return Outcome::unchanged();
    if (thread.offer && (thread.offer->status == "open" || thread.offer->status == "accepted"))
      return Outcome::unchanged();  // the thread already follows a live offer
    thread.offer = Linked{offer_id, "open", seq};
    thread.updated_at = now;
    Outcome out;
    if (thread.status != Status::Offered) {
      Status from = thread.status;
      move_to(thread, Status::Offered, now);
      out.changes.push_back(status_change("thread.status_changed", from, Status::Offered, "offer_created"));
    }
    return out;
  }
  if (!current) return Outcome::unchanged();
  std::string status;
  if (event_type == "offer.accepted") status = "accepted";
  else if (event_type == "offer.rejected") status = "rejected";
  else if (event_type == "offer.expired") status = "inactive";
  else return Outcome::unchanged();  // a type this version does not know: nothing to follow
  thread.offer->status = status;
  thread.offer->seq = seq;
  thread.updated_at = now;
  Outcome out;
  if (status != "accepted" && thread.status == Status::Offered) {
    move_to(thread, Status::Negotiating, now);
    out.changes.push_back(status_change("thread.status_changed", Status::Offered, Status::Negotiating,
                                        status == "rejected" ? "offer_rejected" : "offer_expired"));
  }
  return out;
}

Outcome follow_contract(Thread& thread, std::string_view event_type, const std::string& contract_id,
                        const std::string& contract_status, long long seq, Millis now) {
  if (thread.contract) {
    if (thread.contract->id != contract_id || seq <= thread.contract->seq) return Outcome::unchanged();
  }
  if (event_type.substr(0, 9) != "contract." || contract_status.empty()) return Outcome::unchanged();
  thread.contract = Linked{contract_id, contract_status, seq};
  thread.updated_at = now;
  Outcome out;
  std::string_view kind = event_type.substr(9);
  bool ends = kind == "completed" || kind == "refunded" || kind == "expired";
  if (ends && thread.status != Status::Closed) {
    Status from = thread.status;
    thread.closed_reason = "contract_" + std::string(kind);
    move_to(thread, Status::Closed, now);
    out.changes.push_back(status_change("thread.closed", from, Status::Closed, *thread.closed_reason));
  } else if (!ends && (thread.status == Status::Negotiating || thread.status == Status::QuoteLocked)) {
    // The contract's event overtook the offer's (different topics): a contract means an offer.
    Status from = thread.status;
    move_to(thread, Status::Offered, now);
    out.changes.push_back(status_change("thread.status_changed", from, Status::Offered, "contract_created"));
  }
  return out;
}

}  // namespace al::thread
