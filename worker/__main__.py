"""``python -m worker``: the service (same as ``thumbx worker``)."""

import sys

from worker.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
