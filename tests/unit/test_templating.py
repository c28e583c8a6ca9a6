"""Job spec templates (`bacalhau.templating`): the Go `text/template` subset of `job run -V/-E`,
checked against what Go prints for the same template and values, and the CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bacalhau.cli.main import cli
from bacalhau.cli.template_options import parse_template_vars
from bacalhau.templating import TemplateError, render, template_keys, template_values

pytestmark = pytest.mark.unit

VALUES = {"greeting": "hello", "empty": "", "name": "Ada", "my-key": "dashed", "n": "3"}

# (template, what Go's text/template prints with VALUES and missingkey=error)
GO_CASES = [
    ("say {{.greeting}}!", "say hello!"),
    ("{{ .greeting }}", "hello"),
    ("a  {{- .greeting -}}  \n  b", "ahellob"),
    ("a {{- .greeting}} b", "ahello b"),
    ("a {{.greeting -}}\n\n b", "a hellob"),
    ("x{{/* a comment, with }} inside */}}y", "xy"),
    ("x {{- /* trimmed */ -}} y", "xy"),
    ('{{"{{"}}.literal{{"}}"}}', "{{.literal}}"),
    ("{{`raw }} string`}}", "raw }} string"),
    ('{{printf "%q" .greeting}}', '"hello"'),
    ('{{.greeting | printf "%s-%s" .name}}', "Ada-hello"),
    ('{{printf "%5s|%-5s|%03d|%x" .name .name 7 .name}}', "  Ada|Ada  |007|416461"),
    ('{{printf "%d%%"  42}}', "42%"),
    ('{{printf "%s"}}', "%!s(MISSING)"),
    ('{{printf "%s" .name 1}}', "Ada%!(EXTRA int=1)"),
    ('{{print 1 2 "a" 3 "b" "c"}}', "1 2a3bc"),
    ('{{println .name "x"}}', "Ada x\n"),
    ('{{index . "my-key"}}', "dashed"),
    ('[{{index . "absent"}}]', "[]"),
    ("{{len .greeting}}", "5"),
    ("{{len .}}", "5"),
    ('{{if .greeting}}yes{{else}}no{{end}}', "yes"),
    ('{{if .empty}}yes{{else}}no{{end}}', "no"),
    ('{{if .empty}}a{{else if .name}}b{{else}}c{{end}}', "b"),
    ('{{if eq .name "Ada" "Bob"}}known{{end}}', "known"),
    ('{{if ne .name "Ada"}}other{{else}}Ada{{end}}', "Ada"),
    ('{{if and .name .empty}}both{{else}}not both{{end}}', "not both"),
    ('{{or .empty "fallback"}}', "fallback"),
    ('{{and .name .greeting}}', "hello"),
    ("{{not .empty}}", "true"),
    ('{{if lt 1 2}}lt{{end}} {{if ge "b" "a"}}ge{{end}}', "lt ge"),
    ("{{with .name}}<{{.}}>{{else}}none{{end}}", "<Ada>"),
    ("{{with .empty}}<{{.}}>{{else}}none{{end}}", "none"),
    ("{{with .name}}{{$.greeting}} {{.}}{{end}}", "hello Ada"),
    ('{{(printf "%s!" .name) | printf "%q"}}', '"Ada!"'),
    ("{{3}} {{-3}} {{1.5}} {{0x10}} {{true}}", "3 -3 1.5 16 true"),  # {{-3}}: no trim
    ('{{html "<a href=\'x\'>"}}', "&lt;a href=&#39;x&#39;&gt;"),
    ('{{urlquery "a b&c"}}', "a+b%26c"),
    ('{{js "it\'s"}}', "it\\'s"),
    ('{{"tab\\there"}}', "tab\there"),
    ("no actions at all: $x {x} }}", "no actions at all: $x {x} }}"),
    ("line1\n{{- /* c */}}\nline2", "line1\nline2"),
]


@pytest.mark.parametrize(("template", "expected"), GO_CASES)
def test_renders_as_go_text_template_does(template: str, expected: str) -> None:
    assert render(template, VALUES) == expected


def test_a_missing_key_is_an_error_naming_the_key_and_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render("Name: job\nMeta:\n  greeting: {{.greeting}}\n", {})
    assert caught.value.missing_key == "greeting"
    assert caught.value.line == 3
    assert 'map has no entry for key "greeting"' in str(caught.value)


def test_a_missing_key_inside_if_is_an_error_too() -> None:
    # missingkey=error applies wherever a field is evaluated, conditions included
    with pytest.raises(TemplateError) as caught:
        render("{{if .flag}}x{{end}}", {})
    assert caught.value.missing_key == "flag"


@pytest.mark.parametrize(("template", "fragment"), [
    ("{{range .}}{{.}}{{end}}", "{{range}} is not supported"),
    ("{{define \"x\"}}{{end}}", "{{define}} is not supported"),
    ("{{$x := .name}}", "variables"),
    ("{{.name.first}}", "can't evaluate field first in type string"),
    ("{{nosuch .name}}", 'function "nosuch" not defined'),
    ("{{.name", "unclosed action"),
    ("{{if .name}}open", "without {{end}}"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{}}", "missing value"),
    ("{{/* open", "unclosed comment"),
    ('{{"open}}', "unterminated"),
    ("{{.name 3}}", "can't give arguments to a non-function"),
    ('{{eq .name 3}}', "incompatible types for comparison"),
    ("{{(.name}}", "unclosed ("),
])
def test_bad_templates_are_refused_with_a_reason(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, VALUES)
    assert fragment in str(caught.value)


def test_template_keys_lists_the_keys_a_template_reads() -> None:
    assert template_keys("{{.a}} {{if .b}}{{printf \"%s\" .c}}{{end}}{{.a}}") == ["a", "b", "c"]


def test_values_come_from_matching_env_vars_and_vars_win() -> None:
    environ = {"MY_A": "env-a", "MY_B": "env-b", "OTHER": "o"}
    assert template_values({"MY_A": "flag"}, "^MY_", environ) == {"MY_A": "flag",
                                                                "MY_B": "env-b"}
    assert template_values({}, "*", environ) == environ
    assert template_values({}, "", environ) == {}
    with pytest.raises(TemplateError, match="not a regular expression"):
        template_values({}, "(", environ)


def test_template_vars_flag_reads_repeats_commas_and_quotes() -> None:
    assert parse_template_vars(["a=1,b=2", "c=x=y", '"msg=a,b"']) == {
        "a": "1", "b": "2", "c": "x=y", "msg": "a,b"}
    with pytest.raises(Exception, match="key=value"):
        parse_template_vars(["novalue"])


# ---------------------------------------------------------------- the CLI, without a server

SPEC = """Name: hello-{{.greeting}}
Type: batch
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule: /wasm/main.wasm
        Parameters: ["{{.greeting}}", '{{ .who | printf "%q" }}']
"""


def dry_run(tmp_path: Path, *flags: str, env: dict[str, str] | None = None):
    path = tmp_path / "job.yaml"
    path.write_text(SPEC)
    return CliRunner().invoke(cli, ["job", "run", str(path), "--dry-run", *flags], env=env)


def test_job_run_renders_the_spec_with_template_vars(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "-V", "greeting=hi", "--template-vars", "who=Ada")
    assert result.exit_code == 0, result.output
    job = yaml.safe_load(result.output)
    assert job["Name"] == "hello-hi"
    assert job["Tasks"][0]["Engine"]["Params"]["Parameters"] == ["hi", '"Ada"']


def test_job_run_takes_values_from_the_environment_with_e(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "-E", "^TPL_", "-V", "who=flag",
                     env={"TPL_NOT_USED": "x", "greeting": "ignored"})
    # `greeting` is in the environment but does not match ^TPL_: still missing
    assert result.exit_code != 0
    assert "{{.greeting}}" in result.output and "-V greeting=VALUE" in result.output
    ok = dry_run(tmp_path, "-E", "greet", "-V", "who=flag", env={"greeting": "from-env"})
    assert ok.exit_code == 0, ok.output
    assert yaml.safe_load(ok.output)["Name"] == "hello-from-env"


def test_job_run_without_the_value_fails_naming_the_key(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "-V", "who=Ada")
    assert result.exit_code == 2, result.output
    assert "{{.greeting}}" in result.output
    assert 'map has no entry for key "greeting"' in result.output
    assert "--no-template" in result.output


def test_job_run_with_no_template_sends_the_spec_as_written(tmp_path: Path) -> None:
    result = dry_run(tmp_path, "--no-template")
    assert result.exit_code == 0, result.output
    job = yaml.safe_load(result.output)
    assert job["Name"] == "hello-{{.greeting}}"
    assert job["Tasks"][0]["Engine"]["Params"]["Parameters"][0] == "{{.greeting}}"


def test_create_has_the_template_flags_too(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(SPEC)
    result = CliRunner().invoke(cli, ["create", str(path), "--dry-run", "-V", "greeting=yo",
                                      "-V", "who=me"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["Name"] == "hello-yo"
