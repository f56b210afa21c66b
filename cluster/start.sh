#!/usr/bin/env bash
# Start a one-node SLURM cluster (munge + slurmctld + slurmd, 2 fake GPUs) for
# genreflow's tests, from Debian's packages (slurmctld slurmd slurm-client munge).
# Installs nothing. Every file it writes (config, spool, state, pid files, logs,
# the munge key and socket) lives in STATE_DIR (default: .cluster/ at the repo
# root). Starting a cluster that is already running is fine.
#
#   cluster/start.sh [STATE_DIR]
#   export SLURM_CONF=STATE_DIR/slurm.conf   # (or: source STATE_DIR/env.sh)
#   cluster/stop.sh [STATE_DIR]
#
# Outside STATE_DIR it writes one thing: a link /etc/slurm/slurm.conf to its
# config (srun inside jobs reads that path); it refuses to replace a real one.
#
# Environment: GENREFLOW_SLURM_PORT (slurmctld port, default 16817; slurmd uses
# the next one) for running two clusters side by side.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${1:-$here/../.cluster}
ctld_port=${GENREFLOW_SLURM_PORT:-16817}
slurmd_port=$((ctld_port + 1))
n_gpus=2
gpu_type=fake
# MB the node declares: bookkeeping only (no cgroups), big enough for the
# production profile's requests; see slurm.conf.in.
min_declared_memory_mb=131072
# The daemons live in sbin, which a non-login shell's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

die() {
    echo "cluster/start.sh: error: $*" >&2
    exit 1
}

missing=()
for binary in munged mungekey slurmctld slurmd sinfo scontrol sbatch squeue scancel; do
    command -v "$binary" >/dev/null 2>&1 || missing+=("$binary")
done
if ((${#missing[@]})); then
    die "missing ${missing[*]}; install Debian's SLURM and munge first:
    apt-get install -y slurmctld slurmd slurm-client munge"
fi
# slurmd starts each job as the user who submitted it, which needs root.
[[ $(id -u) -eq 0 ]] || die "must run as root (slurmd launches jobs as their owner)"

mkdir -p "$state"/{munge,ctld,spool,run,log,dev}
state=$(cd "$state" && pwd -P)
conf=$state/slurm.conf
export SLURM_CONF=$conf
# first line of slurm.conf.in: tells our configs from a real cluster's
marker="One-node SLURM cluster for genreflow's tests"
# munged refuses a socket folder that not everyone can enter.
chmod 755 "$state" "$state/munge"

# is_running PIDFILE NAME: the recorded pid is alive and is still NAME (not a
# recycled pid).
is_running() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm ]] || return 1
    [[ $(<"/proc/$pid/comm") == "$2" ]]
}

# fill TEMPLATE: replace each @KEY@ by the value of the shell variable fill_KEY.
fill() {
    local text key value
    text=$(<"$1")
    for key in STATE HOST CTLD_PORT SLURMD_PORT NODE_HW REAL_MEMORY GPU_TYPE N_GPUS LAST_GPU; do
        value=fill_$key
        text=${text//@$key@/${!value}}
    done
    printf '%s\n' "$text"
}

# --- munge: its own key, socket, pid and log in the state folder --------------
key=$state/munge/munge.key
if [[ ! -s $key ]]; then
    mungekey --create --keyfile="$key"
fi
chmod 400 "$key"
if ! is_running "$state/run/munged.pid" munged; then
    # a socket left by a killed munged would block the new one
    rm -f "$state/munge/munge.socket" "$state/munge/munge.socket.lock"
    munged --socket="$state/munge/munge.socket" --key-file="$key" \
        --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
        --seed-file="$state/munge/munged.seed" ||
        die "munged did not start; see $state/log/munged.log"
fi

# --- configuration --------------------------------------------------------------
host=$(hostname -s)
# slurmd -C prints this machine as a node line: NodeName=h CPUs=.. Boards=..
# SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..; the
# node line must repeat the CPU layout exactly or the node is drained.
detected=$(slurmd -C | head -n 1)
node_hw=$(tr ' ' '\n' <<<"$detected" | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
detected_memory=$(grep -oE 'RealMemory=[0-9]+' <<<"$detected" | cut -d= -f2)
[[ -n $node_hw && -n $detected_memory ]] || die "could not read the node layout from 'slurmd -C': $detected"
real_memory=$((detected_memory * 9 / 10))
((real_memory >= min_declared_memory_mb)) || real_memory=$min_declared_memory_mb

fill_STATE=$state fill_HOST=$host fill_CTLD_PORT=$ctld_port fill_SLURMD_PORT=$slurmd_port
fill_NODE_HW=${node_hw% } fill_REAL_MEMORY=$real_memory fill_GPU_TYPE=$gpu_type
fill_N_GPUS=$n_gpus fill_LAST_GPU=$((n_gpus - 1))
fill "$here/slurm.conf.in" >"$conf.new"
fill "$here/gres.conf.in" >"$state/gres.conf.new"
for ((i = 0; i < n_gpus; i++)); do
    ln -sfn /dev/null "$state/dev/nvidia$i"
done
if [[ -f $conf ]] && ! cmp -s "$conf" "$conf.new" && is_running "$state/run/slurmctld.pid" slurmctld; then
    echo "cluster/start.sh: warning: the configuration changed; run cluster/stop.sh, then start.sh" >&2
fi
mv "$conf.new" "$conf"
mv "$state/gres.conf.new" "$state/gres.conf"
echo "export SLURM_CONF=$conf" >"$state/env.sh"

# Snakemake's job step drops every SLURM_* variable, SLURM_CONF included,
# before calling srun inside a job, so srun reads the default config path:
# point it at ours, but never over a machine's own SLURM configuration.
system_conf=/etc/slurm/slurm.conf
if [[ -L $system_conf || ! -e $system_conf ]]; then
    if [[ -L $system_conf ]] && ! grep -qs "$marker" "$system_conf"; then
        die "$system_conf links to a SLURM config that is not a genreflow test cluster's; not replacing it"
    fi
    if [[ $(readlink "$system_conf" 2>/dev/null) != "$conf" ]]; then
        [[ -L $system_conf ]] && echo "cluster/start.sh: warning: $system_conf pointed at $(readlink "$system_conf"); now at $conf" >&2
        mkdir -p "$(dirname "$system_conf")"
        ln -sfn "$conf" "$system_conf"
    fi
else
    die "$system_conf exists (this machine has its own SLURM); jobs would read it instead of $conf"
fi

# --- daemons --------------------------------------------------------------------
if ! is_running "$state/run/slurmctld.pid" slurmctld; then
    # -c: start from a clean state; jobs of an earlier run are gone with it.
    slurmctld -c -f "$conf" || die "slurmctld did not start; see $state/log/slurmctld.log"
fi
if ! is_running "$state/run/slurmd.pid" slurmd; then
    slurmd -f "$conf" || die "slurmd did not start; see $state/log/slurmd.log"
fi

# --- wait until the node takes jobs ----------------------------------------------
node_state=""
resumed=0
for ((try = 0; try < 120; try++)); do
    node_state=$(sinfo -h -o %T -n "$host" 2>/dev/null | head -n 1) || true
    case $node_state in
    idle | mixed | allocated) break ;;
    down* | drain*)
        # a node left down by an earlier run comes back once asked
        if ((!resumed)); then
            scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
            resumed=1
        fi
        ;;
    esac
    sleep 0.25
done
case $node_state in
idle | mixed | allocated) ;;
*)
    sinfo -R >&2 || true
    tail -n 20 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 || true
    die "node $host is '${node_state:-unreachable}', not idle, after 30 s (logs in $state/log)"
    ;;
esac
echo "SLURM cluster up (node $host: $node_state, ${n_gpus} fake GPUs). Use it with:"
echo "  export SLURM_CONF=$conf"
