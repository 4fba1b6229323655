"""Thin AWS Lambda adapter over the worker's processing core."""
