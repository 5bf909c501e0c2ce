"""Evaluation: metrics (pure numpy), calibration, the shard runner (`python -m eval`) and `python -m eval.detect`."""
