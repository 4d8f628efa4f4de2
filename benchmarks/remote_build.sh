#!/usr/bin/env bash
# `kg build` into a standalone Oxigraph server through the Graph Store Protocol, end to end, timed:
# starts `oxigraph serve` (from the venv) on a free loopback port over a new folder, builds the given
# records into it, counts what the server holds, and stops it.
#
#   benchmarks/remote_build.sh var/synth-10k.zip [OUT_DIR]      # default OUT_DIR: var/remote-build
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:?usage: benchmarks/remote_build.sh RECORDS [OUT_DIR]}
out=${2:-var/remote-build}
rm -rf "$out" && mkdir -p "$out"
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/oxigraph serve --location "$out/oxigraph" --bind "127.0.0.1:$port" --union-default-graph \
    > "$out/oxigraph.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/query?query=ASK%7B%7D" > /dev/null && break
  sleep 0.2
done
export CTKG_REMOTE_QUERY_URL="http://127.0.0.1:$port/query" CTKG_REMOTE_UPDATE_URL="http://127.0.0.1:$port/update" \
       CTKG_REMOTE_STORE_URL="http://127.0.0.1:$port/store"
# Reports (validation, last build) go beside this run's folder, not over the live store's.
/usr/bin/time -v .venv/bin/kg build "$records" --store "$out/store" --no-dumps --allow-invalid \
    > "$out/build.log" 2>&1 || true
tr '\r' '\n' < "$out/build.log" | grep -E '^(phase .*done|trials|links|validation):|^phase|Elapsed|Maximum resident|User time|System time|Percent of CPU' | grep -v started
echo "quads on the server: $(curl -sf -H 'Accept: text/csv' --data-urlencode \
    'query=SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }' "http://127.0.0.1:$port/query" | tail -1)"
echo "server folder: $(du -sh "$out/oxigraph" | cut -f1)"
