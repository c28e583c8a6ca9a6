"""Templates into trees: splitting text from `{{ actions }}` (trim markers, comments), lexing
an action, and parsing actions into pipelines and `if`/`with` branches."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bacalhau.templating.errors import TemplateError
from bacalhau.templating.functions import FUNCTIONS

LEFT, RIGHT = "{{", "}}"
TRIM_SPACE = " \t\r\n"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]+|0[bB][01_]+|"
                     r"(?:[0-9][0-9_]*)?\.?[0-9_]+(?:[eE][+-]?[0-9]+)?)")
UNSUPPORTED = ("range", "define", "template", "block", "break", "continue")


@dataclass(slots=True)
class Text:
    text: str

    def children(self) -> list[Any]:
        return []


@dataclass(slots=True)
class Field:
    """`.a.b` (root is dot), `$.a` (root is the whole map), `.` and `$` when path is empty."""

    path: list[str]
    line: int
    from_root: bool = False

    def children(self) -> list[Any]:
        return []


@dataclass(slots=True)
class Literal:
    value: Any

    def children(self) -> list[Any]:
        return []


@dataclass(slots=True)
class Command:
    """A function call (`name` set) or one operand (`args[0]`)."""

    name: str
    args: list[Any]
    line: int

    def children(self) -> list[Any]:
        return list(self.args)


@dataclass(slots=True)
class Pipeline:
    commands: list[Command]
    line: int

    def children(self) -> list[Any]:
        return list(self.commands)


@dataclass(slots=True)
class Branch:
    """`if` or `with`: the pipeline, the body when it is true, the `else` body."""

    kind: str
    pipeline: Pipeline
    body: list[Any] = field(default_factory=list)
    otherwise: list[Any] = field(default_factory=list)

    def children(self) -> list[Any]:
        return [self.pipeline, *self.body, *self.otherwise]


# ------------------------------------------------------------------------------------ lexing


@dataclass(slots=True)
class Token:
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


def lex_action(src: str, line: int) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch in TRIM_SPACE:
            line += ch == "\n"
            i += 1
        elif ch in "\"`":
            value, i = _read_string(src, i, line)
            tokens.append(Token("string", value, line))
        elif ch == "(":
            tokens.append(Token("lparen", ch, line))
            i += 1
        elif ch == ")":
            tokens.append(Token("rparen", ch, line))
            i += 1
        elif ch == "|":
            tokens.append(Token("pipe", ch, line))
            i += 1
        elif ch == "$":
            match = _IDENT.match(src, i + 1)
            if match:
                raise TemplateError(f"variables such as ${match.group(0)} are not supported "
                                    "here; use .key, or submit with --no-template",
                                    line=line)
            tokens.append(Token("dollar", "$", line))
            i += 1
        elif ch == ".":
            match = _IDENT.match(src, i + 1)
            if match:
                joined = i > 0 and src[i - 1] not in TRIM_SPACE and src[i - 1] not in "(|"
                tokens.append(Token("field", match.group(0), line, joined))
                i = match.end()
            elif i + 1 < len(src) and src[i + 1].isdigit():
                number = _NUMBER.match(src, i)
                assert number is not None
                tokens.append(Token("number", _number(number.group(0), line), line))
                i = number.end()
            else:
                tokens.append(Token("dot", ".", line))
                i += 1
        elif ch in ":=":
            raise TemplateError("variable assignments are not supported here; use .key, or "
                                "submit with --no-template", line=line)
        elif (number := _NUMBER.match(src, i)) and (ch.isdigit() or ch in "+-"):
            tokens.append(Token("number", _number(number.group(0), line), line))
            i = number.end()
        elif match := _IDENT.match(src, i):
            word = match.group(0)
            if word in ("true", "false"):
                tokens.append(Token("bool", word == "true", line))
            elif word == "nil":
                tokens.append(Token("nil", None, line))
            else:
                tokens.append(Token("ident", word, line))
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


def split_actions(text: str) -> list[tuple[str, str, int]]:
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
            text[inner + 1] in TRIM_SPACE
        if trim_left:
            chunk = chunk.rstrip(TRIM_SPACE)
            inner += 2
        pieces.append(("text", chunk, line))
        line += text.count("\n", i, inner)
        end, trim_right = _action_end(text, inner, line)
        body = text[inner:end]
        stripped = body.strip(TRIM_SPACE)
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
            while i < len(text) and text[i] in TRIM_SPACE:
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
            if j >= i + 2 and text[j - 1] == "-" and text[j - 2] in TRIM_SPACE:
                return j - 2, True
            return j, False
        j += 1
    raise TemplateError("unclosed action: a {{ without its }}", line=line)


# ----------------------------------------------------------------------------------- parsing


class Parser:
    def __init__(self, text: str) -> None:
        self.pieces = split_actions(text)
        self.pos = 0

    def parse(self) -> list[Any]:
        nodes, stop = self._list()
        if stop is not None:
            raise TemplateError(f"unexpected {{{{{stop[0]}}}}}", line=stop[1])
        return nodes

    def _list(self) -> tuple[list[Any], tuple[str, int, list[Token]] | None]:
        """Nodes up to an `else`/`end` action (returned as the stop) or the end."""
        nodes: list[Any] = []
        while self.pos < len(self.pieces):
            kind, body, line = self.pieces[self.pos]
            self.pos += 1
            if kind == "text":
                if body:
                    nodes.append(Text(body))
                continue
            tokens = lex_action(body, line)
            head = tokens[0]
            if head.kind == "ident" and head.value in ("else", "end"):
                return nodes, (head.value, line, tokens[1:])
            if head.kind == "ident" and head.value in ("if", "with"):
                nodes.append(self._branch(head.value, tokens[1:], line))
            elif head.kind == "ident" and head.value in UNSUPPORTED:
                raise TemplateError(
                    f"{{{{{head.value}}}}} is not supported in job spec templates (only "
                    "values, if/else, with and functions such as printf); submit the spec "
                    "with --no-template to send it as written", line=line)
            else:
                nodes.append(_pipeline(tokens, line))
        return nodes, None

    def _branch(self, kind: str, tokens: list[Token], line: int) -> Branch:
        if not tokens:
            raise TemplateError(f"missing value for {kind}", line=line)
        branch = Branch(kind, _pipeline(tokens, line))
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


def _pipeline(tokens: list[Token], line: int) -> Pipeline:
    commands: list[Command] = []
    current: list[Token] = []
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
    return Pipeline(commands, line)


def _command(tokens: list[Token], line: int) -> Command:
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
        return Command(head.value, args[1:], head.line)
    if len(args) > 1:
        raise TemplateError(f"can't give arguments to a non-function ({_describe(head)})",
                            line=head.line)
    return Command("", args, head.line)


def _operand(tokens: list[Token], i: int, line: int) -> tuple[Any, int]:
    token = tokens[i]
    if token.kind == "lparen":
        depth, j = 1, i + 1
        while j < len(tokens) and depth:
            depth += {"lparen": 1, "rparen": -1}.get(tokens[j].kind, 0)
            j += 1
        inner: Any = _pipeline(tokens[i + 1:j - 1], token.line)
        return _chain(inner, tokens, j)
    if token.kind in ("dot", "dollar"):
        node = Field([], token.line, from_root=token.kind == "dollar")
        return _chain(node, tokens, i + 1)
    if token.kind == "field":
        node = Field([token.value], token.line)
        return _chain(node, tokens, i + 1)
    if token.kind in ("string", "number", "bool", "nil"):
        return Literal(token.value), i + 1
    if token.kind == "ident":
        return token.value, i + 1  # a function name; only valid first in a command
    raise TemplateError(f"unexpected {_describe(token)}", line=token.line)


def _chain(node: Any, tokens: list[Token], i: int) -> tuple[Any, int]:
    """`.a.b` and `$.a`: field tokens right after an operand (no space) extend its path."""
    while (i < len(tokens) and tokens[i].kind == "field" and tokens[i].joined
           and isinstance(node, Field)):
        node.path.append(tokens[i].value)
        i += 1
    return node, i


def _describe(token: Token) -> str:
    return {"string": f"string {token.value!r}", "number": f"number {token.value}"}.get(
        token.kind, repr(token.value))
