#!/usr/bin/env bash
# Property-based API testing: runs Schemathesis against the built server's own OpenAPI document
# (/docs/openapi.json) on a temporary SQLite data directory. Every response must be a non-5xx whose
# status code and body are the ones the document declares. Exits with Schemathesis's status.
# Usage: npm run build && bash scripts/schemathesis.sh [more schemathesis run options, e.g. --report har]
#   SCHEMATHESIS_MAX_EXAMPLES (default 50) cases per operation and phase; SCHEMATHESIS_SEED (default
#   fixed, so CI is repeatable); SCHEMATHESIS_AUTH_HEADER="Name: value" is sent with every request.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCHEMATHESIS_VERSION=4.32.5
VENV="$ROOT/.cache/schemathesis-venv"
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-50}
SEED=${SCHEMATHESIS_SEED:-20261123}
started=$(date +%s)

if [ ! -f dist/apps/api/src/main.js ]; then
  echo "!! dist/ is missing: run npm run build first" >&2
  exit 2
fi
installed=$("$VENV/bin/pip" show schemathesis 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ ! -x "$VENV/bin/schemathesis" ] || [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# shellcheck source=lib/api-server.sh
source scripts/lib/api-server.sh
HR_SECRET="schemathesis-hr-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
SCIM_TOKEN="schemathesis-scim-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

# One credential holding every scope, made the way an operator bootstraps a deployment.
TOKEN=$(DATA_DIR="$DATA_DIR" EVENT_STORE=sqlite KAFKA_BROKERS= LOG_LEVEL=warn \
  node dist/apps/cli/src/main.js credentials:create --name schemathesis --scopes hr:write,sso:login,scim,audit:read,admin --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
SCHEMATHESIS_AUTH_HEADER="${SCHEMATHESIS_AUTH_HEADER:-Authorization: Bearer $TOKEN}"

start_api HR_WEBHOOK_SECRETS="$HR_SECRET" SCIM_TOKENS="$SCIM_TOKEN"

# A few identities, so cases that hit their ids (see the hooks) reach the 200 answers, not only 404s.
KNOWN_IDS=$(URL="$URL" IDLC_HR_SECRET="$HR_SECRET" IDLC_TOKEN="$TOKEN" python3 - <<'PY'
import hashlib, hmac, json, os, time, urllib.request
url, secret = os.environ["URL"], os.environ["IDLC_HR_SECRET"]
def hire(n, dept):
    return {"eventId": f"st-seed-{n}", "type": "hire", "employeeId": f"ST{n}", "effectiveDate": "2026-01-05",
            "attributes": {"givenName": "Seed", "familyName": f"Person{n}", "email": f"st{n}@example.com",
                           "department": dept, "title": "Engineer", "employmentType": "employee", "location": "London"}}
events = [hire(1, "Engineering"), hire(2, "Sales"),
          {"eventId": "st-seed-3", "type": "terminate", "employeeId": "ST2", "effectiveDate": "2026-06-30", "reason": "resignation"}]
raw = json.dumps({"events": events}).encode()
t = int(time.time())
sig = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
req = urllib.request.Request(f"{url}/hr/events", data=raw, method="POST",
                             headers={"content-type": "application/json", "x-idlc-signature": f"t={t},v1={sig}",
                                      "authorization": f"Bearer {os.environ['IDLC_TOKEN']}"})
results = json.load(urllib.request.urlopen(req))["results"]
assert all(r["status"] == "applied" for r in results), results
print(",".join(sorted({r["identityId"] for r in results})))
PY
)
echo "== seeded identities $KNOWN_IDS"

# Spare credentials, so DELETE /credentials/{id} cases reach a revocation, not only the 404.
SPARE_CREDENTIALS=$(URL="$URL" IDLC_TOKEN="$TOKEN" python3 - <<'PY'
import json, os, urllib.request
ids = []
for n in range(3):
    req = urllib.request.Request(f"{os.environ['URL']}/credentials", method="POST",
                                 data=json.dumps({"name": f"schemathesis-spare-{n}", "scopes": ["audit:read"]}).encode(),
                                 headers={"content-type": "application/json", "authorization": f"Bearer {os.environ['IDLC_TOKEN']}"})
    ids.append(json.load(urllib.request.urlopen(req))["id"])
print(",".join(ids))
PY
)
echo "== spare credentials $SPARE_CREDENTIALS"

HEADERS=()
if [ -n "${SCHEMATHESIS_AUTH_HEADER:-}" ]; then HEADERS+=(-H "$SCHEMATHESIS_AUTH_HEADER"); fi

echo "== schemathesis $SCHEMATHESIS_VERSION against $URL/docs/openapi.json (max $MAX_EXAMPLES examples, seed $SEED)"
set +e
# Schemathesis keeps its cache (.schemathesis/) in the working directory: under .cache, not the tree.
# Relative --report paths land there too.
mkdir -p "$ROOT/.cache/schemathesis"
cd "$ROOT/.cache/schemathesis"
# Its section banners ('==== 2 warnings in 11s ====') have pytest's closing-line shape; a CI reader
# of the log would take that for a test run that passed nothing, so they are printed as '-- … --'.
# The hooks sign HR webhooks with the run's secret (else every case would stop at the signature check)
# and let generated ids be the seeded identities' (or spare credentials') ids part of the time.
IDLC_HR_SECRET="$HR_SECRET" IDLC_KNOWN_IDS="$KNOWN_IDS" IDLC_SPARE_CREDENTIALS="$SPARE_CREDENTIALS" IDLC_CREDENTIAL_ID="$(echo "$TOKEN" | cut -d_ -f2)" SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$ROOT/scripts/schemathesis" \
  timeout 170 "$VENV/bin/schemathesis" run "$URL/docs/openapi.json" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$MAX_EXAMPLES" \
  --seed "$SEED" \
  --request-timeout 20 \
  --no-color \
  "${HEADERS[@]}" "$@" 2>&1 | sed -E -e 's/^=+ (.*[^ =]) =+$/-- \1 --/' -e 's/^(-- .*) in ([0-9.]+m?s) --$/\1, \2 --/'
rc=${PIPESTATUS[0]}
set -e

if grep -qE '"level":"(error|fatal)"' "$LOG"; then
  echo "== server errors"
  grep -E '"level":"(error|fatal)"' "$LOG" | head -50
fi
if [ $rc = 124 ]; then echo "!! schemathesis ran out of its 170 s budget"; fi
echo "== schemathesis: $([ $rc = 0 ] && echo passed || echo "FAILED (exit $rc)"), $(( $(date +%s) - started )) s"
exit $rc
