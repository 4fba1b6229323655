"""Operator tooling the service never runs: policies, perimeter, backfill, DLQ, doctor, provision."""
