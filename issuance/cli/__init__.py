"""Command-line and HTTP entry points: the only code that reads configuration."""
