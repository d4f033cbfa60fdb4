"""Slices never cross episode boundaries, pad after terminals, and oversample failures."""

from types import SimpleNamespace

import numpy as np
import pytest

from farm_safety_critic.sequence_sampler import DatasetError, SequenceSampler, episode_stop


def _toy(lengths=(5, 3, 4), fail_episode=1, obs_dim=2):
    """Episode e has rows whose observation[0] = e and observation[1] = step within episode."""
    ep = np.concatenate([np.full(n, e) for e, n in enumerate(lengths)]).astype(np.int64)
    step = np.concatenate([np.arange(n) for n in lengths])
    obs = np.stack([ep, step], 1).astype(np.float32)
    n = len(ep)
    costs = np.zeros(n, np.float32)
    terminated = np.zeros(n, bool)
    truncated = np.zeros(n, bool)
    ends = np.cumsum(lengths) - 1
    truncated[ends] = True
    costs[ends[fail_episode]] = 1.0
    terminated[ends[fail_episode]] = True
    truncated[ends[fail_episode]] = False
    return SimpleNamespace(
        observations=obs,
        actions=np.zeros((n, 1), np.float32),
        rewards=np.arange(n, dtype=np.float32),
        costs=costs,
        terminated=terminated,
        truncated=truncated,
        episode_ids=ep,
        next_observations=obs + np.array([0, 1], np.float32),
    )


def test_episode_stop():
    tr = SequenceSampler(_toy(), horizon=1).data
    assert episode_stop(tr).tolist() == [4, 4, 4, 4, 4, 7, 7, 7, 11, 11, 11, 11]


def test_slices_stay_in_episode_and_pad_after_terminal():
    s = SequenceSampler(_toy(), horizon=3)
    b = s.gather(np.arange(12))
    ep, step, mask = b.obs[..., 0].numpy(), b.obs[..., 1].numpy(), b.mask.numpy()
    assert (ep == ep[0]).all()  # never crosses an episode boundary, masked or not
    # start 6 = episode 1, step 1: steps 1, 2 valid (2 is the terminal failure), then padded
    assert mask[:, 6].tolist() == [1, 1, 0, 0]
    assert step[:, 6].tolist() == [1, 2, 2, 2]
    assert b.costs[:, 6].tolist() == [0, 1, 1, 1] and b.terminated[1, 6] == 1
    # start 0: a full in-episode slice
    assert mask[:, 0].tolist() == [1, 1, 1, 1] and step[:, 0].tolist() == [0, 1, 2, 3]
    # valid steps are consecutive in time
    assert ((np.diff(step, axis=0) == 1) | (mask[1:] == 0)).all()


def test_failure_starts_and_oversampling():
    s = SequenceSampler(_toy(), horizon=3, failure_fraction=0.5, seed=0)
    assert s.failure_starts.tolist() == [5, 6, 7]
    starts = s.sample_starts(1000)
    frac = np.isin(starts, s.failure_starts).mean()
    assert frac >= 0.5  # 500 forced + uniform hits (3/12 of the rest)
    off = SequenceSampler(_toy(), horizon=3, failure_fraction=0.0, seed=0)
    assert np.isin(off.sample_starts(4000), off.failure_starts).mean() == pytest.approx(
        0.25, abs=0.03
    )


def test_multiple_datasets_renumber_episodes():
    s = SequenceSampler([_toy(), _toy()], horizon=2)
    assert len(np.unique(s.data.episode_ids)) == 6
    b = s.gather(np.arange(24))
    assert (b.obs[..., 0] == b.obs[0, :, 0]).all()
    assert s.gather(np.array([11])).mask[:, 0].tolist() == [1, 0, 0]


def test_rejects_bad_datasets():
    bad = _toy()
    bad.observations[3, 0] = np.nan
    with pytest.raises(DatasetError, match="NaN"):
        SequenceSampler(bad, horizon=3)
    split = _toy()
    split.episode_ids = np.array([0, 0, 1, 1, 0, 2, 2, 2, 3, 3, 3, 3])
    with pytest.raises(DatasetError, match="contiguous"):
        SequenceSampler(split, horizon=3)
    short = _toy()
    short.rewards = short.rewards[:-1]
    with pytest.raises(DatasetError, match="rows"):
        SequenceSampler(short, horizon=3)
    with pytest.raises(DatasetError):
        SequenceSampler([], horizon=3)


def test_lookahead_costs_discount_back_from_the_failure_within_its_episode():
    from farm_safety_critic.sequence_sampler import lookahead_costs

    tr = SequenceSampler(_toy(lengths=(3, 5, 2), fail_episode=1), horizon=1).data
    # episode 1 = rows 3..7, failure on row 7; episodes 0 and 2 must stay 0
    y = lookahead_costs(tr, steps=2, discount=0.5)
    assert y.tolist() == [0, 0, 0, 0, 0, 0.25, 0.5, 1, 0, 0]
    assert lookahead_costs(tr, 0, 0.5).tolist() == tr.costs.tolist()
    with pytest.raises(DatasetError):
        lookahead_costs(tr, -1, 0.5)
    s = SequenceSampler(_toy(lengths=(3, 5, 2), fail_episode=1), horizon=0, cost_lookahead=2,
                        cost_discount=0.5)  # fmt: skip
    assert s.data.costs.tolist() == y.tolist()
    assert s.failure_starts.tolist() == [5, 6, 7]  # soft positives count as failure slices


def test_last_touch_costs_mark_the_run_from_the_last_approach_to_the_failure():
    from farm_safety_critic.sequence_sampler import last_touch_costs

    ds = _toy(lengths=(3, 6, 2), fail_episode=1)  # episode 1 = rows 3..8, failure on row 8
    ds.observations = np.zeros((11, 7), np.float32)  # hand 0:3, object 4:7 (MetaWorld's slots)
    ds.next_observations = ds.observations
    ds.observations[:, 4:7] = 1.0  # the object far from the hand ...
    ds.observations[[1, 4, 5], 0:3] = 1.0  # ... but near it on rows 1 (episode 0), 4 and 5
    tr = SequenceSampler(ds, horizon=1).data
    assert last_touch_costs(tr, 0.05, 60).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert last_touch_costs(tr, 0.05, 2).tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0]
    ds.observations[:, 0:3] = 0.0  # never near: the whole window (never past the segment)
    tr = SequenceSampler(ds, horizon=1).data
    assert last_touch_costs(tr, 0.05, 60).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert last_touch_costs(tr, 0.0, 60).tolist() == tr.costs.tolist()
    with pytest.raises(DatasetError):
        last_touch_costs(tr, -1.0, 60)
    s = SequenceSampler(ds, horizon=0, cost_touch_radius=0.05, cost_touch_window=1)
    assert s.data.costs.tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]
    assert s.failure_starts.tolist() == [7, 8]
