"""Expert-normalised return: expert reference -> 100, random reference -> 0."""

import numpy as np
import pytest

from failurebench_sim import normalize
from failurebench_sim.normalize import Reference, normalized_return


@pytest.fixture
def toy_refs(monkeypatch):
    monkeypatch.setitem(normalize.REFERENCE_RETURNS, "FailureBench/Toy-v0", Reference(20.0, 220.0))


def test_hand_computed(toy_refs):
    assert normalized_return("FailureBench/Toy-v0", 220.0) == pytest.approx(100.0)
    assert normalized_return("FailureBench/Toy-v0", 20.0) == pytest.approx(0.0)
    assert normalized_return("Toy-v0", 120.0) == pytest.approx(50.0)  # short name
    assert normalized_return("Toy-v0", 0.0) == pytest.approx(-10.0)
    np.testing.assert_allclose(normalized_return("Toy-v0", np.array([20.0, 70.0])), [0.0, 25.0])
    assert isinstance(normalized_return("Toy-v0", 70.0), float)


def test_unknown_task_raises_clear_error():
    with pytest.raises(KeyError, match="no reference returns for 'FailureBench/Nope-v0'"):
        normalized_return("Nope-v0", 1.0)


def test_stored_references_map_expert_to_100_and_random_to_0():
    import failurebench_sim

    task_ids = getattr(failurebench_sim, "TASK_IDS", None)
    if not task_ids:
        pytest.skip("FailureBench envs are not registered yet")
    for env_id in task_ids:
        ref = normalize.reference(env_id)
        assert ref.expert > ref.random
        assert normalized_return(env_id, ref.expert) == pytest.approx(100.0)
        assert normalized_return(env_id, ref.random) == pytest.approx(0.0)


def test_references_from_benchmark_rows(toy_refs):
    from failurebench_sim.benchmark import references_from_rows, stale_references

    rows = [
        {"task": "FailureBench/Toy-v0", "policy": "expert", "noise_std": 0.0, "mean_return": 220.0},
        {"task": "FailureBench/Toy-v0", "policy": "expert", "noise_std": 0.5, "mean_return": 90.0},
        {"task": "FailureBench/Toy-v0", "policy": "random", "noise_std": 0.0, "mean_return": 20.0},
        {"task": "FailureBench/Other-v0", "policy": "expert", "noise_std": 0.0, "mean_return": 5.0},
    ]
    refs = references_from_rows(rows)
    assert refs == {"FailureBench/Toy-v0": Reference(20.0, 220.0)}
    assert stale_references(refs) == []
    assert stale_references({"FailureBench/Toy-v0": Reference(20.0, 225.0)}) == [
        "FailureBench/Toy-v0"
    ]
    assert stale_references({"FailureBench/New-v0": Reference(0.0, 1.0)}) == ["FailureBench/New-v0"]
