#!/bin/sh
# The Temporal namespace TrainEasy uses, created if it does not exist yet (the app's launcher then sets its
# history retention to TRAINEASY_HISTORY_DAYS). Run by docker-compose.yml's temporal-namespace once the server answers.
set -eu
: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS must name the Temporal server}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"

tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "Temporal at $TEMPORAL_ADDRESS did not become healthy" >&2
        exit 1
    fi
    sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
    echo "namespace $NAMESPACE exists"
else
    temporal operator namespace create --namespace "$NAMESPACE" --retention 720h --address "$TEMPORAL_ADDRESS"
    echo "namespace $NAMESPACE created"
fi
