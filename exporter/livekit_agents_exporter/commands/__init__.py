"""One module per CLI subcommand (see ``cli.COMMANDS``)."""
