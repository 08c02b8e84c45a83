"""The dashboard's writes: pause, resume, replay one dead letter or all (of one task), purge the
dead letters, cancel a job. Each is a POST to a URL its page shows, passes the same checks in
one place (not read-only, not from another site), and the destructive ones ask first.

A destructive POST without ``confirmed=yes`` answers with a page asking to confirm (what a
browser without scripts sees); with scripts, the button asks in a dialog and sends ``yes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from .._errors import DeadLetterNotFound
from .._queue import Queue
from ._dashboard import Dashboard, set_notice
from ._format import number, segment
from ._security import cross_site_refusal

#: A form bigger than this is not one of the dashboard's (they carry a few short fields).
MAX_FORM_BYTES = 16 * 1024

Form = dict[str, str]
#: An action's effect: (queue, queue name, form) -> the notice the next page shows.
Effect = Callable[[Queue, str, Form], Awaitable[str]]
#: A destructive action's question: (queue, queue name, form) -> what to confirm.
Question = Callable[[Queue, str, Form], Awaitable[str]]


@dataclass(frozen=True)
class Action:
    name: str
    effect: Effect
    question: Question | None = None  # set for destructive actions


def _job_id(form: Form) -> str:
    job_id = form.get("job_id", "").strip()
    if not job_id:
        raise HTTPException(400, "This action needs a job_id field.")
    return job_id


async def _pause(queue: Queue, name: str, form: Form) -> str:
    changed = await queue.pause(name)
    return f"Paused queue {name}." if changed else f"Queue {name} was paused already."


async def _resume(queue: Queue, name: str, form: Form) -> str:
    changed = await queue.resume(name)
    return f"Resumed queue {name}." if changed else f"Queue {name} was not paused."


async def _replay(queue: Queue, name: str, form: Form) -> str:
    job_id = _job_id(form)
    try:
        await queue.replay_dead_letter(job_id, name)
    except DeadLetterNotFound as exc:
        raise HTTPException(409, f"Not replayed: {exc}.") from None
    return f"Replayed job {job_id}: it is queued again."


async def _replay_all(queue: Queue, name: str, form: Form) -> str:
    task = form.get("task", "").strip() or None
    n = await queue.replay_dead_letters(name, task)
    of = f" of task {task}" if task else ""
    return f"Replayed {number(n)} dead letter(s){of}."


async def _ask_replay_all(queue: Queue, name: str, form: Form) -> str:
    task = form.get("task", "").strip()
    if task:
        return f"Replay every dead letter of task {task} in queue {name}?"
    n = (await queue.stats(name, minutes=0, hours=0)).dead_letters
    return f"Replay all {number(n)} dead letter(s) of queue {name}?"


async def _purge_dead_letters(queue: Queue, name: str, form: Form) -> str:
    n = await queue.purge_dead_letters(name)
    return f"Deleted {number(n)} dead letter(s) of queue {name}."


async def _ask_purge_dead_letters(queue: Queue, name: str, form: Form) -> str:
    n = (await queue.stats(name, minutes=0, hours=0)).dead_letters
    return f"Delete all {number(n)} dead letter(s) of queue {name}? They cannot be replayed after."


async def _cancel(queue: Queue, name: str, form: Form) -> str:
    job_id = _job_id(form)
    if await queue.job(job_id, name).cancel():
        return f"Cancelled job {job_id}."
    return f"Job {job_id} was not cancelled: it had ended already."


async def _ask_cancel(queue: Queue, name: str, form: Form) -> str:
    return f"Cancel job {_job_id(form)} of queue {name}? A running job is stopped."


ACTIONS = (
    Action("pause", _pause),
    Action("resume", _resume),
    Action("replay", _replay),
    Action("replay-all", _replay_all, _ask_replay_all),
    Action("purge-dead-letters", _purge_dead_letters, _ask_purge_dead_letters),
    Action("cancel", _cancel, _ask_cancel),
)


async def _form(request: Request) -> Form:
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise HTTPException(413, "This form is too big to be one of the dashboard's.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "This form is too big to be one of the dashboard's.")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _next_page(request: Request, form: Form, name: str) -> str:
    """Where to go after the action: the page it was sent from, if it is one of ours."""
    root = request.scope.get("root_path", "")
    wanted = form.get("next", "")
    if wanted.startswith(root + "/") and not wanted.startswith("//") and "\\" not in wanted:
        return wanted
    return f"{root}/queues/{segment(name)}"


def routes(dashboard: Dashboard) -> list[Route]:
    async def refuse_or_none(request: Request) -> Response | None:
        if dashboard.read_only:
            detail = "This dashboard is read-only: it changes nothing."
            return dashboard.render(request, "error.html", 403, status=403, detail=detail)
        refusal = cross_site_refusal(request, dashboard.trusted_origins)
        if refusal is not None:
            detail = f"Refused this write: {refusal}."
            return dashboard.render(request, "error.html", 403, status=403, detail=detail)
        return None

    def endpoint(action: Action) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            refused = await refuse_or_none(request)
            if refused is not None:
                return refused
            form = await _form(request)
            name = request.path_params["name"]
            queue = dashboard.queue
            if name not in await queue.queue_names():
                raise HTTPException(404, f"No queue named {name!r} is known here.")
            if action.question is not None and form.get("confirmed") != "yes":
                return dashboard.render(
                    request,
                    "confirm.html",
                    question=await action.question(queue, name, form),
                    action=request.url.path,
                    fields={k: v for k, v in form.items() if k != "confirmed"},
                    back=_next_page(request, form, name),
                )
            notice = await action.effect(queue, name, form)
            response = RedirectResponse(_next_page(request, form, name), 303)
            set_notice(request, response, notice)
            return response

        return run

    return [
        Route(f"/queues/{{name:path}}/{a.name}", endpoint(a), methods=["POST"], name=a.name)
        for a in ACTIONS
    ]
