"""``farm-graph``: the sim.launch.py graph without ``ros2 launch``, from the same YAML.

    farm-graph run --config config/sim.yaml --mode processes --duration 60 \\
        --clock-mode lockstep --observation-source ground_truth -p policy_node.seed:=3
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from farm_bringup.graph import (
    GraphError,
    changed_params,
    check_nodes,
    graph_nodes,
    load_config,
    mode_overrides,
    node_params,
    parse_override,
    process_command,
    repo_config,
    section_overrides,
    twin_overrides,
)
from farm_bringup.supervisor import run_processes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="farm-graph", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the graph (or print its plan with --dry-run)")
    run.add_argument("--config", type=Path, default=None, help="params YAML (config/sim.yaml)")
    run.add_argument("--mode", choices=("processes", "composed"), default="processes")
    run.add_argument("--nodes", nargs="+", default=None, help="default: the launch file's set")
    run.add_argument(
        "-p",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.PARAM:=VALUE",
        help="override (no known node: all nodes)",
    )
    run.add_argument("--task", default=None)
    run.add_argument("--clock-mode", choices=("realtime", "lockstep"), default=None)
    run.add_argument("--observation-source", choices=("camera", "ground_truth"), default=None)
    run.add_argument(
        "--use-twin",
        action="store_true",
        help="a real-robot config on the twin (its farm_graph.use_twin overrides)",
    )
    run.add_argument(
        "--demos",
        action="store_true",
        help="a real-robot config recording teleoperated demonstrations",
    )
    run.add_argument("--duration", type=float, default=None, help="seconds; default: until ^C")
    run.add_argument("--dry-run", action="store_true", help="print each node's plan and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = (args.config or repo_config()).resolve()
        sections = load_config(config)
        overrides = twin_overrides(sections) if args.use_twin else []
        overrides += section_overrides(sections, "demos") if args.demos else []
        overrides += mode_overrides(args.task, args.clock_mode, args.observation_source)
        overrides += [parse_override(o) for o in args.overrides]
        specs = check_nodes(args.nodes or graph_nodes(sections, overrides, args.use_twin))
        for spec in specs:
            spec.check_installed()
    except (GraphError, OSError) as e:
        print(f"farm-graph: {e}", file=sys.stderr)
        return 2
    base = config.parent
    if args.mode == "composed":
        params = {s.name: node_params(sections, s.name, overrides, base) for s in specs}
        if args.dry_run:
            for name, values in params.items():
                print(name, values)
            return 0
        from farm_bringup.nodes.compose import run_composed

        return run_composed(specs, params, args.duration)
    commands = {
        s.name: process_command(s, config, changed_params(sections, s.name, overrides, base))
        for s in specs
    }
    if args.dry_run:
        for command in commands.values():
            print(shlex.join(command))
        return 0
    return run_processes(commands, args.duration)


if __name__ == "__main__":
    sys.exit(main())
