"""Schemathesis hooks for idlc (loaded by scripts/schemathesis.sh through SCHEMATHESIS_HOOKS).

POST /hr/events needs an HMAC signature over the raw body: without one every generated case would
stop at the signature check, so cases that carry the header get a valid signature for the exact
bytes the requests transport sends (requests' json= encoding). Cases generated without the header
keep testing the refusal.
"""
import hashlib
import hmac
import json
import os
import time

import schemathesis

SIGNATURE_HEADER = "x-idlc-signature"


@schemathesis.hook
def before_call(context, case, kwargs):
    # The run's own credential must survive DELETE /credentials/{id} (generated from the ids that
    # GET /credentials answered), or every later case would only test the 401.
    own = os.environ.get("IDLC_CREDENTIAL_ID")
    if own and case.method.upper() == "DELETE" and case.path == "/credentials/{id}" and (case.path_parameters or {}).get("id") == own:
        case.path_parameters["id"] = "0" * 16
    secret = os.environ.get("IDLC_HR_SECRET")
    if not secret or case.path != "/hr/events" or not case.headers:
        return
    name = next((k for k in case.headers if k.lower() == SIGNATURE_HEADER), None)
    if name is None or isinstance(case.body, (bytes, type(None))):
        return
    try:
        raw = json.dumps(case.body, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    case.headers[name] = f"t={t},v1={mac}"


def _ids(variable="IDLC_KNOWN_IDS"):
    """The comma-separated ids the script passed in `variable` (default: the seeded identities)."""
    return [i for i in os.environ.get(variable, "").split(",") if i]


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    """Random ids almost never exist: some cases use a seeded identity's id, a spare credential's id or a held role instead."""
    from hypothesis import strategies as st

    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    options = [path_parameters]
    if "id" in path_parameters:
        operation = getattr(context, "operation", None)
        if operation is not None and operation.path.startswith("/credentials/"):
            options += [{**path_parameters, "id": i} for i in _ids("IDLC_SPARE_CREDENTIALS")]
        else:
            options += [{**path_parameters, "id": i} for i in _ids()]
    if "role" in path_parameters:
        options.append({**path_parameters, "role": "employee-basic"})
    return st.sampled_from(options)


@schemathesis.hook
def flatmap_query(context, query):
    from hypothesis import strategies as st

    if not isinstance(query, dict) or "identity" not in query:
        return st.just(query)
    return st.sampled_from([query] + [{**query, "identity": i} for i in _ids()])
