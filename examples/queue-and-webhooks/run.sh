#!/usr/bin/env bash
# Run from the repository root after `cargo build --release`: bash examples/queue-and-webhooks/run.sh
# Needs python3 and curl; ports 8300 and 9100 free.
# End-to-end: contacts waiting, an operator freed, the queue draining, the webhooks received.
set -u
BIN=${LEADROUTER:-target/release/leadrouter}
DIR=$(mktemp -d)
API=http://127.0.0.1:8300
python3 "$(dirname "$0")/receiver.py" 9100 'demo-secret-0123456789' 2 > "$DIR/receiver.log" 2>&1 &
RECEIVER=$!
DATABASE_URL=sqlite://$DIR/crm.db LEADROUTER_BIND=127.0.0.1:8300 LEADROUTER_WEBHOOK_RETRY_BASE_MS=500 \
  RUST_LOG=leadrouter=warn $BIN > "$DIR/server.log" 2>&1 &
SERVER=$!
sleep 1
j() { python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps($1, ensure_ascii=False))"; }
echo '$ curl -X POST /operators/ {"name": "Анна", "max_load": 1}'
curl -s -X POST $API/operators/ -H 'Content-Type: application/json' -d '{"name": "Анна", "max_load": 1}' | j '{k: d[k] for k in ("id","name","max_load")}'
echo '$ curl -X POST /sources/ {"name": "Telegram Bot"}  and link Анна with weight 10'
curl -s -X POST $API/sources/ -H 'Content-Type: application/json' -d '{"name": "Telegram Bot"}' | j '{k: d[k] for k in ("id","name")}'
curl -s -X POST $API/sources/1/operators -H 'Content-Type: application/json' -d '{"operator_id": 1, "weight": 10}' | j 'd'
echo '$ curl -X POST /webhooks {"url": "http://127.0.0.1:9100/hook", "events": [all four], "secret": "demo-secret-0123456789"}'
curl -s -X POST $API/webhooks -H 'Content-Type: application/json' -d '{"url": "http://127.0.0.1:9100/hook", "events": ["contact.created", "contact.assigned", "contact.unassigned", "contact.status_changed"], "secret": "demo-secret-0123456789"}' | j 'd'
for who in ivan maria oleg; do
  echo "\$ curl -X POST /contacts/ {\"source_id\": 1, \"lead_external_id\": \"$who\"}"
  curl -s -X POST $API/contacts/ -H 'Content-Type: application/json' -d "{\"source_id\": 1, \"lead_external_id\": \"$who\"}" | j '{k: d[k] for k in ("id","operator_id","status","queue_position")}'
done
echo '$ curl /sources/1/queue'
curl -s $API/sources/1/queue | j '[{k: c[k] for k in ("id","lead_id","queue_position")} for c in d]'
echo '$ curl -X PATCH "/contacts/1/status?status=closed"     # Анна is freed'
curl -s -X PATCH "$API/contacts/1/status?status=closed" | j '{k: d[k] for k in ("id","operator_id","status")}'
echo '$ curl /contacts/2   # the oldest waiting contact got the slot, in the same transaction'
curl -s $API/contacts/2 | j '{k: d[k] for k in ("id","operator_id","status","queue_position")}'
echo '$ curl /sources/1/queue'
curl -s $API/sources/1/queue | j '[{k: c[k] for k in ("id","queue_position")} for c in d]'
echo '$ curl /contacts/2/history'
curl -s $API/contacts/2/history | j '[{k: e[k] for k in ("event","from_operator_id","to_operator_id","from_status","to_status","reason")} for e in d]'
sleep 4
echo '$ curl /webhooks/1/deliveries'
curl -s $API/webhooks/1/deliveries | j '[{k: e[k] for k in ("id","event_id","event_type","state","attempt_count","last_status_code")} for e in d]'
echo '$ curl /webhooks/1/deliveries/1   (attempts)'
curl -s $API/webhooks/1/deliveries/1 | j '[{k: a[k] for k in ("attempt","status_code","error","duration_ms")} for a in d["attempts"]]'
echo '--- what the receiver on 127.0.0.1:9100 got (it answers 500 to its first two requests) ---'
cat "$DIR/receiver.log"
kill $SERVER $RECEIVER
wait 2>/dev/null
rm -rf "$DIR"
