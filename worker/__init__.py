"""thumbx: cross-account S3 thumbnail worker."""

__version__ = "0.1.0"
