"""Every node refuses bad parameters: at start-up (a clear error) and at runtime (old value kept).

Each node of config/sim.yaml is created with the YAML's own parameters; then, for each ranged
parameter, an out-of-range value and a value of the wrong type are set, and for each read-only
one a new value: every set must be refused with a reason and leave the value as it was.
"""

from __future__ import annotations

import subprocess

import pytest
from graph_harness import fresh_domain

pytestmark = pytest.mark.ros


def _yaml_params(name: str, tmp_path) -> dict:
    from farm_bringup.graph import load_config, node_params, repo_config

    config = repo_config()
    p = node_params(load_config(config), name, base=config.parent)
    if name == "sim_node":
        p["observation_source"] = "ground_truth"  # no renderer needed to test parameters
    if "output_dir" in p:
        p["output_dir"] = str(tmp_path / name)
    return p


def _out_of_range(d):
    """A value outside the descriptor's range (None: no range). Floats go 10 % past the bound:
    rclpy accepts values within a relative tolerance of it."""
    for r in d.floating_point_range:
        return r.to_value + max(1.0, 0.1 * abs(r.to_value))
    for r in d.integer_range:
        return r.to_value + 1 if r.to_value < 2**62 else r.from_value - 1
    return None


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    import rclpy
    from rclpy.parameter import Parameter

    from farm_bringup.graph import NODES

    tmp = tmp_path_factory.mktemp("params")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    made = {}
    for name, spec in NODES.items():
        overrides = [Parameter(k, value=v) for k, v in _yaml_params(name, tmp).items()]
        made[name] = spec.load_class()(context=context, parameter_overrides=overrides)
    yield made
    for node in made.values():
        node.destroy_node()
    rclpy.try_shutdown(context=context)


@pytest.mark.parametrize(
    "name",
    ["sim_node", "perception_node", "policy_node", "safety_node", "arbiter_node",
     "trainer_node", "recorder_node", "episode_node"],
)  # fmt: skip
def test_runtime_sets_out_of_range_wrong_type_or_read_only_are_refused(nodes, name):
    from rclpy.parameter import Parameter

    node = nodes[name]
    names = node.list_parameters([], 0).names
    checked = 0
    for pname, d in zip(names, node.describe_parameters(names), strict=True):
        if pname == "use_sim_time":
            continue
        before = node.get_parameter(pname).value
        bad = []
        if d.read_only:
            bad.append(before)  # even the same value: read-only means no set at all
        value = _out_of_range(d)
        if value is not None:
            bad += [value, "not a number"]
        for v in bad:
            (result,) = node.set_parameters([Parameter(pname, value=v)])
            assert not result.successful and result.reason, (pname, v)
            assert node.get_parameter(pname).value == before, pname
            checked += 1
    assert checked >= 3, f"{name}: only {checked} refusals checked"


@pytest.mark.parametrize(
    ("name", "param"),
    [("sim_node", "control_rate_hz"), ("arbiter_node", "watchdog_periods"),
     ("trainer_node", "batch_steps"), ("policy_node", "seed")],
)  # fmt: skip
def test_an_out_of_range_start_up_parameter_is_refused_by_name(name, param, tmp_path):
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.parameter import Parameter

    from farm_bringup.graph import NODES

    params = _yaml_params(name, tmp_path)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=fresh_domain())
    try:
        probe = rclpy.create_node("probe", context=context)
        cls = NODES[name].load_class()
        node = cls(context=context, parameter_overrides=[Parameter(k, value=v)
                                                        for k, v in params.items()])  # fmt: skip
        (d,) = node.describe_parameters([param])
        node.destroy_node()
        params[param] = _out_of_range(d)
        with pytest.raises(ParameterException, match=param):
            cls(context=context, parameter_overrides=[Parameter(k, value=v)
                                                     for k, v in params.items()])  # fmt: skip
        probe.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_a_node_process_with_a_bad_parameter_exits_with_one_clear_line(tmp_path):
    import os

    env = {**os.environ, "ROS_DOMAIN_ID": str(fresh_domain())}
    run = subprocess.run(
        ["sim_node", "--ros-args", "-p", "control_rate_hz:=0.0", "-p", "clock_mode:=lockstep"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "cannot start" in run.stderr and "control_rate_hz" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("config", ["real_push_wall", "real_bounded_soccer", "real_disturbed_push"])
def test_real_robot_configs_set_only_parameters_the_nodes_declare(nodes, config):
    from farm_bringup.graph import GRAPH_SECTION, load_config, repo_config

    sections = load_config(repo_config().parent / f"{config}.yaml")
    unknown = [f"{name}.{key}" for name, params in sections.items()
               if name not in ("/**", GRAPH_SECTION)
               for key in params if not nodes[name].has_parameter(key)]  # fmt: skip
    assert not unknown, f"{config}.yaml sets parameters no node declares: {unknown}"
    wildcard = [k for k in sections["/**"] if not any(n.has_parameter(k) for n in nodes.values())]
    assert not wildcard, wildcard
