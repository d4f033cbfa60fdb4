"""The trainer node's core: transition journal, message pairing, PPO on a stream, resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from failurebench_sim import ros_contract as rc
from failurebench_sim.datasets import load_dataset
from farm_policies import TanhGaussianActor, ValueNet
from farm_trainer.online.assembler import TransitionAssembler, apply_mark
from farm_trainer.online.journal import (
    JournalError,
    TransitionJournal,
    open_journal,
    to_dataset,
    transitions,
)
from farm_trainer.online.learner import PPOLearner, Transition
from farm_trainer.online.ppo import PPOConfig
from farm_trainer.online.stream import StreamConfig, StreamLearner

OBS, ACT = 39, 4
TASK = "FailureBench/BoundedPush-v0"


def _transition(rng, version=0, term=False, trunc=False) -> Transition:
    """A random step; where the gate replaced the proposal, the arm held still (zeros)."""
    a = rng.uniform(-1, 1, ACT).astype(np.float32)
    tr = Transition(
        obs=rng.normal(size=OBS).astype(np.float32), proposed=a, action=a,
        reward=float(rng.uniform()), cost=float(term), terminated=term, truncated=trunc,
        next_obs=rng.normal(size=OBS).astype(np.float32), replaced=bool(rng.uniform() < 0.1),
        score=float(rng.uniform()), policy_version=version,
    )  # fmt: skip
    return dataclasses.replace(tr, action=np.zeros_like(a)) if tr.replaced else tr


def _stream(rng, n, episode_len=50, version=0):
    """(transition, episode, step) of consecutive episodes."""
    out = []
    for i in range(n):
        ep, st = divmod(i, episode_len)
        out.append((_transition(rng, version, trunc=st == episode_len - 1), ep, st))
    return out


# -- journal ------------------------------------------------------------------------------
def test_journal_survives_a_torn_record_and_refuses_another_layout(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "t.journal"
    j = TransitionJournal(path, OBS, ACT, TASK)
    items = _stream(rng, 7)
    for tr, ep, st in items:
        j.append(tr, ep, st, stamp_ns=123 + st)
    # a killed writer: no close(), and half a record at the end
    with open(path, "ab") as f:
        f.write(b"\x01" * (j.dtype.itemsize // 2))
    records, meta = open_journal(path)
    assert len(records) == 7 and meta["task"] == TASK
    again = TransitionJournal(path, OBS, ACT, TASK)  # reopened: the torn tail is cut
    assert again.rows == 7
    back = transitions(again.read())
    for (tr, _, _), b in zip(items, back, strict=True):
        np.testing.assert_array_equal(tr.obs, b.obs)
        assert (tr.reward, tr.truncated, tr.replaced) == pytest.approx((b.reward, b.truncated,
                                                                       b.replaced))  # fmt: skip
    with pytest.raises(JournalError, match="layout and task"):
        TransitionJournal(path, OBS, ACT, "FailureBench/BoundedSoccer-v0")
    (tmp_path / "x").write_bytes(b"not a journal")
    with pytest.raises(JournalError):
        open_journal(tmp_path / "x")


def test_journal_exports_the_offline_dataset_format(tmp_path):
    rng = np.random.default_rng(1)
    j = TransitionJournal(tmp_path / "t.journal", OBS, ACT, TASK)
    for tr, ep, st in _stream(rng, 120, episode_len=40):
        j.append(tr, ep, st)
    records, meta = open_journal(j.path)
    to_dataset(records, meta, tmp_path / "online.npz")
    ds = load_dataset(tmp_path / "online.npz")  # the offline stage's own loader
    assert len(ds) == 120 and ds.n_episodes == 3
    assert ds.metadata["env_id"] == TASK and ds.metadata["kind"] == "online"
    np.testing.assert_array_equal(ds.observations, records["obs"])


# -- pairing ------------------------------------------------------------------------------
def _decision(a, version=0, replaced=0.0, hold=0.0) -> dict:
    v = {f"proposed_{k}": x for k, x in zip(rc.ACTION_LABELS, a, strict=True)}
    v.update({f"executed_{k}": x for k, x in zip(rc.ACTION_LABELS, a, strict=True)})
    return {**v, "replaced": replaced, "score": 0.1, "eps_safe": 0.3,
            "policy_version": version, "hold": hold}  # fmt: skip


def _step(t_from, ep, st, term=0.0, trunc=0.0, reward=0.5) -> dict:
    sec, nsec = divmod(t_from, 1_000_000_000)
    return {"reward": reward, "cost": term, "success": 0.0, "terminated": term,
            "truncated": trunc, "episode": ep, "step": st, "from_sec": sec,
            "from_nanosec": nsec}  # fmt: skip


def test_assembler_skips_steps_that_ran_another_frames_command():
    asm = TransitionAssembler()
    a, o = np.zeros(4), np.zeros(OBS, dtype=np.float32)
    late = {**_step(100, 0, 0), "command_sec": 0.0, "command_nanosec": 50.0}  # frame 50's
    asm.add_decision(100, _decision(a))
    asm.add_observation(100, o)
    asm.add_observation(200, o)
    assert asm.add_step(200, late) == [] and asm.late == 1
    held = {**_step(200, 0, 1), "command_sec": -1.0, "command_nanosec": 0.0}
    asm.add_decision(200, _decision(a))
    asm.add_observation(300, o)
    assert asm.add_step(300, held) == [] and asm.late == 2
    on_time = {**_step(300, 0, 2), "command_sec": 0.0, "command_nanosec": 300.0}
    asm.add_decision(300, _decision(a))
    asm.add_observation(400, o)
    assert len(asm.add_step(400, on_time)) == 1


def test_assembler_pairs_in_any_order_and_uses_the_final_observation_at_an_episode_end():
    asm = TransitionAssembler()
    o = [np.full(OBS, k, dtype=np.float32) for k in range(4)]
    a = np.array([0.1, 0.2, 0.3, -1.0])
    T = [k * 33_333_333 for k in range(4)]
    # frame 0 -> 1: step outcome first, then the decision, then the observations
    assert asm.add_step(T[1], _step(T[0], 0, 0)) == []
    assert asm.add_decision(T[0], _decision(a)) == []
    assert asm.add_observation(T[1], o[1]) == []
    (done,) = asm.add_observation(T[0], o[0])
    assert done.episode == 0 and done.step == 0 and done.stamp_ns == T[0]
    np.testing.assert_array_equal(done.transition.next_obs, o[1])
    # frame 1 -> 2 ends the episode: the next obs is the final observation, not frame 2's
    asm.add_decision(T[1], _decision(a, version=1))
    asm.add_observation(T[2], o[2])  # already the next episode's first frame
    assert asm.add_step(T[2], _step(T[1], 0, 1, term=1.0)) == []
    final = np.full(OBS, 9.0, dtype=np.float32)
    (done,) = asm.add_final_observation(T[2], final)
    assert done.transition.terminated and done.transition.policy_version == 1
    np.testing.assert_array_equal(done.transition.next_obs, final)
    # a held decision (non-finite input upstream) is never trained on
    asm.add_decision(T[2], _decision(a, hold=1.0))
    asm.add_observation(T[3], o[3])
    assert asm.add_step(T[3], _step(T[2], 1, 0)) == [] and asm.invalid == 1
    marked = apply_mark(done, "ir_failure")
    assert marked.transition.cost == 1.0 and marked.transition.reward == 0.0


# -- PPO on a stream ----------------------------------------------------------------------
def _nets(seed=0):
    torch.manual_seed(seed)
    return TanhGaussianActor(OBS, ACT, 32, 2), ValueNet(OBS, 32, 2)


def _cfg(tmp_path, **kw) -> StreamConfig:
    ppo = PPOConfig(minibatch_size=16, epochs=2)
    return StreamConfig(task=TASK, output_dir=str(tmp_path / "trainer"), batch_steps=64,
                        ppo=ppo, **kw)  # fmt: skip


@pytest.mark.parametrize("learn_actions", ["executed", "proposed"])
def test_stream_updates_equal_the_in_process_learner_on_the_same_transitions(
    tmp_path, learn_actions
):
    """The graph's trainer and the benchmark's learner make the same update, whichever actions
    PPO learns on where the gate held the arm (``ppo.learn_actions``)."""
    rng = np.random.default_rng(2)
    items = _stream(rng, 64)
    assert any(tr.replaced and not np.array_equal(tr.action, tr.proposed) for tr, _, _ in items)
    cfg = _cfg(tmp_path)
    cfg.ppo = dataclasses.replace(cfg.ppo, learn_actions=learn_actions)
    lrn = StreamLearner(cfg, *_nets(), log=lambda *_: None)
    rows = [lrn.add(tr, ep, st) for tr, ep, st in items]
    assert rows[:-1] == [None] * 63 and lrn.version == 1
    stream_stats = rows[-1]
    batch = load_dataset(tmp_path / "trainer" / "dataset" / "update_00001.npz")
    assert len(batch) == 64 and batch.n_episodes == 2  # the update's batch, offline format
    # the benchmark's learner, same init, same torch seed, same transitions
    actor, critic = _nets()
    torch.manual_seed(0)
    ref = PPOLearner(actor, critic, PPOConfig(minibatch_size=16, epochs=2, batch_size=64,
                                              learn_actions=learn_actions))  # fmt: skip
    ro = ref.annotate(lrn.rollout(lrn.journal.read()))
    stats = ref.update(ro)
    for k in ("pi_loss", "v_loss", "kl", "clipfrac", "entropy"):
        assert stream_stats[k] == pytest.approx(stats[k], rel=1e-6, abs=1e-9), k
    for p, q in zip(lrn.learner.actor.parameters(), actor.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-8)
    lrn.close()


def test_stale_transitions_get_the_behaviour_versions_log_probs(tmp_path):
    rng = np.random.default_rng(3)
    lrn = StreamLearner(_cfg(tmp_path, keep_versions=2), *_nets(), log=lambda *_: None)
    v0 = {k: v.clone() for k, v in lrn.learner.actor.state_dict().items()}
    for tr, ep, st in _stream(rng, 64):
        lrn.add(tr, ep, st)
    assert lrn.version == 1
    # 10 transitions still proposed by v0 (the push was in flight), then v1 and one from a
    # version this run never published
    items = [(_transition(rng, 0), 9, k) for k in range(10)]
    items += [(_transition(rng, 1), 9, k) for k in range(10, 63)] + [(_transition(rng, 7), 9, 63)]
    records = []
    for tr, ep, st in items:
        lrn.journal.append(tr, ep, st)
    records = lrn.journal.read(lrn.counters["trained_rows"])
    ro = lrn.rollout(records)
    keep = lrn.annotate(ro)
    assert keep.sum() == 63 and not keep[-1]
    behaviour, _ = _nets()
    behaviour.load_state_dict(v0)
    with torch.no_grad():
        want = behaviour.log_prob(
            torch.as_tensor(ro.obs[:10, 0]), torch.as_tensor(ro.actions[:10, 0])
        )
        now = lrn.learner.actor.log_prob(torch.as_tensor(ro.obs[10:63, 0]),
                                         torch.as_tensor(ro.actions[10:63, 0]))  # fmt: skip
    np.testing.assert_allclose(ro.logp[:10, 0], want.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ro.logp[10:63, 0], now.numpy(), rtol=1e-6)
    lrn.close()


def test_gap_in_the_stream_cuts_gae_like_a_time_limit(tmp_path):
    rng = np.random.default_rng(4)
    lrn = StreamLearner(_cfg(tmp_path), *_nets(), log=lambda *_: None)
    for tr, ep, st in _stream(rng, 10):
        if st != 5:  # step 5 was never received (trainer down)
            lrn.journal.append(tr, ep, st)
    ro = lrn.rollout(lrn.journal.read())
    assert ro.truncated[:, 0].tolist() == [False] * 4 + [True] + [False] * 4
    lrn.close()


def test_a_killed_trainer_resumes_with_every_journaled_transition(tmp_path):
    rng = np.random.default_rng(5)
    items = _stream(rng, 200, episode_len=30)
    cfg = _cfg(tmp_path)
    lrn = StreamLearner(cfg, *_nets(), log=lambda *_: None)
    for tr, ep, st in items[:150]:
        lrn.add(tr, ep, st)
    assert lrn.version == 2 and lrn.pending() == 22
    before = lrn.journal.read().copy()
    del lrn  # killed: no close(), no final checkpoint
    resumed = StreamLearner(cfg, *_nets(seed=9), log=lambda *_: None)
    assert resumed.resumed and resumed.version == 2 and resumed.pending() == 22
    assert resumed.counters["transitions"] == 150
    np.testing.assert_array_equal(resumed.journal.read()[:150], before)
    for tr, ep, st in items[150:]:
        resumed.add(tr, ep, st)
    assert resumed.version == 3 and resumed.counters["transitions"] == 200
    # episodes counted once each across the restart (30 steps: 6 ended within 200 steps)
    assert resumed.counters["episodes"] == 6
    # the same run without the kill ends at the same weights
    straight = StreamLearner(_cfg(tmp_path / "b"), *_nets(), log=lambda *_: None)
    for tr, ep, st in items:
        straight.add(tr, ep, st)
    for p, q in zip(resumed.learner.actor.parameters(), straight.learner.actor.parameters(),
                    strict=True):  # fmt: skip
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-8)
    resumed.close()
    straight.close()


def test_a_trainer_killed_before_its_first_update_keeps_its_transitions(tmp_path):
    rng = np.random.default_rng(6)
    items = _stream(rng, 40, episode_len=10)
    lrn = StreamLearner(_cfg(tmp_path), *_nets(), log=lambda *_: None)
    for tr, ep, st in items:
        lrn.add(tr, ep, st)
    del lrn  # no checkpoint was ever written
    again = StreamLearner(_cfg(tmp_path), *_nets(), log=lambda *_: None)
    assert not again.resumed and again.pending() == 40
    assert again.counters["transitions"] == 40 and again.counters["episodes"] == 4
    again.close()
