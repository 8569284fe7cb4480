#pragma once
#include <boost/json.hpp>

#include "domain/job.hpp"

namespace al::job {

// The job as the API and the events show it (camelCase, seed 001). Amounts are decimal strings.
boost::json::object to_json(const Job& job);
boost::json::object to_json(const Memo& memo);
boost::json::object to_json(const PayableDetail& detail);

}  // namespace al::job
