"""Offline (BC ensemble, offline PPO) and online (PPO with safety gate) training, CLI, and the trainer node."""
