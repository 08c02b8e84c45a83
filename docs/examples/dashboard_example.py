"""The dashboard mounted into a FastAPI app, behind the app's own admin check.

Run it (`python docs/examples/dashboard_example.py`) to see the check at work on memory://,
or serve it with `uvicorn docs.examples.dashboard_example:app` and open /admin/jobs/.
"""

import asyncio
import base64
import secrets

from fastapi import FastAPI, HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from asyncjobs import Queue
from asyncjobs.dashboard import create_dashboard

REDIS_URL = "memory://dashboard-example"  # yours: redis://...


async def current_admin(request: Request) -> str:
    """The app's own check (a FastAPI dependency elsewhere in the app): here, HTTP Basic."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:  # not base64, not UTF-8
        user, password = "", ""
    if scheme.lower() != "basic" or not secrets.compare_digest(password, "s3cret"):
        raise HTTPException(401, headers={"WWW-Authenticate": 'Basic realm="jobs"'})
    return user


async def admins_only(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Every request to the dashboard passes the same check as the app's admin endpoints."""
    try:
        request.state.admin = await current_admin(request)
    except HTTPException as refused:
        return Response(status_code=refused.status_code, headers=refused.headers)
    return await call_next(request)


queue = Queue(REDIS_URL, name="emails")  # opens its connection on first use
dashboard = create_dashboard(queue)
dashboard.add_middleware(BaseHTTPMiddleware, dispatch=admins_only)

app = FastAPI()
app.mount("/admin/jobs", dashboard)
# Everyone else may look, but not touch:
app.mount("/status/jobs", create_dashboard(queue, read_only=True))


async def main() -> None:
    import httpx

    await queue.enqueue("send_email", "ada@example.com")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        refused = await http.get("/admin/jobs/")
        print("without credentials:", refused.status_code)
        page = await http.get("/admin/jobs/", auth=("ada", "s3cret"))
        print("as an admin:", page.status_code, "emails" in page.text and "Pause" in page.text)
        public = await http.get("/status/jobs/")
        print("read-only:", public.status_code, "Pause" not in public.text)
    await queue.aclose()


if __name__ == "__main__":
    asyncio.run(main())
