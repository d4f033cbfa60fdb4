"""Task and recovery policies (tanh-Gaussian actor, value), safetensors checkpoints, and the policy inference node."""
