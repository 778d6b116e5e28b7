# dockerd and a loopback OCI registry for the tests, shared by concurrent runs on this machine.
#
# Each run holds a shared flock on users.lock (fd 8) for its lifetime and takes control.lock
# (fd 9) while it starts or stops services. The last run out (the one that can turn its shared
# lock exclusive) stops both daemons by pid and removes what dockerd leaves behind: the docker0
# and br-* links and the DOCKER* iptables chains and rules. Daemons are started with fds 8 and 9
# closed, so they never hold the locks.

DOCKER_DIR=$ASBX_TEST_DIR/docker
REGISTRY_DIR=$ASBX_TEST_DIR/registry
OWN_DOCKER_HOST=unix://$DOCKER_DIR/docker.sock

services_join() {
  mkdir -p "$ASBX_TEST_DIR"
  exec 8>"$ASBX_TEST_DIR/users.lock" 9>"$ASBX_TEST_DIR/control.lock"
  flock -s 8
  flock -x 9
  ensure_dockerd
  ensure_registry
  flock -u 9
}

services_leave() {
  flock -x 9 2>/dev/null || return 0  # never joined
  if flock -n -x 8; then  # no other run is using the services
    section "teardown: stopping the test dockerd and registry"
    stop_by_pidfile "$REGISTRY_DIR/registry.pid" registry
    if stop_by_pidfile "$DOCKER_DIR/dockerd.pid" dockerd; then
      cleanup_docker_leftovers
    fi
  fi
  flock -u 8
  flock -u 9
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

docker_answers() {
  DOCKER_HOST=$1 timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

ensure_dockerd() {
  if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "$OWN_DOCKER_HOST" ]; then
    docker_answers "$DOCKER_HOST" && { info "dockerd: using DOCKER_HOST=$DOCKER_HOST"; return 0; }
    need "DOCKER_HOST=$DOCKER_HOST does not answer"
    return 0
  fi
  if docker_answers "$OWN_DOCKER_HOST"; then
    info "dockerd: reusing the test daemon ($OWN_DOCKER_HOST)"
  elif docker_answers unix:///var/run/docker.sock; then
    info "dockerd: using the system daemon (/var/run/docker.sock)"
    export DOCKER_HOST=unix:///var/run/docker.sock
    return 0
  else
    start_dockerd || return 0
  fi
  export DOCKER_HOST=$OWN_DOCKER_HOST
}

start_dockerd() {
  command -v dockerd >/dev/null 2>&1 || { need "dockerd is not installed (docker.io)"; return 1; }
  is_root || { need "dockerd needs root"; return 1; }
  local pidfile=$DOCKER_DIR/dockerd.pid
  alive "$(cat "$pidfile" 2>/dev/null)" && stop_by_pidfile "$pidfile" "unresponsive dockerd"
  rm -f "$pidfile"
  mkdir -p "$DOCKER_DIR/data" "$DOCKER_DIR/exec"
  info "dockerd: starting (data in $DOCKER_DIR, log in $DOCKER_DIR/dockerd.log)"
  setsid dockerd --data-root "$DOCKER_DIR/data" --exec-root "$DOCKER_DIR/exec" \
    --pidfile "$pidfile" -H "$OWN_DOCKER_HOST" --storage-driver overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs \
    >>"$DOCKER_DIR/dockerd.log" 2>&1 </dev/null 8>&- 9>&- &
  local started=$SECONDS
  if await 60 "$DOCKER_DIR/dockerd.log" docker_answers "$OWN_DOCKER_HOST"; then
    info "dockerd: ready after $((SECONDS - started))s"
    return 0
  fi
  need "dockerd did not start within 60s"
  return 1
}

# Run `command...` every 0.2s until it succeeds, for up to $1 seconds; then show the log $2.
await() {
  local seconds=$1 log=$2 i
  shift 2
  for i in $(seq 1 $((seconds * 5))); do
    "$@" && return 0
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  return 1
}

port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_registry() {
  command -v docker-registry >/dev/null 2>&1 || { need "docker-registry is not installed"; return 0; }
  local pidfile=$REGISTRY_DIR/registry.pid port
  port=$(cat "$REGISTRY_DIR/port" 2>/dev/null || true)
  if alive "$(cat "$pidfile" 2>/dev/null)" && [ -n "$port" ] && port_answers "$port"; then
    info "registry: reusing 127.0.0.1:$port"
  else
    stop_by_pidfile "$pidfile" registry
    port=$(free_port)
    start_registry "$port" || return 0
  fi
  export ASBX_TEST_REGISTRY=127.0.0.1:$port
  # podman talks plain HTTP to this registry only (dockerd trusts 127.0.0.0/8 by itself).
  printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$ASBX_TEST_REGISTRY" \
    >"$ASBX_TEST_DIR/registries.conf"
  export CONTAINERS_REGISTRIES_CONF=$ASBX_TEST_DIR/registries.conf
}

start_registry() {
  local port=$1 config=$REGISTRY_DIR/config.yml
  mkdir -p "$REGISTRY_DIR/storage"
  cat >"$config" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $REGISTRY_DIR/storage}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
YAML
  setsid docker-registry serve "$config" >>"$REGISTRY_DIR/registry.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$REGISTRY_DIR/registry.pid"
  echo "$port" >"$REGISTRY_DIR/port"
  if await 10 "$REGISTRY_DIR/registry.log" port_answers "$port"; then
    info "registry: 127.0.0.1:$port (pid $(cat "$REGISTRY_DIR/registry.pid"))"
    return 0
  fi
  need "docker-registry did not start within 10s"
  return 1
}

# Stop the daemon whose pid is in $1 (TERM, then KILL after 20s); true if one was running.
stop_by_pidfile() {
  local pidfile=$1 what=$2 pid i
  pid=$(cat "$pidfile" 2>/dev/null || true)
  alive "$pid" || { rm -f "$pidfile"; return 1; }
  info "stopping $what (pid $pid)"
  kill -TERM "$pid"
  for i in $(seq 1 100); do
    alive "$pid" || break
    sleep 0.2
  done
  alive "$pid" && kill -KILL "$pid"
  rm -f "$pidfile"
  return 0
}

# dockerd leaves its bridges and iptables chains behind; remove them unless another dockerd runs.
cleanup_docker_leftovers() {
  if pgrep -x dockerd >/dev/null 2>&1; then
    info "another dockerd is running: leaving links and iptables as they are"
    return 0
  fi
  local link table line chain
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $link == docker0 || $link =~ ^br-[0-9a-f]{12}$ ]] && ip link delete "$link" 2>/dev/null
  done
  command -v iptables >/dev/null 2>&1 || return 0
  for table in filter nat; do
    iptables -t "$table" -S 2>/dev/null | grep -E '^-A ' | grep -vE '^-A DOCKER' \
      | grep -E 'DOCKER|docker0|br-[0-9a-f]{12}' | while read -r -a line; do
        line[0]=-D
        iptables -t "$table" "${line[@]}" 2>/dev/null || true
      done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^DOCKER/ {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  info "removed docker0, br-* links and DOCKER* iptables chains"
}
