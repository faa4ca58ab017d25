#!/usr/bin/env bash
# Upload a CSV, train a model on it, wait for the run to finish and download the model, through the REST API.
#
#   TRAINEASY_TOKEN=te_… examples/train_via_api.sh data.csv target [model] [out_dir]
#
# The token comes from your Account page in the app (shown once). TRAINEASY_API is the API's address
# (default http://localhost:$TRAINEASY_API_PORT, 8502 unless set, where `make run` serves it). Needs curl and
# python3 (to read the JSON). out_dir (default: here) is created if need be.
# Prints the run id, its progress while it trains, the test-set metrics, and the model file it wrote.
set -euo pipefail

csv=${1:?usage: $0 data.csv target [model] [out_dir]}
target=${2:?usage: $0 data.csv target [model] [out_dir]}
model=${3:-logistic_regression}
out=${4:-.}
api=${TRAINEASY_API:-http://localhost:${TRAINEASY_API_PORT:-8502}}/api/v1
[ -r "$csv" ] || { echo "cannot read $csv" >&2; exit 1; }
mkdir -p "$out"
auth="Authorization: Bearer ${TRAINEASY_TOKEN:?set TRAINEASY_TOKEN to a token from your Account page}"

# one field of a JSON document on stdin, e.g. `json dataset_id`; fails (with the API's message) if absent
json() { python3 -c 'import json, sys
text = sys.stdin.read()
if not text.strip():
    sys.exit(f"no answer from the API at {sys.argv[2]} (see the error above)")
doc = json.loads(text)
value = doc.get(sys.argv[1]) if isinstance(doc, dict) else None
if value is None:
    sys.exit(f"unexpected answer: {json.dumps(doc)[:500]}")
print(value)' "$1" "$api"; }

# 1. upload: a worker validates, stores and profiles the CSV (422 with a reason if it refuses it)
dataset=$(curl -sS --fail-with-body -H "$auth" -F "file=@${csv};type=text/csv" "$api/datasets" | json dataset_id)
echo "dataset: $dataset"

# 2. train: the same request as the Train page (parameters left out keep their defaults)
body=$(printf '{"dataset_id": "%s", "target": "%s", "model": "%s"}' "$dataset" "$target" "$model")
run=$(curl -sS --fail-with-body -H "$auth" -H "Content-Type: application/json" -d "$body" "$api/temporal/train" | json id)
echo "run: $run"

# 3. wait: server-sent events until the run closes (no polling); each status event is the run's view
curl -sS -N --fail-with-body -H "$auth" "$api/temporal/stream/$run?interval=1" | while IFS= read -r line; do
    case "$line" in
        "data: {\"kind\""*) echo "${line#data: }" | python3 -c 'import json, sys
s = json.load(sys.stdin)
r = s["run"]
print("  %-9s %-10s %5.1f%%" % (s["status"], r["stage"], r["percent"]))' ;;
        "event: end") break ;;
    esac
done

view=$(curl -sS --fail-with-body -H "$auth" "$api/temporal/status/$run")
status=$(echo "$view" | json status)
if [ "$status" != completed ]; then
    echo "the run ended $status: $(echo "$view" | python3 -c 'import json, sys; print(json.load(sys.stdin)["run"]["error"])')" >&2
    exit 1
fi
echo "metrics: $(echo "$view" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["run"]["metrics"]))')"

# 4. download: the registered model of this run (a skops file) and its card; load it in Python with
#    skops.io.load(path, trusted=card["skops_trusted"]) (the README's "Using a downloaded model")
model_id=$(curl -sS --fail-with-body -H "$auth" "$api/models" | python3 -c 'import json, sys
print(next(m["id"] for m in json.load(sys.stdin) if m["run_id"] == sys.argv[1]))' "$run")
curl -sS --fail-with-body -H "$auth" -o "$out/model-$model_id.skops" "$api/models/$model_id/download"
curl -sS --fail-with-body -H "$auth" -o "$out/model-$model_id.card.json" "$api/models/$model_id/card"
echo "model: $out/model-$model_id.skops (card: $out/model-$model_id.card.json)"
