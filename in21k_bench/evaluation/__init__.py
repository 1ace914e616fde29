"""Scoring prediction files: formats, validation, targets, the evaluator, results, provenance, plots."""
