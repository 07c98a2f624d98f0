"""Reliability tests: bad input, divergence, interrupted training, corrupt checkpoints, fuzzing, determinism."""
