"""Command line: `softthink <subcommand>`; one module per subcommand."""
