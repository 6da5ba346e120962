"""Counter operations after issue."""
