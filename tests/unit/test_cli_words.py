"""Plain words in output: durations as a person says them ("renews in 29 min", not "3563 s left")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from natlink.durations import plain_duration


@pytest.mark.parametrize("seconds,text", [
    (0, "0 s"), (42, "42 s"), (60, "1 min"), (1740, "29 min"), (3600, "1 h"), (3900, "1 h 5 min"),
    (86400, "1 day"), (259200 + 7200, "3 days 2 h"), (-5, "0 s"),
])
def test_plain_duration(seconds: int, text: str) -> None:
    assert plain_duration(seconds) == text


@pytest.mark.parametrize("code,words", [
    ("service never", "the service has never run here"), ("service dead", "the service ended without a clean stop"),
    ("ddns home badauth", "DDNS home stopped (badauth)"), ("mappings failing", "the mappings job is failing"),
    ("mapping web missing", "mapping web missing"),
])
def test_status_problems_in_words(code: str, words: str) -> None:
    """The JSON keeps its codes; `natlink status`'s overall line says them ("overall: service never" was not)."""
    from natlink.service.statusview import problem_words

    assert problem_words(code) == words


# Words a home-server owner should not meet in natlink's messages (the list): internal names for the
# demo's test service, the probe's "greeting", seconds counted out, a status code shown as a sentence.
JARGON = re.compile(r"stand-in|\bstandin\b|\bgreeting\b|\d s left|\bs left\b|service never|lab [0-9a-f]{6}\b")


def _message_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals (and the literal parts of f-strings) that are not docstrings or bare codes."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if not re.fullmatch(r"[a-z0-9_.-]*", node.value):  # "greeting" as an identity code is data, not words
                found.append((node.lineno, node.value))
    return found


def test_no_jargon_in_natlinks_messages() -> None:
    root = Path(__file__).resolve().parents[2] / "natlink"
    hits = [f"{path.relative_to(root.parent)}:{line}: {text!r}"
            for path in sorted(root.rglob("*.py")) if "lab" not in path.relative_to(root).parts[:1]
            for line, text in _message_strings(ast.parse(path.read_text(encoding="utf-8")))
            if JARGON.search(text)]
    assert not hits, "\n".join(hits)
