"""Workflows: chain, group and chord of task signatures, compiled into a DAG of member jobs.

A workflow and all its members live in one queue (one Redis Cluster slot), so a member's ack
and the workflow's bookkeeping (results, fan-in counters, starting the next members) happen
in the same script: no crash can lose or repeat a step. The tree is compiled here, once, at
enqueue: each member (leaf) knows how many results it waits for, which members wait for it,
and a template that builds its input from stored results by concatenating JSON texts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

import orjson

from ._checks import count_option, positive_seconds_option, priority_option
from ._serde import dumps, encode_payload
from ._store import WorkflowMember, logical_name

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class TaskLike(Protocol[R_co]):
    """What a workflow needs of a task (``Task`` is one; kept abstract so that this module
    does not import the task module, which imports this one)."""

    @property
    def name(self) -> str: ...
    @property
    def max_tries(self) -> int | None: ...
    @property
    def timeout(self) -> float | None: ...
    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None: ...


#: Options a signature may carry (the enqueue options that make sense per member).
SIGNATURE_OPTIONS = frozenset({"_queue_name", "_priority", "_max_tries", "_timeout"})


@dataclass(frozen=True)
class Signature(Generic[R]):
    """A task with (some of) its arguments: ``task.s(...)`` or ``task.si(...)``.

    A mutable signature (``.s``) receives the previous step's result as its first argument;
    an immutable one (``.si``) ignores it.
    """

    task: TaskLike[R]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    immutable: bool = False

    def set(
        self,
        *,
        priority: int | None = None,
        max_tries: int | None = None,
        timeout: float | None = None,
        queue_name: str | None = None,
    ) -> Signature[R]:
        """A copy with enqueue options (typed, unlike the underscore keywords of ``.s``)."""
        given = {
            "_priority": priority,
            "_max_tries": max_tries,
            "_timeout": timeout,
            "_queue_name": queue_name,
        }
        options = {**self.options, **{k: v for k, v in given.items() if v is not None}}
        return Signature(self.task, self.args, self.kwargs, options, self.immutable)

    def __or__(self, other: Node) -> Chain:
        return chain(self, other)


def _callback(signature: Signature[Any]) -> Signature[Any]:
    if not isinstance(signature, Signature):
        raise TypeError(
            f"on_error takes a task signature such as undo.s() or alert.si(...), not {signature!r}"
        )
    return signature


@dataclass(frozen=True)
class Chain:
    """Steps run one after another; each gets the previous step's result."""

    steps: tuple[Node, ...]
    error_callback: Signature[Any] | None = None

    def __or__(self, other: Node) -> Chain:
        return chain(self, other)

    def on_error(self, signature: Signature[Any]) -> Chain:
        """Enqueue ``signature`` once if a step fails the workflow (see ``WorkflowFailure``)."""
        return dataclasses.replace(self, error_callback=_callback(signature))


@dataclass(frozen=True)
class Group:
    """Members run in parallel; the result is the list of their results, in order."""

    members: tuple[Node, ...]
    allow_failures: bool = False
    error_callback: Signature[Any] | None = None

    def on_error(self, signature: Signature[Any]) -> Group:
        """Enqueue ``signature`` once if a member fails the workflow (see ``WorkflowFailure``)."""
        return dataclasses.replace(self, error_callback=_callback(signature))


@dataclass(frozen=True)
class Chord:
    """A group, then one callback called once with the list of the group's results."""

    header: Group
    body: Node
    error_callback: Signature[Any] | None = None

    def on_error(self, signature: Signature[Any]) -> Chord:
        """Enqueue ``signature`` once if a member or the callback fails the workflow."""
        return dataclasses.replace(self, error_callback=_callback(signature))


Node: TypeAlias = "Signature[Any] | Chain | Group | Chord"


def chain(*steps: Node) -> Chain:
    """``chain(a, b, c)``: a's result is passed to b, b's to c; the result is c's."""
    flat: list[Node] = []
    for step in steps:  # a chain with its own error callback stays a node of its own
        flat.extend(step.steps if isinstance(step, Chain) and not step.error_callback else (step,))
    if not flat:
        raise ValueError("chain() needs at least one step")
    return Chain(tuple(flat))


def group(*members: Node | Iterable[Node], allow_failures: bool = False) -> Group:
    """``group(a, b, c)`` or ``group(generator)``: run in parallel, results in order.

    With ``allow_failures`` a member task that fails (after its retries) does not fail the
    group: its place in the results holds ``{"failed": true, "job_id", "error_type", "error"}``.
    """
    items: list[Node] = []
    for member in members:
        if isinstance(member, (Signature, Chain, Group, Chord)):
            items.append(member)
        else:
            items.extend(member)
    return Group(tuple(items), allow_failures)


def chord(header: Group | Iterable[Node], body: Node, *, allow_failures: bool = False) -> Chord:
    """``chord(group(...), callback)``: the callback runs once, with every member's result."""
    if not isinstance(header, Group):
        header = group(header, allow_failures=allow_failures)
    elif allow_failures and not header.allow_failures:
        header = dataclasses.replace(header, allow_failures=True)
    return Chord(header, body)


def is_workflow(value: Any) -> bool:
    return isinstance(value, (Signature, Chain, Group, Chord))


# -- compilation ---------------------------------------------------------------------------

Ref: TypeAlias = "int | list[Ref]"  # a member's result, or a list of refs (a group's)


@dataclass
class Leaf:
    """One member job of a compiled workflow."""

    index: int
    signature: Signature[Any]
    input: Ref | None  # the results it takes as its first argument (None: immutable or first)
    after: Ref | None  # the results it waits for: its input, or for .si() the previous step's
    tolerant: bool
    dependents: list[int] = field(default_factory=list)


@dataclass
class ErrorCallback:
    """The ``on_error`` signature of a node whose members are ``first``..``last``."""

    signature: Signature[Any]
    first: int
    last: int


@dataclass
class CompiledWorkflow:
    id: str
    kind: str
    leaves: list[Leaf]
    output: Ref
    error_callbacks: list[ErrorCallback] = field(default_factory=list)

    def members(self) -> list[WorkflowMember]:
        return [member(leaf) for leaf in self.leaves]

    def on_error(self) -> bytes:
        """The error callbacks as workflow_start takes them (innermost node first)."""
        return orjson.dumps([_error_callback(cb) for cb in self.error_callbacks])


def _check_signature(sig: Signature[Any], queue_name: str, takes_input: bool) -> None:
    unknown = set(sig.options) - SIGNATURE_OPTIONS
    if unknown:
        raise TypeError(f"unknown signature option(s) {sorted(unknown)}")
    member_queue = sig.options.get("_queue_name")
    if member_queue not in (None, queue_name, logical_name(queue_name)):  # or its partition
        raise ValueError(
            f"a workflow runs on one queue ({queue_name!r}); {sig.task.name!r} asks for "
            f"{member_queue!r}. Enqueue the workflow with _queue_name={member_queue!r} "
            "or drop the member's queue (one queue keeps every step atomic on a cluster)"
        )
    sig.task.check_arguments(
        ((None,) if takes_input and not sig.immutable else ()) + sig.args, sig.kwargs
    )


def compile_workflow(node: Node, queue_name: str) -> CompiledWorkflow:
    """Flatten the tree into leaves with their inputs; check every member fits the queue."""
    leaves: list[Leaf] = []
    callbacks: list[ErrorCallback] = []

    def start(node: Node, input_ref: Ref | None, tolerant: bool) -> Ref:
        first = len(leaves)
        ref = start_node(node, input_ref, tolerant)
        callback = getattr(node, "error_callback", None)
        if callback is not None and len(leaves) > first:  # inner nodes are done first
            _check_signature(callback, queue_name, takes_input=True)
            callbacks.append(ErrorCallback(callback, first, len(leaves) - 1))
        return ref

    def start_node(node: Node, input_ref: Ref | None, tolerant: bool) -> Ref:
        if isinstance(node, Signature):
            _check_signature(node, queue_name, takes_input=input_ref is not None)
            taken = None if node.immutable else input_ref
            leaf = Leaf(len(leaves), node, taken, input_ref, tolerant)
            leaves.append(leaf)
            return leaf.index
        if isinstance(node, Chain):
            ref = input_ref
            for step in node.steps:
                ref = start(step, ref, tolerant)
            return ref if ref is not None else []
        if isinstance(node, Group):
            return [
                start(m, input_ref, node.allow_failures and isinstance(m, Signature))
                for m in node.members
            ]
        if isinstance(node, Chord):
            results = start(node.header, input_ref, tolerant)
            return start(node.body, results, tolerant)
        raise TypeError(f"not a workflow node: {node!r}")

    output = start(node, None, False)
    for leaf in leaves:
        for dep in sorted(_deps(leaf.after)):
            leaves[dep].dependents.append(leaf.index)
    if not leaves:
        raise ValueError("the workflow has no task to run")
    kind = type(node).__name__.lower()
    return CompiledWorkflow(os.urandom(16).hex(), kind, leaves, output, callbacks)


def _deps(ref: Ref | None) -> set[int]:
    if ref is None:
        return set()
    if isinstance(ref, int):
        return {ref}
    out: set[int] = set()
    for r in ref:
        out |= _deps(r)
    return out


def template(ref: Ref) -> bytes:
    """JSON list of segments: strings are JSON text, ints are "the result of member i"."""
    segments: list[str | int] = []

    def walk(r: Ref) -> None:
        if isinstance(r, int):
            segments.append(r)
            return
        segments.append("[")
        for i, item in enumerate(r):
            if i:
                segments.append(",")
            walk(item)
        segments.append("]")

    walk(ref)
    merged: list[str | int] = []
    for seg in segments:
        if merged and isinstance(seg, str) and isinstance(merged[-1], str):
            merged[-1] += seg
        else:
            merged.append(seg)
    return orjson.dumps(merged)


def _around_input(sig: Signature[Any]) -> tuple[bytes, bytes]:
    """The payload of a signature that takes an input first, cut where the input goes."""
    name = sig.task.name
    args = dumps(list(sig.args), f"arguments of {name!r}")[1:-1]
    kwargs = dumps(sig.kwargs, f"arguments of {name!r}")
    return b"[[", (b"," + args if args else b"") + b"]," + kwargs + b"]"


def _options(sig: Signature[Any]) -> tuple[int, int, int]:
    """priority, max_tries (0 = default) and timeout_ms (0 = default) of a signature."""
    opts = sig.options
    max_tries = opts.get("_max_tries")
    timeout = opts.get("_timeout")
    return (
        priority_option(opts.get("_priority", 0)),
        (
            count_option(max_tries, "_max_tries")
            if max_tries is not None
            else sig.task.max_tries or 0
        ),
        (
            positive_seconds_option(timeout, "_timeout")
            if timeout is not None
            else round((sig.task.timeout or 0) * 1000)
        ),
    )


def member(leaf: Leaf) -> WorkflowMember:
    """One member as workflow_start stores it: its payload around its input, and its options."""
    sig = leaf.signature
    if leaf.input is None:
        head, tail, tpl = encode_payload(sig.args, sig.kwargs, sig.task.name), b"", b""
    else:
        head, tail = _around_input(sig)
        tpl = template(leaf.input)
    priority, max_tries, timeout_ms = _options(sig)
    return WorkflowMember(
        task=sig.task.name,
        head=head,
        tail=tail,
        template=tpl,
        awaited=len(_deps(leaf.after)),
        dependents=",".join(str(d) for d in leaf.dependents),
        priority=priority,
        max_tries=max_tries,
        timeout_ms=timeout_ms,
        tolerated=int(leaf.tolerant),
    )


def _error_callback(cb: ErrorCallback) -> list[Any]:
    """[task, head, tail, takes_failure, first, last, priority, max_tries, timeout_ms]."""
    sig = cb.signature
    if sig.immutable:
        head, tail = encode_payload(sig.args, sig.kwargs, sig.task.name), b""
    else:
        head, tail = _around_input(sig)
    takes_failure = int(not sig.immutable)
    return [sig.task.name, head.decode(), tail.decode(), takes_failure, cb.first, cb.last,
            *_options(sig)]  # fmt: skip
