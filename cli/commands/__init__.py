"""The ``dds`` commands, one module per group; ``cli.main`` puts them together."""
