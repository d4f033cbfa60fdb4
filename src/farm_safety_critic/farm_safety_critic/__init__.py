"""Latent world model (TD-MPC2 style) with constraint head, C_H safety score, recovery gate, and the safety node.

Modules (no ROS imports in any of them):

* ``math``, ``layers``: symlog / two-hot, NormedLinear, SimNorm.
* ``world_model``: ``WorldModel`` (h, d, R, Q, C, S, pi; Eq. 4-9 components).
* ``losses``: the Eq. 4-9 training objective, one function per term.
* ``sequence_sampler``: (H+1)-step in-episode slices with failure oversampling.
* ``safety_score``: ``c_h`` (Eq. 10).
* ``gate``: ``SafetyGate`` / ``build_gate`` (Eq. 11), the online loop's ActionFilter.
* ``qrisk``: Recovery RL's Q-risk critic and ``QRiskGate`` (ablation ``recrl``).
* ``mppi``: ``MPPIPlanner`` over the world model (ablation ``mppi``).
* ``calibration``: ROC-AUC / precision / recall / firing rate against "failure within H steps".
* ``toy``: a 2-D point mass with a planted failure, for tests and smoke runs.
"""
