"""The counter console: a web application for counter staff and the holder's PIN pad.

`mynacard console serve` runs it (Starlette, uvicorn, Jinja2 templates). Every action
calls the same workflow, counter, intake and operator code the CLI calls, is checked
against the role the CLI command of that action declares, and is written to the audit
log. See docs/console.md.
"""
