"""The main job's bookkeeping: episodes from events, replaced actions joined by stamp, outputs."""

import json

import numpy as np

from farm_bringup.demo_report import RunRecorder, summarize, write_outputs


def _recorder() -> RunRecorder:
    rec = RunRecorder()
    # episode 0: frames 0..2, success then a timeout; episode 1: frames 3..4, IR failure
    for stamp, (ep, step) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]):
        rec.episode_of[stamp] = (ep, step)
    rec.decisions = {0: (0.1, False, 0.2), 1: (0.5, True, 0.2), 2: (0.3, True, 0.2),
                     3: (0.0, False, 0.2), 4: (0.9, True, 0.2)}  # fmt: skip
    rec.events = [("reset", 0, 0, 0.0), ("success", 0, 1, 0.5), ("timeout", 0, 3, 2.5),
                  ("reset", 1, 0, 0.0), ("success", 1, 1, 0.4), ("ir_failure", 1, 2, 0.4)]  # fmt: skip
    return rec


def test_episodes_follow_the_one_success_rule_and_count_replacements():
    eps = _recorder().episodes()
    assert [(e.episode, e.success, e.ir_failure, e.replaced, e.steps) for e in eps] == [
        (0, True, False, 2, 3),
        (1, False, True, 1, 2),  # reached success, then an IR failure: not a success
    ]
    s = summarize(eps)
    assert s["ir_failures"] == 1 and s["successes"] == 1 and s["replaced_actions"] == 3
    assert s["return_mean"] == np.mean([2.5, 0.4])


def test_outputs_are_written(tmp_path):
    rec = _recorder()
    summary = {"task": "FailureBench/BoundedPush-v0", "gate": summarize(rec.episodes())}
    write_outputs(tmp_path, summary, rec.score_trace())
    assert json.loads((tmp_path / "summary.json").read_text())["gate"]["ir_failures"] == 1
    assert (tmp_path / "c_h.png").stat().st_size > 1000
    trace = rec.score_trace()
    assert trace["replaced"].tolist() == [False, True, True, False, True]
