#!/usr/bin/env bash
# Run a real pyfi network on the embedded default (SQLite database, SQLite
# broker and result backend, local pub/sub): no servers needed.
#
#   examples/run_network.sh            # in a fresh temporary PYFI_HOME
#   PYFI_HOME=~/.pyfi examples/run_network.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The embedded default, whatever the shell has set: never add the demo to another network.
unset PYFI_DB PYFI_BROKER PYFI_BACKEND PYFI_PUBSUB PYFI_INI PYFI_USER PYFI_PASSWORD
export PYFI_HOME=${PYFI_HOME:-$(mktemp -d /tmp/pyfi-demo.XXXXXX)}
echo "== PYFI_HOME=$PYFI_HOME"

# 1. The processor's code lives in git: make a local repository of the sample.
repo="$PYFI_HOME/sample-repo"
rm -rf "$repo" && mkdir -p "$repo" && cp "$here/processors/sample.py" "$repo/"
git -C "$repo" init -q -b main
git -C "$repo" add sample.py
git -C "$repo" -c user.name=pyfi -c user.email=pyfi@localhost commit -q -m "sample processor"

# 2. Describe the network in the database (the single source of truth).
pyfi db init
pyfi add queue -n pyfi.queue1 -t direct
pyfi add processor -n proc1 -m sample -g "$repo" -br main -w 2
pyfi add socket -n greet -q pyfi.queue1 -pn proc1 -t do_something
pyfi add socket -n shout -q pyfi.queue1 -pn proc1 -t do_this
pyfi ls processors

# 3. Start an agent: it clones the repo, builds an environment, runs a worker.
pyfi agent start -n demo-node > "$PYFI_HOME/agent.log" 2>&1 &
agent=$!
trap 'kill -TERM $agent 2>/dev/null; wait $agent 2>/dev/null || true' EXIT

# 4. Call the sockets; a shell pipe chains calls.
pyfi task run -s greet -d '"Hello World!"' --timeout 120
echo "hi there" | pyfi task run -s shout --timeout 60 | pyfi task run -s greet --timeout 60

# 5. Every call and its lifecycle events are recorded.
pyfi ls calls
last=$(pyfi ls calls --json -r 1 | python3 -c "import json,sys; print(json.load(sys.stdin)['rows'][0]['id'])")
pyfi ls call --id "$last"
pyfi ls workers

# 6. Stop the agent (SIGTERM stops its workers gracefully).
kill -TERM $agent && wait $agent || true
trap - EXIT
pyfi ls agents
echo "== done: the network ran end to end in $PYFI_HOME"
