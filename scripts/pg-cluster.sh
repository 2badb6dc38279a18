#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suites, on loopback only.
#
#   scripts/pg-cluster.sh start   initdb + start on a free 127.0.0.1 port; prints the URL
#   scripts/pg-cluster.sh stop    stop it and delete its data directory
#   scripts/pg-cluster.sh env     print `export OPENMSI_TEST_POSTGRES_URL=...` (for eval)
#   scripts/pg-cluster.sh url     print the URL
#
# State lives in $OPENMSI_PG_STATE (default /tmp/openmsi-pg): `url`, `dir` (the cluster's temp dir), `bindir`.
# The cluster uses trust authentication for the `postgres` superuser, listens on 127.0.0.1 only, keeps its
# unix socket inside its temp dir and runs with fsync on (the default). initdb and pg_ctl refuse to run as
# root, so when we are root they run as the `postgres` OS user.
set -euo pipefail

STATE="${OPENMSI_PG_STATE:-/tmp/openmsi-pg}"

log() { printf 'pg-cluster: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Runs a command as the cluster owner.
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u postgres -- "$@"
  else
    su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  fi
}

# The directory holding initdb/pg_ctl/postgres, installing PostgreSQL when there is none.
find_bindir() {
  local dir=""
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir 2>/dev/null || true)"
  fi
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    # Debian's /usr/bin/pg_config may belong to libpq-dev and name /usr/bin; the server lives elsewhere.
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  fi
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    printf '%s\n' "$dir"
    return 0
  fi
  return 1
}

ensure_postgres() {
  local dir
  if dir="$(find_bindir)"; then printf '%s\n' "$dir"; return 0; fi
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL server binaries not found (need initdb and pg_ctl); install the postgresql package"
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL server binaries not found and apt-get is unavailable"
  log "installing postgresql"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2; then
    DEBIAN_FRONTEND=noninteractive apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
  fi
  dir="$(find_bindir)" || die "postgresql installed but initdb/pg_ctl still not found"
  printf '%s\n' "$dir"
}

free_port() {
  node -e '
    const s = require("node:net").createServer();
    s.listen(0, "127.0.0.1", () => { process.stdout.write(String(s.address().port)); s.close(); });
  '
}

is_running() {
  [ -f "$STATE/dir" ] && [ -f "$STATE/bindir" ] || return 1
  local dir bindir
  dir="$(cat "$STATE/dir")"
  bindir="$(cat "$STATE/bindir")"
  [ -d "$dir/data" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

cmd_start() {
  if is_running; then
    log "already running"
    cat "$STATE/url"
    return 0
  fi
  # Leftovers of a cluster that died: clear them.
  [ -d "$STATE" ] && cmd_stop >/dev/null 2>&1 || true

  local bindir dir port url
  bindir="$(ensure_postgres)"
  if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null || die "no 'postgres' OS user to run the cluster as"
  fi

  # On the RAM disk when there is one (a throwaway cluster: its fsyncs on ext4 made every PostgreSQL-backed test
  # wait on the disk), else under /tmp; not $TMPDIR: the postgres user must be able to reach it.
  local parent=/tmp
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then parent=/dev/shm; fi
  dir="$(mktemp -d "$parent/openmsi-pg.XXXXXX")"
  chmod 700 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  mkdir -p "$STATE"
  printf '%s\n' "$dir" >"$STATE/dir"
  printf '%s\n' "$bindir" >"$STATE/bindir"

  log "initdb in $dir/data ($bindir)"
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }

  local attempt
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=on -c max_connections=200" \
      start >&2; then
      url="postgres://postgres@127.0.0.1:$port/postgres"
      printf '%s\n' "$url" >"$STATE/url"
      log "running at $url"
      printf '%s\n' "$url"
      return 0
    fi
    log "start on port $port failed (attempt $attempt); see $dir/server.log"
    tail -n 5 "$dir/server.log" >&2 || true
  done
  die "could not start the cluster"
}

cmd_stop() {
  if [ ! -d "$STATE" ]; then
    log "not running"
    return 0
  fi
  local dir="" bindir=""
  [ -f "$STATE/dir" ] && dir="$(cat "$STATE/dir")"
  [ -f "$STATE/bindir" ] && bindir="$(cat "$STATE/bindir")"
  if [ -n "$dir" ] && [ -n "$bindir" ] && [ -d "$dir/data" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2 || log "pg_ctl stop failed (already stopped?)"
  fi
  # Only ever remove a directory this script made.
  case "$dir" in
    */openmsi-pg.*) rm -rf -- "$dir" ;;
    "") ;;
    *) log "not removing unexpected directory $dir" ;;
  esac
  rm -f -- "$STATE/url" "$STATE/dir" "$STATE/bindir"
  rmdir -- "$STATE" 2>/dev/null || true
  log "stopped"
}

cmd_url() {
  [ -f "$STATE/url" ] || die "no cluster running (run: $0 start)"
  cat "$STATE/url"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  url) cmd_url ;;
  env) printf 'export OPENMSI_TEST_POSTGRES_URL=%q\n' "$(cmd_url)" ;;
  *)
    printf 'usage: %s start|stop|env|url\n' "$0" >&2
    exit 2
    ;;
esac
