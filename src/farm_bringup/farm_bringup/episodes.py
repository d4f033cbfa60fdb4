"""The robot's episode flow (no twin to reset the scene): count steps, end episodes, pause.

An episode ends at the operator's mark (success, IR failure, intervention) or at the time limit;
then the flow pauses (the arbiter holds the arm) until the operator has restored the scene and
resumes. Pause / resume at any time. ``EpisodeNode`` is the ROS adapter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

ENDING_MARKS = ("success", "ir_failure", "intervention")


@dataclass
class EpisodeFlow:
    time_limit: int = 200
    episode: int = 0
    step: int = 0
    paused: bool = True  # the first episode starts when the operator resumes (scene ready)
    ended: Counter = field(default_factory=Counter)  # how episodes ended
    prompt: str = "set up the scene, then resume"
    last_end: tuple[int, int, str] | None = None  # (episode, steps, why) of the last ending

    def frame(self) -> tuple[int, int] | None:
        """(episode, step) of a new camera frame, or None while paused (the frame is held)."""
        if self.paused:
            return None
        out = (self.episode, self.step)
        self.step += 1
        if self.step >= self.time_limit:
            self._end("timeout")
        return out

    def mark(self, kind: str) -> bool:
        """The operator's mark; an ending one closes the running episode. False if unknown or
        nothing runs."""
        if kind not in ENDING_MARKS or self.paused:
            return False
        self._end(kind)
        return True

    def _end(self, why: str) -> None:
        self.ended[why] += 1
        self.last_end = (self.episode, self.step, why)
        self.episode += 1
        self.step = 0
        self.paused = True
        self.prompt = ("restore the scene (IR failure), then resume"
                       if why in ("ir_failure", "intervention")
                       else f"episode ended ({why}): reset the scene, then resume")  # fmt: skip

    def pause(self) -> None:
        self.paused, self.prompt = True, "paused by the operator: resume to continue"

    def resume(self) -> None:
        self.paused, self.prompt = False, ""
