"""LatestPairer: frames completed with inputs on clocks of their own."""


def test_latest_pairer_completes_a_frame_with_the_newest_older_inputs():
    from failurebench_sim.stamp_sync import LatestPairer

    p = LatestPairer("objects", ("ee", "episode"), max_age_ns=100)
    assert p.add("ee", 990, "ee990") is None
    assert p.add("objects", 1000, "o1000") is None  # no episode state yet: waits
    assert p.add("ee", 1005, "ee1005") is None  # newer than the frame: not used for it
    frame = p.add("episode", 1000, "ep1000")
    assert frame == {"objects": "o1000", "ee": "ee990", "episode": "ep1000"}
    assert p.last_completed == 1000 and p.add("objects", 1000, "again") is None
    assert p.add("objects", 1300, "o1300") is None  # the inputs are too old (> 100 ns)
    p.add("ee", 1290, "ee1290")
    assert p.add("episode", 1295, "ep1295") == {"objects": "o1300", "ee": "ee1290",
                                                "episode": "ep1295"}  # fmt: skip
