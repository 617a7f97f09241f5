#!/usr/bin/env bash
# Builds the chatd image and runs it as a new user would, with Debian's podman:
#   1. installs podman and its helpers, configures runc and the ulimits, and
#      makes the base images locally (scripts/container/bases.sh: no registry);
#   2. builds the image from the Dockerfile (timed; cached on a second run);
#   3. the Dockerfile header's two containers: chat-server, then chat-gateway
#      as a second container; an API key made with the admin key; REST with
#      curl and gRPC with buf curl (a client this project did not write) on the
#      published ports, the same session through both; then the server
#      container replaced while a prober calls the gateway: the outage;
#   4. docker-compose.yml's layout with plain `podman run` (podman-compose
#      1.0.3 has no health-check conditions without systemd): PostgreSQL, two
#      replicas, the gateway with --backend=replica-a:50051,replica-b:50051; a
#      session continued across replicas; replica-a replaced (no call may
#      fail), then replica-b removed: the gateway must follow replica-a's new
#      address;
#   5. prints the figures and removes every container, network and volume it
#      made (they carry the label chatd-check). The base images and the chatd
#      image stay for the next run unless --clean is given.
# Every wait polls for an event (a port answering, health SERVING) under a
# deadline; the whole run is bounded by CHECK_TIMEOUT (default 60 minutes).
# Only 127.0.0.1 ports are published (CHECK_PORT_BASE, default 18000..18152).
#
#   scripts/container-check.sh [--clean] [--no-cache] [--rebuild-bases]
set -euo pipefail
cd "$(dirname "$0")/.."

clean=0 no_cache=() rebuild_bases=()
for arg in "$@"; do
  case "$arg" in
    --clean) clean=1 ;;
    --no-cache) no_cache=(--no-cache) ;;
    --rebuild-bases) rebuild_bases=(--rebuild) ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

# The whole run under one deadline: re-run under timeout(1) once.
if [[ -z "${CHATD_CHECK_BOUNDED:-}" ]]; then
  export CHATD_CHECK_BOUNDED=1
  exec timeout -k 30 "${CHECK_TIMEOUT:-3600}" "$0" "$@"
fi

SECONDS=0
# podman rm and network rm say "failed to connect to syslog" here (no syslog
# daemon in this container); nothing else of podman's stderr is dropped.
podman() { command podman "$@" 2> >(grep -v '^failed to connect to syslog' >&2); }
log() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
label=chatd-check

# ---------------------------------------------------------------- 1. setup
# What a fresh Debian 12 needs: podman with runc (crun cannot raise the
# ulimits here), netavark + aardvark-dns (container names in DNS) with
# iptables, which netavark runs for every network (only recommended by
# Debian's podman, so absent with --no-install-recommends: "netavark: No
# such file or directory"), debootstrap for the bases, podman-compose to
# read the compose file, curl, and Node for buf (tests/package.json).
packages=(podman runc netavark aardvark-dns iptables uidmap slirp4netns
  fuse-overlayfs debootstrap podman-compose curl ca-certificates)
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo_cmd=""
[[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# runc, fixed ulimits (the defaults would be the host's hard limits, which
# runc then fails to apply in a nested container) and netavark's DNS.
if [[ $(id -u) -eq 0 ]]; then
  conf_dir=/etc/containers/containers.conf.d
else
  conf_dir="${XDG_CONFIG_HOME:-$HOME/.config}/containers/containers.conf.d"
fi
conf="$conf_dir/50-chatd.conf"
want_conf='[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"'
if [[ "$(cat "$conf" 2>/dev/null)" != "$want_conf" ]]; then
  log "writing $conf (runc, ulimits, netavark)"
  mkdir -p "$conf_dir"
  printf '%s\n' "$want_conf" >"$conf"
fi

buf=tests/node_modules/.bin/buf
if [[ ! -x "$buf" ]]; then
  log "installing the test tools (npm ci in tests/) for buf"
  (cd tests && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# ------------------------------------------------- cleanup, on every exit
# What this script starts carries the label chatd-check; what podman-compose
# starts, its project label. -v: the images' VOLUMEs make anonymous volumes.
labels=("$label" io.podman.compose.project=chatd-check-compose)
clean_up() {
  local ids l
  for l in "${labels[@]}"; do
    ids=$(podman ps -aq --filter "label=$l" 2>/dev/null || true)
    [[ -z "$ids" ]] || podman rm -f -v -t 2 $ids >/dev/null 2>&1 || true
    ids=$(podman network ls -q --filter "label=$l" 2>/dev/null || true)
    [[ -z "$ids" ]] || podman network rm -f $ids >/dev/null 2>&1 || true
    ids=$(podman volume ls -q --filter "label=$l" 2>/dev/null || true)
    [[ -z "$ids" ]] || podman volume rm -f $ids >/dev/null 2>&1 || true
  done
}
on_exit() {
  local rc=$?
  [[ -n "${prober_pid:-}" ]] && kill "$prober_pid" 2>/dev/null
  if ((rc != 0)); then
    for c in $(for l in "${labels[@]}"; do podman ps -a --filter "label=$l" --format '{{.Names}}'; done 2>/dev/null); do
      echo "--- last lines of $c ($(podman inspect -f '{{.State.Status}} exit {{.State.ExitCode}}' "$c" 2>/dev/null))" >&2
      podman logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2
    done
  fi
  clean_up
  if ((clean)); then
    podman rmi -f chatd postgres:15 docker.io/library/postgres:15 debian:bookworm \
      docker.io/library/debian:bookworm debian:bookworm-slim \
      docker.io/library/debian:bookworm-slim >/dev/null 2>&1 || true
    echo "removed the chatd, postgres:15 and debian base images"
  fi
  rm -rf "${tmp:-/nonexistent-chatd-check}"
  ((rc == 0)) || echo "container check FAILED (exit $rc) after ${SECONDS}s" >&2
}
trap on_exit EXIT
trap 'exit 143' TERM INT
clean_up # what an interrupted run left behind
tmp=$(mktemp -d /tmp/chatd-check.XXXXXX)

fail() {
  log "FAIL: $*" >&2
  exit 1
}

# poll DESCRIPTION SECONDS COMMAND...: runs COMMAND until it succeeds, every
# 0.2 s, for at most SECONDS; fails at once if a container in `watch` stopped.
watch=()
poll() {
  local desc=$1 limit=$2
  shift 2
  local end=$(($(now_ms) + limit * 1000)) c
  until "$@" >/dev/null 2>&1; do
    for c in "${watch[@]}"; do
      [[ "$(podman inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" == true ]] ||
        fail "$desc: container $c stopped"
    done
    (($(now_ms) < end)) || fail "$desc: not within ${limit}s"
    sleep 0.2
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=${CHECK_PORT_BASE:-18000}
a_http=$base a_grpc=$((base + 51)) b_http=$((base + 80)) b_grpc_a=$((base + 151)) b_grpc_b=$((base + 152))
for p in $a_http $a_grpc $b_http $b_grpc_a $b_grpc_b; do
  port_free "$p" || fail "port 127.0.0.1:$p is in use (set CHECK_PORT_BASE)"
done

# JSON field of stdin, with Node (already needed for buf): jget a_b.c
# (snake_case as the gateway writes it, or camelCase as buf curl does).
jget() {
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);
    for(const k of process.argv[1].split("."))
      v=v==null?v:(k in v?v[k]:v[k.replace(/_(.)/g,(_,c)=>c.toUpperCase())]);
    if(v===undefined)process.exit(1);console.log(typeof v=="object"?JSON.stringify(v):v)})' "$1"
}
# rest PORT METHOD PATH [BODY]: a call through a gateway with the API key,
# given REST_TIMEOUT seconds (default 15).
rest() {
  local timeout=${REST_TIMEOUT:-15}
  curl -sS --fail-with-body -m "$timeout" -H "grpc-timeout: $((timeout - 2))S" \
    -X "$2" "http://127.0.0.1:$1$3" \
    -H "Authorization: Bearer ${api_key:-}" -H 'Content-Type: application/json' ${4:+-d "$4"}
}
# grpc PORT METHOD BODY: a gRPC call with buf curl (reflection) with the API key.
grpc() {
  "$buf" curl --protocol grpc --http2-prior-knowledge --timeout 15s \
    -H "authorization: Bearer ${api_key:-}" -d "$3" "http://127.0.0.1:$1/$2"
}
grpc_serving() {  # grpc_serving PORT
  "$buf" curl --protocol grpc --http2-prior-knowledge --timeout 2s -d '{}' \
    "http://127.0.0.1:$1/grpc.health.v1.Health/Check" | grep -q SERVING
}
create_key() {  # create_key PORT TENANT: prints a new API key, made with the admin key
  curl -sS --fail-with-body -m 15 -X POST "http://127.0.0.1:$1/v1/admin/keys" \
    -H "Authorization: Bearer $CHAT_ADMIN_KEY" -H 'Content-Type: application/json' \
    -d "{\"tenant\":\"$2\",\"name\":\"container-check\"}" | jget key
}

# prober PORT FILE: calls the gateway every 0.1 s until $tmp/stop-probe
# exists (at most 180 s), one line per call: "start_ms end_ms ok|fail". Each
# call may wait 60 s: a call made while the only backend restarts must wait
# for it within its deadline, however slowly the new container starts.
prober() {
  local end=$(($(now_ms) + 180000)) s
  while [[ ! -e "$tmp/stop-probe" ]] && (($(now_ms) < end)); do
    s=$(now_ms)
    if out=$(REST_TIMEOUT=60 rest "$1" POST /v1/chat '{"message":"probe","session_id":"probe"}' 2>&1); then
      echo "$s $(now_ms) ok"
    else
      echo "$s $(now_ms) fail $(head -c 300 <<<"$out" | tr '\n' ' ')"
    fi >>"$2"
    sleep 0.1
  done
}
start_prober() {
  [[ -z "${prober_pid:-}" ]] || fail "a prober is already running"
  rm -f "$tmp/stop-probe" "$2"
  prober "$1" "$2" &
  prober_pid=$!
}
stop_prober() { touch "$tmp/stop-probe"; wait "$prober_pid" || true; prober_pid=""; }
# Longest time between two answered calls, in ms; failed calls.
longest_gap() { awk '$3=="ok" { if (last) { g = $2 - last; if (g > m) m = g } last = $2 } END { print m + 0 }' "$1"; }
failures() { awk '$3=="fail"' "$1" | wc -l; }
# show_failures FILE: what the failed calls answered, once each.
show_failures() { awk '$3=="fail" { $1=$2=$3=""; print "    failed call:" $0 }' "$1" | sort | uniq -c; }
# wait_probe_ok FILE SECONDS DESCRIPTION: until the prober logged an answer to
# a call it started after now.
wait_probe_ok() {
  local from
  from=$(now_ms)
  poll "$3" "$2" awk -v from="$from" '$3=="ok" && $1>=from { found=1 } END { exit !found }' "$1"
}

export CHAT_ADMIN_KEY
CHAT_ADMIN_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

# ------------------------------------------------------------ 2. images
log "base images (debian:bookworm, debian:bookworm-slim, postgres:15)"
bash scripts/container/bases.sh "${rebuild_bases[@]}"

log "scripts/web-assets.sh (the browser libraries the image copies from the build context)"
bash scripts/web-assets.sh
log "podman build -t chatd . ${no_cache[*]}"
t=$(now_ms)
podman build --pull=never "${no_cache[@]}" -t chatd . >"$tmp/build.log" 2>&1 ||
  { tail -40 "$tmp/build.log"; fail "image build"; }
build_ms=$(($(now_ms) - t))
image_mb=$(podman image inspect chatd --format '{{.Size}}' | awk '{ printf "%.0f", $1 / 1e6 }')
log "built in $(secs $build_ms) s, ${image_mb} MB"

# The data directory ships empty (no dotfiles from /etc/skel), owned by chatd.
home=$(podman run --rm --entrypoint sh chatd -c 'ls -A /var/lib/chatd; stat -c %U /var/lib/chatd')
[[ "$home" == chatd ]] || fail "/var/lib/chatd in the image is not empty and chatd's: $home"

# ---------------------------------- 3. the Dockerfile header: server, gateway
log "Dockerfile header: chat-server, then chat-gateway as a second container"
podman network create --label "$label" --subnet 10.89.201.0/24 chatd-check >/dev/null
podman volume create --label "$label" chatd-check-data >/dev/null
t=$(now_ms)
podman run -d --label "$label" --network chatd-check --name chatd-check-server \
  -e CHAT_ADMIN_KEY -v chatd-check-data:/var/lib/chatd -p "127.0.0.1:$a_grpc:50051" chatd >/dev/null
podman run -d --label "$label" --network chatd-check --name chatd-check-gateway \
  -p "127.0.0.1:$a_http:8000" --entrypoint chat-gateway chatd \
  --listen=0.0.0.0:8000 --backend=chatd-check-server:50051 --web_root=/usr/local/share/chatd >/dev/null
watch=(chatd-check-server chatd-check-gateway)
poll "gateway ready" 60 curl -sf -m 2 "http://127.0.0.1:$a_http/readyz"
api_key=$(create_key "$a_http" acme) || fail "creating an API key with the admin key"
reply=$(rest "$a_http" POST /v1/chat '{"message":"Hello from REST","session_id":"check-a"}') ||
  fail "REST chat: $reply"
a_first_ms=$(($(now_ms) - t))
[[ "$(jget turn_count <<<"$reply")" == 1 ]] || fail "REST chat: $reply"
log "REST answered $(secs $a_first_ms) s after the containers started"

grpc_serving "$a_grpc" || fail "gRPC health on the published port"
reply=$(grpc "$a_grpc" chat.v1.ChatService/Chat '{"message":"Hello from gRPC","session_id":"check-a"}') ||
  fail "gRPC Chat: $reply"
[[ "$(jget turn_count <<<"$reply")" == 2 ]] || fail "gRPC Chat did not continue the session: $reply"
history=$(rest "$a_http" GET /v1/sessions/check-a/history)
[[ "$history" == *"Hello from REST"*"Hello from gRPC"* ]] || fail "history over REST: $history"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST "http://127.0.0.1:$a_http/v1/chat" \
  -d '{"message":"no key","session_id":"check-a"}')
[[ "$code" == 401 ]] || fail "a call without a key answered $code, not 401"
log "gRPC (buf curl) continued the REST session; REST read both turns; no key: 401"

files=$(podman run --rm -v chatd-check-data:/d --entrypoint ls chatd -A /d)
! grep -q '^\.' <<<"$files" || fail "dotfiles in the data volume: $(echo $files)"
log "the data volume holds: $(echo $files)"

# Replace the server container (stop, remove, start anew at another address)
# while the prober calls the gateway.
start_prober "$a_http" "$tmp/probe-a"
wait_probe_ok "$tmp/probe-a" 30 "prober's first answer"
old_ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' chatd-check-server)
podman rm -f -v -t 10 chatd-check-server >/dev/null
podman run -d --label "$label" --network chatd-check --ip 10.89.201.250 --name chatd-check-server \
  -e CHAT_ADMIN_KEY -v chatd-check-data:/var/lib/chatd -p "127.0.0.1:$a_grpc:50051" chatd >/dev/null
wait_probe_ok "$tmp/probe-a" 120 "gateway answering after the server was replaced"
stop_prober
a_gap_ms=$(longest_gap "$tmp/probe-a")
a_fail=$(failures "$tmp/probe-a")
log "server replaced ($old_ip -> 10.89.201.250): longest gap $(secs $a_gap_ms) s, $a_fail failed calls"
show_failures "$tmp/probe-a"
((a_fail == 0)) || fail "$a_fail calls failed while the server was replaced"
reply=$(rest "$a_http" GET /v1/sessions/check-a/history)
[[ "$reply" == *"Hello from gRPC"* ]] || fail "history lost across the replacement: $reply"
watch=()
podman rm -f -v -t 5 chatd-check-gateway chatd-check-server >/dev/null

# ------------------------------------------- 4. the compose layout, by hand
log "docker-compose.yml, read as podman-compose 1.0.3 reads it"
# Its own interpolation code: nothing may stay literal (it passed \${VAR:-}
# through as text). The replicas' environment and the gateway's command are
# taken from the file, so what runs below is what it says.
layout=$(CHATD_ADMIN_KEY=$CHAT_ADMIN_KEY /usr/bin/python3 scripts/container/compose-layout.py docker-compose.yml) ||
  fail "docker-compose.yml: $layout"
replica_env=() gateway_args=()
while read -r kind value; do
  case "$kind" in
    replica-env) replica_env+=(-e "$value") ;;
    gateway-arg) gateway_args+=("$value") ;;
  esac
done <<<"$layout"
backends=$(printf '%s\n' "${gateway_args[@]}" | sed -n 's/^--backend=//p')
# CHECK_BACKEND=chat-server:50051 tries a gateway that takes one name only
# (every replica also answers to the alias chat-server).
if [[ -n "${CHECK_BACKEND:-}" ]]; then
  gateway_args=("${gateway_args[@]/#--backend=*/--backend=$CHECK_BACKEND}")
  backends=$CHECK_BACKEND
fi

# The file as it is, under podman-compose 1.0.3, in a copy whose only changes
# are the published port (127.0.0.1 instead of 8000 on every interface) and no
# build: (the image is built above); .env beside it holds the admin key.
c_first_ms="" c_restarts=""
if [[ -n "${CHECK_BACKEND:-}" ]]; then
  log "podman-compose up: skipped (CHECK_BACKEND overrides the file's --backend)"
else
  log "podman-compose up -d with docker-compose.yml (published on 127.0.0.1:$b_http)"
  mkdir "$tmp/compose"
  sed -e "s|\"8000:8000\"|\"127.0.0.1:$b_http:8000\"|" -e '/^ *build: \.$/d' docker-compose.yml \
    >"$tmp/compose/docker-compose.yml"
  grep -q "127.0.0.1:$b_http:8000" "$tmp/compose/docker-compose.yml" ||
    fail "docker-compose.yml does not publish \"8000:8000\""
  printf 'CHATD_ADMIN_KEY=%s\n' "$CHAT_ADMIN_KEY" >"$tmp/compose/.env"
  compose=(podman-compose -p chatd-check-compose -f "$tmp/compose/docker-compose.yml")
  t=$(now_ms)
  "${compose[@]}" up -d >"$tmp/compose-up.log" 2>&1 || { tail -20 "$tmp/compose-up.log"; fail "podman-compose up"; }
  poll "podman-compose's gateway ready" 120 curl -sf -m 2 "http://127.0.0.1:$b_http/readyz"
  api_key=$(create_key "$b_http" acme) || fail "creating an API key with the admin key"
  rest "$b_http" POST /v1/chat '{"message":"compose one","session_id":"check-c"}' >/dev/null ||
    fail "REST chat through podman-compose's gateway"
  c_first_ms=$(($(now_ms) - t))
  reply=$(rest "$b_http" POST /v1/chat '{"message":"compose two","session_id":"check-c"}') ||
    fail "REST chat through podman-compose's gateway: $reply"
  [[ "$(jget turn_count <<<"$reply")" == 2 ]] || fail "podman-compose layout lost the session: $reply"
  c_restarts=$(for svc in replica-a replica-b gateway; do
    printf '%s %s, ' "$svc" "$(podman inspect -f '{{.RestartCount}}' "chatd-check-compose_${svc}_1")"
  done)
  c_restarts=${c_restarts%, }
  log "podman-compose's layout answered $(secs $c_first_ms) s after up; restarts: $c_restarts"
  # Not `down -v`: it leaves the network and the replicas' anonymous volumes.
  clean_up
  port_free "$b_http" || fail "port $b_http still held after podman-compose down"
fi

log "the same layout by hand: postgres, replica-a, replica-b, gateway --backend=$backends"
podman network create --label "$label" --subnet 10.89.202.0/24 chatd-check-compose >/dev/null
podman volume create --label "$label" chatd-check-pgdata >/dev/null
net=(--network chatd-check-compose)
t=$(now_ms)
podman run -d --label "$label" "${net[@]}" --network-alias postgres --name chatd-check-postgres \
  -e POSTGRES_USER=chatd -e POSTGRES_PASSWORD=chatd -e POSTGRES_DB=chatd \
  -v chatd-check-pgdata:/var/lib/postgresql/data postgres:15 >/dev/null
watch=(chatd-check-postgres)
# docker-compose.yml's health check, polled here (podman's needs systemd).
poll "postgres healthy" 60 podman exec chatd-check-postgres pg_isready -U chatd -q
log "postgres accepts connections after $(secs $(($(now_ms) - t))) s"
run_replica() {  # run_replica NAME PORT [podman run options...]
  local name=$1 port=$2
  shift 2
  podman run -d --label "$label" "${net[@]}" --network-alias "$name" --network-alias chat-server \
    --name "chatd-check-$name" \
    -p "127.0.0.1:$port:50051" "$@" "${replica_env[@]}" chatd >/dev/null
}
run_replica replica-a "$b_grpc_a"
run_replica replica-b "$b_grpc_b"
watch+=(chatd-check-replica-a chatd-check-replica-b)
poll "replica-a SERVING" 60 grpc_serving "$b_grpc_a"
poll "replica-b SERVING" 60 grpc_serving "$b_grpc_b"
log "both replicas SERVING after $(secs $(($(now_ms) - t))) s"
podman run -d --label "$label" "${net[@]}" --name chatd-check-gateway -p "127.0.0.1:$b_http:8000" \
  --entrypoint chat-gateway chatd "${gateway_args[@]}" >/dev/null
watch+=(chatd-check-gateway)
poll "gateway ready" 60 curl -sf -m 2 "http://127.0.0.1:$b_http/readyz"
log "gateway ready after $(secs $(($(now_ms) - t))) s"
api_key=$(create_key "$b_http" acme) || fail "creating an API key with the admin key"
reply=$(rest "$b_http" POST /v1/chat '{"message":"Hello through the gateway","session_id":"check-b"}') ||
  fail "REST chat through the gateway: $reply"
b_first_ms=$(($(now_ms) - t))
log "the gateway answered $(secs $b_first_ms) s after postgres started"

# One session across the replicas: a turn on A directly, one on B directly,
# the history read back through B and through the gateway.
reply=$(grpc "$b_grpc_a" chat.v1.ChatService/Chat '{"message":"turn on replica A","session_id":"check-b"}') ||
  fail "gRPC Chat on replica-a: $reply"
[[ "$(jget turn_count <<<"$reply")" == 2 ]] || fail "replica-a did not continue the session: $reply"
reply=$(grpc "$b_grpc_b" chat.v1.ChatService/Chat '{"message":"turn on replica B","session_id":"check-b"}') ||
  fail "gRPC Chat on replica-b: $reply"
[[ "$(jget turn_count <<<"$reply")" == 3 ]] || fail "replica-b did not continue the session: $reply"
history=$(grpc "$b_grpc_b" chat.v1.ChatService/GetHistory '{"session_id":"check-b"}')
[[ "$history" == *"through the gateway"*"replica A"*"replica B"* ]] || fail "history on replica-b: $history"
history=$(rest "$b_http" GET /v1/sessions/check-b/history)
[[ "$history" == *"through the gateway"*"replica A"*"replica B"* ]] || fail "history via the gateway: $history"
log "one session: gateway, then replica-a, then replica-b; history the same on B and the gateway"

# Replace replica-a at a new address: replica-b serves meanwhile, so no call
# may fail. Then remove replica-b: the gateway must find replica-a's new
# address by its name.
start_prober "$b_http" "$tmp/probe-b"
wait_probe_ok "$tmp/probe-b" 30 "prober's first answer"
podman rm -f -v -t 10 chatd-check-replica-a >/dev/null
run_replica replica-a "$b_grpc_a" --ip 10.89.202.250
poll "new replica-a SERVING" 60 grpc_serving "$b_grpc_a"
wait_probe_ok "$tmp/probe-b" 30 "gateway answering after replica-a was replaced"
stop_prober
b_replace_fail=$(failures "$tmp/probe-b")
b_replace_gap_ms=$(longest_gap "$tmp/probe-b")
log "replica-a replaced: $b_replace_fail failed calls, longest gap $(secs $b_replace_gap_ms) s"
show_failures "$tmp/probe-b"
start_prober "$b_http" "$tmp/probe-b2"
wait_probe_ok "$tmp/probe-b2" 30 "prober's first answer"
watch=(chatd-check-postgres chatd-check-replica-a chatd-check-gateway)
podman rm -f -v -t 10 chatd-check-replica-b >/dev/null
wait_probe_ok "$tmp/probe-b2" 60 "gateway answering through the new replica-a alone"
stop_prober
b_gap_ms=$(longest_gap "$tmp/probe-b2")
b_fail=$(failures "$tmp/probe-b2")
log "replica-b removed: longest gap $(secs $b_gap_ms) s, $b_fail failed calls"
show_failures "$tmp/probe-b2"
history=$(rest "$b_http" GET /v1/sessions/check-b/history)
[[ "$history" == *"replica B"* ]] || fail "history via the new replica-a: $history"
[[ "$b_replace_fail" == 0 ]] || fail "$b_replace_fail calls failed while replica-b was up"
watch=()

# ------------------------------------------------------------ 5. figures
compose_figure="skipped (CHECK_BACKEND)"
[[ -z "$c_first_ms" ]] || compose_figure="$(secs $c_first_ms) s to the first answer; restarts: $c_restarts"
cat <<EOF

container check passed in ${SECONDS}s
  image build:                  $(secs $build_ms) s$( ((build_ms < 60000)) && echo " (cached layers; --no-cache for a cold build)")
  image size:                   ${image_mb} MB
  first answer, server+gateway: $(secs $a_first_ms) s after podman run (REST, with key creation)
  first answer, compose layout: $(secs $b_first_ms) s after postgres started (by hand)
  podman-compose up:            $compose_figure
  outage, server replaced:      $(secs $a_gap_ms) s longest gap between answers, $a_fail failed calls
  replica-a replaced:           $b_replace_fail failed calls, longest gap $(secs $b_replace_gap_ms) s
  replica-b removed:            $(secs $b_gap_ms) s longest gap, $b_fail failed calls
EOF
