#!/usr/bin/env bash
# Sets up and runs the demo on the embedded default: SQLite and a file-system broker under var/,
# no external server. Starts the web server, a Celery worker, beat and the simulators; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
PY=.venv/bin/python
PORT=${PORT:-8000}
mkdir -p var/log

echo "==> preparing the database and demo data"
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py demo_setup

pids=()
names=()
start() {
  local name=$1; shift
  "$@" >"var/log/$name.log" 2>&1 &
  pids+=($!); names+=("$name")
  echo "    $name (pid $!, log var/log/$name.log)"
}
stop_all() {
  trap - EXIT INT TERM
  echo; echo "==> stopping demo processes"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop_all EXIT INT TERM

echo "==> starting processes"
for proc in $(sed -n 's/^\([a-z_]*\):.*/\1/p' scripts/demo-procs); do
  cmd=$(sed -n "s/^$proc: //p" scripts/demo-procs)
  start "$proc" bash -c "exec ${cmd//\$PORT/$PORT}"
done

for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
echo
echo "==> 演示已启动: http://127.0.0.1:$PORT/   (运行状态: http://127.0.0.1:$PORT/healthz)"
curl -s "http://127.0.0.1:$PORT/healthz" || true
echo
echo "    按 Ctrl-C 停止全部进程。"
set +e
wait -n "${pids[@]}"
echo "a demo process exited; see var/log/ — stopping the others" >&2
