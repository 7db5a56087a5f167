#!/usr/bin/env bash
# Debian's PgBouncer in transaction mode in front of the local PostgreSQL, for the tests.
#   eval "$(.ci/pgbouncer.sh)"          start it; prints the exports below
#   .ci/pgbouncer.sh stop PIDFILE       stop the one started (its pid file is exported)
# Its configuration is generated in a temporary folder: loopback only, a free port, trust auth,
# pool_mode = transaction, every database name passed through to PostgreSQL (the suite behind
# it makes a database per migrated set of modules), and at most 40 server connections.
set -euo pipefail
upstream_port=${PGBOUNCER_UPSTREAM_PORT:-5432}

if [ "${1:-}" = stop ]; then
  pidfile=${2:?the pid file to stop}
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  exit 0
fi

if ! command -v pgbouncer >/dev/null 2>&1; then
  echo "pgbouncer.sh: installing PgBouncer from Debian's packages" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) >/dev/null 2>&1 \
    || { echo "pgbouncer.sh: PgBouncer could not be installed" >&2; exit 1; }
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=6432
while port_open "$port"; do port=$((port + 1)); done

dir=$(mktemp -d /tmp/ngo-kit-pgbouncer.XXXXXX)
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$upstream_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
max_user_connections = 40
server_idle_timeout = 15
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
echo '"postgres" ""' >"$dir/userlist.txt"

# PgBouncer refuses to run as root: it runs as the postgres user, which must read its folder.
as_user=()
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$dir"
  as_user=(-u postgres)
fi
pgbouncer -d -q "${as_user[@]}" "$dir/pgbouncer.ini"
for _ in $(seq 1 30); do port_open "$port" && break; sleep 0.2; done
if ! port_open "$port"; then
  echo "pgbouncer.sh: PgBouncer did not start; see $dir/pgbouncer.log" >&2
  exit 1
fi
echo "export NGO_KIT_TEST_PGBOUNCER_URL=postgresql+psycopg://postgres@127.0.0.1:$port/test"
echo "export NGO_KIT_PGBOUNCER_PIDFILE=$dir/pgbouncer.pid"
