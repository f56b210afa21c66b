#!/usr/bin/env bash
# Stop the one-node SLURM cluster that cluster/start.sh started in STATE_DIR
# (default: .cluster/ at the repo root): cancel its jobs, then stop slurmd,
# slurmctld and munged by the pids they recorded there. Stopping a cluster that
# is not running is fine. Removes the /etc/slurm/slurm.conf link start.sh made.
# The state folder is kept (logs); delete it by hand.
#
#   cluster/stop.sh [STATE_DIR]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${1:-$here/../.cluster}
PATH=$PATH:/usr/sbin:/sbin

if [[ ! -d $state ]]; then
    echo "no cluster state in $state: nothing to stop"
    exit 0
fi
state=$(cd "$state" && pwd -P)
export SLURM_CONF=$state/slurm.conf

# recorded_pid PIDFILE NAME: print the recorded pid if it is alive and still
# NAME (a recycled pid belongs to someone else).
recorded_pid() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm ]] || return 1
    [[ $(<"/proc/$pid/comm") == "$2" ]] || return 1
    echo "$pid"
}

# stop_daemon PIDFILE NAME: TERM, up to 15 s to exit, then KILL.
stop_daemon() {
    local pid
    pid=$(recorded_pid "$1" "$2") || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((try = 0; try < 60; try++)); do
        [[ -e /proc/$pid ]] || break
        sleep 0.25
    done
    if [[ -e /proc/$pid ]]; then
        echo "cluster/stop.sh: $2 ($pid) ignored TERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
    echo "stopped $2 ($pid)"
}

# Cancel the cluster's jobs first so no job step outlives slurmd.
if recorded_pid "$state/run/slurmctld.pid" slurmctld >/dev/null && [[ -f $SLURM_CONF ]]; then
    jobs=$(squeue -h -t pending,running,suspended,completing -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086  # one job id per word
        scancel $jobs 2>/dev/null || true
        for ((try = 0; try < 60; try++)); do
            [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null || true) ]] && break
            sleep 0.25
        done
    fi
fi
stop_daemon "$state/run/slurmd.pid" slurmd
stop_daemon "$state/run/slurmctld.pid" slurmctld
stop_daemon "$state/run/munged.pid" munged
# the link start.sh made for srun inside jobs
if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$SLURM_CONF" ]]; then
    rm -f /etc/slurm/slurm.conf
fi
