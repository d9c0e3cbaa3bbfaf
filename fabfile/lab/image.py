"""The lab image: mmdebstrap rootfs -> customised -> `mke2fs -d` raw disk, cached by its recipe's hash.

No mounting, no loop devices: only root's chroot for useradd. The kernel and initrd are copied out of the
rootfs so QEMU boots them directly (virtio and ext4 are modules, hence the initrd).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fabfile.config.validators import LAB_RELEASES
from fabfile.lab import aptsrc, debs, keys, paths

# The guest's Debian release, a lab-host setting (`lab_vm.release`): Debian 12 by default, 13 beside it.
RELEASES = LAB_RELEASES
DEFAULT_RELEASE = "bookworm"
# apt suites per release: the release with its updates and security fixes
SOURCES = {"bookworm": debs.SUITES["bookworm"], "trixie": ["trixie", "trixie-updates", "trixie-security"]}
DISK_SIZE = "3G"
PACKAGES = [
    "systemd", "systemd-sysv", "udev", "dbus", "libpam-systemd", "openssh-server", "sudo", "ufw", "iptables",
    "python3", "python3-aiosmtpd", "curl", "ca-certificates", "linux-image-amd64", "initramfs-tools", "kmod",
    "iproute2", "iputils-ping", "procps", "netbase", "less",
]  # fmt: skip
DPKG_EXCLUDES = ["/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*"]
HOSTNAME = "rosey-lab"
KERNEL_CMDLINE = "root=/dev/vda rw console=ttyS0 quiet"
RECIPE_VERSION = "1"  # bump to force a rebuild for a reason the hashed inputs don't show


@dataclass(frozen=True)
class Image:
    key: str
    directory: Path
    release: str = DEFAULT_RELEASE

    @property
    def disk(self) -> Path:
        return self.directory / "disk.raw"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    def exists(self) -> bool:
        return (self.directory / ".done").exists()

    def age_seconds(self) -> float:
        return time.time() - (self.directory / ".done").stat().st_mtime


def recipe_key(release: str = DEFAULT_RELEASE) -> str:
    """Hash of everything that shapes the image: the release, this module, the guest files, the keys."""
    digest = hashlib.sha256()
    digest.update(release.encode())
    digest.update(Path(__file__).read_bytes())
    for path in sorted(paths.GUEST_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(paths.GUEST_DIR)).encode())
            digest.update(path.read_bytes())
    digest.update(keys.lab_key().with_suffix(".pub").read_bytes())
    digest.update(keys.host_key().with_suffix(".pub").read_bytes())
    return digest.hexdigest()[:16]


def current(release: str = DEFAULT_RELEASE) -> Image:
    key = recipe_key(release)
    return Image(key, paths.image_dir() / f"{release}-{key}", release)


def ensure(release: str = DEFAULT_RELEASE, log=print) -> Image:
    """The image of `release` for the current recipe, built if missing (that release's older ones removed)."""
    image = current(release)
    if image.exists():
        return image
    with debs.locked("image"):
        if image.exists():
            return image
        started = time.monotonic()
        log(f"lab: building the {release} image {image.key} (mmdebstrap + mke2fs, a few minutes)...")
        _build(image)
        log(f"lab: image built in {time.monotonic() - started:.0f}s")
        for old in paths.image_dir().iterdir():
            if old.is_dir() and old.name != image.directory.name and _release_of(old.name) == release:
                shutil.rmtree(old, ignore_errors=True)
    return image


def releases_of(inventory) -> list[str]:  # noqa: ANN001 - an Inventory (config does not import the lab)
    """The releases the inventory's lab hosts run, the default first: the images `lab.build` makes."""
    used = {h.lab.release for h in inventory.hosts.values() if h.lab is not None}
    return [r for r in RELEASES if r in used or r == DEFAULT_RELEASE]


def _release_of(directory_name: str) -> str:
    """The release an image folder holds (folders from before releases were named hold bookworm)."""
    head = directory_name.split("-", 1)[0]
    return head if head in RELEASES else DEFAULT_RELEASE


def _build(image: Image) -> None:
    if image.directory.exists():
        shutil.rmtree(image.directory)
    image.directory.mkdir(parents=True)
    suite = image.release
    assets = [debs.unpack(suite, "prometheus"), debs.unpack(suite, "prometheus-alertmanager")]
    with tempfile.TemporaryDirectory(dir=paths.cache_dir(), prefix="build-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        sources = Path(tmp) / "sources.list"
        sources.write_text(aptsrc.sources_lines(SOURCES[suite]))
        cmd = ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        cmd += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
        cmd += ["--dpkgopt=path-include=/usr/share/doc/*/copyright", suite, str(rootfs), str(sources)]
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
        _customise(rootfs, assets)
        shutil.copy2(_newest(rootfs / "boot", "vmlinuz-*"), image.kernel)
        shutil.copy2(_newest(rootfs / "boot", "initrd.img-*"), image.initrd)
        partial = image.directory / "disk.raw.partial"
        subprocess.run(
            ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "rosey-lab", "-d", str(rootfs),
             str(partial), DISK_SIZE],
            check=True,
        )  # fmt: skip
        partial.replace(image.disk)
    (image.directory / ".done").write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z\n"))


def _customise(root: Path, assets: list) -> None:
    guest = paths.GUEST_DIR

    def put(src: Path | str, dest: str, mode: int = 0o644) -> Path:
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            shutil.copyfile(src, target)
        else:
            target.write_text(src)
        target.chmod(mode)
        return target

    def chroot(*args: str) -> None:
        subprocess.run(["chroot", str(root), *args], check=True, stdin=subprocess.DEVNULL)

    put(HOSTNAME + "\n", "/etc/hostname")
    hosts = f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    put(hosts, "/etc/hosts")
    put("/dev/vda\t/\text4\trw,relatime\t0\t0\n", "/etc/fstab")
    put("nameserver 10.0.2.3\n", "/etc/resolv.conf")
    put(guest / "10-en.network", "/etc/systemd/network/10-en.network")
    put(guest / "sshd-lab.conf", "/etc/ssh/sshd_config.d/lab.conf")
    put("HostKey /etc/ssh/ssh_host_ed25519_key\n", "/etc/ssh/sshd_config.d/hostkey.conf")
    for old in (root / "etc" / "ssh").glob("ssh_host_*"):
        old.unlink()
    put(keys.host_key(), "/etc/ssh/ssh_host_ed25519_key", 0o600)
    put(keys.host_key().with_suffix(".pub"), "/etc/ssh/ssh_host_ed25519_key.pub")
    put(guest / "sudoers-rosey", "/etc/sudoers.d/rosey", 0o440)

    (root / "etc" / "machine-id").unlink(missing_ok=True)
    chroot("systemd-machine-id-setup")
    chroot("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo,systemd-journal", "rosey")
    chroot("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "smtp-catcher")
    ssh_dir = root / "home" / "rosey" / ".ssh"
    put(keys.lab_key().with_suffix(".pub"), "/home/rosey/.ssh/authorized_keys", 0o600)
    ssh_dir.chmod(0o700)
    chroot("chown", "-R", "rosey:rosey", "/home/rosey/.ssh")

    bot = root / "opt" / "rosey-bot"
    shutil.copytree(guest / "rosey-bot", bot, ignore=shutil.ignore_patterns("__pycache__"))
    chroot("chown", "-R", "rosey:rosey", "/opt/rosey-bot")
    put(guest / "rosey-bot-state", "/usr/local/bin/rosey-bot-state", 0o755)
    put(guest / "rosey-bot.service", "/etc/systemd/system/rosey-bot.service")
    put(guest / "smtp_catcher.py", "/usr/local/lib/smtp-catcher/smtp_catcher.py", 0o755)
    put(guest / "smtp-catcher.service", "/etc/systemd/system/smtp-catcher.service")

    # Debian's builds read their web assets from disk (the official ones embed them): ship them.
    for unpacked in assets:
        shutil.copytree(unpacked.root / "usr/share/prometheus", root / "usr/share/prometheus",
                        symlinks=True, dirs_exist_ok=True)  # fmt: skip

    chroot("systemctl", "enable", "systemd-networkd", "ssh", "rosey-bot", "smtp-catcher")
    chroot("systemctl", "mask", "systemd-networkd-wait-online.service", "apt-daily.timer",
           "apt-daily-upgrade.timer", "e2scrub_reap.service", "e2scrub_all.timer",
           "fstrim.timer")  # fmt: skip
    chroot("passwd", "--lock", "root")


def _newest(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if not found:
        raise RuntimeError(f"no {pattern} in {directory}: is linux-image-amd64 in PACKAGES?")
    return found[-1]
