"""SROS2 access-control policy for FARM's nodes, taken from the running graph itself.

``farm-sros2-policy`` composes every node of config/sim.yaml (camera and ground-truth modes, so
both observation sources are covered), asks the ROS graph which topics each one publishes and
subscribes and which services it serves and calls, and writes an SROS2 policy (format 0.2.0):
one enclave per node (``/farm/<node>``) plus ``/farm/operator``, which may only send the label
marks (``/farm/operator/*``). ``ros2 security create_permission <keystore> /farm/<node>
config/sros2/farm_policy.xml`` turns it into signed permissions (README: "Security").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from xml.etree import ElementTree as ET

from failurebench_sim import ros_contract as rc
from failurebench_sim.atomic import write_text

ENCLAVE_ROOT = "/farm"
KINDS = ("publish", "subscribe", "reply", "request")
# what the operator's enclave may do: send label marks and teleop velocities (which the policy
# node turns into actions only in teleop mode, through the gate and the shield), nothing else:
# no parameters, no command topic
OPERATOR = {
    "publish": {rc.OPERATOR_MARK, rc.TELEOP_TWIST, rc.TELEOP_GRIPPER},
    "subscribe": set(),
    "reply": set(),
    "request": {*rc.OPERATOR_MARK_SERVICES.values(), rc.EPISODE_RESUME, rc.EPISODE_PAUSE},
}
OPERATOR_NODE = "farm_operator"
Interfaces = dict[str, set[str]]  # kind -> fully qualified names


def node_interfaces(probe, name: str, namespace: str = "/") -> Interfaces:
    """What node ``name`` publishes, subscribes, serves and calls, seen from ``probe``."""
    by_node = (
        ("publish", probe.get_publisher_names_and_types_by_node),
        ("subscribe", probe.get_subscriber_names_and_types_by_node),
        ("reply", probe.get_service_names_and_types_by_node),
        ("request", probe.get_client_names_and_types_by_node),
    )
    return {kind: {n for n, _ in get(name, namespace)} for kind, get in by_node}


def graph_interfaces(sources: Iterable[str] = ("camera", "ground_truth")) -> dict[str, Interfaces]:
    """Every sim.yaml node, composed (not spun) once per observation source; the union."""
    from farm_bringup.graph import NODES, load_config, node_params, repo_config
    from farm_bringup.nodes.compose import ComposedGraph

    config = repo_config()
    sections = load_config(config)
    out: dict[str, Interfaces] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            names = [n for n in NODES if source == "camera" or n != "perception_node"]
            params = {}
            for n in names:
                p = node_params(sections, n, base=config.parent)
                if n == "sim_node":
                    p["observation_source"] = source
                if n == "policy_node" and source == "ground_truth":  # the teleop inputs too
                    p["action_source"] = "teleop"
                if n == "trainer_node" and source == "ground_truth":  # farm-pid's steering
                    p["eps_target_rate"] = 0.05
                if "output_dir" in p:
                    p["output_dir"] = str(Path(tmp) / source / n)
                params[n] = p
            graph = ComposedGraph([NODES[n] for n in names], params)
            try:
                probe = graph.nodes[0]
                for n in names:
                    seen = node_interfaces(probe, n)
                    mine = out.setdefault(n, {k: set() for k in KINDS})
                    for k in KINDS:
                        mine[k] |= seen[k]
            finally:
                graph.close()
    return out


def _relative(name: str) -> str:
    """A policy expression relative to the root namespace (the profiles' ``ns="/"``)."""
    return name.lstrip("/")


def policy_xml(nodes: Mapping[str, Interfaces], operator: bool = True) -> str:
    """The SROS2 policy document: one enclave per node (and the operator's)."""
    policy = ET.Element("policy", version="0.2.0")
    enclaves = ET.SubElement(policy, "enclaves")
    entries = sorted(nodes.items())
    if operator:
        entries.append((OPERATOR_NODE, OPERATOR))
    for name, interfaces in entries:
        path = f"{ENCLAVE_ROOT}/{'operator' if name == OPERATOR_NODE else name}"
        profiles = ET.SubElement(ET.SubElement(enclaves, "enclave", path=path), "profiles")
        profile = ET.SubElement(profiles, "profile", ns="/", node=name)
        for kind, (group, item) in zip(KINDS, [("topics", "topic")] * 2 + [("services",
                                       "service")] * 2, strict=True):  # fmt: skip
            names = sorted(interfaces.get(kind, ()))
            if names:
                el = ET.SubElement(profile, group, {kind: "ALLOW"})
                for n in names:
                    ET.SubElement(el, item).text = _relative(n)
    ET.indent(policy)
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- FARM's SROS2 access-control policy, generated from the running graph by\n"
        "     `farm-sros2-policy` (do not edit by hand; regenerate after adding a topic). -->\n"
    )
    return header + ET.tostring(policy, encoding="unicode") + "\n"


def read_policy(path: str | Path) -> dict[str, Interfaces]:
    """The enclaves of a policy file: profile node -> kind -> fully qualified names."""
    out: dict[str, Interfaces] = {}
    for profile in ET.parse(path).getroot().iter("profile"):
        mine = out.setdefault(profile.get("node"), {k: set() for k in KINDS})
        for group in profile:
            for kind in KINDS:
                if group.get(kind) == "ALLOW":
                    mine[kind] |= {"/" + (e.text or "").strip() for e in group}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="farm-sros2-policy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("config/sros2/farm_policy.xml"))
    a = ap.parse_args(argv)
    write_text(a.out, policy_xml(graph_interfaces()))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
