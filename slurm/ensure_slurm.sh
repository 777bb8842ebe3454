#!/usr/bin/env bash
# A single-node Slurm cluster for the tests (Debian's slurm-wlm 22.05 with munge): install it when
# missing, write a slurm.conf for this host, start munged, slurmctld and slurmd, wait until the
# node takes jobs. Used by `make test` (target slurm) and by hand: `bash slurm/ensure_slurm.sh`.
#
# Config: proctrack/linuxproc and task/none (no cgroups in CI containers), select/cons_tres, root
# as SlurmUser. Exit 0 when `sinfo` shows the node idle; when it cannot be made to work: 1 under
# CI=true (CI must fail, not skip, the Slurm tests), else 0 with a warning (they skip).
set -uo pipefail

CACHE="${ARTIFACT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpu-kernel-artifact}"
STATE="$CACHE/slurm"
WAIT_S="${SLURM_WAIT_S:-60}"
ci=false; [[ "${CI:-}" == "true" ]] && ci=true

give_up() {
    if $ci; then echo "error: $* (CI=true: the Slurm tests cannot run, so this fails)" >&2; exit 1; fi
    echo "warning: $*; the tests that need Slurm will be skipped" >&2; exit 0
}

node_idle() { sinfo -h -N -o "%T" 2>/dev/null | grep -qE "^(idle|mixed|allocated)"; }

if command -v sinfo >/dev/null && node_idle; then exit 0; fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null || give_up "slurm-wlm/munge missing and installing them needs root and apt-get"
    echo "ensure_slurm: installing slurm-wlm and munge from Debian" >&2
    apt-get update -q >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
        || give_up "apt-get install slurm-wlm munge failed"
fi
[[ $(id -u) -eq 0 ]] || give_up "starting slurmctld/slurmd as configured here needs root"

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm /run/munge /var/log/munge /etc/munge
conf=/etc/slurm/slurm.conf
cat > "$conf.new" <<CONF
# Written by slurm/ensure_slurm.sh: a single-node cluster for the tests.
ClusterName=artifact
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
KillWait=5
MinJobAge=3600
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
mv "$conf.new" "$conf"

if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
chmod 0700 /etc/munge
pgrep -x munged >/dev/null || munged --force >/dev/null 2>&1 || su -s /bin/sh munge -c "munged --force" \
    || give_up "munged would not start"
pgrep -x slurmctld >/dev/null || setsid slurmctld >/dev/null 2>&1 < /dev/null
pgrep -x slurmd >/dev/null || setsid slurmd >/dev/null 2>&1 < /dev/null

for _ in $(seq 1 "$WAIT_S"); do
    if node_idle; then exit 0; fi
    # A node left "down" by an earlier start comes back with ReturnToService; nudge it once.
    scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    sleep 1
done
tail -n 5 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 2>/dev/null
give_up "the single-node Slurm cluster did not come up within ${WAIT_S} s (logs above)"
