#!/usr/bin/env bash
# CI: fuzz the API against its own OpenAPI document with schemathesis, on SQLite and (when
# LEADROUTER_TEST_POSTGRES_URL is set) on PostgreSQL. Every check is on: no server error, no response outside
# the documented schema or statuses, schema-valid requests accepted, schema-violating ones refused.
#
# Usage: .ci/schemathesis.sh [path of a built leadrouter binary, default target/debug/leadrouter]
# Builds nothing. LEADROUTER_FUZZ_EXAMPLES (default 200) bounds the test cases per operation and phase;
# LEADROUTER_FUZZ_SEED replays a run (each run prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
BINARY=$(realpath "${1:-target/debug/leadrouter}")
EXAMPLES=${LEADROUTER_FUZZ_EXAMPLES:-200}
[ -x "$BINARY" ] || { echo "schemathesis: no leadrouter binary at $BINARY (build it first)" >&2; exit 2; }

if [ "$(schemathesis --version 2>/dev/null | awk '{ print $NF }')" != "$SCHEMATHESIS_VERSION" ]; then
    echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION"
    python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK=$(mktemp -d)
SERVER_PID=
PG_SCHEMA=
cleanup() {
    stop_server
    if [ -n "$PG_SCHEMA" ]; then
        PGOPTIONS=--client-min-messages=warning psql "$LEADROUTER_TEST_POSTGRES_URL" -q -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The document gives phone numbers a format of its own, `phone` (validity is libphonenumber's, no regex can
# say it); this tells schemathesis how to write valid ones.
cat > "$WORK/leadrouter_hooks.py" <<'EOF'
import re
import uuid

import schemathesis
from hypothesis import strategies as st

VALID_IDEMPOTENCY_KEY = re.compile(r"^[!-~]([ -~]{0,253}[!-~])?$")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # A client sends each request with a key of its own; generated valid keys repeat across different bodies,
    # which leadrouter rightly refuses (422, tested in tests/idempotency.rs). Malformed keys are kept as they
    # are, for the negative tests.
    for name in list(case.headers or {}):
        if name.lower() == "idempotency-key" and VALID_IDEMPOTENCY_KEY.match(str(case.headers[name])):
            case.headers[name] = str(uuid.uuid4())


def digits(n):
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


schemathesis.openapi.format(
    "phone",
    st.one_of(
        # Russian mobiles in the notations the README lists (the default region is RU).
        st.builds(lambda a, b: f"+7 (9{a}) {b[:3]}-{b[3:5]}-{b[5:]}", digits(2), digits(7)),
        st.builds(lambda a, b: f"8 9{a} {b[:3]}-{b[3:5]}-{b[5:]}", digits(2), digits(7)),
        st.builds(lambda a, b: f"+79{a}{b}", digits(2), digits(7)),
        # Foreign numbers, written with their country code.
        st.builds(lambda d: f"+44 20 7946 0{d}", digits(3)),
        st.builds(lambda d: f"+1 201 555 01{d}", digits(2)),
    ),
)

# Webhook URLs: `http-url` is a format of our own (the URL standard's parser decides). Nothing listens on the
# discard port, so the deliveries to these webhooks fail fast and stay out of the way.
schemathesis.openapi.format(
    "http-url",
    st.builds(
        lambda scheme, path: f"{scheme}://127.0.0.1:9/{path}",
        st.sampled_from(["http", "https"]),
        st.text(alphabet="abcxyz0123456789-_", max_size=20),
    ),
)
EOF

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

# start_server DATABASE_URL: starts leadrouter on a free port and sets ADDRESS once it answers.
start_server() {
    local log="$WORK/server.log"
    NO_COLOR=1 DATABASE_URL="$1" LEADROUTER_BIND=127.0.0.1:0 "$BINARY" >"$log" 2>&1 &
    SERVER_PID=$!
    ADDRESS=
    for _ in $(seq 1 150); do
        ADDRESS=$(sed -n 's/.*leadrouter is serving.*address=\([0-9.:]*\).*/\1/p' "$log" | head -n 1)
        if [ -n "$ADDRESS" ] && curl -sf "http://$ADDRESS/openapi.json" >/dev/null; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    echo "schemathesis: leadrouter did not start on $1" >&2
    cat "$log" >&2
    return 1
}

# fuzz BACKEND DATABASE_URL: with an admin key, as a secured deployment runs, so that schemathesis' own
# authentication checks (no key, a wrong key → 401) hold too.
fuzz() {
    local backend=$1 output="$WORK/schemathesis-$1.txt" status=0 token
    token=$(DATABASE_URL="$2" RUST_LOG=off "$BINARY" keys create --scope admin --name schemathesis | tail -n 1)
    start_server "$2" || return 1
    echo "schemathesis: $backend, http://$ADDRESS/openapi.json"
    # The stateful phase is left out: its inferred links give false positives that no server could avoid —
    # a link from a contact's `operator_id: null` to /operators/{id} is sent as /operators/None, and a 404
    # for an unknown operator_id in the body of POST /sources/{id}/operators is read as "the source just
    # created is not found".
    (cd "$WORK" && SCHEMATHESIS_HOOKS=leadrouter_hooks timeout 900 schemathesis run \
        "http://$ADDRESS/openapi.json" \
        --checks all \
        --phases examples,coverage,fuzzing \
        --max-examples "$EXAMPLES" \
        ${LEADROUTER_FUZZ_SEED:+--seed "$LEADROUTER_FUZZ_SEED"} \
        --request-timeout 10 \
        --header "Authorization: Bearer $token" \
        --generation-database none \
        --no-color) >"$output" 2>&1 || status=$?
    stop_server
    # The failures in full, then schemathesis' summary.
    if [ "$status" -ne 0 ]; then
        sed -n '/^=* FAILURES =*$/,/^=* SUMMARY =*$/p' "$output"
        sed -n '/^=* ERRORS =*$/,/^=* SUMMARY =*$/p' "$output"
        echo "--- leadrouter's log (last 40 lines)"
        tail -n 40 "$WORK/server.log"
    fi
    sed -n '/^=* SUMMARY =*$/,$p' "$output"
    local generated
    generated=$(sed -n 's/^ *\([0-9]*\) generated.*/\1/p' "$output" | tail -n 1)
    echo "schemathesis ($backend): ${generated:-?} test cases generated, exit status $status"
    return "$status"
}

failed=0
fuzz sqlite "sqlite://$WORK/fuzz.db" || failed=1

if [ -n "${LEADROUTER_TEST_POSTGRES_URL:-}" ]; then
    PG_SCHEMA="leadrouter_fuzz_$$_$RANDOM"
    PGOPTIONS=--client-min-messages=warning psql "$LEADROUTER_TEST_POSTGRES_URL" -q \
        -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" -c "CREATE SCHEMA $PG_SCHEMA"
    case "$LEADROUTER_TEST_POSTGRES_URL" in
        *\?*) pg_url="$LEADROUTER_TEST_POSTGRES_URL&options[search_path]=$PG_SCHEMA" ;;
        *) pg_url="$LEADROUTER_TEST_POSTGRES_URL?options[search_path]=$PG_SCHEMA" ;;
    esac
    fuzz postgres "$pg_url" || failed=1
else
    echo "schemathesis: LEADROUTER_TEST_POSTGRES_URL is not set; PostgreSQL not fuzzed"
fi

exit "$failed"
