"""Batch backfill: `alttext backfill SOURCE --out FILE` (see runner.run)."""
