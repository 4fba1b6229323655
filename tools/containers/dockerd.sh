#!/usr/bin/env bash
# A private Docker engine for the container tests, with no network reach of its own:
#   tools/containers/dockerd.sh start DIR [DATA_ROOT]
#       -> exec-root, pidfile, log and socket under DIR, data-root DIR/data unless DATA_ROOT is given (a
#          folder that survives keeps the layer cache between runs; one engine at a time uses it: flock);
#          prints the DOCKER_HOST to use (unix socket, no TCP listener)
#   tools/containers/dockerd.sh stop DIR [DATA_ROOT] -> SIGTERM to that dockerd's PID (its containerd goes with it),
#                                              SIGKILL after 30 s; unmounts what it left under DIR
# --bridge=none and --iptables=false: no docker0 bridge, no NAT rules; containers get network_mode: host
# (or none) only. Debian's docker.io provides dockerd (apt-get install docker.io).
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?state directory}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
sock="$dir/docker.sock"
pidfile="$dir/dockerd.pid"

case "$cmd" in
start)
    command -v dockerd >/dev/null || { echo "dockerd not found: apt-get install docker.io" >&2; exit 3; }
    data="${3:-$dir/data}"
    mkdir -p "$data" "$dir/exec"
    exec 9>"$data.lock"
    flock --timeout 1800 9 || { echo "another engine holds $data" >&2; exit 4; }
    setsid dockerd \
        --data-root "$data" --exec-root "$dir/exec" --pidfile "$pidfile" \
        --host "unix://$sock" \
        --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --userland-proxy=false --storage-driver=overlay2 --log-level=warn \
        </dev/null >"$dir/dockerd.log" 2>&1 9>&9 &
    for _ in $(seq 120); do
        if [[ -S "$sock" ]] && curl -sf --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; then
            echo "unix://$sock"
            exit 0
        fi
        sleep 0.5
    done
    echo "dockerd did not answer on $sock within 60 s; its log:" >&2
    tail -50 "$dir/dockerd.log" >&2
    exit 1
    ;;
stop)
    if [[ -f "$pidfile" ]]; then
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        fi
    fi
    # overlay and shm mounts left by a killed engine would keep the folder from being removed
    for root in "$dir" ${3:+"$3"}; do
        grep -o " $root/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    done
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
