"""farm_bringup: installs the workspace's top-level launch/ and config/ into its share directory,
and the `farm-graph` runner (the same graph without `ros2 launch`).

The launch files and YAML live at the repository root (where users look for them); this
package's data_files point there, so `ros2 launch farm_bringup sim.launch.py` resolves after
`colcon build` with or without `--symlink-install`.
"""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "farm_bringup"
HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent


def _files(folder: str, pattern: str) -> list[str]:
    """Files of a workspace folder as paths relative to this setup.py (setuptools requires it)."""
    found = (WORKSPACE / folder).glob(pattern)
    return sorted(str(Path("..", "..", folder, p.name)) for p in found if p.is_file())


def _tree(folder: str) -> list[tuple[str, list[str]]]:
    """Every file below a top-level folder, installed at the same relative place in share/."""
    dirs = sorted({p.parent for p in (WORKSPACE / folder).rglob("*") if p.is_file()})
    return [
        (f"share/{PACKAGE}/{d.relative_to(WORKSPACE)}", _files(str(d.relative_to(WORKSPACE)), "*"))
        for d in dirs
    ]


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _files("launch", "*.launch.py")),
        (f"share/{PACKAGE}/config", _files("config", "*.yaml")),
        (f"share/{PACKAGE}/config/rviz", _files("config/rviz", "*.rviz")),
        *_tree("config/checkpoints"),
        *_tree("config/calibration"),
        *_tree("config/crisp"),
        *_tree("config/models"),
        *_tree("config/sros2"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="FARM maintainers",
    maintainer_email="maintainers@farm-robotics.org",
    description="Launch files and parameter YAML for the FARM node graph.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "farm-graph = farm_bringup.cli:main",
            "farm-twin-demo = farm_bringup.nodes.twin_demo:main",
            "farm-graph-bench = farm_bringup.nodes.graph_bench:main",
            "farm-sros2-policy = farm_bringup.security:main",
            "farm-operator = farm_bringup.nodes.operator_keyboard:main",
            "recorder_node = farm_bringup.nodes.recorder_node:main",
            "episode_node = farm_bringup.nodes.episode_node:main",
        ]
    },
)
