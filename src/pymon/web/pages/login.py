"""Signing in and out: the login form, checking a name and password (a session
cookie on success), and ending the session."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from pymon.web.auth import csrf_token, login_user, logout_user
from pymon.web.pages.render import read_form, render
from pymon.web.proxy import public_prefix

__all__ = ["router"]

router = APIRouter()


def _csrf_ok(request: Request, form: dict[str, str]) -> bool:
    return hmac.compare_digest(form.get("csrf_token", "").encode(), csrf_token(request).encode())


@router.get("/login")
async def login_form(request: Request) -> Response:
    """The sign-in form (``next``: where to go after signing in)."""
    return render(request, "login.html", page="login", next=request.query_params.get("next", ""))


def _login_again(request: Request, form: dict[str, str], status_code: int, error: str) -> Response:
    """The sign-in form again with ``error``, keeping the name and ``next`` that were sent."""
    return render(
        request,
        "login.html",
        status_code,
        page="login",
        error=error,
        username=form.get("username", "")[:200],
        next=form.get("next", ""),
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the name and password; on success set the session and go to the overview."""
    form = await read_form(request)
    if not _csrf_ok(request, form):
        return _login_again(request, form, 403, "the form expired: please sign in again")
    try:
        done = await login_user(
            request, form.get("username", ""), form.get("password", ""), form.get("next") or None
        )
    except HTTPException as exc:
        page = _login_again(request, form, exc.status_code, str(exc.detail))
        page.headers.update(exc.headers or {})
        return page
    if done is None:
        return _login_again(request, form, 401, "wrong name or password")
    return done


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session and go to the overview."""
    form = await read_form(request)
    if not _csrf_ok(request, form):
        raise HTTPException(403, "missing or wrong CSRF token")
    response = RedirectResponse(f"{public_prefix(request)}/", status_code=303)
    logout_user(response, request)
    return response
