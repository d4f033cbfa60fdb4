"""Write `pip freeze` of the venv as requirements/lock.txt, installable on a fresh machine.

The ROS 2 wheels (`ros-<name>`) also register a distribution under the bare package name
(`rclpy`, `action_msgs`, ...) that PyPI does not serve; those duplicates are dropped, and local
version tags (`+cpu`) are removed so the lock resolves wherever the same release exists.
"""

import subprocess
import sys
from pathlib import Path

HEADER = """\
# Exact versions for this machine kind (Debian 12, Python 3.11, no ROS distro): ROS 2 Kilted core
# from PyPI wheels + the ML stack. Regenerate: scripts/setup.sh --relock. torch==2.13.0 resolves to
# the CPU wheel where one is on local disk, else to PyPI's default build.
"""
SKIP = ("#", "pip==", "-e ", "farm", "failurebench")


def main() -> None:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    pins = {}
    for line in frozen:
        if "==" in line and not line.startswith(SKIP):
            name, version = line.split("==", 1)
            pins[name.lower().replace("_", "-")] = version.split("+")[0]
    keep = [n for n in pins if not (not n.startswith("ros-") and f"ros-{n}" in pins)]
    out = Path(__file__).resolve().parents[1] / "requirements" / "lock.txt"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(HEADER + "".join(f"{n}=={pins[n]}\n" for n in sorted(keep)))
    tmp.replace(out)
    print(f"wrote {out} ({len(keep)} pins)")


if __name__ == "__main__":
    main()
