#!/usr/bin/env bash
# A local three-node rowboat cluster on 127.0.0.1, for trying things out and for benchmarks.
#
# Usage: scripts/cluster.sh start [-- rowboatd flags...]   start the nodes not running yet; wait until ready
#        scripts/cluster.sh stop                            SIGTERM every node, SIGKILL after 10s
#        scripts/cluster.sh status                          pid, role, term, leader, applied index per node
#        scripts/cluster.sh kill-leader                     kill -9 the node that says it leads
#        scripts/cluster.sh add-replica [-- flags...]      start n4, a read replica (--voter=false), and wait
#                                                           until it is ready; start, stop and status then
#                                                           include it until wipe
#        scripts/cluster.sh remove-replica                  remove n4 from the cluster (DELETE /remove), stop it
#                                                           and delete its data dir
#        scripts/cluster.sh logs [-f] [n1|n2|n3...]         the nodes' log tails (-f: follow)
#        scripts/cluster.sh wipe                            stop, then delete the cluster directory
#
# Node i (n1, n2, n3, and the replica n4) listens for HTTP on BASE+10*(i-1) and for Raft on the port above it:
# with the default base 4001, n1 is 4001/4002, n2 4011/4012, n3 4021/4022, n4 4031/4032. n1 bootstraps, the
# others join it.
#
# Environment:
#   ROWBOAT_CLUSTER_DIR    data dirs, logs (nN.log) and pid files (nN.pid); default REPO/.cluster
#   ROWBOAT_BASE_PORT      n1's HTTP port; default 4001
#   ROWBOAT_START_TIMEOUT  seconds start waits for each node's GET /readyz to answer 200; default 30
#   ROWBOATD               a rowboatd binary to run instead of building REPO/bin/rowboatd
#   GOMAXPROCS             passed to the nodes if set; otherwise each node gets the machine's cores divided by
#                          the three nodes (at least 1). Three Go runtimes that each run a thread per core on one
#                          machine fight over the cores: on 2 cores this setting measured 30-50% more writes/s.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${ROWBOAT_CLUSTER_DIR:-$REPO/.cluster}
BASE=${ROWBOAT_BASE_PORT:-4001}
START_TIMEOUT=${ROWBOAT_START_TIMEOUT:-30}
VOTERS=(n1 n2 n3)
REPLICA=n4

die() { echo "cluster.sh: $*" >&2; exit 1; }

if ! [[ $BASE =~ ^[0-9]+$ ]] || ((BASE < 1 || BASE + 31 > 65535)); then
	die "ROWBOAT_BASE_PORT=$BASE is not a usable port (n4's Raft port is BASE+31)"
fi
command -v curl >/dev/null || die "curl is required"

# node_index n2 -> 1
node_index() { echo $((${1#n} - 1)); }
http_port() { echo $((BASE + 10 * $(node_index "$1"))); }
raft_port() { echo $(($(http_port "$1") + 1)); }
http_addr() { echo "127.0.0.1:$(http_port "$1")"; }
pid_file() { echo "$DIR/$1.pid"; }

# NODES: the voters, and the replica once add-replica has given it a data dir.
NODES=("${VOTERS[@]}")
[[ -d $DIR/$REPLICA ]] && NODES+=("$REPLICA")
log_file() { echo "$DIR/$1.log"; }

# proc_running PID: the process exists and has not exited (a node that dies while this script, its parent,
# is still waiting for it stays behind as a zombie, which kill -0 cannot tell from a live process).
proc_running() {
	[[ $1 =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0 # no /proc: trust kill -0
	[[ ${stat##*) } != Z* ]]
}

# node_pid n1: the recorded pid of n1 if that process is alive and is a rowboatd; nothing otherwise. The
# command-line check guards against a stale pid file whose number now belongs to another process.
node_pid() {
	local f pid
	f=$(pid_file "$1")
	[[ -f $f ]] || return 0
	pid=$(<"$f")
	proc_running "$pid" || return 0
	if [[ -r /proc/$pid/cmdline ]] && ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--id $1 "; then
		return 0
	fi
	echo "$pid"
}

# http_get n1 /path: the body of a GET, or nothing (and status 1) if the node does not answer 200.
http_get() {
	curl -fsS --max-time 2 "http://$(http_addr "$1")$2" 2>/dev/null
}

# json_top: reduce a JSON object on stdin to its top-level members, dropping nested objects and arrays (a
# leader's /status lists every member, each with its own role and applied index).
json_top() {
	tr -d '\n' | sed -e 's/^[[:space:]]*{//' -e 's/}[[:space:]]*$//' \
		-e ':a' -e 's/{[^{}]*}//g' -e 's/\[[^][]*\]//g' -e 'ta'
}

# json_field KEY: the value of KEY (a string or a number) in top-level JSON on stdin, or "-".
json_field() {
	local v
	v=$(grep -o "\"$1\"[[:space:]]*:[[:space:]]*\(\"[^\"]*\"\|[-0-9.][0-9.eE+-]*\|true\|false\|null\)" |
		head -n 1 | sed -e 's/^"[^"]*"[[:space:]]*:[[:space:]]*//' -e 's/^"//' -e 's/"$//' || true)
	echo "${v:--}"
}

newest_go_change() {
	find "$REPO" \( -path "$REPO/.git" -o -path "$REPO/.cluster" -o -path "$REPO/bin" \) -prune -o \
		\( -name '*.go' -o -name go.mod -o -name go.sum \) -newer "$1" -print 2>/dev/null | head -n 1
}

build() {
	if [[ -n ${ROWBOATD:-} ]]; then
		[[ -x $ROWBOATD ]] || die "ROWBOATD=$ROWBOATD is not an executable"
		BIN=$ROWBOATD
		return
	fi
	BIN=$REPO/bin/rowboatd
	if [[ ! -x $BIN || -n $(newest_go_change "$BIN") ]]; then
		command -v go >/dev/null ||
			die "building rowboatd needs Go 1.26 (https://go.dev/dl/), or set ROWBOATD to a rowboatd binary"
		echo "building $BIN"
		(cd "$REPO" && go build -o bin/rowboatd ./cmd/rowboatd) || die "build failed"
	fi
}

# ports_free n1...: die unless the nodes' HTTP and Raft ports are free. Another process on a node's port would
# answer for it: start would find "it" ready, and a benchmark would measure that process instead.
ports_free() {
	local n port
	for n in "$@"; do
		for port in "$(http_port "$n")" "$(raft_port "$n")"; do
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				die "port $port (for $n) is already in use, by another cluster or program; stop it, or pick other ports with ROWBOAT_BASE_PORT"
			fi
		done
	done
}

# wait_ready n1...: poll each node's /readyz until 200, failing early if its process exits.
wait_ready() {
	local n deadline=$((SECONDS + START_TIMEOUT))
	for n in "$@"; do
		until curl -fsS -o /dev/null --max-time 2 "http://$(http_addr "$n")/readyz" 2>/dev/null; do
			# A replica removed from the cluster (DELETE /remove, or .remove in the CLI) can never be ready
			# again: stop it rather than fail the whole start.
			if [[ $n == "$REPLICA" ]] && curl -sS --max-time 2 "http://$(http_addr "$n")/readyz" 2>/dev/null | grep -q "removed from the cluster"; then
				kill -TERM "$(node_pid "$n")" 2>/dev/null || true
				rm -f "$(pid_file "$n")"
				echo "cluster.sh: $n was removed from the cluster, so it was stopped again; scripts/cluster.sh remove-replica deletes its data dir" >&2
				continue 2
			fi
			# The recorded pid itself, not node_pid: a process launched a moment ago may not have exec'd yet.
			if ! proc_running "$(cat "$(pid_file "$n")" 2>/dev/null)"; then
				echo "cluster.sh: $n exited; the end of $(log_file "$n"):" >&2
				tail -n 20 "$(log_file "$n")" >&2 || true
				exit 1
			fi
			if ((SECONDS >= deadline)); then
				echo "cluster.sh: $n not ready after ${START_TIMEOUT}s; GET /readyz says:" >&2
				curl -sS --max-time 2 "http://$(http_addr "$n")/readyz" >&2 || true
				echo >&2
				echo "the end of $(log_file "$n"):" >&2
				tail -n 20 "$(log_file "$n")" >&2 || true
				echo "the nodes are left running: scripts/cluster.sh stop" >&2
				exit 1
			fi
			sleep 0.2
		done
		echo "$n ready on $(http_addr "$n") (pid $(node_pid "$n"))"
	done
}

# cores: the number of CPUs this machine has.
cores() {
	getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 1
}

launch() {
	local n=$1
	shift
	mkdir -p "$DIR"
	local procs=${GOMAXPROCS:-$(($(cores) / ${#VOTERS[@]}))}
	((procs >= 1)) || procs=1
	echo "=== $(date '+%F %T') start: GOMAXPROCS=$procs $BIN $*" >>"$(log_file "$n")"
	GOMAXPROCS=$procs nohup "$BIN" "$@" </dev/null >>"$(log_file "$n")" 2>&1 &
	echo $! >"$(pid_file "$n")"
}

cmd_start() {
	if (($# > 0)); then
		[[ $1 == -- ]] || die "start: node flags go after --, as in: start -- --snapshot-threshold 100"
		shift
	fi
	local n running=() stopped=()
	for n in "${NODES[@]}"; do
		if [[ -n $(node_pid "$n") ]]; then running+=("$n"); else stopped+=("$n"); fi
	done
	if ((${#stopped[@]} == 0)); then
		echo "cluster already running in $DIR (${running[*]}); scripts/cluster.sh status"
		exit 0
	fi
	((${#running[@]} == 0)) || echo "already running: ${running[*]}"
	build
	ports_free "${stopped[@]}"
	# has_data n: whether node n has a data directory with something in it (it was a member before).
	has_data() { [[ -d $DIR/$1 && -n $(ls -A "$DIR/$1" 2>/dev/null) ]]; }
	local new_cluster=true
	for n in "${NODES[@]}"; do
		if has_data "$n"; then new_cluster=false; fi
	done
	for n in "${stopped[@]}"; do
		local args=(--id "$n" --http-addr "$(http_addr "$n")" --raft-addr "127.0.0.1:$(raft_port "$n")" --data-dir "$DIR/$n")
		# n1 bootstraps a new cluster; the others join it. A node with a data dir rejoins on its own (--join is
		# then ignored), but an n1 whose data dir is gone while the others have theirs must join them: on its
		# own it would bootstrap a second cluster of one under the same name.
		if [[ $n != n1 ]]; then
			args+=(--join "$(http_addr n1)")
		elif [[ $new_cluster == false ]] && ! has_data n1; then
			args+=(--join "$(http_addr n2),$(http_addr n3)")
		fi
		[[ $n != "$REPLICA" ]] || args+=(--voter=false)
		launch "$n" "${args[@]}" "$@"
		echo "started $n (pid $(<"$(pid_file "$n")"))"
		# A fresh n1 must lead before anyone can join it; a restarted n1 may need the others for a quorum.
		if [[ $n == n1 && $new_cluster == true ]]; then wait_ready n1; fi
	done
	local rest=() names
	for n in "${NODES[@]}"; do
		[[ $n == n1 && $new_cluster == true ]] || rest+=("$n")
	done
	((${#rest[@]} == 0)) || wait_ready "${rest[@]}"
	names=$(IFS=,; echo "${NODES[*]}")
	echo
	echo "logs:    $DIR/{$names}.log   (scripts/cluster.sh logs -f)"
	echo "status:  scripts/cluster.sh status"
	[[ $new_cluster == true ]] || return 0
	echo "try:     curl -s -XPOST '$(http_addr n1)/db/execute' -H 'Content-Type: application/json' \\"
	echo "           -d '[\"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)\", [\"INSERT INTO t(v) VALUES(?)\", \"hello\"]]'"
	echo "         curl -s '$(http_addr n2)/db/query?q=SELECT+*+FROM+t&pretty'"
}

cmd_stop() {
	local n pid pids=() names=()
	for n in "${NODES[@]}"; do
		pid=$(node_pid "$n")
		if [[ -n $pid ]]; then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
			names+=("$n")
		fi
	done
	local deadline=$((SECONDS + 10)) i alive
	while :; do
		alive=0
		for pid in "${pids[@]}"; do proc_running "$pid" && alive=1; done
		((alive == 0 || SECONDS >= deadline)) && break
		sleep 0.1
	done
	for i in "${!pids[@]}"; do
		if proc_running "${pids[$i]}"; then
			echo "${names[$i]} (pid ${pids[$i]}) still running after 10s: SIGKILL"
			kill -KILL "${pids[$i]}" 2>/dev/null || true
		else
			echo "stopped ${names[$i]} (pid ${pids[$i]})"
		fi
	done
	((${#pids[@]} > 0)) || echo "no node running in $DIR"
	for n in "${NODES[@]}"; do rm -f "$(pid_file "$n")"; done
}

cmd_status() {
	local n pid body top
	printf '%-4s %-8s %-16s %-12s %-6s %-8s %-8s\n' node pid http role term leader applied
	for n in "${NODES[@]}"; do
		pid=$(node_pid "$n")
		if [[ -z $pid ]]; then
			printf '%-4s %-8s %-16s %-12s %-6s %-8s %-8s\n' "$n" stopped "$(http_addr "$n")" - - - -
			continue
		fi
		if body=$(http_get "$n" /status); then
			top=$(json_top <<<"$body")
			printf '%-4s %-8s %-16s %-12s %-6s %-8s %-8s\n' "$n" "$pid" "$(http_addr "$n")" \
				"$(json_field role <<<"$top")" "$(json_field term <<<"$top")" \
				"$(json_field leader_id <<<"$top")" "$(json_field applied_index <<<"$top")"
		else
			printf '%-4s %-8s %-16s %-12s %-6s %-8s %-8s\n' "$n" "$pid" "$(http_addr "$n")" unreachable - - -
		fi
	done
}

cmd_kill_leader() {
	local n pid body top term best="" best_pid="" best_term=-1
	for n in "${NODES[@]}"; do
		pid=$(node_pid "$n")
		[[ -n $pid ]] || continue
		body=$(http_get "$n" /status) || continue
		top=$(json_top <<<"$body")
		[[ $(json_field role <<<"$top") == leader ]] || continue
		term=$(json_field term <<<"$top")
		[[ $term =~ ^[0-9]+$ ]] || term=0
		# Two nodes can both claim to lead for a moment after a partition; the higher term is the real one.
		if ((term > best_term)); then best=$n best_pid=$pid best_term=$term; fi
	done
	[[ -n $best ]] || die "no running node says it is the leader (scripts/cluster.sh status)"
	kill -KILL "$best_pid"
	echo "killed leader $best (pid $best_pid, http $(http_addr "$best"), term $best_term)"
	echo "restart it with: scripts/cluster.sh start"
}

cmd_add_replica() {
	local n
	for n in "${VOTERS[@]}"; do
		[[ -n $(node_pid "$n") ]] || die "add-replica: $n is not running (scripts/cluster.sh start first)"
	done
	if [[ -n $(node_pid "$REPLICA") ]]; then
		echo "$REPLICA already running (pid $(node_pid "$REPLICA"))"
		exit 0
	fi
	build
	ports_free "$REPLICA"
	mkdir -p "$DIR/$REPLICA"
	launch "$REPLICA" --id "$REPLICA" --http-addr "$(http_addr "$REPLICA")" --raft-addr "127.0.0.1:$(raft_port "$REPLICA")" \
		--data-dir "$DIR/$REPLICA" --join "$(http_addr n1)" --voter=false "$@"
	echo "started $REPLICA, a read replica (pid $(<"$(pid_file "$REPLICA")"))"
	wait_ready "$REPLICA"
}

cmd_remove_replica() {
	[[ -d $DIR/$REPLICA ]] || die "remove-replica: there is no $REPLICA in $DIR"
	local n answer removed=false
	for n in "${VOTERS[@]}"; do
		[[ -n $(node_pid "$n") ]] || continue
		answer=$(curl -sS --max-time 15 -XDELETE "http://$(http_addr "$n")/remove" -H 'Content-Type: application/json' \
			-d "{\"id\":\"$REPLICA\"}" -w ' %{http_code}' 2>&1) || true
		if [[ $answer == *" 200" ]]; then
			removed=true
			echo "removed $REPLICA from the cluster"
			break
		fi
		if [[ $answer == *unknown_member*" 404" ]]; then
			removed=true
			echo "$REPLICA is not a member of the cluster (removed before)"
			break
		fi
		echo "cluster.sh: DELETE /remove via $n: $answer" >&2
	done
	$removed || die "remove-replica: no voter removed $REPLICA (is the cluster running? scripts/cluster.sh status)"
	local pid
	pid=$(node_pid "$REPLICA")
	if [[ -n $pid ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 10))
		while proc_running "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
		proc_running "$pid" && kill -KILL "$pid" 2>/dev/null || true
		echo "stopped $REPLICA (pid $pid)"
	fi
	rm -rf -- "${DIR:?}/$REPLICA" "$(pid_file "$REPLICA")"
	echo "deleted $DIR/$REPLICA (its log stays in $(log_file "$REPLICA"))"
}

cmd_logs() {
	local follow=false n files=()
	for n in "$@"; do
		case $n in
		-f) follow=true ;;
		n1 | n2 | n3 | n4) files+=("$(log_file "$n")") ;;
		*) die "logs: unknown node $n (n1, n2, n3, n4)" ;;
		esac
	done
	if ((${#files[@]} == 0)); then
		for n in "${NODES[@]}"; do [[ -f $(log_file "$n") ]] && files+=("$(log_file "$n")"); done
	fi
	((${#files[@]} > 0)) || die "no logs in $DIR"
	if $follow; then
		exec tail -n 20 -F "${files[@]}"
	fi
	tail -n 40 "${files[@]}"
}

cmd_wipe() {
	cmd_stop
	case $DIR in
	"" | / | "$HOME" | "$REPO") die "refusing to delete $DIR" ;;
	esac
	rm -rf -- "$DIR"
	echo "deleted $DIR"
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

case ${1:-} in
start) shift; cmd_start "$@" ;;
stop) cmd_stop ;;
status) cmd_status ;;
kill-leader) cmd_kill_leader ;;
add-replica) shift; [[ ${1:-} != -- ]] || shift; cmd_add_replica "$@" ;;
remove-replica) cmd_remove_replica ;;
logs) shift; cmd_logs "$@" ;;
wipe) cmd_wipe ;;
-h | --help | help) usage ;;
"") usage >&2; exit 2 ;;
*) echo "cluster.sh: unknown command: $1" >&2; usage >&2; exit 2 ;;
esac
