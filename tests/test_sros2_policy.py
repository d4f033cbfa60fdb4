"""The committed SROS2 policy grants each node exactly what it uses; the operator only marks."""

from __future__ import annotations

import pytest
from graph_harness import ROOT, fresh_domain

pytestmark = pytest.mark.ros
POLICY = ROOT / "config" / "sros2" / "farm_policy.xml"


def test_the_policy_file_matches_the_running_graph(monkeypatch):
    from farm_bringup.security import OPERATOR_NODE, graph_interfaces, policy_xml, read_policy

    monkeypatch.setenv("ROS_DOMAIN_ID", str(fresh_domain()))
    seen = graph_interfaces()
    committed = read_policy(POLICY)
    operator = committed.pop(OPERATOR_NODE)
    assert committed == seen, "regenerate it: farm-sros2-policy"
    assert POLICY.read_text() == policy_xml(seen)  # and nothing hand-edited around it
    # the operator may mark labels and drive teleop (the policy node's input in teleop mode,
    # through gate and shield), nothing else: no parameter service, no command topic
    assert operator["publish"] == {
        "/farm/operator/mark",
        "/farm/teleop/twist",
        "/farm/teleop/gripper",
    }
    assert operator["request"] == {*(f"/farm/operator/mark_{m}"
                                     for m in ("ir_failure", "success", "intervention")),
                                   "/farm/episode/resume", "/farm/episode/pause"}  # fmt: skip
    assert not operator["subscribe"] and not operator["reply"]
    servers = seen["trainer_node"]["reply"] | seen["episode_node"]["reply"]
    assert servers >= operator["request"]  # every service the operator may call exists


def test_only_the_arbiter_may_command_the_arm():
    from failurebench_sim import ros_contract as rc
    from farm_bringup.security import read_policy

    writers = [n for n, i in read_policy(POLICY).items()
               if {rc.TARGET_POSE, rc.GRIPPER_COMMAND} & i["publish"]]  # fmt: skip
    assert writers == ["arbiter_node"]
