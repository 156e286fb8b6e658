# Sourced before every recipe (tests/docs/test_recipes.py): shell functions that stand in for the commands a
# recipe cannot run here as they are, each doing the closest thing that can be checked.

# pip: no installs in a test. Checks that each extra exists and is installed (pip_check.py).
pip() { "$RECIPE_PYTHON" "$RECIPE_TOOLS/pip_check.py" "$@"; }

# curl: an HTTP error status fails the recipe (curl -s alone exits 0 on a 404 or a 500).
curl() { command curl --fail-with-body --show-error "$@"; }

# irv2 serve runs until SIGTERM: start it in the background, wait until it listens, go on with the recipe,
# and stop it (SIGTERM, a graceful drain) before the next `irv2 serve` and when the recipe ends.
RECIPE_SERVER_PID=
_recipe_stop_server() {
    if [ -n "$RECIPE_SERVER_PID" ]; then
        kill -TERM "$RECIPE_SERVER_PID" 2>/dev/null || true
        wait "$RECIPE_SERVER_PID" || echo "recipe harness: irv2 serve exited with status $?" >&2
        RECIPE_SERVER_PID=
    fi
}
trap _recipe_stop_server EXIT

# python SCRIPT and irv2: with a warm Python (tests/warm_python.py; RECIPE_WARM_PYTHON is its socket) each runs
# as a child of it, a process of its own that has torch imported already; otherwise in a fresh interpreter.
# An array, so that `"${RECIPE_RUN_PYTHON[@]}" ARGS &` is a simple command whose $! is the process itself.
if [ -n "${RECIPE_WARM_PYTHON-}" ]; then
    RECIPE_RUN_PYTHON=("$RECIPE_PYTHON" -I -S "$RECIPE_TOOLS/../warm_python.py" run "$RECIPE_WARM_PYTHON")
else
    RECIPE_RUN_PYTHON=("$RECIPE_PYTHON")
fi
irv2() {
    if [ "${1-}" != serve ]; then
        "${RECIPE_RUN_PYTHON[@]}" -m irv2 "$@"
        return
    fi
    _recipe_stop_server
    local log
    log=$(mktemp "$PWD/.serve-XXXX.log")
    "${RECIPE_RUN_PYTHON[@]}" -m irv2 "$@" 2>"$log" &
    RECIPE_SERVER_PID=$!
    for _ in $(seq 1200); do
        if grep -q '"event": "listening"' "$log"; then
            return 0
        fi
        if ! kill -0 "$RECIPE_SERVER_PID" 2>/dev/null; then
            cat "$log" >&2
            echo "recipe harness: irv2 serve $* stopped before it listened" >&2
            RECIPE_SERVER_PID=
            return 1
        fi
        sleep 0.25
    done
    cat "$log" >&2
    echo "recipe harness: irv2 serve $* did not listen within 5 minutes" >&2
    return 1
}
