"""Latent world model (TD-MPC2 style) with constraint head, C_H safety score, recovery gate, and the safety node."""
