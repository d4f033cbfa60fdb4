"""farm-twin-demo's parameters: ``-p`` sets another method's gate as farm-graph does, and the
no-gate run switches farm-runout-seq's holding member off as well as the score's threshold."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros

SEQ = ["safety_node.runout:=checkpoints/{task}/runout.json",
       "safety_node.object_motion:=checkpoints/{task}/object_motion.safetensors",
       "safety_node.hand_motion:=checkpoints/{task}/hand_motion.json",
       "eps_safe:=1.0", "eps_safe_file:=", "arbiter_node.recovery:=policy_or_hold"]  # fmt: skip


def test_overrides_reach_the_nodes_and_no_gate_turns_the_hold_off_too():
    from farm_bringup.graph import parse_override, repo_config
    from farm_bringup.nodes.twin_demo import NO_GATE_EPS, NO_GATE_HOLD_EPS, graph_params
    from farm_safety_critic.nodes.safety_node import SafetyNodeConfig, runout_problem

    task = "FailureBench/BoundedSoccer-v0"
    overrides = [parse_override(o) for o in SEQ]
    assert not runout_problem(SafetyNodeConfig(**{o.name: o.value for o in overrides
                                                  if o.node == "safety_node"}))  # fmt: skip
    gate = graph_params(repo_config(), task, 2, 0, None, overrides=overrides)
    s, a = gate["safety_node"], gate["arbiter_node"]
    assert s["runout"].endswith("checkpoints/BoundedSoccer-v0/runout.json")  # resolved path
    assert (s["eps_safe"], s["eps_safe_file"], a["eps_safe"], a["eps_safe_file"]) == (
        1.0,
        "",
        1.0,
        "",
    )
    assert a["recovery"] == "policy_or_hold" and s["runout_hold_eps"] == 0.5
    no_gate = graph_params(repo_config(), task, 2, 0, NO_GATE_EPS, overrides=overrides)
    assert no_gate["safety_node"]["runout_hold_eps"] == NO_GATE_HOLD_EPS
    assert no_gate["arbiter_node"]["eps_safe"] == NO_GATE_EPS


def test_a_malformed_override_is_a_usage_error(capsys):
    from farm_bringup.nodes.twin_demo import main

    for bad, why in (("no_equals_sign", "is not name:=value"), ("x:=[1", "flow sequence")):
        with pytest.raises(SystemExit) as e:
            main(["-p", bad])
        err = capsys.readouterr().err
        assert e.value.code == 2 and "argument -p/--set" in err and why in err, err
