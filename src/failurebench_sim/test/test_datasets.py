"""Dataset container, .npz format (round trip, rejection of bad files, atomic write) and collect()."""

import io
import json
import os
import zipfile

import gymnasium as gym
import numpy as np
import pytest

from failurebench_sim import datasets as ds
from failurebench_sim.datasets import Dataset, DatasetFormatError, load_dataset, save_dataset

TOY_ID = "FailureBenchTest/Toy-v0"


class ToyEnv(gym.Env):
    """1-d point: x += a[0] / 4; failure (cost 1, terminate) at |x| > 1; success at x in [0.4, 0.6]."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (3,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        near = (options or {}).get("start") == "near_failure"
        self.x = 0.95 if near else float(self.np_random.uniform(-0.2, 0.2))
        return self._obs(), {}

    def _obs(self):
        return np.array([self.x, 0.5, 1.0])

    def step(self, action):
        self.x += float(action[0]) / 4
        failure = abs(self.x) > 1.0
        success = 0.4 <= self.x <= 0.6
        info = {"cost": float(failure), "failure": failure, "success": float(success)}
        return self._obs(), 1.0 - abs(self.x - 0.5), failure, False, info


if TOY_ID not in gym.registry:
    gym.register(TOY_ID, entry_point=ToyEnv, max_episode_steps=10)


class PushRight:
    def __init__(self, speed=0.5):
        self.speed, self.resets = speed, 0

    def act(self, obs):
        return np.array([self.speed, 0, 0, 0], dtype=np.float32)

    def reset(self):
        self.resets += 1


def make_dataset(episode_lengths=(3, 2), obs_dim=5, meta=None):
    n = sum(episode_lengths)
    rng = np.random.default_rng(0)
    terminated = np.zeros(n, bool)
    terminated[np.cumsum(episode_lengths) - 1] = True
    return Dataset(
        observations=rng.standard_normal((n, obs_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        rewards=np.arange(n, dtype=np.float32),
        costs=terminated.astype(np.float32),
        terminated=terminated,
        truncated=np.zeros(n, bool),
        episode_ids=np.repeat(np.arange(len(episode_lengths)), episode_lengths).astype(np.int64),
        next_observations=rng.standard_normal((n, obs_dim)).astype(np.float32),
        metadata=meta
        or {"env_id": "FailureBench/Toy-v0", "kind": "task", "format_version": ds.FORMAT_VERSION},
    )


def arrays_of(d):
    return {name: getattr(d, name) for name in ds.FIELDS}


def write_npz(path, arrays, metadata=None, allow_pickle=False):
    payload = dict(arrays)
    if metadata is not None:
        payload["metadata"] = np.array([json.dumps(metadata)])
    np.savez(path, **payload, allow_pickle=allow_pickle)
    return path


# --------------------------------------------------------------------------- container


def test_len_and_episode_slices():
    d = make_dataset((3, 2, 4))
    assert len(d) == 9 and d.n_episodes == 3
    assert list(d.episodes()) == [slice(0, 3), slice(3, 5), slice(5, 9)]
    np.testing.assert_allclose(d.episode_returns(), [0 + 1 + 2, 3 + 4, 5 + 6 + 7 + 8])
    assert d.episode_failures().tolist() == [True, True, True]


def test_concatenate_renumbers_episode_ids():
    a, b = make_dataset((2, 3)), make_dataset((1, 1, 2))
    b = Dataset(**{**arrays_of(b), "episode_ids": np.array([7, 9, 11, 11])}, metadata=b.metadata)
    c = Dataset.concatenate([a, b])
    assert c.episode_ids.tolist() == [0, 0, 1, 1, 1, 2, 3, 4, 4]
    assert len(c) == 9 and c.metadata["n_episodes"] == 5
    assert c.metadata["kind"] == "task" and len(c.metadata["parts"]) == 2
    np.testing.assert_array_equal(c.observations[5:], b.observations)
    with pytest.raises(DatasetFormatError):
        Dataset.concatenate([])


def test_construction_validates():
    good = arrays_of(make_dataset())
    with pytest.raises(DatasetFormatError, match="dtype"):
        Dataset(**{**good, "rewards": good["rewards"].astype(np.float64)})
    with pytest.raises(DatasetFormatError, match="actions.*outside"):
        Dataset(**{**good, "actions": good["actions"] * 3})
    with pytest.raises(DatasetFormatError, match="non-decreasing"):
        Dataset(**{**good, "episode_ids": np.array([0, 0, 1, 1, 0], dtype=np.int64)})


# --------------------------------------------------------------------------- on-disk format


def test_round_trip_all_fields_and_metadata(tmp_path):
    meta = {
        "env_id": "FailureBench/BoundedPush-v0",
        "kind": "failure",
        "policy": "expert",
        "noise_std": 0.3,
        "seed": 4,
        "n_episodes": 2,
        "format_version": ds.FORMAT_VERSION,
        "created_by": "test",
        "nested": {"a": [1, 2]},
    }
    d = make_dataset(meta=meta)
    save_dataset(tmp_path / "sub" / "d.npz", d)
    e = load_dataset(tmp_path / "sub" / "d.npz")
    for name in ds.FIELDS:
        got, want = getattr(e, name), getattr(d, name)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert e.metadata == meta
    assert os.listdir(tmp_path / "sub") == ["d.npz"]  # no temp file left behind


def test_file_holds_no_object_arrays(tmp_path):
    save_dataset(tmp_path / "d.npz", make_dataset())
    with np.load(tmp_path / "d.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {*ds.FIELDS, "metadata"}
        assert all(npz[k].dtype != object for k in npz.files)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.pop("costs"), r"missing key\(s\) \['costs'\]"),
        (
            lambda a: a.update(rewards=a["rewards"].astype(np.float64)),
            "'rewards' has dtype float64",
        ),
        (lambda a: a.update(terminated=a["terminated"].astype(np.int8)), "'terminated' has dtype"),
        (lambda a: a.update(actions=a["actions"][:, None, :]), "'actions' has shape"),
        (lambda a: a.update(costs=a["costs"][:-1]), "length mismatch: 'costs'"),
        (
            lambda a: a.update(next_observations=a["next_observations"][:, :3]),
            "differ in obs_dim",
        ),
        (lambda a: a["observations"].__setitem__((2, 1), np.nan), "'observations' has non-finite"),
        (lambda a: a["rewards"].__setitem__(4, np.inf), "'rewards' has non-finite.*row 4"),
        (lambda a: a.update(episode_ids=np.array([0, 1, 0, 1, 1])), "non-decreasing"),
    ],
)
def test_rejects_malformed_arrays(tmp_path, mutate, message):
    arrays = {k: v.copy() for k, v in arrays_of(make_dataset()).items()}
    mutate(arrays)
    path = write_npz(tmp_path / "bad.npz", arrays, {"format_version": ds.FORMAT_VERSION})
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset(path)


def test_rejects_bad_metadata(tmp_path):
    arrays = arrays_of(make_dataset())
    with pytest.raises(DatasetFormatError, match=r"missing key.*metadata"):
        load_dataset(write_npz(tmp_path / "a.npz", arrays))
    with pytest.raises(DatasetFormatError, match="format_version"):
        load_dataset(write_npz(tmp_path / "b.npz", arrays, {"format_version": 99}))
    np.savez(tmp_path / "c.npz", **arrays, metadata=np.array(["{not json"]))
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        load_dataset(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", **arrays, metadata=np.zeros(3))
    with pytest.raises(DatasetFormatError, match="1-element unicode"):
        load_dataset(tmp_path / "d.npz")


def test_rejects_garbage_and_non_npz(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"\x00\x01 definitely not a zip file" * 10)
    with pytest.raises(DatasetFormatError, match="not a readable dataset"):
        load_dataset(tmp_path / "garbage.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DatasetFormatError):
        load_dataset(tmp_path / "empty.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DatasetFormatError, match="not an .npz archive"):
        load_dataset(tmp_path / "single.npy")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("rewards.npy", b"truncated npy")
    (tmp_path / "broken.npz").write_bytes(buf.getvalue())
    with pytest.raises(DatasetFormatError):
        load_dataset(tmp_path / "broken.npz")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing.npz")


def test_rejects_pickled_object_array(tmp_path):
    arrays = dict(arrays_of(make_dataset()))
    arrays["rewards"] = np.array([{"evil": 1}] * 5, dtype=object)
    path = write_npz(tmp_path / "pickle.npz", arrays, {"format_version": 1}, allow_pickle=True)
    with pytest.raises(DatasetFormatError, match="pickle"):
        load_dataset(path)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    save_dataset(path, make_dataset((2, 2)))
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        save_dataset(path, make_dataset((3, 2)))
    with pytest.raises(OSError):
        save_dataset(tmp_path / "new.npz", make_dataset())
    assert sorted(os.listdir(tmp_path)) == ["d.npz"]
    assert path.read_bytes() == before


def test_save_rejects_unserialisable_metadata(tmp_path):
    d = make_dataset(meta={"format_version": 1, "bad": object()})
    with pytest.raises(DatasetFormatError, match="JSON"):
        save_dataset(tmp_path / "d.npz", d)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- collect


def test_noisy_action_is_clipped():
    rng = np.random.default_rng(0)
    a = ds.noisy_action(np.array([0.9, -0.9, 0.0, 0.0]), 5.0, rng)
    assert a.dtype == np.float32 and np.all(np.abs(a) <= 1.0)
    np.testing.assert_array_equal(ds.noisy_action(np.array([2.0, 0, 0, 0]), 0.0, rng), [1, 0, 0, 0])


def test_collect_episodes_failure_and_metadata():
    pi = PushRight(speed=1.0)  # x += 0.25 per step: from |x0| <= 0.2 fails on step 4 or 5 or 6
    d = ds.collect(TOY_ID, pi, n_episodes=3, seed=5, kind="failure", policy_name="push")
    assert d.n_episodes == 3 and pi.resets == 3
    assert d.observations.dtype == np.float32 and d.observations.shape[1] == 3
    for s in d.episodes():
        assert d.terminated[s][-1] and not d.terminated[s][:-1].any()
        assert d.costs[s].tolist() == [0.0] * (s.stop - s.start - 1) + [1.0]
        np.testing.assert_array_equal(d.observations[s][1:], d.next_observations[s][:-1])
    m = d.metadata
    assert m["env_id"] == TOY_ID and m["kind"] == "failure" and m["policy"] == "push"
    assert m["n_episodes"] == 3 and m["n_failure_episodes"] == 3 and m["seed"] == 5
    assert m["format_version"] == ds.FORMAT_VERSION and m["created_by"]


def test_collect_transition_budget_truncates_last_episode():
    d = ds.collect(TOY_ID, PushRight(speed=0.0), n_transitions=25, noise_std=0.1, seed=0)
    assert len(d) == 25 and d.n_episodes == 3  # 10 + 10 + 5 (time limit 10)
    assert d.truncated.tolist() == ([False] * 9 + [True]) * 2 + [False] * 4 + [True]
    assert np.all(np.abs(d.actions) <= 1) and d.actions[:, 0].std() > 0.05


def test_collect_is_reproducible_and_near_failure_start():
    a = ds.collect(TOY_ID, PushRight(0.0), n_episodes=2, noise_std=0.5, seed=3)
    b = ds.collect(TOY_ID, PushRight(0.0), n_episodes=2, noise_std=0.5, seed=3)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.observations, b.observations)
    r = ds.collect(TOY_ID, PushRight(0.5), n_episodes=2, start="near_failure", kind="recovery")
    assert r.observations[0, 0] == np.float32(0.95) and r.costs.sum() == 2.0
    with pytest.raises(ValueError):
        ds.collect(TOY_ID, PushRight(), n_episodes=1, n_transitions=3)


def test_collect_random_policy_round_trips(tmp_path):
    d = ds.collect(TOY_ID, "random", n_transitions=12, seed=1)
    save_dataset(tmp_path / "r.npz", d)
    e = load_dataset(tmp_path / "r.npz")
    np.testing.assert_array_equal(e.actions, d.actions)
    assert e.metadata["policy"] == "random" and len(e) == 12


def test_resolve_env_id():
    assert ds.resolve_env_id("BoundedPush-v0") == "FailureBench/BoundedPush-v0"
    assert ds.resolve_env_id("FailureBench/BoundedPush-v0") == "FailureBench/BoundedPush-v0"
