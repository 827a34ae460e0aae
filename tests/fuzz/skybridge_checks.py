"""Schemathesis checks for Skybridge's contract: a request the spec calls valid
is never refused as malformed.

Schemathesis' own `positive_data_acceptance` expects 2xx for every schema-valid
request. Skybridge answers some of those with a 422 that is about the world, not
the request: the build of a repository that does not exist failed
(`deployment_failed`), the function ran and failed (`execution_failed`), Go's
parser did not read a call (`invalid_call`). The fuzz config therefore lets 422
through that check, and this check fails every schema-valid request refused with
a code that means "this request does not fit the schema".
"""

import schemathesis

# Codes that say the request itself is malformed or out of bounds: everything
# these stand for is in the published schema, so a schema-valid request must
# never get one.
MALFORMED = {
    "invalid_json",
    "invalid_body",
    "invalid_parameter",
    "bad_request",
    "validation_failed",
    "unsupported_media_type",
    "unsupported_backend",
    "unsupported_by_backend",
}


@schemathesis.check
def schema_valid_requests_are_not_refused_as_malformed(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 413, 415, 422):
        return None
    try:
        error = response.json()["error"]
        code, message = error.get("code"), error.get("message")
    except Exception:  # noqa: BLE001 - a non-JSON error body is its own failure
        code, message = None, response.text[:300]
    if response.status_code in (400, 415) or code in MALFORMED:
        raise AssertionError(
            f"schema-valid request refused as malformed: {response.status_code} {code}: {message}"
        )
    return None
