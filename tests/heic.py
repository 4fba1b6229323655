"""pillow-heif (HEIC encoder and reference decoder of the tests), loaded bound to its own libheif.

Imported through :func:`worker.imaging.heif.import_isolated`: on a system libvips
(``make test-system-vips``) a plain import after pyvips would bind to Debian's libheif and crash.
"""

from worker.imaging.heif import import_isolated

pillow_heif = import_isolated("pillow_heif")
