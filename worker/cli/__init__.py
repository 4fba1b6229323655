"""`thumbx ...`: the entry point and one module per subcommand."""
