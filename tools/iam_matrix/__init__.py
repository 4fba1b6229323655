"""Offline IAM evaluation of thumbx's documents (make check-deploy)."""
