"""Which lab hosts the lab tests use, and the two lanes the lab tier runs in (no pytest, no fabfile: imported
by conftest.py before the plugins load).

The pair's lane (`lab`, `lab2`: a private link makes them a cluster) runs the modules of PAIR_MODULES;
every other lab module runs beside them on `lab3` alone, in another xdist worker. `ROSEY_LAB_HOSTS=a,b,c`
names other hosts (a and b the pair, c the lone one); with only `a,b` the lab tier runs in one lane.
"""

from __future__ import annotations

import os

# one lab lane by default: with two lanes on a 2-core machine the suite takes 42-46 minutes instead of 60,
# but in five such runs 1-4 lab tests failed each time on the load of three VMs (SSH banner timeouts, waits
# that ran out); `ROSEY_LAB_HOSTS=lab,lab2,lab3 pytest -n 3` runs the two lab lanes
NAMES = (os.environ.get("ROSEY_LAB_HOSTS") or "lab,lab2").split(",")
# the modules that need two lab hosts on one private link or a host with a private peer (the pure test
# tests/pure/test_lab_lanes.py checks that every module using lab_host2 or private_peer is here), and the
# install module on `lab` alone to even out the lanes (about 20 and 7 minutes of the lab tier's 58 when it
# ran in one lane)
PAIR_MODULES = ("test_lab_cluster.py", "test_lab_two_hosts.py", "test_lab_host.py", "test_deploy_install.py")


def lab_lane(nodeid: str) -> str:
    """A lab test's lane: "lab-pair" for PAIR_MODULES when a third host lets the rest run beside them, else
    "lab". Lanes share no VM, only this machine's release server and shared mail catcher."""
    module = nodeid.split("::")[0].rsplit("/", 1)[-1]
    return "lab-pair" if len(NAMES) > 2 and module in PAIR_MODULES else "lab"


def lone_name() -> str:
    """The host of the lane that is not the pair's."""
    return NAMES[2] if len(NAMES) > 2 else NAMES[0]
