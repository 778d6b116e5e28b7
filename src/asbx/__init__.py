"""asbx: declarative local sandboxes (sandboxes.yaml -> plan -> apply)."""

__version__ = "0.1.0"
