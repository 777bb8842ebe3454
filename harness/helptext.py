"""Plain `--help` for both command lines (typer >= 0.29).

typer 0.29 labels every option's value with its Python type (`<str>`, `<bool>` on flags, which
take no value) and every required argument as `{name}`: placeholders a reader cannot type. Here
values are named as click always named them (TEXT, PATH, FLOAT ...), flags get no label, and
arguments are written in capitals. Older typer (click's own help) needs none of this.
"""

from __future__ import annotations

from typing import Any, Optional

_LABELS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "file": "FILE",
           "directory": "DIRECTORY", "bool": None}


def _plain(label: Optional[str]) -> Optional[str]:
    if label is None:
        return None
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    if inner.startswith("list[") and inner.endswith("]"):  # a repeatable option: one value each time
        inner = inner[len("list["):-1]
    if inner in _LABELS:
        return _LABELS[inner]
    if inner.endswith(" range"):
        base = _LABELS.get(inner[: -len(" range")]) or inner[: -len(" range")].upper()
        return f"{base} RANGE"
    return inner.upper()


def install() -> None:
    try:
        from typer import core
    except ImportError:  # pragma: no cover - typer is a dependency of both command lines
        return
    opt, arg = getattr(core, "TyperOption", None), getattr(core, "TyperArgument", None)
    if opt is None or arg is None or getattr(opt, "_plain_help", False):
        return
    if not hasattr(opt, "display_type_rich") or not hasattr(arg, "_usage_display_name"):
        return  # another typer: its help is its own

    original_opt = opt.display_type_rich

    def option_type(self: Any, ctx: Any) -> Optional[str]:
        if self.metavar is None and getattr(self, "is_flag", False):
            return None
        shown = original_opt(self, ctx)
        if shown is None or self.metavar is not None:
            return shown
        many = shown.endswith("...")
        return (_plain(shown[:-3] if many else shown) or "") + ("..." if many else "")

    original_arg = getattr(arg, "display_type_rich", None)

    def argument_type(self: Any, ctx: Any) -> Optional[str]:
        shown = original_arg(self, ctx) if original_arg is not None else None
        return _plain(shown) if shown is not None and self.metavar is None else shown

    def usage_name(self: Any) -> str:
        name = self.display_name_raw.upper() if self.metavar is None else self.display_name_raw
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    opt.display_type_rich = option_type
    if original_arg is not None:
        arg.display_type_rich = argument_type
    arg._usage_display_name = usage_name
    opt._plain_help = True
