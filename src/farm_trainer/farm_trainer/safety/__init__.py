"""Offline training of FARL's world-model safety critic and Recovery RL's Q-risk critic."""
