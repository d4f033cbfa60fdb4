"""The twin's core: frames rebuild the env observation, targets replay actions, episodes are
deterministic, camera frames have the driver's units."""

import gymnasium as gym
import numpy as np
import pytest

from failurebench_sim.command import CommandError, action_to_target
from failurebench_sim.datasets import make_policy
from failurebench_sim.observation import ObservationBuilder, gripper_opening
from failurebench_sim.twin import CommandLatch, SimConfig, Twin, TwinError, depth_to_mm


def _random_run(twin: Twin, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = [twin.reset()]
    for _ in range(steps):
        target, g = action_to_target(frames[-1].hand_pos, rng.uniform(-1, 1, 4))
        frames.append(twin.step(target, g))
    return frames


@pytest.mark.parametrize(("task", "n_objects"), [("BoundedPush-v0", 1), ("ObstructedPush-v0", 2)])
def test_frames_rebuild_the_env_observation_exactly(task, n_objects):
    twin = Twin(SimConfig(task=task, seed=3, time_limit=20))
    builder = ObservationBuilder.for_env(twin.env)
    frames = _random_run(twin, 50)
    assert [f.episode for f in frames].count(2) > 0  # crossed two resets
    for f in frames:
        assert len(f.objects) == n_objects
        if f.step == 0:
            builder.reset()
        opening = gripper_opening(sum(f.finger_positions))
        rebuilt = builder(f.hand_pos, opening, f.objects, f.goal)
        np.testing.assert_array_equal(rebuilt, f.observation)
        assert f.sim_time_ns == f.index * round(1e9 / 30.0)


@pytest.mark.parametrize("task", ["BoundedPush-v0", "ObstructedPush-v0"])
def test_target_round_trip_replays_the_direct_action_trajectory_exactly(task):
    """float32 actions (the env's dtype) -> target -> action are bit-exact: zero tolerance
    over a whole 200-step episode (float64 actions would differ by ~1e-16 per step, which
    contacts amplify to ~1e-3 m over 200 steps)."""
    cfg = SimConfig(task=task, seed=5)
    twin = Twin(cfg)
    env = gym.make(f"FailureBench/{task}")
    rng = np.random.default_rng(1)
    f = twin.reset()
    obs, _ = env.reset(seed=cfg.seed)
    for _ in range(200):
        a = rng.uniform(-1, 1, 4).astype(np.float32)
        f = twin.step(*action_to_target(f.hand_pos, a))
        obs, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            np.testing.assert_array_equal(f.final_observation, obs)
            obs, _ = env.reset(seed=cfg.seed + 1)
            assert f.episode == 1
            break
        np.testing.assert_array_equal(f.observation, obs)
    np.testing.assert_array_equal(f.observation, obs)


def _events(twin: Twin, act) -> list[tuple]:
    f = twin.reset()
    out = [(e.kind, e.episode, e.step) for e in f.events]
    while not f.last:
        f = twin.step(*action_to_target(f.hand_pos, act(f)))
        out += [(e.kind, e.episode, e.step) for e in f.events]
    return out


def test_timeouts_reset_with_consecutive_seeds_deterministically():
    cfg = SimConfig(seed=7, time_limit=5, max_episodes=3)
    hold = lambda f: np.zeros(4)  # noqa: E731
    expected = [("reset", 0, 0), ("timeout", 0, 5), ("reset", 1, 0), ("timeout", 1, 5)]
    expected += [("reset", 2, 0), ("timeout", 2, 5)]
    assert _events(Twin(cfg), hold) == _events(Twin(cfg), hold) == expected
    env = gym.make("FailureBench/BoundedPush-v0")
    twin = Twin(cfg)
    for e in range(3):
        f = twin.frame if e else twin.reset()
        np.testing.assert_array_equal(f.observation, env.reset(seed=7 + e)[0])
        assert f.episode == e
        for _ in range(5):
            f = twin.step_action(np.zeros(4))
    assert f.last and f.outcome.truncated and f.index == 15


def test_ir_failure_and_success_events():
    twin = Twin(SimConfig(seed=0, start="near_failure", max_episodes=1))
    base = twin.env.unwrapped
    f = twin.reset()
    lo, hi = base.boundary
    puck = f.objects[0].position
    gaps = [puck[0] - lo[0], hi[0] - puck[0], puck[1] - lo[1], hi[1] - puck[1]]
    k = int(np.argmin(gaps))
    push = np.zeros(4)
    push[k // 2] = (-1.0, 1.0)[k % 2]
    events = _events(twin, lambda f: push)
    assert events[0] == ("reset", 0, 0) and events[-1][:2] == ("ir_failure", 0)
    assert twin.frame.outcome.terminated and twin.frame.outcome.cost == 1.0

    expert = make_policy("BoundedPush-v0", "expert")
    cfg = SimConfig(seed=0, reset_on_success=True, max_episodes=2)
    events = _events(Twin(cfg), lambda f: expert.act(f.observation))
    kinds = [(k, e) for k, e, _ in events]
    assert kinds == [("reset", 0), ("success", 0), ("reset", 1), ("success", 1)]


def test_camera_frames_have_driver_shapes_and_millimetres():
    twin = Twin(SimConfig(observation_source="camera", camera_width=64, camera_height=48))
    f = twin.reset()
    cam = f.camera
    assert cam.rgb.shape == (48, 64, 3) and cam.rgb.dtype == np.uint8
    assert cam.depth_mm.shape == (48, 64) and cam.depth_mm.dtype == np.uint16
    assert cam.k.shape == (3, 3) and cam.t_base_optical.shape == (4, 4)
    _, depth_m = twin.env.unwrapped.render_rgbd()
    valid = cam.depth_mm > 0
    assert valid.mean() > 0.9
    np.testing.assert_allclose(cam.depth_mm[valid], depth_m[valid] * 1000.0, atol=0.5)
    assert 0.3 < np.median(depth_m) < 3.0  # metres in, a table about a metre away
    np.testing.assert_array_equal(
        depth_to_mm([np.nan, -1.0, 0.0, 1.2344, 70.0, 5.0], far_m=4.0), [0, 0, 0, 1234, 0, 0]
    )
    assert Twin(SimConfig()).reset().camera is None


def test_command_latch_pairs_by_stamp_and_holds_in_realtime():
    latch = CommandLatch(timeout_ns=100)
    latch.expect(10)
    assert not latch.offer_target(9, [1, 2, 3])  # another frame's stamp
    assert latch.offer_target(10, [0.1, 0.2, 0.3])
    assert not latch.offer_target(10, [9, 9, 9])  # duplicate: the first wins
    assert latch.for_stamp(10) is None  # no gripper command yet
    latch.expect(10)  # re-published frame keeps what arrived
    with pytest.raises(CommandError):
        latch.offer_gripper(10, float("nan"))
    with pytest.raises(CommandError):
        latch.offer_target(10, [np.nan, 0, 0])
    assert latch.offer_gripper(10, 1.0)
    target, g = latch.for_stamp(10)
    np.testing.assert_array_equal(target, [0.1, 0.2, 0.3])
    assert g == 1.0 and latch.for_stamp(10) is None
    hand = np.array([5.0, 5.0, 5.0])
    np.testing.assert_array_equal(latch.latest(110, hand)[0], [9, 9, 9])  # newest, fresh
    np.testing.assert_array_equal(latch.latest(111, hand)[0], hand)  # stale: hold
    assert CommandLatch().latest(0, hand)[1] == 0.0


def test_config_is_validated():
    for bad in (
        {"clock_mode": "fast"},
        {"observation_source": "lidar"},
        {"control_rate_hz": 0.0},
        {"start": "upside_down"},
    ):
        with pytest.raises(TwinError):
            SimConfig(**bad).validate()


def test_latch_ignores_commands_of_another_clock():
    """A twin restarted at sim time 0 must not keep a target stamped by the old clock."""
    latch = CommandLatch(timeout_ns=100)
    hand = np.zeros(3)
    latch.expect(1_000)
    assert not latch.offer_target(80_000_000_000, [5, 5, 5])  # 80 s ahead: another clock
    assert latch.offer_target(1_000, [1, 1, 1])
    np.testing.assert_array_equal(latch.latest(1_050, hand)[0], [1, 1, 1])
    np.testing.assert_array_equal(latch.latest(900, hand)[0], hand)  # stamped after the frame
