"""Formula fields of deals: parsed by a grammar (`lark`) into a tree this module
evaluates with `Decimal`; nothing is ever handed to Python's `eval`.

    #value * 0.8 + #setup_fee        #value - 10%        round(#value / 3, 2)
    min(#a, #b)   max(#a, #b, 100)   if(#probability >= 50, #value, 0)

`#name` is an input: a deal's `value`, `weighted_value` (value x probability / 100),
`probability`, `products_total` (its line items), `activities_count`,
`done_activities_count`, or a `number`, `monetary` or `formula` custom field of deals.
`x + n%` / `x - n%` add or take n percent of x; elsewhere `n%` is n / 100.

A formula is refused when it is defined if it names an unknown field, divides by a
literal zero, or refers to itself (directly or through other formulas). Its value is
null ("not calculated") when an input is null, when monetary inputs have different
currencies, or on a division by zero; a result over a monetary input is monetary, in
that input's currency.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

MAX_FORMULA_LENGTH = 1000
MAX_DEPTH = 32
# Deal facts a formula may name, besides the custom fields.
SYSTEM_INPUTS = frozenset(
    {
        "value",
        "weighted_value",
        "probability",
        "products_total",
        "activities_count",
        "done_activities_count",
    }
)
MONETARY_INPUTS = frozenset({"value", "weighted_value", "products_total"})
# Inputs that need a query of the deal's line items or activities.
COUNTED_INPUTS = frozenset({"products_total", "activities_count", "done_activities_count"})

_GRAMMAR = r"""
?start: comparison
?comparison: sum
    | sum COMPARE sum -> compare
?sum: product
    | sum "+" product -> add
    | sum "-" product -> sub
?product: unary
    | product "*" unary -> mul
    | product "/" unary -> div
?unary: atom
    | "-" unary -> neg
?atom: NUMBER "%" -> percent
    | NUMBER -> number
    | FIELD -> field
    | FUNCTION "(" comparison ("," comparison)* ")" -> call
    | "(" comparison ")"
COMPARE: ">=" | "<=" | "==" | "!=" | ">" | "<"
FUNCTION: "round" | "min" | "max" | "if"
FIELD: "#" /[a-z][a-z0-9_]*/
NUMBER: /[0-9]+(\.[0-9]+)?/
%import common.WS
%ignore WS
"""
_ARITY = {"round": (1, 2), "min": (1, 50), "max": (1, 50), "if": (3, 3)}


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr")


class FormulaError(ValueError):
    """Why a formula is refused at definition."""


def parse(source: str) -> Tree[Token]:
    if len(source) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"at most {MAX_FORMULA_LENGTH} characters")
    try:
        tree = _parser().parse(source)
    except LarkError as exc:
        raise FormulaError(f"not a formula: {str(exc).splitlines()[0]}") from exc
    if _depth(tree) > MAX_DEPTH:
        raise FormulaError(f"nested deeper than {MAX_DEPTH}")
    _check(tree)
    return tree


def _depth(node: Any) -> int:
    if not isinstance(node, Tree):
        return 0
    return 1 + max((_depth(child) for child in node.children), default=0)


def _check(tree: Tree[Token]) -> None:
    for node in tree.iter_subtrees():
        if node.data == "div":
            divisor = node.children[1]
            if (
                isinstance(divisor, Tree)
                and divisor.data in ("number", "percent")
                and Decimal(str(divisor.children[0])) == 0
            ):
                raise FormulaError("divides by zero")
        if node.data == "call":
            name = str(node.children[0])
            low, high = _ARITY[name]
            if not low <= len(node.children) - 1 <= high:
                raise FormulaError(f"{name}() takes {low} to {high} arguments")


def references(tree: Tree[Token]) -> set[str]:
    """The names (without `#`) a formula reads."""
    return {str(node.children[0])[1:] for node in tree.iter_subtrees() if node.data == "field"}


def check_definition(
    key: str, source: str, fields: Mapping[str, str], formulas: Mapping[str, str]
) -> None:
    """Refuse (FormulaError) a formula for field `key` that does not parse, names a field
    that is neither an input nor a number/monetary/formula field of deals (`fields`:
    key -> type), or refers to itself through formulas (`formulas`: the other formula
    fields' sources)."""
    tree = parse(source)
    for name in sorted(references(tree)):
        if name == key:
            raise FormulaError(f"refers to itself (#{name})")
        if name in SYSTEM_INPUTS:
            continue
        kind = fields.get(name)
        if kind not in ("number", "monetary", "formula"):
            raise FormulaError(f"#{name} is not a number, monetary or formula field of deals")
    graph = {k: references(parse(v)) for k, v in formulas.items() if k != key}
    graph[key] = references(tree)
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        for child in graph.get(name, ()):
            if child == key:
                raise FormulaError(f"refers to itself through {' -> '.join((*path, child))}")
            if child in graph and child not in seen:
                seen.add(child)
                visit(child, (*path, child))

    visit(key, (key,))


# Evaluation


@dataclass(frozen=True, slots=True)
class Amount:
    """A number, with a currency when it is money."""

    number: Decimal
    currency: str | None = None


class _NotCalculated(Exception):
    pass


def _combine(a: Amount, b: Amount, number: Decimal) -> Amount:
    if a.currency and b.currency and a.currency != b.currency:
        raise _NotCalculated  # mixed currencies
    return Amount(number, a.currency or b.currency)


def _truth(a: Amount, op: str, b: Amount) -> bool:
    return {
        ">": a.number > b.number,
        "<": a.number < b.number,
        ">=": a.number >= b.number,
        "<=": a.number <= b.number,
        "==": a.number == b.number,
        "!=": a.number != b.number,
    }[op]


def _eval(node: Any, inputs: Mapping[str, Amount | None]) -> Amount:
    kind = node.data
    children = node.children
    if kind == "number":
        return Amount(Decimal(str(children[0])))
    if kind == "percent":
        return Amount(Decimal(str(children[0])) / 100)
    if kind == "field":
        value = inputs.get(str(children[0])[1:])
        if value is None:
            raise _NotCalculated
        return value
    if kind == "neg":
        inner = _eval(children[0], inputs)
        return Amount(-inner.number, inner.currency)
    if kind in ("add", "sub"):
        left = _eval(children[0], inputs)
        right_node = children[1]
        if isinstance(right_node, Tree) and right_node.data == "percent":
            share = left.number * Decimal(str(right_node.children[0])) / 100
            right = Amount(share, left.currency)
        else:
            right = _eval(right_node, inputs)
        number = left.number + right.number if kind == "add" else left.number - right.number
        return _combine(left, right, number)
    if kind in ("mul", "div"):
        left, right = _eval(children[0], inputs), _eval(children[1], inputs)
        if kind == "mul":
            return _combine(left, right, left.number * right.number)
        if right.number == 0:
            raise _NotCalculated
        return _combine(left, right, left.number / right.number)
    if kind == "compare":
        left, right = _eval(children[0], inputs), _eval(children[2], inputs)
        return Amount(Decimal(_truth(left, str(children[1]), right)))
    if kind == "call":
        name = str(children[0])
        if name == "if":
            condition = _eval(children[1], inputs)
            return _eval(children[2] if condition.number != 0 else children[3], inputs)
        args = [_eval(child, inputs) for child in children[1:]]
        if name == "round":
            places = int(args[1].number) if len(args) > 1 else 0
            exponent = Decimal(1).scaleb(-max(0, min(places, 6)))
            return Amount(args[0].number.quantize(exponent, ROUND_HALF_UP), args[0].currency)
        pick = min if name == "min" else max
        chosen = pick(args, key=lambda a: a.number)
        for other in args:
            _combine(chosen, other, chosen.number)
        return chosen
    raise _NotCalculated


def evaluate(tree: Tree[Token], inputs: Mapping[str, Amount | None]) -> Amount | None:
    """The formula's value over these inputs, or None when it cannot be calculated."""
    try:
        return _eval(tree, inputs)
    except (_NotCalculated, DecimalException, OverflowError):
        return None


def order(formulas: Mapping[str, Tree[Token]]) -> Iterator[str]:
    """The formula keys, each after the formulas it reads (definitions are acyclic)."""
    done: set[str] = set()

    def visit(key: str) -> Iterator[str]:
        if key in done:
            return
        done.add(key)
        for name in sorted(references(formulas[key])):
            if name in formulas:
                yield from visit(name)
        yield key

    for key in sorted(formulas):
        yield from visit(key)
