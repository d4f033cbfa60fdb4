"""The colcon workspace: six ament_python packages, valid manifests, launch/config lookup."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "failurebench_sim",
    "farm_bringup",
    "farm_perception",
    "farm_policies",
    "farm_safety_critic",
    "farm_trainer",
}
CORE_PACKAGES = sorted(PACKAGES - {"farm_bringup"})
# What each package may import (the package DAG; farm_bringup sits on top of everything).
ALLOWED_IMPORTS = {
    "failurebench_sim": set(),
    "farm_policies": {"failurebench_sim"},
    "farm_safety_critic": {"failurebench_sim", "farm_policies"},
    "farm_trainer": {"failurebench_sim", "farm_policies", "farm_safety_critic"},
    "farm_perception": {"failurebench_sim"},
    "farm_bringup": PACKAGES - {"farm_bringup"},
}


def _colcon(*args: str, cwd: Path = ROOT) -> str:
    colcon = shutil.which("colcon") or str(Path(sys.executable).with_name("colcon"))
    out = subprocess.run([colcon, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_colcon_lists_six_ament_python_packages():
    listed = {}
    for line in _colcon("list", "--base-paths", "src").splitlines():
        name, _path, kind = line.split("\t")
        listed[name] = kind
    assert listed == {name: "(ros.ament_python)" for name in PACKAGES}


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_package_xml_is_valid_format_3(name):
    package = parse_package(str(ROOT / "src" / name / "package.xml"))
    package.validate()
    assert package.package_format == 3
    assert package.get_build_type() == "ament_python"
    assert (ROOT / "src" / name / "resource" / name).exists()


def test_dependency_graph_is_the_documented_dag():
    deps = {
        name: {
            d.name for d in parse_package(str(ROOT / "src" / name / "package.xml")).build_depends
        }
        & PACKAGES
        for name in PACKAGES
    }
    assert deps["failurebench_sim"] == set()
    assert deps["farm_perception"] <= {"failurebench_sim"}
    assert deps["farm_policies"] == {"failurebench_sim"}
    assert "farm_policies" in deps["farm_safety_critic"]
    assert {"farm_policies", "farm_safety_critic"} <= deps["farm_trainer"]


@pytest.mark.slow
@pytest.mark.parametrize("symlink", [False, True], ids=["copy", "symlink"])
def test_colcon_build_installs_launch_and_config(tmp_path, symlink):
    """`ros2 launch farm_bringup sim.launch.py` resolves through the ament index."""
    args = ["--log-base", str(tmp_path / "log"), "build", "--base-paths", "src"]
    args += ["--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")]
    if symlink:  # the full workspace is built with symlinks by scripts/setup.sh already
        args += ["--symlink-install", "--packages-select", "farm_bringup"]
    _colcon(*args)
    lookup = (
        "from ament_index_python.packages import get_package_share_directory as share\n"
        "import os\n"
        "d = share('farm_bringup')\n"
        "print(sorted(os.listdir(d + '/launch')), sorted(os.listdir(d + '/config')))\n"
    )
    env = dict(os.environ, AMENT_PREFIX_PATH=str(tmp_path / "install" / "farm_bringup"))
    out = subprocess.run([sys.executable, "-c", lookup], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "'sim.launch.py'" in out.stdout and "'real_push_wall.launch.py'" in out.stdout
    assert "'sim.yaml'" in out.stdout and "'real_push_wall.yaml'" in out.stdout


BLOCK_RCLPY = """
import importlib, pkgutil, sys

class _NoRos:
    def find_spec(self, name, path=None, target=None):
        if name == "rclpy" or name.startswith("rclpy."):
            raise ImportError("rclpy is blocked: core modules must not import it")
        return None

sys.meta_path.insert(0, _NoRos())
package = importlib.import_module(sys.argv[1])
count = 0
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if info.name.endswith("_node") or ".nodes" in info.name:
        continue  # ROS adapters are the only modules allowed to import rclpy
    importlib.import_module(info.name)
    count += 1
print(count)
"""


@pytest.mark.parametrize("name", CORE_PACKAGES)
def test_core_modules_import_without_rclpy(name):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(ROOT / "src" / p) for p in CORE_PACKAGES)
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_RCLPY, name], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def _farm_imports(path: Path) -> set[tuple[str, int]]:
    """(FARM package, line) of every import in a file, including lazy ones inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(n.split(".")[0], node.lineno) for n in names if n.split(".")[0] in PACKAGES}
    return found


def test_imports_follow_the_package_dag():
    """No module imports a package above it (lazy imports included); tests may import anything."""
    upward = []
    for pkg, allowed in ALLOWED_IMPORTS.items():
        files = [f for f in (ROOT / "src" / pkg).rglob("*.py") if "test" not in f.parts]
        for f in files:
            for other, line in _farm_imports(f):
                if other != pkg and other not in allowed:
                    upward.append(f"{f.relative_to(ROOT)}:{line} imports {other}")
    assert not upward, "imports against the package DAG:\n" + "\n".join(sorted(upward))
