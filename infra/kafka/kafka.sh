#!/usr/bin/env bash
# Install, start, stop and check a real single-node Apache Kafka 4.1 broker (KRaft) on
# 127.0.0.1:9092, from Maven Central jars (no tarball, no Docker). Idempotent.
#   infra/kafka/kafka.sh install|start|stop|status|reset
# Settings (env): SCALPFLOW_CACHE (default ~/.cache/scalpflow), KAFKA_PORT (9092),
# KAFKA_CONTROLLER_PORT (9093), KAFKA_PARTITIONS (default partitions, 3), KAFKA_HEAP (512m),
# SCALPFLOW_PYTHON (python with confluent-kafka for the admin round-trip check),
# KAFKA_DATA_DIR / KAFKA_RUN_DIR (log dirs; pid, log and config) for a second, private broker
# beside the shared one (tests that stop a broker), sharing the installed jars.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
kafka_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
cache="${SCALPFLOW_CACHE:-$HOME/.cache/scalpflow}"
home="$cache/kafka-$kafka_version"
lib="$home/lib"
data="${KAFKA_DATA_DIR:-$cache/kafka-data}"
run="${KAFKA_RUN_DIR:-$cache/run}"
pidfile="$run/kafka.pid"
logfile="$run/kafka.log"
port="${KAFKA_PORT:-9092}"
cport="${KAFKA_CONTROLLER_PORT:-9093}"
partitions="${KAFKA_PARTITIONS:-3}"
heap="${KAFKA_HEAP:-512m}"
python="${SCALPFLOW_PYTHON:-$repo/.venv/bin/python}"

say() { printf '[kafka] %s\n' "$*" >&2; }
die() { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

need_java() {
  command -v java >/dev/null 2>&1 || die "Java 17+ is required (apt-get install -y openjdk-17-jre-headless)."
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  [ -n "$v" ] && [ "$v" -ge 17 ] || die "Java 17+ is required; found '$(java -version 2>&1 | head -1)'."
}

need_maven() {
  command -v mvn >/dev/null 2>&1 || die "Maven is required to fetch the Kafka jars from Maven Central (apt-get install -y maven)."
}

install() {
  need_java
  if [ -f "$lib/.complete" ]; then return 0; fi
  need_maven
  say "installing Apache Kafka $kafka_version jars from Maven Central into $lib"
  rm -rf "$lib"; mkdir -p "$lib"
  (cd "$here" && mvn -B -q -f pom.xml dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib") || die "maven could not fetch the Kafka jars"
  ls "$lib"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing after install"
  touch "$lib/.complete"
  say "installed $(ls "$lib" | wc -l) jars"
}

is_running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  mkdir -p "$data" "$run"
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=$partitions
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
auto.create.topics.enable=true
# Record timestamps are event (market) time, so a replayed or synthetic session can be days
# old or dated ahead: keep data until deleted, and accept any timestamp (DESIGN invariant 9).
log.retention.ms=-1
log.message.timestamp.after.max.ms=9223372036854775807
log.message.timestamp.before.max.ms=9223372036854775807
PROPS
}

format_storage() {
  if [ -f "$data/meta.properties" ]; then return 0; fi
  local uuid
  uuid="$(java -Dlog4j2.configurationFile="$here/log4j2-tools.properties" -cp "$lib/*" kafka.tools.StorageTool random-uuid)"
  say "formatting $data (cluster $uuid)"
  java -Dlog4j2.configurationFile="$here/log4j2-tools.properties" -cp "$lib/*" \
    kafka.tools.StorageTool format --standalone -t "$uuid" -c "$run/server.properties" >/dev/null
}

admin_roundtrip() {
  if [ -x "$python" ] && "$python" -c 'import confluent_kafka' 2>/dev/null; then
    "$python" - "$port" <<'PY' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}"}).list_topics(timeout=5)
PY
  else
    port_open "$port"
  fi
}

launch() {
  write_config
  format_storage
  : > "$logfile"
  nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$here/log4j2-broker.properties" \
    -cp "$lib/*" kafka.Kafka "$run/server.properties" >>"$logfile" 2>&1 &
  echo $! > "$pidfile"
}

wait_ready() {
  local deadline=$((SECONDS + ${1:-90}))
  while [ $SECONDS -lt $deadline ]; do
    is_running || return 1
    if grep -q "Kafka Server started" "$logfile" 2>/dev/null && port_open "$port" && admin_roundtrip; then
      return 0
    fi
    sleep 1
  done
  return 1
}

start() {
  install
  if is_running && admin_roundtrip; then say "already running (pid $(cat "$pidfile")) on 127.0.0.1:$port"; return 0; fi
  if ! is_running && port_open "$port"; then
    admin_roundtrip && { say "a broker not started by this script already answers on 127.0.0.1:$port; using it"; return 0; }
    die "port $port is taken by something that is not a Kafka broker"
  fi
  for attempt in 1 2; do
    say "starting broker (attempt $attempt), log: $logfile"
    launch
    if wait_ready 90; then say "ready on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
    say "not ready; last log lines:"; tail -n 20 "$logfile" >&2 || true
    stop_quiet
  done
  die "broker did not become ready; see $logfile"
}

stop_quiet() {
  is_running || { rm -f "$pidfile"; return 0; }
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pid" 2>/dev/null && { say "SIGTERM ignored for 30 s, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$pidfile"
}

stop() { if is_running; then say "stopping (pid $(cat "$pidfile"))"; stop_quiet; say "stopped"; else say "not running"; fi; }

status() {
  if is_running && admin_roundtrip; then say "running (pid $(cat "$pidfile")) on 127.0.0.1:$port, data $data"; return 0; fi
  if is_running; then say "process up (pid $(cat "$pidfile")) but not answering on $port"; return 2; fi
  say "not running"; return 1
}

reset() { stop; say "removing $data"; rm -rf "$data"; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) reset ;;
  *) echo "usage: $0 install|start|stop|status|reset" >&2; exit 64 ;;
esac
