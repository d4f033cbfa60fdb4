"""farm_bringup: installs the workspace's top-level launch/ and config/ into its share directory.

The launch files and YAML live at the repository root (where users look for them); this
package's data_files point there, so `ros2 launch farm_bringup sim.launch.py` resolves after
`colcon build` with or without `--symlink-install`.
"""

from pathlib import Path

from setuptools import setup

PACKAGE = "farm_bringup"
HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent


def _files(folder: str, pattern: str) -> list[str]:
    """Top-level files as paths relative to this setup.py (setuptools requires relative)."""
    return sorted(str(Path("..", "..", folder, p.name)) for p in (WORKSPACE / folder).glob(pattern))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _files("launch", "*.launch.py")),
        (f"share/{PACKAGE}/config", _files("config", "*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="FARM maintainers",
    maintainer_email="maintainers@farm-robotics.org",
    description="Launch files and parameter YAML for the FARM node graph.",
    license="Apache-2.0",
)
