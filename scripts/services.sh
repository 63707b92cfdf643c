#!/usr/bin/env bash
# Local services for the integration and contract suites: a private PostgreSQL cluster and, when
# scripts/kafka/broker.sh exists, the Kafka broker.
#
#   scripts/services.sh up       install PostgreSQL if missing (Debian packages), create the cluster
#                                (first time), start it, wait until ready, create the role and database;
#                                then scripts/kafka/broker.sh up (its failure fails `up`)
#   scripts/services.sh down     stop both; idempotent
#   scripts/services.sh status   print each service's state; exit 1 unless all are running
#   scripts/services.sh env      print DATABASE_URL=postgres://... (and the broker's variables)
#
# The cluster lives in <repo>/.services/postgres (git-ignored): data/ (PGDATA), run/ (its unix
# socket), postgres.log. It listens on 127.0.0.1:${IDLC_PG_PORT:-54329} only, trusts local
# connections (a throw-away test cluster: never expose it), and has a database idlc_test owned by the
# role idlc (password idlc). Delete .services/postgres to start from scratch.
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` OS user (created by
# the Debian package) and the directory is chowned to it.
#
# Usage: eval "$(scripts/services.sh env | sed 's/^/export /')"
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
KAFKA="$SCRIPT_DIR/kafka/broker.sh"

PG_HOST=127.0.0.1
PG_PORT="${IDLC_PG_PORT:-54329}"
PG_DB=idlc_test
PG_USER=idlc
PG_PASSWORD=idlc
PG_UP_TIMEOUT="${IDLC_PG_UP_TIMEOUT:-60}"

BASE="$REPO_ROOT/.services/postgres"
DATA="$BASE/data"
SOCK="$BASE/run"
LOG="$BASE/postgres.log"
LOCK="$REPO_ROOT/.services/.postgres.lock"

log() { printf 'postgres: %s\n' "$*" >&2; }
die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }

database_url() { printf 'postgres://%s:%s@%s:%s/%s' "$PG_USER" "$PG_PASSWORD" "$PG_HOST" "$PG_PORT" "$PG_DB"; }

# --- binaries ----------------------------------------------------------------------------------

BIN=""
find_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" ]]; then BIN="$d"; return 0; fi
  fi
  # Newest installed major version first.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then BIN="$d"; return 0; fi
  done
  return 1
}

ensure_installed() {
  find_bindir && return 0
  [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed and we are not root: apt-get install postgresql"
  log "installing PostgreSQL from the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  find_bindir || die "postgresql installed but initdb/pg_ctl not found (pg_config --bindir, /usr/lib/postgresql/*/bin)"
}

# --- running as the cluster's owner ------------------------------------------------------------

OWNER=""
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u "$OWNER" -- "$@"
  else
    "$@"
  fi
}

setup_owner() {
  if [[ "$(id -u)" != 0 ]]; then OWNER="$(id -un)"; return 0; fi
  OWNER=postgres
  if ! id -u "$OWNER" >/dev/null 2>&1; then
    # The Debian package creates it; create it ourselves if some other install did not.
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$OWNER" \
      || die "cannot create the '$OWNER' OS user"
  fi
}

# The owner must be able to reach BASE: give ancestors that lack it the search bit (x) only.
ensure_reachable() {
  [[ "$(id -u)" == 0 ]] || return 0
  if as_owner test -x "$BASE" 2>/dev/null && as_owner test -w "$BASE" 2>/dev/null; then return 0; fi
  local d="$BASE"
  while [[ "$d" != "/" ]]; do
    d="$(dirname -- "$d")"
    if ! as_owner test -x "$d" 2>/dev/null; then
      log "granting o+x on $d so '$OWNER' can reach the cluster directory"
      chmod o+x "$d"
    fi
  done
}

prepare_dirs() {
  mkdir -p "$BASE" "$SOCK"
  if [[ "$(id -u)" == 0 ]]; then
    # Survives a cluster directory restored or created by root: hand it (back) to the owner.
    if [[ "$(stat -c %U "$BASE")" != "$OWNER" || ( -d "$DATA" && "$(stat -c %U "$DATA")" != "$OWNER" ) ]]; then
      chown -R "$OWNER:" "$BASE"
    fi
    chown "$OWNER:" "$SOCK"
    touch "$LOG" && chown "$OWNER:" "$LOG"
  fi
  ensure_reachable
  [[ -d "$DATA" ]] && chmod 700 "$DATA"
  return 0
}

# --- cluster -----------------------------------------------------------------------------------

pg_running() {
  [[ -f "$DATA/postmaster.pid" ]] || return 1
  local pid
  pid="$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DATA"
}

pg_ready() { "$BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1; }

init_cluster() {
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  if [[ -d "$DATA" ]] && [[ -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
    die "$DATA exists but holds no cluster (no PG_VERSION): delete it and run up again"
  fi
  log "creating a cluster in $DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >>"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; die "initdb failed (log: $LOG)"; }
}

start_cluster() {
  if pg_running; then
    log "already running (pid $(head -n1 "$DATA/postmaster.pid"))"
  else
    # A postmaster.pid left by a dead server (machine restored, kill -9) would block the start.
    # So would the lock of its socket (its pid may linger as a zombie where nothing reaps orphans).
    if [[ -f "$DATA/postmaster.pid" ]]; then
      log "removing stale $DATA/postmaster.pid"
      rm -f "$DATA/postmaster.pid"
    fi
    rm -f "$SOCK/.s.PGSQL.$PG_PORT" "$SOCK/.s.PGSQL.$PG_PORT.lock"
    log "starting on $PG_HOST:$PG_PORT (log: $LOG)"
    local opts="-c listen_addresses=$PG_HOST -c port=$PG_PORT -c unix_socket_directories=$SOCK"
    opts+=" -c max_connections=200 -c shared_buffers=128MB -c synchronous_commit=off"
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -o "$opts" -w -t "$PG_UP_TIMEOUT" start >/dev/null \
      || { tail -n 30 "$LOG" >&2; die "pg_ctl start failed (log: $LOG)"; }
  fi
  local i
  for ((i = 0; i < PG_UP_TIMEOUT * 4; i++)); do
    pg_ready && return 0
    sleep 0.25
  done
  tail -n 30 "$LOG" >&2
  die "not ready on $PG_HOST:$PG_PORT after ${PG_UP_TIMEOUT}s (log: $LOG)"
}

psql_admin() {
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PG_PORT" -U postgres "$@"
}

ensure_database() {
  if [[ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != 1 ]]; then
    log "creating role $PG_USER"
    psql_admin -d postgres -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
  fi
  if [[ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
    log "creating database $PG_DB"
    psql_admin -d postgres -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
}

pg_up() {
  ensure_installed
  setup_owner
  mkdir -p "$REPO_ROOT/.services"
  exec 9>"$LOCK"
  flock -w 120 9 || die "another services.sh holds $LOCK"
  prepare_dirs
  init_cluster
  start_cluster
  ensure_database
  flock -u 9
  log "ready: $(database_url)"
}

pg_down() {
  if ! find_bindir; then log "not installed"; return 0; fi
  setup_owner
  if pg_running; then
    log "stopping"
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  else
    log "not running"
  fi
}

pg_status() {
  if find_bindir && pg_running && pg_ready; then
    printf 'postgres: running on %s:%s (%s)\n' "$PG_HOST" "$PG_PORT" "$DATA"
    return 0
  fi
  printf 'postgres: not running\n'
  return 1
}

# --- entry point -------------------------------------------------------------------------------

has_kafka() { [[ -f "$KAFKA" ]]; }

cmd_up() {
  pg_up
  if has_kafka; then bash "$KAFKA" up; fi
}

cmd_down() {
  local rc=0
  if has_kafka; then bash "$KAFKA" down || rc=$?; fi
  pg_down || rc=$?
  return "$rc"
}

cmd_status() {
  local rc=0
  pg_status || rc=1
  if has_kafka; then bash "$KAFKA" status || rc=1; fi
  return "$rc"
}

cmd_env() {
  printf 'DATABASE_URL=%s\n' "$(database_url)"
  if has_kafka; then bash "$KAFKA" env; fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    printf 'usage: %s up|down|status|env\n' "$0" >&2
    exit 2
    ;;
esac
