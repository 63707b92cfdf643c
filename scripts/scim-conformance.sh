#!/usr/bin/env bash
# External SCIM 2.0 conformance: runs scim2-tester (through scim2-cli) and scim-sanity against the
# real server, built from this tree, on a temporary SQLite data directory. Exits non-zero if any
# check fails. Usage: bash scripts/scim-conformance.sh   (SKIP_BUILD=1 to reuse dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCIM2_TESTER_VERSION=0.5.2
SCIM2_CLI_VERSION=0.6.0
SCIM_SANITY_VERSION=0.7.4
VENV="$ROOT/.cache/scim-venv"
started=$(date +%s)

installed=$("$VENV/bin/pip" show scim2-tester 2>/dev/null | sed -n 's/^Version: //p' || true)
if [ ! -x "$VENV/bin/scim2" ] || [ "$installed" != "$SCIM2_TESTER_VERSION" ]; then
  echo "== installing scim2-tester $SCIM2_TESTER_VERSION, scim2-cli $SCIM2_CLI_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "scim2-tester==$SCIM2_TESTER_VERSION" "scim2-cli==$SCIM2_CLI_VERSION"
fi
SANITY=1
if [ "$("$VENV/bin/pip" show scim-sanity 2>/dev/null | sed -n 's/^Version: //p' || true)" != "$SCIM_SANITY_VERSION" ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "scim-sanity==$SCIM_SANITY_VERSION" || { echo "!! scim-sanity did not install: skipped"; SANITY=0; }
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building"
  npm run build --silent
fi

# shellcheck source=lib/api-server.sh
source scripts/lib/api-server.sh
TOKEN="scim-conformance-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

start_api SCIM_TOKENS="$TOKEN"
URL="$URL/scim/v2"

failed=0
echo "== scim2-tester $SCIM2_TESTER_VERSION (scim2 test)"
set +e
"$VENV/bin/scim2" --url "$URL" --header "Authorization: Bearer $TOKEN" test >"$DATA_DIR/scim2.out" 2>&1
rc=$?
set -e
cat "$DATA_DIR/scim2.out"
total=$(grep -cE '^(SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED)\b' "$DATA_DIR/scim2.out" || true)
bad=$(grep -cE '^(ERROR|CRITICAL)\b' "$DATA_DIR/scim2.out" || true)
echo "-- scim2-tester: $total checks, $bad failed (exit $rc)"
if [ "$rc" -ne 0 ] || [ "$bad" -ne 0 ] || [ "$total" -eq 0 ]; then failed=1; fi

if [ "$SANITY" = 1 ]; then
  echo "== scim-sanity $SCIM_SANITY_VERSION (probe)"
  set +e
  "$VENV/bin/scim-sanity" probe "$URL" --token "$TOKEN" --i-accept-side-effects >"$DATA_DIR/sanity.out" 2>&1
  rc=$?
  set -e
  cat "$DATA_DIR/sanity.out"
  echo "-- scim-sanity: exit $rc"
  if [ "$rc" -ne 0 ]; then failed=1; fi
fi

if grep -qiE 'error|exception' "$LOG"; then
  echo "== server log"
  cat "$LOG"
fi
echo "== SCIM conformance: $([ $failed = 0 ] && echo passed || echo FAILED), $(( $(date +%s) - started )) s"
exit $failed
