#!/usr/bin/env bash
# Stop what .ci/slurm-up.sh started, in reverse order, by the pid files the daemons wrote
# (the packages, configs and accounting database stay for the next slurm-up.sh).
set -uo pipefail
for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid /run/mysqld/mysqld.pid /run/munge/munged.pid; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || continue
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  echo "slurm-down: stopped $(basename "$pidfile" .pid) ($pid)"
done
