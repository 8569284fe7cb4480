#pragma once
// The outcome vocabulary every service shares: what a domain rule decided (Verdict, returned by
// the pure state machines) and what a use case answers (ResultKind). No I/O here: the domain
// layers include it; result.hpp maps a ResultKind onto HTTP.

namespace al {

enum class Verdict {
  Applied,        // the change is made
  Unchanged,      // already so: the seed's idempotent answers
  Forbidden,      // not this actor's to make
  Conflict,       // the aggregate's state does not allow it
  NotFound,
  Invalid,        // the request's values are refused (400)
  Unprocessable,  // well-formed, but the aggregate lacks what it needs (422)
};

enum class ResultKind { Ok, Created, Unchanged, Forbidden, Conflict, NotFound, Invalid, Unprocessable, Unavailable, Internal };

ResultKind kind_of(Verdict verdict);
bool succeeded(ResultKind kind);  // Ok, Created or Unchanged

}  // namespace al
