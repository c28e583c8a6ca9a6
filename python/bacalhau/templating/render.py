"""Running a parsed template over the values map, as Go's `text/template` executes it with
`missingkey=error`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bacalhau.templating.errors import TemplateError
from bacalhau.templating.functions import FUNCTIONS
from bacalhau.templating.syntax import Branch, Command, Literal, Pipeline, Text
from bacalhau.templating.values import NO_VALUE, go_string, go_type, truth


class Renderer:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.root = dict(values)

    def run(self, nodes: list[Any]) -> str:
        out: list[str] = []
        self._nodes(nodes, self.root, out)
        return "".join(out)

    def _nodes(self, nodes: list[Any], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Branch):
                value = self._pipeline(node.pipeline, dot)
                if truth(value):
                    self._nodes(node.body, value if node.kind == "with" else dot, out)
                else:
                    self._nodes(node.otherwise, dot, out)
            else:
                out.append(go_string(self._pipeline(node, dot)))

    def _pipeline(self, pipeline: Pipeline, dot: Any) -> Any:
        value: Any = NO_VALUE
        for command in pipeline.commands:
            value = self._command(command, dot, value)
        return value

    def _command(self, command: Command, dot: Any, piped: Any) -> Any:
        if not command.name:
            if piped is not NO_VALUE:
                raise TemplateError("only a function can take the piped value",
                                    line=command.line)
            return self._eval(command.args[0], dot)
        func = FUNCTIONS[command.name]
        if command.name in ("and", "or"):  # short-circuit, like Go 1.18+
            return self._logic(command, dot, piped)
        args = [self._eval(a, dot) for a in command.args]
        if piped is not NO_VALUE:
            args.append(piped)
        try:
            return func(*args)
        except TemplateError as exc:
            raise TemplateError(f"error calling {command.name}: {exc}",
                                line=command.line) from None
        except TypeError:
            raise TemplateError(f"wrong number of arguments for {command.name}",
                                line=command.line) from None

    def _logic(self, command: Command, dot: Any, piped: Any) -> Any:
        operands: list[Callable[[], Any]] = [
            (lambda a=a: self._eval(a, dot)) for a in command.args]
        if piped is not NO_VALUE:
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
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Pipeline):
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
                                    f"{go_type(value)}", line=node.line)
        return value
