"""Lab figures: image build time, cold boot to SSH, golden-snapshot restore to SSH. Prints, asserts nothing.

    python bench/lab_bench.py [--host lab] [--build] [--restores 3]

`--build` builds a second image in a throw-away cache dir (the shared one, whose disk may back running VMs,
is never touched); the boots then use the shared cache's image (same recipe). Stops the bench host first if
it runs, and always stops it at the end (by its pidfile). Other running VMs slow every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fabfile.lab import image, paths  # noqa: E402
from fabfile.lab.settings import lab_settings  # noqa: E402
from fabfile.lab.vm import LabVM  # noqa: E402


def _fresh_cache() -> Path:
    """A temporary cache sharing keys and release archives with the real one (so the recipe is identical)."""
    real = paths.cache_dir()
    tmp = Path(tempfile.mkdtemp(prefix="rosey-lab-bench-", dir=real.parent))
    for name in ("id_ed25519", "id_ed25519.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        if (real / name).exists():
            shutil.copy2(real / name, tmp / name)
    (tmp / "releases").symlink_to(paths.releases_dir())
    (tmp / "debs").symlink_to(paths.debs_dir())
    return tmp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="lab", help="lab host of hosts.yml to boot (default: lab)")
    parser.add_argument("--build", action="store_true", help="also time an image build (temp cache dir)")
    parser.add_argument("--restores", type=int, default=3, help="how many snapshot restores to time")
    args = parser.parse_args()

    vm = LabVM(lab_settings(args.host, os.environ.get("ROSEY_INVENTORY")))
    quiet = lambda msg: None  # noqa: E731
    tmp_cache = _fresh_cache() if args.build else None
    try:
        vm.down()
        if tmp_cache is not None:
            os.environ["ROSEY_LAB_CACHE"] = str(tmp_cache)
            started = time.monotonic()
            image.ensure(log=quiet)
            print(f"{'image build (mmdebstrap + mke2fs)':45s} {time.monotonic() - started:7.1f} s")
            del os.environ["ROSEY_LAB_CACHE"]
            shutil.rmtree(tmp_cache, ignore_errors=True)
        started = time.monotonic()
        img = image.ensure(log=quiet)
        print(f"{'image ensure (shared cache)':45s} {time.monotonic() - started:7.1f} s")

        vm.up(fresh=True, log=quiet)
        print(f"{'cold boot to SSH':45s} {vm.timings['ssh']:7.1f} s")
        print(f"{'cold boot to systemctl is-system-running':45s} {vm.timings['ready']:7.1f} s")
        vm.down()

        started = time.monotonic()
        vm.up(log=quiet)  # makes the golden snapshot if missing, then restores it
        print(f"{'first lab.up (snapshot made if missing)':45s} {time.monotonic() - started:7.1f} s")
        vm.down()
        ssh, ready = [], []
        for _ in range(args.restores):
            vm.up(log=quiet)
            ssh.append(vm.timings["ssh"])
            ready.append(vm.timings["ready"])
            vm.down()
        label = f"snapshot restore to SSH (median of {len(ssh)})"
        print(f"{label:45s} {statistics.median(ssh):7.1f} s")
        print(f"{'snapshot restore to SSH + clock set':45s} {statistics.median(ready):7.1f} s")
        lab = vm.settings.lab
        load = os.getloadavg()[0]
        print(f"(image {img.key}, host {vm.name}, {lab.memory_mb} MB, {lab.cpus} vCPU, TCG; load {load:.1f})")
    finally:
        vm.down()
        if tmp_cache is not None:
            shutil.rmtree(tmp_cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
