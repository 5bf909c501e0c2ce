# Shared by slurm/*.sbatch (sourced, not run; PROJECT_DIR is set by the caller). Slurm runs a copy of the batch
# script from its spool directory, so each script first locates the repository: $PROJECT_DIR, else the submit
# directory, else the directory of the submitted script (from `scontrol show job`).
#
# Environment variables read here:
#   VENV          virtual environment to use (default: $PROJECT_DIR/.venv if it exists, else the active Python)
#   PYTHON        explicit interpreter (overrides VENV)

log() { echo "[${LOG_NAME:-slurm} $(date -u +%Y-%m-%dT%H:%M:%SZ) job ${SLURM_JOB_ID:-?}] $*" >&2; }
die() { log "ERROR: $*"; exit "${2:-2}"; }

find_python() {
    if [[ -n "${PYTHON:-}" ]]; then
        echo "$PYTHON"
    elif [[ -n "${VENV:-}" ]]; then
        [[ -x "$VENV/bin/python" ]] || die "VENV=$VENV has no bin/python"
        echo "$VENV/bin/python"
    elif [[ -x "$PROJECT_DIR/.venv/bin/python" ]]; then
        echo "$PROJECT_DIR/.venv/bin/python"
    elif [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
        echo "$VIRTUAL_ENV/bin/python"
    elif command -v python3 >/dev/null; then
        command -v python3
    else
        die "no Python found: set VENV=/path/to/venv"
    fi
}

# Sets PY and makes the project importable (`-m trainer` etc.) whatever the working directory.
setup_env() {
    PY=$(find_python) || exit 2
    export PROJECT_DIR PY PYTHONUNBUFFERED=1
    export PYTHONPATH="$PROJECT_DIR${PYTHONPATH:+:$PYTHONPATH}"
}
