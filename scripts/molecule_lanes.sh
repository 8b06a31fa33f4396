#!/usr/bin/env bash
# Run the Molecule scenarios in two lanes at once, each lane on its own copy
# of the lab fleet (inventories/lab, molecule/resources/lab-b) with its own
# Molecule state: a strategy scenario spends most of its time waiting on
# drains, analysis windows and health gates, so two of them share 2 cores
# without starving each other, and the suite takes the longer lane's time.
# Every output line carries its lane's name.
#
# The controller's side (molecule, ansible-playbook, pytest) runs at nice 10:
# on a real fleet the controller does not share the hosts' CPUs, and here two
# lanes' playbooks at once would otherwise starve the fleet's containers
# (the traffic probe, the LBs, the apps), whose processes run at nice 0.
#
#   molecule_lanes.sh STATE_DIR "SCENARIOS OF LANE A" "SCENARIOS OF LANE B"
set -u -o pipefail

state=$1
lane_a=$2
lane_b=$3

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

rm -rf "$state"
run_lane lab-a inventories/lab "$lane_a" & a=$!
run_lane lab-b molecule/resources/lab-b "$lane_b" & b=$!
rc_a=0; wait "$a" || rc_a=$?
rc_b=0; wait "$b" || rc_b=$?
[ "$rc_a" = 0 ] && [ "$rc_b" = 0 ]
