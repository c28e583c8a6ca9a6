"""Job spec templates: the part of Go's `text/template` that `bacalhau job run -V/-E` uses.

Bacalhau renders a job file with Go's `text/template` over a map of strings (`-V key=value`
plus the environment variables matching `-E`), with `missingkey=error`, before parsing it.
This module renders the same documents the same way for the constructs such specs use:

- `{{.key}}`, `{{ .key }}`, trim markers `{{- ... -}}` and comments `{{/* ... */}}`;
- literals (`"text"` with Go escapes, `` `raw` ``, numbers, `true`, `false`), `.` and `$`
  (the whole map), parenthesised pipelines and pipes (`{{ .name | printf "%q" }}`);
- the functions `printf`, `print`, `println`, `len`, `index`, `eq`, `ne`, `lt`, `le`, `gt`,
  `ge`, `and`, `or`, `not`, `html`, `js`, `urlquery`;
- `{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}` and `{{with}}`/`{{else}}`/`{{end}}`.

A key the template uses but the map lacks is a `TemplateError` naming the key, as Go's
"map has no entry for key" is. Constructs outside this subset (`range`, `define`, variables)
are refused with a message that says so, never rendered differently from Go.
"""

from __future__ import annotations

import html as _html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

LEFT, RIGHT = "{{", "}}"
_TRIM_SPACE = " \t\r\n"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|"
                     r"(?:[0-9][0-9_]*)?\.?[0-9_]+(?:[eE][+-]?[0-9]+)?)")
_UNSUPPORTED = ("range", "define", "template", "block", "break", "continue")


class TemplateError(ValueError):
    """A template that cannot be rendered: bad syntax, an unsupported construct, or a key
    the values lack (`missing_key` names it then)."""

    def __init__(self, message: str, *, line: int = 0, missing_key: str = "") -> None:
        self.line = line
        self.missing_key = missing_key
        super().__init__(f"line {line}: {message}" if line else message)


def template_values(
    variables: Mapping[str, str] | None = None,
    env_pattern: str = "",
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The map a template is rendered with: the environment variables whose names match
    `env_pattern` (a regular expression searched in the name; `*` means all), then
    `variables` (`-V`), which win over the environment."""
    import os

    values: dict[str, str] = {}
    if env_pattern:
        pattern = ".*" if env_pattern == "*" else env_pattern
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise TemplateError(f"--template-envs {env_pattern!r} is not a regular "
                                f"expression: {exc}") from None
        for name, value in (os.environ if environ is None else environ).items():
            if regex.search(name):
                values[name] = value
    values.update(variables or {})
    return values


def render(text: str, values: Mapping[str, Any]) -> str:
    """Render `text` with `values` (Go `text/template`, `missingkey=error`)."""
    return _Renderer(values).run(_Parser(text).parse())


def template_keys(text: str) -> list[str]:
    """The keys a template reads with `.key` (sorted), for messages and tests."""
    keys: set[str] = set()

    def walk(nodes: Iterable[Any]) -> None:
        for node in nodes:
            if isinstance(node, _Field) and node.path:
                keys.add(node.path[0])
            for child in getattr(node, "children", lambda: [])():
                walk([child])

    walk(_Parser(text).parse())
    return sorted(keys)


# ------------------------------------------------------------------------------- syntax tree


@dataclass(slots=True)
class _Text:
    text: str

    def children(self) -> list[Any]:
        return []


@dataclass(slots=True)
class _Field:
    """`.a.b` (root is dot), `$.a` (root is the whole map), `.` and `$` when path is empty."""

    path: list[str]
    line: int
    from_root: bool = False

    def children(self) -> list[Any]:
        return []


@dataclass(slots=True)
class _Literal:
    value: Any

    def children(self) -> list[Any]:
        return []


@dataclass(slots=True)
class _Command:
    """A function call (`name` set) or one operand (`args[0]`)."""

    name: str
    args: list[Any]
    line: int

    def children(self) -> list[Any]:
        return list(self.args)


@dataclass(slots=True)
class _Pipeline:
    commands: list[_Command]
    line: int

    def children(self) -> list[Any]:
        return list(self.commands)


@dataclass(slots=True)
class _Branch:
    """`if` or `with`: the pipeline, the body when it is true, the `else` body."""

    kind: str
    pipeline: _Pipeline
    body: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)

    def children(self) -> list[Any]:
        return [self.pipeline, *self.body, *self.otherwise]


# ------------------------------------------------------------------------------------ lexing


@dataclass(slots=True)
class _Token:
    kind: str  # field, ident, string, number, bool, nil, dollar, lparen, rparen, pipe, dot
    value: Any
    line: int
    joined: bool = False  # no space before it: `.b` of `.a.b` continues the chain


def _read_string(src: str, i: int, line: int) -> tuple[str, int]:
    """A Go interpreted ("...") or raw (`...`) string starting at src[i]; (value, end)."""
    quote = src[i]
    if quote == "`":
        end = src.find("`", i + 1)
        if end < 0:
            raise TemplateError("unterminated raw string", line=line)
        return src[i + 1:end], end + 1
    j = i + 1
    while j < len(src) and src[j] != '"':
        if src[j] == "\n":
            break
        j += 2 if src[j] == "\\" else 1
    if j >= len(src) or src[j] != '"':
        raise TemplateError("unterminated quoted string", line=line)
    try:
        return json.loads(_go_escapes(src[i:j + 1])), j + 1
    except ValueError:
        raise TemplateError(f"bad escape in string {src[i:j + 1]}", line=line) from None


def _go_escapes(quoted: str) -> str:
    """Go escapes that JSON lacks (\\a \\v \\' \\xNN \\NNN \\UNNNNNNNN) into JSON's."""
    def swap(match: re.Match[str]) -> str:
        text = match.group(0)
        simple = {"\\a": "\\u0007", "\\v": "\\u000b", "\\'": "'"}
        if text in simple:
            return simple[text]
        if text.startswith("\\x"):
            return f"\\u00{text[2:]}"
        if text.startswith("\\U"):
            return json.dumps(chr(int(text[2:], 16)))[1:-1]
        if text[1:].isdigit():
            return f"\\u{int(text[1:], 8):04x}"
        return text
    return re.sub(r"\\(?:x[0-9a-fA-F]{2}|U[0-9a-fA-F]{8}|[0-7]{3}|[av']|.)", swap, quoted)


def _lex_action(src: str, line: int) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch in _TRIM_SPACE:
            line += ch == "\n"
            i += 1
        elif ch in "\"`":
            value, i = _read_string(src, i, line)
            tokens.append(_Token("string", value, line))
        elif ch == "(":
            tokens.append(_Token("lparen", ch, line))
            i += 1
        elif ch == ")":
            tokens.append(_Token("rparen", ch, line))
            i += 1
        elif ch == "|":
            tokens.append(_Token("pipe", ch, line))
            i += 1
        elif ch == "$":
            match = _IDENT.match(src, i + 1)
            if match:
                raise TemplateError(f"variables such as ${match.group(0)} are not supported "
                                    "here; use .key, or submit with --no-template",
                                    line=line)
            tokens.append(_Token("dollar", "$", line))
            i += 1
        elif ch == ".":
            match = _IDENT.match(src, i + 1)
            if match:
                joined = i > 0 and src[i - 1] not in _TRIM_SPACE and src[i - 1] not in "(|"
                tokens.append(_Token("field", match.group(0), line, joined))
                i = match.end()
            elif i + 1 < len(src) and src[i + 1].isdigit():
                number = _NUMBER.match(src, i)
                assert number is not None
                tokens.append(_Token("number", _number(number.group(0), line), line))
                i = number.end()
            else:
                tokens.append(_Token("dot", ".", line))
                i += 1
        elif ch in ":=":
            raise TemplateError("variable assignments are not supported here; use .key, or "
                                "submit with --no-template", line=line)
        elif (number := _NUMBER.match(src, i)) and (ch.isdigit() or ch in "+-"):
            tokens.append(_Token("number", _number(number.group(0), line), line))
            i = number.end()
        elif match := _IDENT.match(src, i):
            word = match.group(0)
            if word in ("true", "false"):
                tokens.append(_Token("bool", word == "true", line))
            elif word == "nil":
                tokens.append(_Token("nil", None, line))
            else:
                tokens.append(_Token("ident", word, line))
            i = match.end()
        else:
            raise TemplateError(f"unexpected {ch!r} in action", line=line)
    return tokens


def _number(text: str, line: int) -> int | float:
    clean = text.replace("_", "")
    sign = -1 if clean.startswith("-") else 1
    body = clean.lstrip("+-")
    try:
        if re.fullmatch(r"0[0-7]+", body):
            return sign * int(body, 8)
        return sign * int(body, 0)
    except ValueError:
        try:
            return float(clean)
        except ValueError:
            raise TemplateError(f"bad number syntax: {text!r}", line=line) from None


def _split(text: str) -> list[tuple[str, str, int]]:
    """The template as ("text", s, line) and ("action", s, line) pieces, trim markers
    applied and comments dropped."""
    pieces: list[tuple[str, str, int]] = []
    i, line = 0, 1
    while True:
        start = text.find(LEFT, i)
        if start < 0:
            pieces.append(("text", text[i:], line))
            return pieces
        chunk = text[i:start]
        inner = start + len(LEFT)
        trim_left = text.startswith("-", inner) and inner + 1 < len(text) and \
            text[inner + 1] in _TRIM_SPACE
        if trim_left:
            chunk = chunk.rstrip(_TRIM_SPACE)
            inner += 2
        pieces.append(("text", chunk, line))
        line += text.count("\n", i, inner)
        end, trim_right = _action_end(text, inner, line)
        body = text[inner:end]
        stripped = body.strip(_TRIM_SPACE)
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError("unclosed comment", line=line)
        elif stripped:
            pieces.append(("action", body, line))
        else:
            raise TemplateError("missing value for command", line=line)
        line += text.count("\n", inner, end)
        i = end + (2 if trim_right else 0) + len(RIGHT)
        if trim_right:
            while i < len(text) and text[i] in _TRIM_SPACE:
                line += text[i] == "\n"
                i += 1


def _action_end(text: str, i: int, line: int) -> tuple[int, bool]:
    """Where the action starting at `i` ends (index of ` -}}` or `}}`) and whether it
    trims; quoted strings and comments may hold `}}`."""
    j = i
    while j < len(text):
        if text.startswith("/*", j):
            close = text.find("*/", j + 2)
            if close < 0:
                raise TemplateError("unclosed comment", line=line)
            j = close + 2
            continue
        ch = text[j]
        if ch in "\"`":
            _, j = _read_string(text, j, line)
            continue
        if text.startswith(RIGHT, j):
            if j >= i + 2 and text[j - 1] == "-" and text[j - 2] in _TRIM_SPACE:
                return j - 2, True
            return j, False
        j += 1
    raise TemplateError("unclosed action: a {{ without its }}", line=line)


# ----------------------------------------------------------------------------------- parsing


class _Parser:
    def __init__(self, text: str) -> None:
        self.pieces = _split(text)
        self.pos = 0

    def parse(self) -> list[Any]:
        nodes, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop[0]}}}}}", line=stop[1])
        return nodes

    def _list(self) -> tuple[list[Any], tuple[str, int, list[_Token]] | None]:
        """Nodes up to an `else`/`end` action (returned as the stop) or the end."""
        nodes: list[Any] = []
        while self.pos < len(self.pieces):
            kind, body, line = self.pieces[self.pos]
            self.pos += 1
            if kind == "text":
                if body:
                    nodes.append(_Text(body))
                continue
            tokens = _lex_action(body, line)
            head = tokens[0]
            if head.kind == "ident" and head.value in ("else", "end"):
                return nodes, (head.value, line, tokens[1:])
            if head.kind == "ident" and head.value in ("if", "with"):
                nodes.append(self._branch(head.value, tokens[1:], line))
            elif head.kind == "ident" and head.value in _UNSUPPORTED:
                raise TemplateError(
                    f"{{{{{head.value}}}}} is not supported in job spec templates (only "
                    "values, if/else, with and functions such as printf); submit the spec "
                    "with --no-template to send it as written", line=line)
            else:
                nodes.append(_pipeline(tokens, line))
        return nodes, None

    def _branch(self, kind: str, tokens: list[_Token], line: int) -> _Branch:
        if not tokens:
            raise TemplateError(f"missing value for {kind}", line=line)
        branch = _Branch(kind, _pipeline(tokens, line))
        branch.body, stop = self._list()
        if stop is None:
            raise TemplateError(f"unexpected EOF: {{{{{kind}}}}} without {{{{end}}}}", line=line)
        word, stop_line, rest = stop
        if word == "end":
            if rest:
                raise TemplateError("unexpected words after end", line=stop_line)
            return branch
        if rest and rest[0].kind == "ident" and rest[0].value in ("if", "with"):
            if rest[0].value != kind:
                raise TemplateError(f"else {rest[0].value} inside {kind}", line=stop_line)
            branch.otherwise = [self._branch(kind, rest[1:], stop_line)]
            return branch
        if rest:
            raise TemplateError("unexpected words after else", line=stop_line)
        branch.otherwise, stop = self._list()
        if stop is None or stop[0] != "end":
            raise TemplateError(f"{{{{else}}}} of {kind} without {{{{end}}}}", line=stop_line)
        return branch


def _pipeline(tokens: list[_Token], line: int) -> _Pipeline:
    commands: list[_Command] = []
    current: list[_Token] = []
    depth = 0
    for token in tokens:
        if token.kind == "lparen":
            depth += 1
        elif token.kind == "rparen":
            depth -= 1
            if depth < 0:
                raise TemplateError("unexpected )", line=token.line)
        if token.kind == "pipe" and depth == 0:
            commands.append(_command(current, line))
            current = []
        else:
            current.append(token)
    if depth:
        raise TemplateError("unclosed (", line=line)
    commands.append(_command(current, line))
    return _Pipeline(commands, line)


def _command(tokens: list[_Token], line: int) -> _Command:
    if not tokens:
        raise TemplateError("missing command in pipeline", line=line)
    args: list[Any] = []
    i = 0
    while i < len(tokens):
        operand, i = _operand(tokens, i, line)
        args.append(operand)
    head = tokens[0]
    if head.kind == "ident":
        if head.value not in FUNCTIONS:
            raise TemplateError(f'function "{head.value}" not defined', line=head.line)
        return _Command(head.value, args[1:], head.line)
    if len(args) > 1:
        raise TemplateError(f"can't give arguments to a non-function ({_describe(head)})",
                            line=head.line)
    return _Command("", args, head.line)


def _operand(tokens: list[_Token], i: int, line: int) -> tuple[Any, int]:
    token = tokens[i]
    if token.kind == "lparen":
        depth, j = 1, i + 1
        while j < len(tokens) and depth:
            depth += {"lparen": 1, "rparen": -1}.get(tokens[j].kind, 0)
            j += 1
        inner: Any = _pipeline(tokens[i + 1:j - 1], token.line)
        return _chain(inner, tokens, j)
    if token.kind in ("dot", "dollar"):
        node = _Field([], token.line, from_root=token.kind == "dollar")
        return _chain(node, tokens, i + 1)
    if token.kind == "field":
        node = _Field([token.value], token.line)
        return _chain(node, tokens, i + 1)
    if token.kind in ("string", "number", "bool", "nil"):
        return _Literal(token.value), i + 1
    if token.kind == "ident":
        return token.value, i + 1  # a function name; only valid first in a command
    raise TemplateError(f"unexpected {_describe(token)}", line=token.line)


def _chain(node: Any, tokens: list[_Token], i: int) -> tuple[Any, int]:
    """`.a.b` and `$.a`: field tokens right after an operand (no space) extend its path."""
    while (i < len(tokens) and tokens[i].kind == "field" and tokens[i].joined
           and isinstance(node, _Field)):
        node.path.append(tokens[i].value)
        i += 1
    return node, i


def _describe(token: _Token) -> str:
    return {"string": f"string {token.value!r}", "number": f"number {token.value}"}.get(
        token.kind, repr(token.value))


# --------------------------------------------------------------------------------- execution


class _Renderer:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.root = dict(values)

    def run(self, nodes: list[Any]) -> str:
        out: list[str] = []
        self._nodes(nodes, self.root, out)
        return "".join(out)

    def _nodes(self, nodes: list[Any], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Branch):
                value = self._pipeline(node.pipeline, dot)
                if truth(value):
                    self._nodes(node.body, value if node.kind == "with" else dot, out)
                else:
                    self._nodes(node.otherwise, dot, out)
            else:
                out.append(go_string(self._pipeline(node, dot)))

    def _pipeline(self, pipeline: _Pipeline, dot: Any) -> Any:
        value: Any = _NO_VALUE
        for command in pipeline.commands:
            value = self._command(command, dot, value)
        return value

    def _command(self, command: _Command, dot: Any, piped: Any) -> Any:
        if not command.name:
            if piped is not _NO_VALUE:
                raise TemplateError("only a function can take the piped value",
                                    line=command.line)
            return self._eval(command.args[0], dot)
        func = FUNCTIONS[command.name]
        if command.name in ("and", "or"):  # short-circuit, like Go 1.18+
            return self._logic(command, dot, piped)
        args = [self._eval(a, dot) for a in command.args]
        if piped is not _NO_VALUE:
            args.append(piped)
        try:
            return func(*args)
        except TemplateError as exc:
            raise TemplateError(f"error calling {command.name}: {exc}",
                                line=command.line) from None
        except TypeError:
            raise TemplateError(f"wrong number of arguments for {command.name}",
                                line=command.line) from None

    def _logic(self, command: _Command, dot: Any, piped: Any) -> Any:
        operands: list[Callable[[], Any]] = [
            (lambda a=a: self._eval(a, dot)) for a in command.args]
        if piped is not _NO_VALUE:
            operands.append(lambda: piped)
        if not operands:
            raise TemplateError(f"wrong number of arguments for {command.name}",
                                line=command.line)
        value: Any = None
        for operand in operands:
            value = operand()
            if truth(value) == (command.name == "or"):
                return value
        return value

    def _eval(self, node: Any, dot: Any) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Pipeline):
            return self._pipeline(node, dot)
        if isinstance(node, str):
            raise TemplateError(f"{node} is a function: call it first in a command or "
                                "in parentheses")
        value = self.root if node.from_root else dot
        for i, name in enumerate(node.path):
            if isinstance(value, Mapping):
                if name not in value:
                    shown = "." + ".".join(node.path[:i + 1])
                    raise TemplateError(
                        f'map has no entry for key "{name}" (at <{shown}>)',
                        line=node.line, missing_key=name)
                value = value[name]
            else:
                raise TemplateError(f"can't evaluate field {name} in type "
                                    f"{_go_type(value)}", line=node.line)
        return value


_NO_VALUE = object()


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, "" and empty collections are false."""
    if value is None or value is _NO_VALUE:
        return False
    if isinstance(value, (bool, int, float, str, Mapping, list, tuple)):
        return bool(value)
    return True


def go_string(value: Any) -> str:
    """How Go's fmt prints a value of a template (`fmt.Sprint`)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_string(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(v) for v in value) + "]"
    return str(value)


def _go_type(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string"}.get(
        type(value), "map[string]string" if isinstance(value, Mapping) else "value")


# --------------------------------------------------------------------------------- functions

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
        extra = ", ".join(f"{_go_type(a)}={go_string(a)}" for a in args[arg_index:])
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
    return f"%!{verb}({_go_type(arg)}={go_string(arg)})"


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
    raise TemplateError(f"len of {_go_type(value)}")


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
            raise TemplateError(f"can't index item of type {_go_type(value)}")
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
            raise TemplateError(f"incompatible types for comparison: {_go_type(first)} and "
                                f"{_go_type(other)}")
        if first == other:
            return True
    return False


def _go_ne(a: Any, b: Any) -> bool:
    return not _go_eq(a, b)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if not _comparable(a, b) or isinstance(a, (bool, Mapping)):
            raise TemplateError(f"incompatible types for comparison: {_go_type(a)} and "
                                f"{_go_type(b)}")
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
