#!/usr/bin/env bash
# Sets up a fresh Debian 12 control machine: system packages, the project's virtualenv, promtool/amtool,
# the lab image.
# Safe to run again: every step checks first. Needs root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# qemu/mmdebstrap/e2fsprogs build and run the lab VM; prometheus + prometheus-alertmanager give
# promtool/amtool (and real binaries for the fast API tests); python3-venv for the virtualenv;
# chromium + chromium-driver for the browser test of the web UIs (Selenium drives Debian's build);
# systemd for `systemd-analyze security` on the rendered units; iproute2 (ss) to see which sockets a service opens;
# victoria-metrics: a real remote-write store for the local test (started by the test, never as a service).
PACKAGES=(python3 python3-venv python3-pip qemu-system-x86 qemu-utils mmdebstrap e2fsprogs
          openssh-client curl ca-certificates prometheus prometheus-alertmanager chromium chromium-driver
          systemd iproute2 victoria-metrics)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # The packages' own services must not run here: this machine only needs their tools.
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  if [ "$had_policy" -eq 0 ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$had_policy" -eq 1 ] || $SUDO rm -f /usr/sbin/policy-rc.d
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus prometheus-alertmanager victoria-metrics >/dev/null 2>&1 || true
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.deps-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -e "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q '.[dev]'
  rm -f .venv/.deps-* && touch "$stamp"
fi
# The lab image and release archives (cached under ~/.cache/rosey-lab; ~1.5 min the first time).
.venv/bin/python -m fabfile.lab build
echo "bootstrap: ok (activate with: . .venv/bin/activate)"
