#!/usr/bin/env bash
# Sets up and runs the demo on the embedded default: SQLite and a file-system broker under var/,
# no external server. Starts the platform and CA simulators, a software UKey, the web server,
# a Celery worker and beat; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the demo writes holds patient data: nothing under var/ for other users. The project's
# processes set the same umask themselves (hospital_interop/__init__.py, filemodes.py) and the
# settings create the SQLite database 0600 before migrate first connects; this covers the logs.
umask 027
scripts/bootstrap.sh
PY=.venv/bin/python
PORT=${PORT:-8000}
mkdir -p var/log
chmod 750 var var/log

pids=()
start() {  # start NAME COMMAND... : background process with its log (0600) under var/log
  local name=$1; shift
  install -m 600 /dev/null "var/log/$name.log"  # a log left by an earlier run may be 0644
  "$@" >>"var/log/$name.log" 2>&1 &
  pids+=($!)
  echo "    $name (pid $!, log var/log/$name.log)"
}
wait_for() {  # wait_for NAME URL
  for _ in $(seq 1 120); do
    curl -s -o /dev/null "$2" && return 0
    sleep 0.5
  done
  echo "$1 did not come up; see var/log/$1.log" >&2
  exit 1
}
stop_all() {
  trap - EXIT INT TERM
  echo; echo "==> 正在停止演示进程"
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "==> 演示已停止"
  exit 0
}
trap stop_all EXIT INT TERM

echo "==> preparing the database, keys and demo users"
$PY manage.py setup_keys  # before migrate: migrations seal stored patient data with the data key
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py demo_setup
$PY manage.py load_dictionaries --hospital-demo

echo "==> starting the simulators"
start platform-sim $PY -m simulators.platform --port 8701 --db var/platform-sim.sqlite3 --keys var/keys
start ca-sim $PY -m simulators.ca --port 8702 --db var/ca/ca.sqlite3
wait_for platform-sim http://127.0.0.1:8701/_sim/health
wait_for ca-sim http://127.0.0.1:8702/
$PY manage.py esign_demo

echo "==> starting the server"
# the UKey answers only the pages of this server (its origin as the browser sends it)
start ukey-agent $PY -m esign.ukey_agent serve --keystore var/ukey/lab.json --port 8710 \
  --allow-origin "http://127.0.0.1:$PORT" --allow-origin "http://localhost:$PORT"
start worker .venv/bin/celery -A hospital_interop worker --loglevel INFO --concurrency 2
start beat .venv/bin/celery -A hospital_interop beat --loglevel INFO
start lab-transfer $PY manage.py lab_transfer
start web .venv/bin/gunicorn -c python:hospital_interop.gunicorn_conf hospital_interop.wsgi --bind 127.0.0.1:$PORT --access-logfile -
wait_for web "http://127.0.0.1:$PORT/healthz"

if [ ! -e var/demo_story.done ]; then  # first start: a few days of activity through the real APIs
  $PY manage.py demo_story --base-url "http://127.0.0.1:$PORT" --sim-url http://127.0.0.1:8701 && touch var/demo_story.done
fi

echo
echo "==> 演示已启动: http://127.0.0.1:$PORT/"
echo "    运行状态: $(curl -s http://127.0.0.1:$PORT/healthz)"
echo "    市平台模拟器联调台 http://127.0.0.1:8701/  协同签名 APP（模拟手机）http://127.0.0.1:8702/app/  UKey 客户端 http://127.0.0.1:8710"
echo "    演示账号见上方（密码保存在 var/demo_logins.json）。按 Ctrl-C 停止全部进程。"
set +e
wait -n "${pids[@]}"
echo "一个演示进程意外退出，请查看 var/log/ 下的日志；正在停止其余进程" >&2
