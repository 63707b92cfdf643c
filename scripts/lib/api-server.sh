# Sourced by the scripts that point an external tester at the built API server: a temporary data
# directory (DATA_DIR), a free port (PORT, URL), the server's log (LOG), a trap that stops the server
# and removes the directory, and start_api to start it and wait until it is ready.
DATA_DIR=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
URL="http://127.0.0.1:$PORT"
LOG="$DATA_DIR/server.log"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$DATA_DIR"
}
trap cleanup EXIT

# start_api [NAME=value ...]: the built API on 127.0.0.1:$PORT over embedded SQLite in $DATA_DIR, with
# these settings on top; returns once /ready answers, exits with the log if the server dies or never does.
start_api() {
  echo "== starting the server on 127.0.0.1:$PORT (data in $DATA_DIR)"
  env DATA_DIR="$DATA_DIR" PORT="$PORT" HOST=127.0.0.1 EVENT_STORE=sqlite KAFKA_BROKERS= LOG_LEVEL=warn "$@" \
    node dist/apps/api/src/main.js >"$LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    if curl -fsS "$URL/ready" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "!! the server exited:"; cat "$LOG"; exit 1; fi
    sleep 0.2
  done
  echo "!! the server was not ready after 30 s:"
  cat "$LOG"
  exit 1
}
