#!/usr/bin/env bash
# A one-node SLURM cluster with job accounting on this machine, as root, without systemd.
#
# Read it as a recipe: Debian's packages, then the daemons in the order they need each
# other: munged (authentication) → MariaDB (the accounting database) → slurmdbd
# (accounting; `sacct` asks it) → slurmctld (the controller) → slurmd (the node).
# One node with this machine's CPUs and memory, one partition `debug`. Idempotent: a
# daemon already running is left alone. Stop everything with .ci/slurm-down.sh.
#
#   sudo .ci/slurm-up.sh       # then: sinfo; sbatch --wrap hostname; sacct
set -euo pipefail

CLUSTER=mila-bench-ci
PARTITION=debug
DB_PASS=slurm-ci  # a local, throw-away database reachable only through this machine's socket
NODE=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
say() { echo "slurm-up: $*"; }
running() { pgrep -x "$1" >/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq "$((limit * 5))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "slurm-up: $what did not come up within ${limit}s" >&2; return 1
}

# 1. Packages (munge, MariaDB, SLURM's controller/node/accounting daemons and clients).
if ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends slurm-wlm slurmdbd munge mariadb-server
fi
mkdir -p /etc/slurm /var/log/slurm /var/spool/slurmctld /var/spool/slurmd /run/munge /run/mysqld
chown slurm:slurm /var/log/slurm /var/spool/slurmctld
chown munge:munge /run/munge
chown mysql:mysql /run/mysqld

# 2. munged: every daemon and client authenticates through it (one key, made once).
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
running munged || runuser -u munge -- /usr/sbin/munged
wait_for 10 munged sh -c 'munge -n | unmunge'

# 3. MariaDB, with a database user for slurmdbd.
running mariadbd || (runuser -u mysql -- /usr/sbin/mariadbd --skip-networking=0 --bind-address=127.0.0.1 \
  >/var/log/slurm/mariadb.log 2>&1 &)
wait_for 30 MariaDB mariadb -e 'select 1'
mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

# 4. Config: accounting through slurmdbd; processes tracked without cgroups (works in containers).
cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
EOF
chown slurm:slurm /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf

cat >/etc/slurm/slurm.conf <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
# A dying job is reported within seconds (a job's steps are polled, the node pinged).
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

# 5. slurmdbd (accounting), then register the cluster so jobs are accounted from the first.
running slurmdbd || slurmdbd
wait_for 30 slurmdbd sacctmgr -n list cluster
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER"

# 6. slurmctld (controller), then slurmd (this node); wait until the node is idle.
running slurmctld || slurmctld
wait_for 30 slurmctld scontrol ping
running slurmd || slurmd
wait_for 60 "node $NODE" sh -c "sinfo -h -n $NODE -o %t | grep -qx idle"
scontrol update nodename="$NODE" state=resume 2>/dev/null || true
say "cluster $CLUSTER up: partition $PARTITION, node $NODE with $CPUS CPUs, ${MEM_MB} MB; accounting via slurmdbd"
sinfo
