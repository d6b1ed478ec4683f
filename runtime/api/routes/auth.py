"""POST /auth/token (OAuth2 password grant) and GET /auth/me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from ..deps import Client, State, Viewer
from ..errors import ApiError, documented
from ..schemas import Me, Token

router = APIRouter(prefix="/auth", tags=["auth"])
MAX_NAME = 100


@router.post("/token", response_model=Token, responses=documented(400, 401, 413, 422, 429),
             summary="Log in: a user name and password for a JWT")
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], state: State,
          client: Client) -> Token:
    """Form fields `username` and `password`; the token goes in `Authorization: Bearer`."""
    name = form.username[:MAX_NAME]
    user = state.users.verify(form.username, form.password)
    if user is None:
        state.audit.record(name, "-", "login", name, "failed", client)
        raise ApiError(401, "wrong user name or password", headers={"WWW-Authenticate": "Bearer"})
    token, ttl = state.tokens.issue(user.name, user.role)
    state.audit.record(user.name, user.role, "login", user.name, "ok", client)
    return Token(access_token=token, expires_in=ttl, user=user.name, role=user.role)


@router.get("/me", response_model=Me, responses=documented(401, 403, 429),
            summary="Who the token belongs to")
async def me(principal: Viewer) -> Me:
    return Me(user=principal.name, role=principal.role, expires_at=principal.expires)
