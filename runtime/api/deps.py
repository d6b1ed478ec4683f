"""Dependencies of the routes, as Annotated aliases: the app state and who is asking."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from .errors import ApiError
from .state import ApiState
from .tokens import InvalidToken, Principal
from .users import allows

# Dependencies are coroutines: FastAPI runs plain functions in its thread pool, one hop each.
# auto_error=False: a missing token is our 401 in our error shape, not FastAPI's.
bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False,
                              description="POST /auth/token with a lab user's name and password")


async def get_state(conn: HTTPConnection) -> ApiState:
    state: ApiState = conn.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]


async def client_of(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


Client = Annotated[str, Depends(client_of)]


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def current_principal(state: State,
                            token: Annotated[str | None, Depends(bearer)]) -> Principal:
    if not token:
        raise ApiError(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        return state.tokens.verify(token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None


def require(role: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through tokens whose role is `role` or above."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not allows(principal.role, role):
            raise ApiError(403, f"this needs the {role} role; you are {principal.role}")
        return principal

    check.__name__ = f"require_{role}"
    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
