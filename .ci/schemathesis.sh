#!/usr/bin/env bash
# CI: fuzz the API against its own OpenAPI document with schemathesis, on SQLite and (when
# LEADROUTER_TEST_POSTGRES_URL is set) on PostgreSQL. Every check is on: no server error, no response outside
# the documented schema or statuses, schema-valid requests accepted, schema-violating ones refused.
#
# Usage: .ci/schemathesis.sh [path of a built leadrouter binary, default target/debug/leadrouter]
# Builds nothing. Four runs, each on a fresh database with every phase (stateful included): SQLite and
# PostgreSQL, each with no key (the open API, no credentials) and with an admin key. LEADROUTER_FUZZ_EXAMPLES
# (default 100) bounds the test cases per operation and phase; LEADROUTER_FUZZ_SEED replays a run (each run
# prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
BINARY=$(realpath "${1:-target/debug/leadrouter}")
EXAMPLES=${LEADROUTER_FUZZ_EXAMPLES:-100}
[ -x "$BINARY" ] || { echo "schemathesis: no leadrouter binary at $BINARY (build it first)" >&2; exit 2; }

if [ "$(schemathesis --version 2>/dev/null | awk '{ print $NF }')" != "$SCHEMATHESIS_VERSION" ]; then
    echo "schemathesis: installing schemathesis $SCHEMATHESIS_VERSION"
    python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

WORK=$(mktemp -d)
PG_SCHEMAS=()
cleanup() {
    for schema in "${PG_SCHEMAS[@]}"; do
        PGOPTIONS=--client-min-messages=warning psql "$LEADROUTER_TEST_POSTGRES_URL" -q -c "DROP SCHEMA IF EXISTS $schema CASCADE" || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Hooks, each for something no OpenAPI document can say, so that a valid request stays valid:
# - phone numbers have a format of our own, `phone`: libphonenumber decides which numbers are valid, which no
#   regular expression can say; without the hook schemathesis writes arbitrary strings, rightly refused;
# - an Idempotency-Key names one request: sent again with a different body it is refused with 422, as the IETF
#   draft (draft-ietf-httpapi-idempotency-key-header) says, and schemathesis repeats its generated keys;
# - webhook URLs have a pattern that schemathesis can write valid URLs from; the hook only points them at the
#   discard port of 127.0.0.1, so that fuzzing never posts events to hosts on the internet;
# - time zones have a format of our own, `iana-time-zone`: the time-zone database says which names exist;
# - a period of time off must end after it starts, which no schema can say: a valid body whose ends_at is not
#   after its starts_at gets them swapped (or a day added, when equal);
# - our formats are checked for what they are when schemathesis decides whether a body it mutated is still
#   valid (below, `_one_of_our_formats`).
cat > "$WORK/leadrouter_hooks.py" <<'EOF'
import datetime
import re
import uuid
import zoneinfo

import schemathesis
import schemathesis.specs.openapi.negative as negative
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
    body = case.body
    if case.method.upper() == "POST" and case.path.endswith("/time-off") and isinstance(body, dict):
        try:
            starts = datetime.datetime.fromisoformat(str(body["starts_at"]).replace("Z", "+00:00"))
            ends = datetime.datetime.fromisoformat(str(body["ends_at"]).replace("Z", "+00:00"))
        except (KeyError, ValueError, TypeError):
            return
        try:
            if ends == starts:
                body["ends_at"] = (ends + datetime.timedelta(days=1)).isoformat()
            elif ends < starts:
                body["starts_at"], body["ends_at"] = body["ends_at"], body["starts_at"]
        except OverflowError:
            pass


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

schemathesis.openapi.format(
    "iana-time-zone",
    st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe"]),
)

# Webhook URLs on the discard port: nothing listens there, so the deliveries fail fast and stay local.
schemathesis.openapi.format(
    "http-url",
    st.builds(
        lambda scheme, path: f"{scheme}://127.0.0.1:9/{path}",
        st.sampled_from(["http", "https"]),
        st.text(alphabet="abcxyz0123456789-_", max_size=20),
    ),
)

# Schemathesis keeps a mutated body as a negative case only if it no longer validates, and, knowing no custom
# format, counts every value of one as invalid: so a body with any valid time zone, phone or webhook URL in it
# counted as invalid whatever the mutation did, and a mutation that left it valid (`null` for a nullable
# away_until, with its `format` dropped) was sent as negative and reported as accepted (ST201, seed
# 172386136543515705389555108772836049516, POST /operators). Here a value of one of our formats is invalid only
# if it is none of them, as the strategies above write them; a mutation of such a field to something else is
# still recognised as invalid. (schemathesis 4.32.5, `_always_invalid` in specs/openapi/negative.)
PHONE = re.compile(
    r"^(\+7 \(9\d\d\) \d{3}-\d\d-\d\d|8 9\d\d \d{3}-\d\d-\d\d|\+79\d{9}|\+44 20 7946 0\d{3}|\+1 201 555 01\d\d)$"
)
HTTP_URL = re.compile(r"^https?://127\.0\.0\.1:9/[abcxyz0-9_-]*$")
TIME_ZONES = zoneinfo.available_timezones() | {"UTC"}


def _one_of_our_formats(value):
    return isinstance(value, str) and (value in TIME_ZONES or bool(PHONE.match(value)) or bool(HTTP_URL.match(value)))


assert hasattr(negative, "_always_invalid"), "schemathesis changed: revisit _one_of_our_formats"
negative._always_invalid = _one_of_our_formats
EOF

# fuzz NAME DATABASE_URL open|keyed: serves a fresh database and runs every phase, stateful included, over it.
# `open`: no key exists, the API and its document are open, and no credentials are sent, as a newcomer runs it;
# `keyed`: with an admin key, as a secured deployment runs, so that schemathesis' own authentication checks (no
# key, a wrong key → 401) hold too. Runs in a subshell of its own, its server stopped however it ends.
fuzz() (
    local name=$1 database_url=$2 mode=$3
    local output="$WORK/schemathesis-$name.txt" log="$WORK/server-$name.log" status=0 address= server=
    local auth=()
    trap '[ -n "$server" ] && stop_server "$server"' EXIT
    if [ "$mode" = keyed ]; then
        local token
        token=$(DATABASE_URL="$database_url" RUST_LOG=off "$BINARY" keys create --scope admin --name schemathesis | tail -n 1)
        auth=(--header "Authorization: Bearer $token")
    fi
    NO_COLOR=1 DATABASE_URL="$database_url" LEADROUTER_BIND=127.0.0.1:0 "$BINARY" >"$log" 2>&1 &
    server=$!
    for _ in $(seq 1 150); do
        address=$(sed -n 's/.*leadrouter is serving.*address=\([0-9.:]*\).*/\1/p' "$log" | head -n 1)
        if [ -n "$address" ] && curl -sf "http://$address/openapi.json" >/dev/null; then
            break
        fi
        address=
        kill -0 "$server" 2>/dev/null || break
        sleep 0.2
    done
    if [ -z "$address" ]; then
        echo "schemathesis ($name): leadrouter did not start" >&2
        cat "$log" >&2
        return 1
    fi
    (cd "$WORK" && SCHEMATHESIS_HOOKS=leadrouter_hooks timeout 900 schemathesis --config-file "$WORK/schemathesis.toml" run \
        "http://$address/openapi.json" \
        --checks all \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "$EXAMPLES" \
        ${LEADROUTER_FUZZ_SEED:+--seed "$LEADROUTER_FUZZ_SEED"} \
        --request-timeout 10 \
        "${auth[@]}" \
        --generation-database none \
        --no-color) >"$output" 2>&1 || status=$?
    stop_server "$server"
    server=
    {
        # The failures in full, then schemathesis' summary.
        if [ "$status" -ne 0 ]; then
            sed -n '/^=* FAILURES =*$/,/^=* SUMMARY =*$/p' "$output"
            sed -n '/^=* ERRORS =*$/,/^=* SUMMARY =*$/p' "$output"
            echo "--- leadrouter's log (last 40 lines)"
            tail -n 40 "$log"
        fi
        sed -n '/^=* SUMMARY =*$/,$p' "$output"
        local generated
        generated=$(sed -n 's/^ *\([0-9]*\) generated.*/\1/p' "$output" | tail -n 1)
        echo "schemathesis ($name): ${generated:-?} test cases generated, exit status $status"
    } >"$WORK/report-$name.txt"
    return "$status"
)

# The stateful phase follows the links the document declares (from each created resource to the operations on
# it), and the ones schemathesis infers from Location headers. Its dependency analysis is off: it links every
# field named like an id to the operations taking one, nullable ones too, and sends a null as the text `None`
# (`DELETE /operators/None` after a contact that waits, with `operator_id: null`), which the API rightly
# refuses with 422.
cat > "$WORK/schemathesis.toml" <<'EOF'
[phases.stateful.inference]
algorithms = ["location-headers"]
EOF

stop_server() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# A fresh PostgreSQL schema for each run: postgres_url SCHEMA creates it and prints the URL that uses it.
postgres_url() {
    PGOPTIONS=--client-min-messages=warning psql "$LEADROUTER_TEST_POSTGRES_URL" -q \
        -c "DROP SCHEMA IF EXISTS $1 CASCADE" -c "CREATE SCHEMA $1" >&2
    case "$LEADROUTER_TEST_POSTGRES_URL" in
        *\?*) echo "$LEADROUTER_TEST_POSTGRES_URL&options[search_path]=$1" ;;
        *) echo "$LEADROUTER_TEST_POSTGRES_URL?options[search_path]=$1" ;;
    esac
}

# The runs, two at a time (the backends side by side, one server and one schemathesis each).
RUNS=("sqlite-open sqlite://$WORK/open.db open" "sqlite-keyed sqlite://$WORK/keyed.db keyed")
if [ -n "${LEADROUTER_TEST_POSTGRES_URL:-}" ]; then
    PG_SCHEMAS=("leadrouter_fuzz_$$_open" "leadrouter_fuzz_$$_keyed")
    RUNS=(
        "${RUNS[0]}" "postgres-open $(postgres_url "${PG_SCHEMAS[0]}") open"
        "${RUNS[1]}" "postgres-keyed $(postgres_url "${PG_SCHEMAS[1]}") keyed"
    )
else
    echo "schemathesis: LEADROUTER_TEST_POSTGRES_URL is not set; PostgreSQL not fuzzed"
fi

failed=0
for ((i = 0; i < ${#RUNS[@]}; i += 2)); do
    pids=()
    names=()
    for run in "${RUNS[@]:i:2}"; do
        read -r name url mode <<<"$run"
        echo "schemathesis: $name"
        fuzz "$name" "$url" "$mode" &
        pids+=($!)
        names+=("$name")
    done
    for j in "${!pids[@]}"; do
        wait "${pids[j]}" || failed=1
        cat "$WORK/report-${names[j]}.txt" 2>/dev/null || true
    done
done

exit "$failed"
