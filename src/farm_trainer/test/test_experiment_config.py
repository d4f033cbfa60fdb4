"""Experiment configs: load-time validation of every (nested) section, extends, pinned effective
configs of the shipped experiments."""

import hashlib
import json
from pathlib import Path

import pytest

from farm_trainer.experiments import ExperimentConfigError, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "config" / "experiments"

# fmt: off
HEADLINE_2E5 = {'data': {'demo_noise': None, 'expert_episodes': 5, 'failure_noise': 0.6, 'failure_policy': 'offline', 'failure_transitions': 60000, 'heldout_transitions': 8000, 'near_failure_transitions': 60000, 'recovery_demos': 60, 'seed': 0, 'task_demos': 20}, 'evaluation': {'episodes': 20, 'max_steps': None, 'seed0': 100000}, 'gate': {'eps_rule': {'max_expert_firing': 0.03, 'max_firing': 0.1}, 'eps_safe': 0.2, 'gamma_risk': 0.9, 'horizon': 3, 'mppi': {'iterations': 3, 'num_elites': 16, 'num_pi_trajs': 8, 'num_samples': 128}, 'qrisk_eps_safe': 0.3}, 'latency_calls': 200, 'methods': ['unio4', 'farm'], 'name': 'headline_2e5', 'offline': {'bc_batch_size': 256, 'bc_lr': 0.001, 'bc_steps': 2000, 'critic_batch_size': 256, 'critic_hidden': 128, 'critic_steps': 500, 'dyn_steps': 300, 'eval_episodes': 5, 'eval_step': 25, 'num_policies': 2, 'ope_states': 256, 'ppo_batch_size': 256, 'ppo_steps': 100, 'value_steps': 500}, 'offline_recovery': {}, 'online': {'checkpoint_every': 5, 'n_envs': 8, 'ppo': {}, 'steps': 200000, 'tensorboard': False}, 'qrisk': {'batch': 256, 'seed': 0, 'steps': 5000, 'train': {}}, 'seeds': [0, 1, 2], 'tasks': ['BoundedPush-v0', 'BoundedSoccer-v0', 'FragilePushWall-v0', 'ObstructedPush-v0'], 'world_model': {'batch': 128, 'seed': 0, 'steps': 2000, 'train': {'model': {'enc_dim': 128, 'latent_dim': 64, 'mlp_dim': 128}}}}
DEMO = {'data': {'demo_noise': None, 'expert_episodes': 3, 'failure_noise': 0.6, 'failure_policy': 'offline', 'failure_transitions': 10000, 'heldout_transitions': 4000, 'near_failure_transitions': 0, 'recovery_demos': 30, 'seed': 0, 'task_demos': 20}, 'evaluation': {'episodes': 10, 'max_steps': None, 'seed0': 100000}, 'gate': {'eps_rule': None, 'eps_safe': 0.2, 'gamma_risk': 0.9, 'horizon': 3, 'mppi': {'iterations': 3, 'num_elites': 16, 'num_pi_trajs': 8, 'num_samples': 128}, 'qrisk_eps_safe': 0.3}, 'latency_calls': 200, 'methods': ['unio4', 'farm'], 'name': 'demo', 'offline': {'bc_batch_size': 256, 'bc_lr': 0.001, 'bc_steps': 2000, 'critic_batch_size': 256, 'critic_hidden': 128, 'critic_steps': 500, 'dyn_steps': 300, 'eval_episodes': 5, 'eval_step': 25, 'num_policies': 2, 'ope_states': 256, 'ppo_batch_size': 256, 'ppo_steps': 100, 'value_steps': 500}, 'offline_recovery': {}, 'online': {'checkpoint_every': 10, 'n_envs': 4, 'ppo': {}, 'steps': 20000, 'tensorboard': False}, 'qrisk': {'batch': 256, 'seed': 0, 'steps': 20000, 'train': {}}, 'seeds': [0], 'tasks': ['BoundedPush-v0'], 'world_model': {'batch': 128, 'seed': 0, 'steps': 1000, 'train': {'model': {'enc_dim': 128, 'latent_dim': 64, 'mlp_dim': 128}}}}
PINNED_SHA256 = {'demo': '11585d9629e31abc0b50ff456822c4431cf947e7038a3dcaf30bc7ca7a06067c', 'farm_data120k': 'e86b30df39eb4e58f72528a104932305045b5c84f9f507d8f7d015823286a888', 'farm_eps_pid': '24559ce7836b22e9e88b8d8bf8871fc3ffea5ffc71be9abe1c88bb75cea40e21', 'farm_lookahead': '8196a0bdc43df4c4c6c0b411f754794ef922831af4a3b867937a2eecaeff1d5a', 'headline': '5e9e4d2a26d091e20b2e9cf988fb4ca616d7c61c292e8e6c92930837d216983a', 'headline_2e5': 'b1fa0da2661e5976698acacf6cdacb0e934fe646ae26cb62616bf7646b3a4aef', 'offline_budget': '0ba169742eaf89bc5c0d5b1a5748e9876addfbc0bbb25319cad4e5615890c49f', 'paper_tables': '9b1f68766586a67a2c2f4120ccb2c663f1fb1bddaa871784e61b5f9d6fccda2c', 'quick4': 'ac15bb2779da20863c488270a10dd1e5033581135b93c02bbd63fd8b7969752a', 'smoke': '4fe7e807b51336f151fbdb9f638c0dc3e843b1e2bcc848626a06bc332a1ff20b'}
# fmt: on
"""``load_config(...).to_dict()`` of every shipped experiment before ``extends: base.yaml``
(``inputs`` is new and not part of what the stages read; so are fields added later while they
hold their defaults: ``LATER_FIELDS``)."""

LATER_FIELDS = {"pipeline_seeds": False, "task_overrides": {}, "method_for": {}}
LATER_GATE_FIELDS = {"cost_limit": 0.05, "lr_lambda": 0.05, "p3o_kappa": 20.0,
                     "cpo_target_kl": 0.01, "eps_target_rate": 0.05, "eps_kp": 2.0,
                     "eps_ki": 0.2, "refresh_every": 5, "refresh_steps": 200,
                     "refresh_online_fraction": 0.5, "refresh_guard_drop": 0.01,
                     "ensemble_members": 3, "anyof_rule": None,
                     "shrink_fractions": [0.75, 0.5, 0.25], "hold_patience": 5,
                     "escape_steps": 5, "runout_eps": 1.0, "runout_horizon": 40,
                     "runout_lookahead": 5, "runout_hold_eps": None,
                     "replaced_target_rate": 0.2, "replaced_kp": 2.0, "replaced_ki": 0.5,
                     "replaced_window": 4, "replaced_max_factor": 10.0}  # fmt: skip


def effective(name: str) -> dict:
    d = load_config(CONFIGS / f"{name}.yaml").to_dict()
    d.pop("inputs")
    for section, later in ((d, LATER_FIELDS), (d["gate"], LATER_GATE_FIELDS)):
        for key, default in later.items():
            if section.get(key) == default:
                section.pop(key)
    return d


def test_effective_config_of_headline_and_demo_is_pinned():
    assert effective("headline_2e5") == HEADLINE_2E5
    assert effective("demo") == DEMO


@pytest.mark.parametrize("name", sorted(PINNED_SHA256))
def test_effective_config_of_every_shipped_experiment_is_unchanged(name):
    text = json.dumps(effective(name), sort_keys=True).encode()
    assert hashlib.sha256(text).hexdigest() == PINNED_SHA256[name]


def test_inputs_name_other_experiments_and_are_not_inherited():
    cfg = load_config(CONFIGS / "headline_2e5.yaml")
    assert cfg.inputs["world_model"] == "farm_data120k" and "online" not in cfg.inputs
    assert load_config(CONFIGS / "farm_lookahead.yaml").inputs["online"] == "headline_2e5"
    assert load_config(CONFIGS / "headline.yaml").inputs == {}


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"offline": {"bc_stpes": 1}}, "offline.bc_stpes"),
        ({"offline_recovery": {"num_policy": 2}}, "offline_recovery.num_policy"),
        ({"offline": {"bc_steps": "many"}}, "offline.bc_steps"),
        ({"offline": {"kind": "task"}}, "offline.kind"),
        ({"world_model": {"train": {"horizn": 3}}}, "world_model.train.horizn"),
        (
            {"world_model": {"train": {"loss": {"rho": 0.5, "gama": 1}}}},
            "world_model.train.loss.gama",
        ),
        ({"world_model": {"train": {"loss": {"constraint_loss": "l1"}}}}, "world_model.train.loss"),
        (
            {"world_model": {"train": {"model": {"latent_dm": 8}}}},
            "world_model.train.model.latent_dm",
        ),
        ({"world_model": {"stepz": 3}}, "world_model.stepz"),
        ({"qrisk": {"train": {"gamma_saf": 0.8}}}, "qrisk.train.gamma_saf"),
        ({"online": {"ppo": {"lr": 1e-4}}}, "online.ppo.lr"),
        ({"online": {"ppo": {"epochs": 2.5}}}, "online.ppo.epochs"),
        ({"online": {"steps": "10"}}, "online.steps"),
        ({"gate": {"mppi": {"num_sample": 8}}}, "gate.mppi.num_sample"),
        (
            {"gate": {"eps_rule": {"max_firing": 0.1, "max_expert": 0.1}}},
            "gate.eps_rule.max_expert",
        ),
        ({"gate": {"eps_rule": {"max_firing": 0.1}}}, "gate.eps_rule needs max_expert_firing"),
        ({"data": {"task_demo": 3}}, "data.task_demo"),
        ({"evaluation": {"episodes": True}}, "evaluation.episodes"),
        ({"inputs": {"offlin": "headline"}}, "inputs.offlin"),
        ({"extends": "base.yaml"}, "extends"),
        (
            {"task_overrides": {"BoundedSoccer-v0": {"qrisk": {"train": {"cost_touch_radiu": 1}}}}},
            "task_overrides.BoundedSoccer-v0.qrisk.train.cost_touch_radiu",
        ),
        (
            {"task_overrides": {"BoundedSoccer-v0": {"seeds": [1]}}},
            "task_overrides.BoundedSoccer-v0",
        ),
        (
            {
                "tasks": ["BoundedSoccer-v0"],
                "task_overrides": {"BoundedSoccer-v0": {"qrisk": {"seed": 3}}},
            },
            "qrisk.seed'] cannot differ",
        ),
        (
            {"task_overrides": {"BoundedSocer-v0": {}}},
            "BoundedSocer-v0'], not tasks of this experiment",
        ),
    ],
)
def test_typo_or_wrong_type_in_any_section_fails_at_load_naming_the_key(raw, key):
    with pytest.raises(ExperimentConfigError, match=key.replace(".", r"\.")):
        config_from_dict(raw)


def test_typo_in_an_extending_file_fails_at_load(tmp_path):
    (tmp_path / "child.yaml").write_text(
        f"extends: {CONFIGS / 'headline.yaml'}\nonline:\n  ppo: {{lr_actr: 1.0e-5}}\n"
    )
    with pytest.raises(ExperimentConfigError, match=r"online\.ppo\.lr_actr"):
        load_config(tmp_path / "child.yaml")
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ExperimentConfigError, match="extends itself"):
        load_config(tmp_path / "loop.yaml")


def test_extends_deep_merges_and_keeps_the_childs_name(tmp_path):
    (tmp_path / "child.yaml").write_text(
        f"extends: {CONFIGS / 'demo.yaml'}\nworld_model: {{train: {{model: {{latent_dim: 32}}}}}}\n"
    )
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.name == "child"
    assert cfg.world_model.train["model"] == {"latent_dim": 32, "mlp_dim": 128, "enc_dim": 128}
    assert cfg.world_model.steps == 1000 and cfg.offline["bc_steps"] == 2000


def test_task_overrides_change_one_tasks_config_and_their_inputs_are_not_inherited(tmp_path):
    """``for_task``: the override merged on top for its task only; per-task ``inputs`` follow
    the pipeline seed like the experiment's own and, like them, are not inherited."""
    from farm_trainer.experiments.config import pipeline_of

    touch = {"cost_touch_radius": 0.06, "cost_touch_window": 60}
    (tmp_path / "parent.yaml").write_text(
        f"extends: {CONFIGS / 'demo.yaml'}\ntasks: [BoundedPush-v0, BoundedSoccer-v0]\n"
        f"pipeline_seeds: true\ninputs: {{data: other}}\n"
        f"task_overrides: {{BoundedSoccer-v0: {{qrisk: {{train: {touch}}},"
        f" inputs: {{qrisk: touchy}}}}}}\n"
    )
    cfg = load_config(tmp_path / "parent.yaml")
    soccer = cfg.for_task("BoundedSoccer-v0")
    assert soccer.qrisk.train == touch and soccer.qrisk.steps == cfg.qrisk.steps
    assert soccer.inputs == {"data": "other", "qrisk": "touchy"} and soccer.task_overrides == {}
    assert cfg.for_task("BoundedPush-v0") is cfg and cfg.qrisk.train == {}
    assert cfg.for_task("FailureBench/BoundedSoccer-v0").qrisk.train == touch  # one task, two ids
    seeded = pipeline_of(cfg, 2).for_task("BoundedSoccer-v0")
    assert seeded.inputs == {"data": "other/s2", "qrisk": "touchy/s2"}
    assert seeded.qrisk.seed == cfg.qrisk.seed + 2 and seeded.qrisk.train == touch

    (tmp_path / "child.yaml").write_text("extends: parent.yaml\n")
    child = load_config(tmp_path / "child.yaml").for_task("BoundedSoccer-v0")
    assert child.qrisk.train == touch and child.inputs == {}


def test_method_for_runs_a_label_as_a_registry_method_chosen_per_task(tmp_path):
    """A method label runs the registry method ``method_for`` names, per task through
    ``task_overrides``; labels that shadow a registry name, unknown targets, per-task keys that
    are no label, and two labels running one method are refused at load."""
    (tmp_path / "chosen.yaml").write_text(
        f"extends: {CONFIGS / 'demo.yaml'}\ntasks: [BoundedPush-v0, FragilePushWall-v0]\n"
        "methods: [unio4, farm-chosen]\nmethod_for: {farm-chosen: farm-hold}\n"
        "task_overrides: {FragilePushWall-v0: {method_for: {farm-chosen: farm}}}\n"
    )
    cfg = load_config(tmp_path / "chosen.yaml")
    assert cfg.run_methods == ["unio4", "farm-hold"]
    assert cfg.for_task("FragilePushWall-v0").run_methods == ["unio4", "farm"]
    assert cfg.for_task("BoundedPush-v0").method_of("farm-chosen") == "farm-hold"
    assert cfg.method_of("unio4") == "unio4"
    base = load_config(CONFIGS / "demo.yaml").to_dict()
    for changes, match in (
        ({"methods": ["unio4", "farm-chosen"]}, "unknown method"),
        ({"method_for": {"farm": "farm-hold"}}, "runs itself"),
        ({"method_for": {"farm-chosen": "farm-nope"}}, "unknown method 'farm-nope'"),
        ({"methods": ["farm", "farm-chosen"], "method_for": {"farm-chosen": "farm"}}, "two labels"),
        ({"methods": ["unio4", "farm-chosen"], "method_for": {"farm-chosen": "farm"},
          "task_overrides": {"BoundedPush-v0": {"method_for": {"farm-chosn": "farm-hold"}}}},
         "not method labels"),
        ({"methods": ["unio4", "farm-chosen"], "method_for": {"farm-chosen": "farm"},
          "task_overrides": {"BoundedPush-v0": {"method_for": "farm-hold"}}}, "mapping"),
        ({"methods": ["unio4", "farm-chosen"], "method_for": {"farm-chosen": "farm"},
          "task_overrides": {"BoundedPush-v0": {"method_for": {"farm-chosen": "unio4"}}}},
         "task_overrides.BoundedPush-v0: methods run"),
        ({"methods": ["unio4", "farm-chosen"], "method_for": {"farm-chosen": "farm"},
          "inputs": {"online/farm-chosen_s0": "other"}}, "is a method label"),
    ):  # fmt: skip
        with pytest.raises(ExperimentConfigError, match=match):
            config_from_dict({**base, **changes})


def test_inputs_may_name_several_experiments_searched_in_order():
    """A list value names several experiments (e.g. pipeline seeds built in different ones):
    searched in order, ``stage/item`` first; pipeline seeds shift every name."""
    from farm_trainer.experiments.config import pipeline_of

    base = {**load_config(CONFIGS / "demo.yaml").to_dict(), "pipeline_seeds": True}
    cfg = config_from_dict({**base, "inputs": {"online": ["a", "b"], "online/farm_s0": "c",
                                               "data": "a"}})  # fmt: skip
    assert cfg.inputs_of("online/farm_s0") == ["c", "a", "b"]
    assert cfg.inputs_of("online/unio4_s0") == ["a", "b"] and cfg.inputs_of("data/expert") == ["a"]
    assert pipeline_of(cfg, 3).inputs_of("online/unio4_s3") == ["a/s3", "b/s3"]
    for bad in ([], ["a", 3], ["a", ""], [base["name"]]):
        with pytest.raises(ExperimentConfigError, match="inputs.online"):
            config_from_dict({**base, "inputs": {"online": bad}})


@pytest.mark.parametrize(
    "gate",
    [{"hold_patience": 0}, {"escape_steps": 1.5}, {"hold_patience": True},
     {"shrink_fractions": []}, {"shrink_fractions": [0.5, 1.0]}],
)  # fmt: skip
def test_filter_settings_are_checked_when_the_config_loads(gate):
    with pytest.raises(ExperimentConfigError, match="gate"):
        config_from_dict({"gate": gate})


def test_shrink_fractions_in_any_order_are_one_setting():
    a = config_from_dict({"gate": {"shrink_fractions": [0.25, 0.75, 0.5]}})
    assert a.gate.method_params().shrink_fractions == (0.75, 0.5, 0.25)


def test_unknown_task_is_a_config_error_naming_the_known_ones():
    with pytest.raises(
        ExperimentConfigError, match=r"unknown task\(s\) \['FragilePush-v0'\].*BoundedPush-v0"
    ):
        config_from_dict({"tasks": ["FragilePush-v0"]})
    assert config_from_dict({"tasks": ["FailureBench/BoundedSoccer-v0"]}).tasks


def test_anyof_rule_with_c_h_grid_is_checked_as_the_joint_recall_rule():
    rule = {
        "min_recall": 0.9,
        "recall_within": 10,
        "max_expert_firing": 0.05,
        "c_h_grid": [0.5, 1.0, 2.0],
        "qrisk_grid": [0.9, 0.99],
    }
    assert config_from_dict({"gate": {"anyof_rule": rule}}).gate.anyof_rule == rule
    with pytest.raises(ExperimentConfigError, match="qrisk_grid"):
        config_from_dict({"gate": {"anyof_rule": {k: v for k, v in rule.items()
                                                  if k != "qrisk_grid"}}})  # fmt: skip
    with pytest.raises(ExperimentConfigError, match=r"c_h_grid must be a non-empty list"):
        config_from_dict({"gate": {"anyof_rule": {**rule, "c_h_grid": []}}})
    with pytest.raises(ExperimentConfigError, match=r"unknown key .*ceiling"):
        config_from_dict({"gate": {"anyof_rule": {**rule, "ceiling": 0.3}}})
