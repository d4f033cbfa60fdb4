"""farm-graph's core without ROS: YAML layout and merging, overrides, command lines; the
launch file, rviz config, README and console scripts agree with the contract."""

import ast
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from failurebench_sim import ros_contract as rc
from farm_bringup.cli import main as farm_graph
from farm_bringup.graph import (
    NODES,
    GraphError,
    NodeSpec,
    Override,
    changed_params,
    default_nodes,
    load_config,
    mode_overrides,
    node_params,
    parse_override,
    process_command,
    resolve_path,
)

ROOT = Path(__file__).resolve().parents[3]
SIM_YAML = ROOT / "config" / "sim.yaml"
LAUNCH = ROOT / "launch" / "sim.launch.py"
RVIZ = ROOT / "config" / "rviz" / "farm_sim.rviz"

LAYOUT = """
/**:
  ros__parameters:
    task: FailureBench/BoundedPush-v0
    use_sim_time: true
    nested: {a: 1, b: {c: x}}
sim_node:
  ros__parameters:
    use_sim_time: false
    clock_mode: realtime
policy_node:
  ros__parameters:
    checkpoint: checkpoints/{task}/actor.safetensors
"""


@pytest.fixture
def sections(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(LAYOUT)
    return load_config(path)


def test_wildcard_is_merged_under_each_node_and_the_node_wins(sections):
    sim = node_params(sections, "sim_node")
    assert sim["use_sim_time"] is False and sim["task"] == "FailureBench/BoundedPush-v0"
    assert sim["nested.a"] == 1 and sim["nested.b.c"] == "x"  # ROS's dotted names
    assert node_params(sections, "safety_node")["use_sim_time"] is True  # no section: /** only


def test_overrides_target_one_node_or_all():
    assert parse_override("sim_node.seed:=3") == Override("sim_node", "seed", 3)
    assert parse_override("task:=BoundedSoccer-v0") == Override(None, "task", "BoundedSoccer-v0")
    assert parse_override("gains.kp:=1e-3") == Override(None, "gains.kp", 0.001)  # rcl reads 1e-3
    assert parse_override("policy_node.deterministic:=true").value is True
    with pytest.raises(GraphError):
        parse_override("sim_node.seed=3")


def test_paths_fill_in_the_task_and_resolve_against_the_yaml_folder(sections, tmp_path):
    o = [parse_override("task:=FailureBench/BoundedSoccer-v0")]
    p = node_params(sections, "policy_node", o, base=tmp_path)
    assert p["checkpoint"] == str(tmp_path / "checkpoints/BoundedSoccer-v0/actor.safetensors")
    assert resolve_path("", "T", tmp_path) == "" and resolve_path("/a/b", "T", tmp_path) == "/a/b"


def test_lockstep_makes_the_arbiter_publish_on_decisions_only(sections):
    o = mode_overrides("X-v0", "lockstep", "ground_truth")
    assert node_params(sections, "arbiter_node", o)["command_rate_hz"] == 0.0
    assert node_params(sections, "sim_node", o)["observation_source"] == "ground_truth"
    assert "command_rate_hz" not in node_params(
        sections, "arbiter_node", mode_overrides(None, "realtime")
    )


def test_perception_runs_only_on_camera_frames(sections):
    assert "perception_node" in default_nodes(sections, mode_overrides(observation_source="camera"))
    gt = default_nodes(sections, mode_overrides(observation_source="ground_truth"))
    assert gt == ["sim_node", "policy_node", "safety_node", "arbiter_node"]  # no trainer either


def test_process_command_passes_the_yaml_and_only_what_it_does_not_say(sections, tmp_path):
    o = [parse_override("sim_node.seed:=7"), parse_override("sim_node.clock_mode:=realtime")]
    extra = changed_params(sections, "sim_node", o, tmp_path)
    assert extra == {"seed": 7}  # clock_mode is the YAML's value already
    cmd = process_command(NODES["sim_node"], "g.yaml", extra, python="py")
    assert cmd == [
        "py", "-c", "from failurebench_sim.nodes.sim_node import main; main()",
        "--ros-args", "--params-file", "g.yaml", "-p", "sim_node:seed:=7",
    ]  # fmt: skip
    path = changed_params(sections, "policy_node", [], tmp_path)["checkpoint"]
    assert process_command(NODES["policy_node"], "g", {"checkpoint": path})[-1] == (
        f'policy_node:checkpoint:="{path}"'
    )


def test_bad_configs_and_nodes_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sim_node:\n  seed: 1\n")
    with pytest.raises(GraphError, match="ros__parameters"):
        load_config(bad)
    assert farm_graph(["run", "--config", str(SIM_YAML), "--nodes", "nope_node"]) == 2
    assert "unknown nodes" in capsys.readouterr().err
    missing = NodeSpec("ghost_node", "ghost_pkg", "ghost_pkg.nodes.ghost", "Ghost")
    with pytest.raises(GraphError, match="ghost_pkg.nodes.ghost not found"):
        missing.load_class()


def test_dry_run_prints_one_command_per_node(capsys):
    gt = ["--observation-source", "ground_truth", "--clock-mode", "lockstep"]
    assert farm_graph(["run", "--config", str(SIM_YAML), "--dry-run", *gt]) == 0
    lines = capsys.readouterr().out.splitlines()
    modules = [ln.split("from ")[1].split(" import")[0] for ln in lines]
    assert modules == [
        NODES[n].module for n in ("sim_node", "policy_node", "safety_node", "arbiter_node")
    ]
    assert "command_rate_hz:=0.0" in lines[-1] and "--params-file" in lines[0]


def test_sim_yaml_declares_every_node_parameter_of_the_brief():
    s = load_config(SIM_YAML)
    assert {"task", "use_sim_time", "base_frame"} <= set(s["/**"])
    assert s["/**"]["base_frame"] == rc.BASE_FRAME
    assert {"checkpoint", "deterministic", "seed"} <= set(s["policy_node"])
    assert {"world_model", "checkpoint", "horizon", "gamma_risk", "eps_safe"} <= set(
        s["safety_node"]
    )
    assert {"recovery_checkpoint", "eps_safe", "command_rate_hz", "target_topic"} <= set(
        s["arbiter_node"]
    )
    for name in ("policy_node", "safety_node", "arbiter_node"):
        for key, value in node_params(s, name, base=SIM_YAML.parent).items():
            if key.endswith(("checkpoint", "world_model")):
                assert Path(value).is_file(), f"{name}.{key}: {value} not committed"


def test_core_modules_import_without_rclpy():
    code = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, n, p=None, t=None):\n"
        "        if n.split('.')[0] == 'rclpy': raise ImportError('rclpy blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "import farm_bringup.graph, farm_bringup.cli, farm_bringup.supervisor\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _console_scripts() -> set[str]:
    """Every console script any package's setup.py declares (read, never run)."""
    names = set()
    for setup_py in (ROOT / "src").glob("*/setup.py"):
        for node in ast.walk(ast.parse(setup_py.read_text())):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "console_scripts":
                        names |= {e.value.split("=")[0].strip() for e in value.elts}
    return names


def test_launch_file_compiles_and_names_provided_executables(tmp_path):
    py_compile.compile(str(LAUNCH), cfile=str(tmp_path / "x.pyc"), doraise=True)
    scripts = _console_scripts()
    assert "farm-graph" in scripts and "sim_node" in scripts
    tree = ast.parse(LAUNCH.read_text())
    literal = {
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg == "executable" and isinstance(kw.value, ast.Constant)
    }
    assert literal == {"rviz2"}  # the graph's executables come from the NODES table
    missing = set(NODES) - scripts  # trainer_node and recorder_node too (train:=, record:=)
    assert not missing, f"no package provides the console scripts {sorted(missing)}"
    args = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
    }
    assert args == {"task", "clock_mode", "observation_source", "rviz", "train", "record", "secure"}


@pytest.mark.parametrize("name", ["push_wall", "bounded_soccer", "disturbed_push"])
def test_real_launch_files_compile_and_their_yaml_names_a_twin(name, tmp_path):
    from farm_bringup.graph import graph_nodes, twin_overrides

    launch = ROOT / "launch" / f"real_{name}.launch.py"
    py_compile.compile(str(launch), cfile=str(tmp_path / "x.pyc"), doraise=True)
    assert f'describe("real_{name}.yaml")' in launch.read_text()
    sections = load_config(ROOT / "config" / f"real_{name}.yaml")
    overrides = twin_overrides(sections)
    assert graph_nodes(sections, overrides, use_twin=True)[0] == "sim_node"
    assert "sim_node" not in graph_nodes(sections)  # the drivers replace it on the robot
    assert sections["arbiter_node"]["robot"] == "fr3"
    assert node_params(sections, "arbiter_node", overrides)["robot"] == "twin"


def test_rviz_config_shows_the_graph_topics_with_their_qos():
    view = yaml.safe_load(RVIZ.read_text())["Visualization Manager"]
    assert view["Global Options"]["Fixed Frame"] == rc.BASE_FRAME
    shown = {(d["Class"], d["Topic"]["Value"], d["Topic"]["Reliability Policy"])
             for d in view["Displays"] if "Topic" in d}  # fmt: skip
    assert shown == {
        ("rviz_default_plugins/Image", rc.COLOR_IMAGE, "Best Effort"),
        ("rviz_default_plugins/PoseArray", rc.OBJECT_POSES, "Reliable"),
        ("rviz_default_plugins/MarkerArray", rc.SAFETY_TRAJECTORY, "Reliable"),
        ("rviz_default_plugins/Pose", rc.TARGET_POSE, "Reliable"),
        ("rviz_default_plugins/Pose", rc.EE_POSE, "Best Effort"),
    }


def test_readme_topic_table_lists_every_contract_topic():
    readme = (ROOT / "src" / "farm_bringup" / "README.md").read_text()
    topics = {v for k, v in vars(rc).items() if k.isupper() and str(v).startswith("/")}
    missing = sorted(t for t in topics if f"`{t}`" not in readme)
    assert not missing, f"README lacks {missing}"
