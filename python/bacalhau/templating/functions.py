"""The template functions job specs use, with Go's semantics: `printf` (`fmt.Sprintf` for the
common verbs), `print`, `println`, `len`, `index`, comparisons, `and`/`or`/`not` and the
escapers `html`, `js`, `urlquery`."""

from __future__ import annotations

import html as _html
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus

from bacalhau.templating.errors import TemplateError
from bacalhau.templating.values import go_string, go_type, truth

_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def go_printf(fmt: str, *args: Any) -> str:
    """`fmt.Sprintf` for the verbs job specs use: %s %v %d %q %t %x %X %f %g %e %%."""
    out: list[str] = []
    pos = 0
    arg_index = 0
    for match in _VERB.finditer(fmt):
        out.append(fmt[pos:match.start()])
        pos = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if arg_index >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[arg_index]
        arg_index += 1
        out.append(_format_verb(arg, flags, width or "", precision, verb))
    out.append(fmt[pos:])
    if arg_index < len(args):
        extra = ", ".join(f"{go_type(a)}={go_string(a)}" for a in args[arg_index:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format_verb(arg: Any, flags: str, width: str, precision: str | None, verb: str) -> str:
    spec = _number_spec(flags, width)
    if verb in "sv":
        text = go_string(arg)
        if precision is not None:
            text = text[:int(precision)]
        return format(text, _align(flags, width))
    if verb == "q":
        return format(go_quote(go_string(arg)), _align(flags, width))
    if verb == "t" and isinstance(arg, bool):
        return format(go_string(arg), _align(flags, width))
    if verb == "d" and isinstance(arg, int) and not isinstance(arg, bool):
        return format(arg, spec + "d")
    if verb in "xX":
        if isinstance(arg, str):
            text = arg.encode().hex()
            return format(text.upper() if verb == "X" else text, _align(flags, width))
        if isinstance(arg, int) and not isinstance(arg, bool):
            return format(arg, spec + verb)
    if verb in "feEgG" and isinstance(arg, (int, float)) and not isinstance(arg, bool):
        prec = f".{precision}" if precision is not None else (".6" if verb in "feE" else "")
        return format(float(arg), spec + prec + verb)
    return f"%!{verb}({go_type(arg)}={go_string(arg)})"


def _number_spec(flags: str, width: str) -> str:
    """Go's printf flags (`-` left-justify, `+`/space sign, `0` zero padding) as a Python
    format spec prefix."""
    align = "<" if "-" in flags else ""
    sign = "+" if "+" in flags else (" " if " " in flags else "")
    zero = "0" if "0" in flags and not align else ""
    return align + sign + zero + width


def _align(flags: str, width: str) -> str:
    if not width:
        return ""
    return ("<" if "-" in flags else ">") + width


def go_quote(text: str) -> str:
    """`strconv.Quote`: a double-quoted Go string literal."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_print(*args: Any) -> str:
    """`fmt.Sprint`: a space between operands when neither side is a string."""
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_string(arg)
    return out


def _go_println(*args: Any) -> str:
    return " ".join(go_string(a) for a in args) + "\n"


def _go_len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (Mapping, list, tuple)):
        return len(value)
    raise TemplateError(f"len of {go_type(value)}")


def _go_index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key, "")  # index gives the zero value for a missing key
        elif isinstance(value, str) and isinstance(key, int):
            data = value.encode()
            if not 0 <= key < len(data):
                raise TemplateError(f"index out of range: {key}")
            value = data[key]
        else:
            raise TemplateError(f"can't index item of type {go_type(value)}")
    return value


def _comparable(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return True
    return type(a) is type(b)


def _go_eq(first: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    for other in others:
        if not _comparable(first, other):
            raise TemplateError(f"incompatible types for comparison: {go_type(first)} and "
                                f"{go_type(other)}")
        if first == other:
            return True
    return False


def _go_ne(a: Any, b: Any) -> bool:
    return not _go_eq(a, b)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if not _comparable(a, b) or isinstance(a, (bool, Mapping)):
            raise TemplateError(f"incompatible types for comparison: {go_type(a)} and "
                                f"{go_type(b)}")
        return op(a, b)
    return compare


def _go_js(*args: Any) -> str:
    text = _go_print(*args)
    table = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E",
             "&": "\\u0026", "=": "\\u003D", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(table.get(ch, ch) for ch in text)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "printf": go_printf,
    "print": _go_print,
    "println": _go_println,
    "len": _go_len,
    "index": _go_index,
    "eq": _go_eq,
    "ne": _go_ne,
    "lt": _ordered(lambda a, b: a < b),
    "le": _ordered(lambda a, b: a <= b),
    "gt": _ordered(lambda a, b: a > b),
    "ge": _ordered(lambda a, b: a >= b),
    "not": lambda value: not truth(value),
    "and": lambda *a: a,  # evaluated lazily by the renderer
    "or": lambda *a: a,
    "html": lambda *a: _html.escape(_go_print(*a)).replace("&#x27;", "&#39;"),
    "js": _go_js,
    "urlquery": lambda *a: quote_plus(_go_print(*a)),
}
