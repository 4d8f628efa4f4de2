#!/usr/bin/env bash
# The scale run, in one command: a synthetic store of N records, then the query benchmark and the
# load test against `kg serve` on it.
#
#   benchmarks/scale.sh            # 100,000 records (var/synth-100k.zip, var/scale-100k/)
#   benchmarks/scale.sh 10000      # 10,000 records  (var/synth-10k.zip,  var/scale-10k/)
#
# Steps: generate the synthetic ZIP with benchmarks/synth.py (reused when it exists); `kg build`
# it into OUT/store (reused when a store is live there; REBUILD=1 builds again), timed with its
# peak memory; the query benchmark (it starts and stops its own servers: kg serve with the cache
# off and on, oxigraph serve, and Virtuoso when installed); then `kg serve` is started here on a
# free loopback port, the load test runs against it twice (as deployed, then a second server with
# the cache off), and the server is stopped. Results: OUT/*.md (tables) and OUT/*.json (figures).
# Environment: SEED (1), OUT (var/scale-<label>), REBUILD (0), SECONDS_LOAD (30), CLIENTS (16).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-100000}
if (( N % 1000 == 0 )); then LABEL="$((N / 1000))k"; else LABEL="$N"; fi
SEED=${SEED:-1}
OUT=${OUT:-var/scale-$LABEL}
ZIP=var/synth-$LABEL.zip
STORE=$OUT/store
PY=.venv/bin/python
mkdir -p "$OUT"

if [[ -f "$ZIP" ]]; then
  echo "reusing $ZIP"
else
  $PY benchmarks/synth.py --count "$N" --seed "$SEED" --out "$ZIP"
fi

if [[ "${REBUILD:-0}" == 1 || ! -e "$STORE" ]]; then
  echo "building $STORE from $ZIP (log: $OUT/build.log)"
  # --allow-invalid: the generator makes some records with violations on purpose; they are reported.
  /usr/bin/time -v .venv/bin/kg build "$ZIP" --store "$STORE" --no-dumps --allow-invalid > "$OUT/build.log" 2>&1
  tr "\r" "\n" < "$OUT/build.log" | grep -E "phase |^trials|Elapsed|Maximum resident"
else
  echo "reusing the store at $STORE (REBUILD=1 to build again)"
fi

VIRTUOSO=()
if command -v virtuoso-t > /dev/null; then VIRTUOSO=(--virtuoso); fi
$PY benchmarks/query_bench.py --store "$STORE" "${VIRTUOSO[@]}" --json "$OUT/query_bench.json" \
  2> "$OUT/query_bench.log" | tee "$OUT/query_bench.md"

PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/kg serve --host 127.0.0.1 --port "$PORT" --store "$STORE" > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2> /dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -sf -o /dev/null "http://127.0.0.1:$PORT/sparql"; then break; fi
  sleep 0.5
done
$PY benchmarks/load_test.py --url "http://127.0.0.1:$PORT" --clients "${CLIENTS:-16}" --seconds "${SECONDS_LOAD:-30}" \
  --json "$OUT/load.json" | tee "$OUT/load.md"
kill "$SERVER"
wait "$SERVER" 2> /dev/null || true
trap - EXIT

$PY benchmarks/load_test.py --store "$STORE" --no-cache --clients "${CLIENTS:-16}" --seconds "${SECONDS_LOAD:-30}" \
  --json "$OUT/load-no-cache.json" | tee "$OUT/load-no-cache.md"
echo "results in $OUT"
