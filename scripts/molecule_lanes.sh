#!/usr/bin/env bash
# Run the Molecule scenarios in one lane, or in two lanes at once, each lane
# on its own copy of the lab fleet (inventories/lab, molecule/resources/lab-b)
# with its own Molecule state: the suite then takes the longer lane's time,
# when the machine has the CPU for both (on 2 cores it does not: see the
# Makefile's MOLECULE_LANES). Every output line carries its lane's name.
#
# The controller's side (molecule, ansible-playbook, pytest) must not starve
# the fleet, as it cannot on a real fleet, where it has its own machine.
# Under cgroup v1 (docker's cgroupfs driver, as on these machines) all the
# containers together share the CPU weight of one process (the "docker"
# group, 1024 shares) against every process of the root group: two lanes'
# playbooks outweighed them and the traffic probe stopped for 1.5 s. So two
# lanes run in a cgroup of their own with a quarter of docker's weight, and
# every lane at nice 10 (which is all that is needed under cgroup v2, where the
# containers' slice and the controller's have equal weights).
#   molecule_lanes.sh STATE_DIR "SCENARIOS OF LANE A" ["SCENARIOS OF LANE B"]
#
# Without lane B, lane A runs alone (every scenario, one fleet).
set -u -o pipefail

state=$1
lane_a=$2
lane_b=${3:-}

run_lane() {
    local name=$1 inventory=$2 scenarios=$3 start rc
    local args=(-s default)
    for scenario in $scenarios; do args+=(-s "$scenario"); done
    start=$(date +%s)
    FLEET_LAB_INVENTORY=$inventory MOLECULE_EPHEMERAL_DIRECTORY=$state/$name \
        nice -n 10 molecule test --shared-state "${args[@]}" 2>&1 | sed -u "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    echo "[$name] molecule ($scenarios) exit $rc after $(( $(date +%s) - start )) s"
    return "$rc"
}

CGROUP_V1_CPU=/sys/fs/cgroup/cpu
CONTROLLER_CGROUP=$CGROUP_V1_CPU/fleet-rollout-controller
# One lane never starved the probe, and the cgroup slowed it by ~4 min (47.7 against 43.5): two lanes only.
if [ -n "$lane_b" ] && [ -w "$CGROUP_V1_CPU/cgroup.procs" ] && mkdir -p "$CONTROLLER_CGROUP" \
        && echo 256 > "$CONTROLLER_CGROUP/cpu.shares" && echo $$ > "$CONTROLLER_CGROUP/cgroup.procs"; then
    echo "molecule lanes: the controller side runs in $CONTROLLER_CGROUP (256 CPU shares, docker's containers 1024)"
fi

rm -rf "$state"
b=""
# Interrupted, the lanes stop too (each molecule destroys its fleet as it ends).
trap 'kill -TERM $a $b 2>/dev/null' INT TERM
run_lane lab-a inventories/lab "$lane_a" & a=$!
rc_b=0
if [ -n "$lane_b" ]; then
    run_lane lab-b molecule/resources/lab-b "$lane_b" & b=$!
    wait "$b" || rc_b=$?
fi
rc_a=0; wait "$a" || rc_a=$?
if [ -d "$CONTROLLER_CGROUP" ]; then
    echo $$ > "$CGROUP_V1_CPU/cgroup.procs"
    rmdir "$CONTROLLER_CGROUP" 2>/dev/null || true
fi
[ "$rc_a" = 0 ] && [ "$rc_b" = 0 ]
