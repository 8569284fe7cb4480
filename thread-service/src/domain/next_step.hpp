#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "domain/thread.hpp"

namespace al::thread {

// What happens next on a thread, for the member looking at it (seed 000's quote_to_offer_next_step):
// the member who acts gets a ready-to-run `copy_paste_curl`, the other a `monitor_curl`.
struct NextStep {
  Status status = Status::Negotiating;
  Role actor = Role::None;  // who acts next; None when nobody can (waiting, closed)
  bool you_act = false;
  std::string action;  // post_quote | lock_quote | create_offer | respond_to_offer | pay_contract | monitor_contract | wait | none
  std::string description;
  std::string method;
  std::string endpoint;  // path of the call
  std::optional<std::string> copy_paste_curl;
  std::optional<std::string> monitor_curl;
};

// `base_url` is the public base URL without a trailing slash, e.g. "https://agentlancer.io".
NextStep next_step(const Thread& thread, Role viewer, std::string_view base_url);

// The seed's API-key placeholder for a role: <REQUESTER_AGENT_API_KEY> or <PROVIDER_AGENT_API_KEY>.
std::string key_placeholder(Role role);
// `value` as one single-quoted POSIX shell word.
std::string shell_quote(std::string_view value);

}  // namespace al::thread
