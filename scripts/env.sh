# Shared settings for the project's scripts; sourced, not executed.
# shellcheck shell=bash
: "${ROOT:?ROOT must be set before sourcing env.sh}"
FLEET_DEFAULT_IMAGE=fleet-rollout/debian12:latest
FLEET_IMAGE=${FLEET_IMAGE:-$FLEET_DEFAULT_IMAGE}
if [ -z "${FLEET_VENV:-}" ]; then
    # Keyed by the lock file so every clone on a machine shares one venv and
    # a change of requirements gets a fresh one.
    FLEET_VENV="$HOME/.cache/fleet-rollout/venv-$(sha256sum "$ROOT/requirements.txt" | cut -c1-12)"
fi
export FLEET_IMAGE FLEET_VENV FLEET_DEFAULT_IMAGE
