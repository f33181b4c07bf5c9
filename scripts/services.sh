#!/usr/bin/env bash
# Ensures a MariaDB, a Redis, a RabbitMQ and a NATS server with JetStream for the tests, then
# writes their URLs to .tmp/services.env (read by test/support/services.ts) and prints them.
#
#   bash scripts/services.sh                  # reuse or start the services
#   bash scripts/services.sh --with-chromium  # also install Debian's chromium (browser tests)
#   bash scripts/services.sh --stop           # stop the instances this script started
#
# Idempotent. Servers already answering on 127.0.0.1:3306 (root, no password),
# 127.0.0.1:6379, 127.0.0.1:5672 (AMQP, guest/guest) and 127.0.0.1:4222 (NATS with JetStream)
# are used as they are. Otherwise, on a bare Debian machine (root, no systemd), the packages
# (mariadb-server, redis-server, rabbitmq-server, nats-server) are installed where missing and
# this script starts its own instances, without systemd, on their own ports (MariaDB 3307,
# Redis 6380, RabbitMQ 5673, NATS 4223), with their data
# under $CONVEYOR_SERVICES_DIR (default: $TMPDIR/conveyor-services, shared by every clone so
# a second run finds the instances of the first).
#
# Environment:
#   CONVEYOR_SERVICES_DIR   state dir for the instances this script starts
#   CONVEYOR_MYSQL_PORT     port of its own MariaDB (default 3307)
#   CONVEYOR_REDIS_PORT     port of its own Redis (default 6380)
#   CONVEYOR_AMQP_PORT      port of its own RabbitMQ (default 5673; distribution port +20000)
#   CONVEYOR_NATS_PORT      port of its own NATS server (default 4223)
#   CONVEYOR_SERVICES_OWN=1 skip the system servers on 3306/6379, always use its own
#   CONVEYOR_SERVICES_WAIT  seconds to wait for a server to answer (default 60)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_FILE="$ROOT/.tmp/services.env"
STATE_DIR=${CONVEYOR_SERVICES_DIR:-${TMPDIR:-/tmp}/conveyor-services}
OWN_MYSQL_PORT=${CONVEYOR_MYSQL_PORT:-3307}
OWN_REDIS_PORT=${CONVEYOR_REDIS_PORT:-6380}
OWN_AMQP_PORT=${CONVEYOR_AMQP_PORT:-5673}
OWN_NATS_PORT=${CONVEYOR_NATS_PORT:-4223}
WAIT_SECONDS=${CONVEYOR_SERVICES_WAIT:-60}
HOST=127.0.0.1
DB=test

WITH_CHROMIUM=0
STOP=0
for arg in "$@"; do
  case "$arg" in
    --with-chromium) WITH_CHROMIUM=1 ;;
    --stop) STOP=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "services.sh: unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

log() { echo "services: $*" >&2; }
die() {
  echo "services: error: $*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# --- packages -----------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "need to install $*, but not root; install them or run as root"
  have apt-get || die "need to install $*, but apt-get is not available"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
  # Keep the packages' own init scripts from starting system services: this script starts
  # its own instances. Only if the machine has no policy of its own.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    added_policy=1
  fi
  log "apt-get install $*"
  local rc=0
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null || rc=$?
  [[ $added_policy -eq 0 ]] || rm -f "$policy"
  [[ $rc -eq 0 ]] || die "apt-get install $* failed (exit $rc)"
}

# Waits until "$@" succeeds, at most WAIT_SECONDS; returns 1 on timeout.
wait_for() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# --- MariaDB ------------------------------------------------------------------------------

MYSQL_STATE="$STATE_DIR/mariadb"
MYSQL_SOCKET="$MYSQL_STATE/mysqld.sock"
MYSQL_PID="$MYSQL_STATE/mysqld.pid"

mysql_client() {
  if have mariadb; then echo mariadb; elif have mysql; then echo mysql; else return 1; fi
}

# Runs SQL as root without a password over TCP on the given port.
mysql_tcp() {
  local port=$1 sql=$2 client
  client=$(mysql_client) || return 1
  "$client" --no-defaults --protocol=TCP -h "$HOST" -P "$port" -uroot --connect-timeout=3 \
    -Nse "$sql"
}

# Runs SQL as root over the own instance's socket (unix_socket auth works there as root).
mysql_socket() {
  local client
  client=$(mysql_client) || return 1
  "$client" --no-defaults --socket="$MYSQL_SOCKET" -uroot -Nse "$1"
}

start_own_mysql() {
  have mariadbd || have mysqld || [[ -x /usr/sbin/mariadbd ]] || apt_install mariadb-server
  mysql_client >/dev/null || apt_install mariadb-client
  local server=/usr/sbin/mariadbd
  [[ -x $server ]] || server=$(command -v mariadbd || command -v mysqld || echo /usr/sbin/mysqld)
  local user
  user=$(id -un)

  mkdir -p "$MYSQL_STATE"
  if [[ ! -d $MYSQL_STATE/data/mysql ]]; then
    log "initialising a MariaDB data dir in $MYSQL_STATE/data"
    rm -rf "$MYSQL_STATE/data"
    mariadb-install-db --no-defaults --user="$user" --datadir="$MYSQL_STATE/data" \
      --auth-root-authentication-method=normal --skip-test-db \
      >"$MYSQL_STATE/install.log" 2>&1 ||
      die "mariadb-install-db failed; see $MYSQL_STATE/install.log"
  fi

  log "starting MariaDB on $HOST:$OWN_MYSQL_PORT"
  # setsid + nohup: the server outlives this script and the CI step that ran it.
  setsid nohup "$server" --no-defaults --user="$user" \
    --datadir="$MYSQL_STATE/data" --socket="$MYSQL_SOCKET" --pid-file="$MYSQL_PID" \
    --port="$OWN_MYSQL_PORT" --bind-address="$HOST" --skip-name-resolve \
    --log-error="$MYSQL_STATE/error.log" \
    --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=2 \
    >/dev/null 2>&1 </dev/null &

  if ! wait_for mysql_socket 'SELECT 1'; then
    tail -n 20 "$MYSQL_STATE/error.log" >&2 2>/dev/null || true
    die "MariaDB did not answer on $MYSQL_SOCKET within ${WAIT_SECONDS}s; log: $MYSQL_STATE/error.log"
  fi
  # --skip-name-resolve: TCP clients are matched by address, so root needs an account for
  # 127.0.0.1 (and ::1) with no password, as the tests connect with mysql://root@127.0.0.1.
  mysql_socket "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
    FLUSH PRIVILEGES;" ||
    die "could not grant root@127.0.0.1 on the MariaDB on port $OWN_MYSQL_PORT"
  wait_for mysql_tcp "$OWN_MYSQL_PORT" 'SELECT 1' ||
    die "MariaDB answers on its socket but not on $HOST:$OWN_MYSQL_PORT as root"
}

ensure_mysql() {
  local port
  if [[ ${CONVEYOR_SERVICES_OWN:-0} != 1 ]] && mysql_tcp 3306 'SELECT 1' >/dev/null 2>&1; then
    port=3306
    log "using the MariaDB already on $HOST:3306"
  elif mysql_tcp "$OWN_MYSQL_PORT" 'SELECT 1' >/dev/null 2>&1; then
    port=$OWN_MYSQL_PORT
    log "using the MariaDB already on $HOST:$OWN_MYSQL_PORT"
  else
    start_own_mysql
    port=$OWN_MYSQL_PORT
  fi
  mysql_tcp "$port" "CREATE DATABASE IF NOT EXISTS \`$DB\`" ||
    die "could not create database '$DB' on $HOST:$port"
  MYSQL_PORT=$port
}

# --- Redis --------------------------------------------------------------------------------

REDIS_STATE="$STATE_DIR/redis"

# PING over bash's /dev/tcp: needs no redis-cli, and fails on a server wanting a password.
redis_ping() {
  local port=$1 reply=''
  exec {fd}<>"/dev/tcp/$HOST/$port" || return 1
  printf 'PING\r\n' >&"$fd"
  IFS= read -r -t 3 reply <&"$fd" || true
  exec {fd}>&-
  [[ $reply == +PONG* ]]
}

start_own_redis() {
  have redis-server || apt_install redis-server
  mkdir -p "$REDIS_STATE"
  log "starting Redis on $HOST:$OWN_REDIS_PORT"
  redis-server --port "$OWN_REDIS_PORT" --bind "$HOST" --daemonize yes \
    --save '' --appendonly no --dir "$REDIS_STATE" \
    --pidfile "$REDIS_STATE/redis.pid" --logfile "$REDIS_STATE/redis.log" ||
    die "redis-server failed to start; log: $REDIS_STATE/redis.log"
  if ! wait_for redis_ping "$OWN_REDIS_PORT"; then
    tail -n 20 "$REDIS_STATE/redis.log" >&2 2>/dev/null || true
    die "Redis did not answer on $HOST:$OWN_REDIS_PORT within ${WAIT_SECONDS}s; log: $REDIS_STATE/redis.log"
  fi
}

ensure_redis() {
  if [[ ${CONVEYOR_SERVICES_OWN:-0} != 1 ]] && redis_ping 6379 2>/dev/null; then
    REDIS_PORT=6379
    log "using the Redis already on $HOST:6379"
  elif redis_ping "$OWN_REDIS_PORT" 2>/dev/null; then
    REDIS_PORT=$OWN_REDIS_PORT
    log "using the Redis already on $HOST:$OWN_REDIS_PORT"
  else
    start_own_redis
    REDIS_PORT=$OWN_REDIS_PORT
  fi
}

# --- RabbitMQ -----------------------------------------------------------------------------

AMQP_STATE="$STATE_DIR/rabbitmq"

# Sends the AMQP 0-9-1 protocol header and expects a frame back (Connection.Start is a method
# frame, type 1): needs no client, and fails on anything that is not an AMQP server.
amqp_ping() {
  local port=$1 reply=''
  exec {fd}<>"/dev/tcp/$HOST/$port" || return 1
  printf 'AMQP\x00\x00\x09\x01' >&"$fd"
  reply=$(timeout 3 head -c 1 <&"$fd" | od -An -tx1 | tr -d ' \n') || true
  exec {fd}>&-
  [[ $reply == 01 ]]
}

start_own_rabbitmq() {
  [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || have rabbitmq-server || apt_install rabbitmq-server
  local server=/usr/lib/rabbitmq/bin/rabbitmq-server
  [[ -x $server ]] || server=$(command -v rabbitmq-server)
  mkdir -p "$AMQP_STATE/mnesia" "$AMQP_STATE/log"
  # Debian's wrapper switches to the rabbitmq user; the state dir must be theirs then.
  if id rabbitmq >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then chown -R rabbitmq: "$AMQP_STATE"; fi
  printf 'listeners.tcp.local = %s:%s\nloopback_users.guest = true\n' "$HOST" "$OWN_AMQP_PORT" >"$AMQP_STATE/rabbitmq.conf"
  log "starting RabbitMQ on $HOST:$OWN_AMQP_PORT"
  # -detached: the node outlives this script, as the other services do; no systemd needed.
  env RABBITMQ_NODENAME="conveyor-$OWN_AMQP_PORT@localhost" RABBITMQ_NODE_IP_ADDRESS="$HOST" \
    RABBITMQ_NODE_PORT="$OWN_AMQP_PORT" RABBITMQ_DIST_PORT=$((OWN_AMQP_PORT + 20000)) \
    RABBITMQ_CONFIG_FILE="$AMQP_STATE/rabbitmq.conf" RABBITMQ_MNESIA_BASE="$AMQP_STATE/mnesia" \
    RABBITMQ_LOG_BASE="$AMQP_STATE/log" RABBITMQ_PID_FILE="$AMQP_STATE/rabbitmq.pid" \
    ERL_EPMD_ADDRESS="$HOST" setsid nohup "$server" >"$AMQP_STATE/start.log" 2>&1 </dev/null &
  if ! WAIT_SECONDS=$((WAIT_SECONDS * 2)) wait_for amqp_ping "$OWN_AMQP_PORT"; then
    tail -n 20 "$AMQP_STATE/start.log" >&2 2>/dev/null || true
    die "RabbitMQ did not answer on $HOST:$OWN_AMQP_PORT; logs: $AMQP_STATE/log"
  fi
}

ensure_rabbitmq() {
  if [[ ${CONVEYOR_SERVICES_OWN:-0} != 1 ]] && amqp_ping 5672 2>/dev/null; then
    AMQP_PORT=5672
    log "using the RabbitMQ already on $HOST:5672"
  elif amqp_ping "$OWN_AMQP_PORT" 2>/dev/null; then
    AMQP_PORT=$OWN_AMQP_PORT
    log "using the RabbitMQ already on $HOST:$OWN_AMQP_PORT"
  else
    start_own_rabbitmq
    AMQP_PORT=$OWN_AMQP_PORT
  fi
}

# --- NATS (JetStream) ---------------------------------------------------------------------

NATS_STATE="$STATE_DIR/nats"

# A NATS server greets with an INFO line; JetStream must be on ("jetstream":true).
nats_ping() {
  local port=$1 reply=''
  exec {fd}<>"/dev/tcp/$HOST/$port" || return 1
  IFS= read -r -t 3 reply <&"$fd" || true
  exec {fd}>&-
  [[ $reply == INFO* && $reply == *'"jetstream":true'* ]]
}

start_own_nats() {
  have nats-server || [[ -x /usr/sbin/nats-server ]] || apt_install nats-server
  local server
  server=$(command -v nats-server || echo /usr/sbin/nats-server)
  mkdir -p "$NATS_STATE/data"
  log "starting NATS (JetStream) on $HOST:$OWN_NATS_PORT"
  setsid nohup "$server" -a "$HOST" -p "$OWN_NATS_PORT" -js -sd "$NATS_STATE/data" \
    -P "$NATS_STATE/nats.pid" -l "$NATS_STATE/nats.log" >/dev/null 2>&1 </dev/null &
  if ! wait_for nats_ping "$OWN_NATS_PORT"; then
    tail -n 20 "$NATS_STATE/nats.log" >&2 2>/dev/null || true
    die "NATS did not answer on $HOST:$OWN_NATS_PORT with JetStream; log: $NATS_STATE/nats.log"
  fi
}

ensure_nats() {
  if [[ ${CONVEYOR_SERVICES_OWN:-0} != 1 ]] && nats_ping 4222 2>/dev/null; then
    NATS_PORT=4222
    log "using the NATS server (JetStream) already on $HOST:4222"
  elif nats_ping "$OWN_NATS_PORT" 2>/dev/null; then
    NATS_PORT=$OWN_NATS_PORT
    log "using the NATS server (JetStream) already on $HOST:$OWN_NATS_PORT"
  else
    start_own_nats
    NATS_PORT=$OWN_NATS_PORT
  fi
}

# --- stop ---------------------------------------------------------------------------------

stop_pidfile() {
  local name=$1 pidfile=$2 pid
  if [[ -s $pidfile ]] && pid=$(<"$pidfile") && kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) did not stop within 30s"
  else
    log "$name: not running from $STATE_DIR"
  fi
  return 0
}

if [[ $STOP -eq 1 ]]; then
  stop_pidfile MariaDB "$MYSQL_PID"
  stop_pidfile Redis "$REDIS_STATE/redis.pid"
  stop_pidfile RabbitMQ "$AMQP_STATE/rabbitmq.pid"
  stop_pidfile NATS "$NATS_STATE/nats.pid"
  exit 0
fi

# --- main ---------------------------------------------------------------------------------

ensure_mysql
ensure_redis
ensure_rabbitmq
ensure_nats

CHROMIUM_LINE=''
if [[ $WITH_CHROMIUM -eq 1 ]]; then
  have chromium || apt_install chromium
  CHROMIUM_LINE="CHROMIUM_PATH=$(command -v chromium)"
else
  log "chromium skipped (pass --with-chromium for browser tests)"
fi

mkdir -p "$(dirname "$ENV_FILE")"
{
  echo "TEST_MYSQL_URL=mysql://root@$HOST:$MYSQL_PORT/$DB"
  echo "TEST_REDIS_URL=redis://$HOST:$REDIS_PORT"
  echo "TEST_AMQP_URL=amqp://guest:guest@$HOST:$AMQP_PORT"
  echo "TEST_NATS_URL=nats://$HOST:$NATS_PORT"
  [[ -z $CHROMIUM_LINE ]] || echo "$CHROMIUM_LINE"
} >"$ENV_FILE.new"
mv "$ENV_FILE.new" "$ENV_FILE"

log "wrote ${ENV_FILE#"$ROOT"/}"
cat "$ENV_FILE"
