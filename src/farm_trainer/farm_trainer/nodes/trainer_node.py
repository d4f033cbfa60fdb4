"""``trainer_node``: online PPO on the graph's executed transitions (a thin adapter around
``StreamLearner``), pushing each update's weights to the policy and safety nodes.

Subscribes the policy node's observations, the arbiter's decisions, and the step outcomes and
final observations (from the twin; on the robot ``labels:=estimate`` computes them from the
estimated state with FailureBench's predicates). ``TransitionAssembler`` pairs them into
transitions; ``StreamLearner`` journals each one, runs the benchmark's ``PPOLearner`` every
``batch_steps``, checkpoints, then the weights go out on ``/farm/policy_weights`` (reliable +
transient local: a node that starts or restarts later gets the latest). It may run on another
machine: everything it needs and sends travels over ROS. In realtime give it its own process:
an update takes seconds and would stall a composed graph's single executor thread.

With ``eps_target_rate`` > 0 it also steers the threshold to that IR-failure rate per episode
(method farm-pid): after every update the benchmark's ``EpsController`` takes the update's
finished episodes, as in the benchmark loop, and ``EpsSafePush`` keeps the new ``eps_safe`` on
``eps_nodes`` (the arbiter decides with it). With ``replaced_target_rate`` > 0 instead (method
farm-qrisk-cal-hold-steer) the same controller raises the threshold while the arbiter replaced
more than that fraction of an update's actions, never below where it started. It starts at
``eps_safe`` / ``eps_safe_file``; its state is in the trainer's checkpoint.

Operator marks (``/farm/operator/mark`` std_msgs/String ``ir_failure`` | ``success`` |
``intervention``, or the ``/farm/operator/mark_<mark>`` std_srvs/Trigger
services) override the label of the next completed transition: an IR failure ends it
(cost 1, terminated, reward 0); a success marks it successful.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String, UInt8MultiArray
from std_srvs.srv import Trigger

from failurebench_sim import ros_contract as rc
from failurebench_sim.nodes.ros_io import (
    QOS,
    VectorError,
    declare_from_dataclass,
    diagnostics_message,
    run_node,
    stamp_ns,
    unpack_vector,
)
from farm_policies.nodes.weights_io import weights_message
from farm_safety_critic.eps_control import EpsController
from farm_safety_critic.nodes.eps_param import eps_safe_of
from farm_trainer.nodes.eps_push import EpsSafePush
from farm_trainer.online.assembler import (
    Completed,
    EstimatedSteps,
    TransitionAssembler,
    apply_mark,
)
from farm_trainer.online.loop import initial_networks
from farm_trainer.online.ppo import PPOConfig
from farm_trainer.online.stream import StreamConfig, StreamLearner

RANGES = {
    "batch_steps": (2, 1_000_000),
    "max_updates": (0, 10_000_000),
    "keep_versions": (1, 64),
    "seed": (0, 2**31 - 1),
    "eps_target_rate": (0.0, 1.0),
    "eps_safe": (0.0, 1e6),
    "eps_kp": (0.0, 100.0),
    "eps_ki": (0.0, 100.0),
    "replaced_target_rate": (0.0, 1.0),
    "replaced_kp": (0.0, 100.0),
    "replaced_ki": (0.0, 100.0),
    "replaced_window": (1, 10_000),
    "replaced_max_factor": (1.0, 1e6),
}
PPO_RANGES = {
    "gamma": (0.0, 1.0), "gae_lambda": (0.0, 1.0), "clip": (0.0, 1.0), "minibatch_size": (1, 1 << 20),
    "epochs": (1, 1000), "lr_actor": (0.0, 1.0), "lr_critic": (0.0, 1.0),
    "entropy_coef": (0.0, 10.0), "max_grad_norm": (0.0, 1e6), "reward_scale": (0.0, 1e6),
    "replaced_penalty": (0.0, 1e6), "dual_clip": (0.0, 1e6),
}  # fmt: skip
MARKS = rc.OPERATOR_MARKS
OPERATOR_MARK = rc.OPERATOR_MARK


@dataclass
class TrainerNodeConfig(StreamConfig):
    labels: str = "sim"  # sim: the twin's step outcomes | estimate: from the estimated state
    eps_target_rate: float = 0.0
    """farm-pid: steer eps_safe to this IR-failure rate per episode (0: eps_safe stays fixed)"""
    eps_safe: float = 0.3  # the threshold steering starts from
    eps_safe_file: str = ""  # calibration/eps_safe.json of the task: overrides eps_safe
    eps_kp: float = 2.0
    eps_ki: float = 0.2
    replaced_target_rate: float = 0.0
    """farm-qrisk-cal-hold-steer: raise eps_safe while more than this fraction of an update's
    actions were replaced (0: off; not together with eps_target_rate)"""
    replaced_kp: float = 2.0
    replaced_ki: float = 0.5
    replaced_window: int = 4
    """updates whose replaced fractions are averaged"""
    replaced_max_factor: float = 10.0
    """eps_safe stays within [1, replaced_max_factor] x where it started"""
    eps_nodes: list[str] = field(default_factory=lambda: ["arbiter_node", "safety_node"])
    """nodes whose ``eps_safe`` parameter is steered"""


def steering_of(cfg: TrainerNodeConfig) -> EpsController | None:
    """The threshold's controller the parameters ask for: farm-pid's (``eps_target_rate``),
    farm-qrisk-cal-hold-steer's (``replaced_target_rate``, the registry's bounds), or None."""
    if cfg.eps_target_rate > 0 and cfg.replaced_target_rate > 0:
        raise ValueError("eps_target_rate and replaced_target_rate both > 0: steer one signal")
    if cfg.eps_target_rate > 0:
        return EpsController(eps_safe_of(cfg), cfg.eps_target_rate, cfg.eps_kp, cfg.eps_ki)
    if cfg.replaced_target_rate > 0:
        return EpsController(eps_safe_of(cfg), cfg.replaced_target_rate, cfg.replaced_kp,
                             cfg.replaced_ki, cfg.replaced_window, min_factor=1.0,
                             max_factor=cfg.replaced_max_factor, signal="replaced")  # fmt: skip
    return None


class TrainerNode(Node):
    """Composable (``TrainerNode(**node_kwargs)``); ``learner`` is the ``StreamLearner``."""

    def __init__(self, node_name: str = "trainer_node", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        names = [f.name for f in dataclasses.fields(TrainerNodeConfig)]
        cfg = declare_from_dataclass(self, TrainerNodeConfig(), RANGES, read_only=names)
        cfg.ppo = declare_from_dataclass(self, PPOConfig(), PPO_RANGES, prefix="ppo")
        if cfg.labels not in ("sim", "estimate"):
            raise ValueError(f"labels must be sim or estimate, got {cfg.labels!r}")
        self.cfg = cfg
        obs_dim, act_dim = len(rc.OBS_LABELS), len(rc.ACTION_LABELS)
        actor, critic = initial_networks(obs_dim, act_dim, cfg.init or None)
        steering = steering_of(cfg)
        self.learner = StreamLearner(cfg, actor, critic, log=self.get_logger().info,
                                     eps_controller=steering)  # fmt: skip
        self.eps_push = None
        if steering is not None:  # a resumed controller's threshold, else eps0
            self.eps_push = EpsSafePush(self, cfg.eps_nodes, steering.current())
            target = (f"an IR-failure rate of {cfg.eps_target_rate}" if cfg.eps_target_rate > 0
                      else f"a replaced fraction of {cfg.replaced_target_rate}")  # fmt: skip
            self.get_logger().info(f"steering eps_safe of {cfg.eps_nodes} to {target}: now "
                                   f"{self.eps_push.eps_safe:.4g}")  # fmt: skip
        self.assembler = TransitionAssembler()
        self.labeler = EstimatedSteps(cfg.task) if cfg.labels == "estimate" else None
        self.marks: list[str] = []
        self.mark_counts = {m: 0 for m in MARKS}  # in the diagnostics
        self.last_row: dict = {}

        reliable, latched = QOS[rc.RELIABLE], QOS[rc.LATCHED]
        self.pub_weights = self.create_publisher(UInt8MultiArray, rc.POLICY_WEIGHTS, latched)
        self.pub_diag = self.create_publisher(DiagnosticArray, rc.DIAGNOSTICS, 10)
        sub = self.create_subscription
        sub(JointState, rc.OBSERVATION, self._on_observation, reliable)
        sub(JointState, rc.DECISION, self._on_decision, reliable)
        if self.labeler is None:
            sub(JointState, rc.TWIN_STEP, self._on_step, reliable)
            sub(JointState, rc.TWIN_FINAL_OBSERVATION, self._on_final, reliable)
        sub(String, OPERATOR_MARK, self._on_mark_msg, reliable)
        for mark in MARKS:
            self.create_service(Trigger, rc.OPERATOR_MARK_SERVICES[mark], self._mark_service(mark))
        if self.learner.version > 0:  # resumed: nodes that restarted meanwhile get the latest
            self._push()
        self.get_logger().info(
            f"{cfg.task}: PPO every {cfg.batch_steps} transitions, labels from {cfg.labels}, "
            f"policy v{self.learner.version}, journal {self.learner.journal.path}"
        )

    def destroy_node(self) -> None:
        if hasattr(self, "learner"):  # a node that failed during __init__ has none
            self.learner.close()
        super().destroy_node()

    # -- inputs ---------------------------------------------------------------------------
    def _vector(self, msg: JointState, labels) -> dict[str, float] | None:
        try:
            return dict(zip(labels, unpack_vector(msg, labels), strict=True))
        except VectorError as e:
            self.get_logger().warning(f"malformed message ignored: {e}", throttle_duration_sec=2)
            return None

    def _on_observation(self, msg: JointState) -> None:
        v = self._vector(msg, rc.OBS_LABELS)
        if v is not None:
            t = stamp_ns(msg.header.stamp)
            obs = list(v.values())
            if self.labeler is not None:
                self._take(self.labeler.feed(t, obs, self.assembler))
            else:
                self._take(self.assembler.add_observation(t, obs))

    def _on_final(self, msg: JointState) -> None:
        v = self._vector(msg, rc.OBS_LABELS)
        if v is not None:
            self._take(self.assembler.add_final_observation(stamp_ns(msg.header.stamp),
                                                            list(v.values())))  # fmt: skip

    def _on_decision(self, msg: JointState) -> None:
        v = self._vector(msg, rc.DECISION_LABELS)
        if v is not None:
            self._take(self.assembler.add_decision(stamp_ns(msg.header.stamp), v))

    def _on_step(self, msg: JointState) -> None:
        v = self._vector(msg, rc.STEP_LABELS)
        if v is not None:
            self._take(self.assembler.add_step(stamp_ns(msg.header.stamp), v))

    # -- operator marks -------------------------------------------------------------------
    def _on_mark_msg(self, msg: String) -> None:
        self._mark(msg.data.strip())

    def _mark_service(self, mark: str):
        def handle(_request, response):
            response.success, response.message = self._mark(mark)
            return response

        return handle

    def _mark(self, mark: str) -> tuple[bool, str]:
        if mark not in MARKS:
            why = f"unknown mark {mark!r} (expected one of {MARKS})"
            self.get_logger().warning(why)
            return False, why
        self.marks.append(mark)
        self.mark_counts[mark] += 1
        self.get_logger().info(f"operator marked {mark}: applies to the next transition")
        return True, f"{mark} applies to the next transition"

    # -- learning -------------------------------------------------------------------------
    def _take(self, done: list[Completed]) -> None:
        for c in done:
            while self.marks:
                c = apply_mark(c, self.marks.pop(0))
            row = self.learner.add(c.transition, c.episode, c.step, c.stamp_ns, c.success)
            if row is not None:
                self.last_row = row
                if self.eps_push is not None:
                    self.eps_push.set(row["eps_safe"])
                self._push()
                self._diagnose(row)

    def _push(self) -> None:
        state, version = self.learner.weights()
        self.pub_weights.publish(weights_message(state, version))
        self.get_logger().info(f"pushed task policy v{version}")

    def _diagnose(self, row: dict) -> None:
        keys = ("update", "policy_version", "env_steps", "episodes", "ir_failure_episodes",
                "ep_return", "stale_recomputed", "stale_dropped", "kl")  # fmt: skip
        values = {k: row.get(k) for k in keys}
        values.update({f"operator_{m}": n for m, n in self.mark_counts.items()})
        if self.eps_push is not None:
            values["eps_safe"] = self.eps_push.eps_safe
            values["eps_safe_refused"] = self.eps_push.refused
        msg = diagnostics_message("farm/trainer", "trainer_node", f"policy v{row['policy_version']}",
                                  values, self.get_clock().now().to_msg())  # fmt: skip
        self.pub_diag.publish(msg)


def main(args: list[str] | None = None) -> None:
    run_node(TrainerNode, args)


if __name__ == "__main__":
    main()
