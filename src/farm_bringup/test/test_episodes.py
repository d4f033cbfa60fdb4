"""The robot's episode flow: steps while running, an ending mark or the time limit pauses."""

from farm_bringup.episodes import EpisodeFlow


def test_marks_and_the_time_limit_end_episodes_and_pause_until_resumed():
    f = EpisodeFlow(time_limit=3)
    assert f.frame() is None  # nothing runs before the operator says the scene is ready
    f.resume()
    assert [f.frame(), f.frame()] == [(0, 0), (0, 1)]
    assert f.mark("ir_failure") and f.paused and "restore the scene" in f.prompt
    assert f.frame() is None and not f.mark("success")  # nothing runs: nothing to end
    f.resume()
    assert [f.frame() for _ in range(3)] == [(1, 0), (1, 1), (1, 2)]
    assert f.paused and f.ended == {"ir_failure": 1, "timeout": 1}  # the time limit ended it
    f.resume()
    assert f.frame() == (2, 0)
    assert not f.mark("unknown") and not f.paused
    f.pause()
    assert f.frame() is None and f.episode == 2
    f.resume()
    assert f.frame() == (2, 1)  # a pause does not end the episode
    assert f.mark("intervention") and f.ended["intervention"] == 1


def test_the_episode_index_keeps_recoveries_and_interventions(tmp_path):
    from farm_bringup.recording import EpisodeRecorder, read_index

    rec = EpisodeRecorder(tmp_path)
    rec.write("/farm/decision", "sensor_msgs/msg/JointState", 1, b"\x00\x01\x00\x00")
    row = rec.end_episode("intervention", 3.0, 40, recoveries=7, interventions=1)
    assert (row.recoveries, row.interventions) == (7, 1)
    (back,) = read_index(tmp_path / "index.csv")
    assert back == row
