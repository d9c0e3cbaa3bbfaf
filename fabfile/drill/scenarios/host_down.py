"""`host-down` (clustered lab hosts): power the VM off, expect the PEER to deliver MonitoringPeerDown,
boot it again."""

from __future__ import annotations

from pathlib import Path

from fabfile.drill.contract import DrillResult, DrillRun, Expectation
from fabfile.drill.errors import DrillFailed, why
from fabfile.drill.power import PowerSwitch, SwitchFactory, power_switch
from fabfile.drill.scenarios.common import PEER_TURN, RESTART_ECHO
from fabfile.drill.scenarios.monitoring_down import MonitoringDown
from fabfile.drill.target import BOT_UNIT
from fabfile.drill.timeline import Timeline


class HostDown(MonitoringDown):
    """Lab hosts only: pull the plug on the VM itself (SIGKILL to QEMU, as a kernel panic or a provider
    outage would), expect the PEER to deliver MonitoringPeerDown, then cold-boot the VM from its own disk and
    confirm its monitoring healthy again. The one failure `monitoring-down` can only imitate."""

    def __init__(self, rules_path: Path | None = None, switch_for: SwitchFactory = power_switch) -> None:
        super().__init__(rules_path)
        self.restoring = "booting the lab VM again"
        self.boot_seconds = 0.0
        self.switch_for = switch_for  # the registry (the lab's VMs); tests: a switch over local processes

    def vm(self, d: DrillRun) -> PowerSwitch:
        switch = self.switch_for(d.host)
        if switch is None:
            raise DrillFailed(f"{d.host.name} is not a lab host: host-down powers off a lab VM "
                              f"(on a real server use --scenario monitoring-down)")
        return switch

    def prepare(self, d: DrillRun) -> Expectation:
        self.vm(d)
        expect = super().prepare(d)
        # the drilled host's Alertmanager dies with its VM: only the peer can notify
        return Expectation(expect.alert, expect.labels, target=expect.target, whose=expect.whose)

    def break_it(self, d: DrillRun) -> None:
        vm = self.vm(d)
        self.broken = True
        d.t.close()  # its tunnels die with the VM
        vm.power_off()
        d.timeline.mark("stop")
        assert self.bounds is not None
        d.say(f"powered off the VM of {d.host.name} (SIGKILL to QEMU, no shutdown); expecting "
              f"{self.peer_name} to notify within {self.bounds.detect_text()}, {PEER_TURN} "
              f"(giving up after {self.firing_budget:.0f}s)")

    def restore(self, d: DrillRun) -> None:
        self.boot_seconds = self.vm(d).power_on()
        d.t.reconnect()
        d.timeline.mark("started")
        d.say(f"{d.host.name} booted again from its own disk in {self.boot_seconds:.0f}s")

    def make_whole(self, d: DrillRun, result: DrillResult) -> None:
        """The VM is running again (booted from its own disk), then the monitoring guarantee."""
        if not self.broken:
            return
        try:
            self.vm(d).power_on()
        except Exception as e:  # noqa: BLE001 - said loudly, never swallowed
            result.ok = False
            result.message += (f"; !!! the VM of {d.host.name} could NOT be booted again ({why(e)}) — "
                               f"start it by hand: inv lab.up -H {d.host.name}")
            return
        d.t.reconnect()
        super().make_whole(d, result)
        result.details.append(f"note: {BOT_UNIT} on {d.host.name} started again with its VM; {RESTART_ECHO} "
                              f"will fire there for a few minutes — the expected echo of this drill's "
                              f"power-off, not a problem")

    def verdict(self, tl: Timeline) -> str:
        assert self.bounds is not None
        return (super().verdict(tl).replace("after the stop", "after the power-off")
                + f" (boot {self.boot_seconds:.0f}s)")
