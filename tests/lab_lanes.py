"""Which lab hosts the lab tests use, and the two lanes the lab tier runs in (no pytest, no fabfile: imported
by conftest.py before the plugins load).

The pair's lane (`lab`, `lab2`: a private link makes them a cluster) runs the modules of PAIR_MODULES,
those that need both VMs first; every other lab module runs on `lab3` alone, in the other xdist worker once
this machine's tiers are done. At most two VMs run at once (tests/lab_slots.py), so the lone lane starts its
VM when the pair's second one stops. `ROSEY_LAB_HOSTS=a,b,c` names other hosts (a and b the pair, c the lone
one); with only `a,b` the lab tier runs in one lane.
"""

from __future__ import annotations

import os

# Two lab lanes, two busy VMs at most: the pair's modules that hold both VMs (the cluster 18 min, two hosts 1,
# the rule proofs 16.5) beside this machine's tiers (about 9), then the pair's one-VM modules beside the lone
# host's shared deployment. With three busy VMs on 2 cores every lab test ran 1.3-2x slower and 1-4 of them
# ran out of their bounds in each of five runs, so a third VM waits for a slot, except while the rule proofs
# idle through their `for:` windows (tests/lab_slots.py `lending`): the lone lane starts then.
NAMES = (os.environ.get("ROSEY_LAB_HOSTS") or "lab,lab2,lab3").split(",")
# the modules that need two lab hosts on one private link or a host with a private peer (the pure test
# tests/pure/test_lab_lanes.py checks that every module using lab_host2 or private_peer is here), then the
# modules that restore their own clean guest. The faults run on the lone host's shared deployment again
# since the rule proofs joined the pair's lane (stop 35 had moved them here: 18 + 18 + 8.5 against 18 + 19).
PAIR_MODULES = ("test_lab_cluster.py", "test_lab_two_hosts.py", "test_rule_proofs.py", "test_lab_host.py",
                "test_deploy_install.py", "test_lab_firewall.py")
# in the pair's lane these go first: they hold both VMs, and the lone lane waits for one of them
BOTH_VMS_FIRST = ("test_lab_cluster.py", "test_lab_two_hosts.py", "test_rule_proofs.py")


def lab_lane(nodeid: str) -> str:
    """A lab test's lane: "lab-pair" for PAIR_MODULES when a third host lets the rest run beside them, else
    "lab". Lanes share no VM, only this machine's release server and shared mail catcher."""
    module = nodeid.split("::")[0].rsplit("/", 1)[-1]
    return "lab-pair" if len(NAMES) > 2 and module in PAIR_MODULES else "lab"


def lone_name() -> str:
    """The host of the lane that is not the pair's."""
    return NAMES[2] if len(NAMES) > 2 else NAMES[0]
