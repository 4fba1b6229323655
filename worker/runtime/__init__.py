"""The running service: pipeline, consumer (leases, heartbeat, delete batching), batch, fates."""
