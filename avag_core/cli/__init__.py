"""The `avag` command line: one module per subcommand, discovered lazily."""
