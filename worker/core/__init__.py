"""Pure vocabulary and rules: events, keys, presets, limits, errors, settings; no I/O, no AWS."""
