"""The CLI's commands, one module per group (artifact/cli.py wires them)."""
