"""The routes every object kind shares: list, get, create, update, delete, over ``pyfi.core.objects``.

:func:`kind_router` builds them for one kind of ``pyfi.core.kinds``, calling
the same core functions as ``pyfi ls``, ``add``, ``update`` and ``delete``,
so the rights checked and the errors raised are the CLI's. A router module
adds the routes peculiar to its kind to the router it gets back.

(No ``from __future__ import annotations`` here: the routes' annotations name
the kind's models, local to :func:`kind_router`, and FastAPI reads them.)
"""
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from pyfi.api.deps import DB, Me
from pyfi.api.models import NamePath, Object, Paged
from pyfi.core import objects
from pyfi.core.kinds import KINDS
from pyfi.core.paging import Page

PageNumber = Annotated[int, Query(ge=1, le=2**31 - 1, description="page number, from 1")]
Rows = Annotated[int, Query(ge=1, le=1000, description="rows per page")]


def page_of(page: Page, out: type[Object]) -> Paged:
    """A core page as the API's paged body."""
    return Paged[out](page=page.number, rows=page.size, total=page.total,
                      items=[out.model_validate(row) for row in page.rows])


def fresh(session: Any, obj: Any, out: type[Object]) -> Object:
    """``obj`` as stored now (its relations reloaded after a change), as a response body."""
    session.flush()
    session.refresh(obj)
    return out.model_validate(obj)


def changes_of(body: BaseModel) -> dict[str, Any]:
    """The fields an update sent, but nulls (an option not given, as in the CLI); ``rename`` becomes the new ``name``."""
    changes = {field: value for field, value in body.model_dump(exclude_unset=True).items() if value is not None}
    if "rename" in changes:
        changes["name"] = changes.pop("rename")
    return changes


def kind_router(kind_name: str, out: type[Object], create: type[BaseModel] | None = None,
                change: type[BaseModel] | None = None, delete: bool = True) -> APIRouter:
    """``/{plural}`` routes for one kind: each of create, change and delete only when given."""
    kind = KINDS[kind_name]
    router = APIRouter(prefix=f"/{kind.plural}", tags=[kind.plural])

    @router.get("", response_model=Paged[out], operation_id=f"list_{kind.plural}", summary=f"List {kind.plural}")
    def listing(session: DB, me: Me, page: PageNumber = 1, rows: Rows = 10) -> Any:
        return page_of(objects.listing(session, me.actor, kind, page, rows), out)

    @router.get("/{name}", response_model=out, operation_id=f"get_{kind_name}", summary=f"Get a {kind_name}")
    def get(name: NamePath, session: DB, me: Me) -> Any:
        return out.model_validate(objects.get(session, me.actor, kind, name, None))

    if create is not None:
        _create_route(router, kind_name, out, create)
    if change is not None:
        _change_route(router, kind_name, out, change)
    if delete:
        _delete_route(router, kind_name)
    return router


def _create_route(router: APIRouter, kind_name: str, out: type[Object], create: type[BaseModel]) -> None:
    kind = KINDS[kind_name]

    @router.post("", response_model=out, status_code=201, operation_id=f"add_{kind_name}", summary=f"Add a {kind_name}")
    def add(body: create, session: DB, me: Me) -> Any:  # type: ignore[valid-type]
        return fresh(session, objects.add(session, me.actor, kind, body.model_dump()), out)


def _change_route(router: APIRouter, kind_name: str, out: type[Object], change: type[BaseModel]) -> None:
    kind = KINDS[kind_name]

    @router.patch("/{name}", response_model=out, operation_id=f"update_{kind_name}", summary=f"Update a {kind_name}")
    def update(name: NamePath, body: change, session: DB, me: Me) -> Any:  # type: ignore[valid-type]
        changes = changes_of(body)
        if not changes:  # nothing to change: the object as it is
            return out.model_validate(objects.get(session, me.actor, kind, name, None))
        return fresh(session, objects.update(session, me.actor, kind, name, None, changes), out)


def _delete_route(router: APIRouter, kind_name: str) -> None:
    kind = KINDS[kind_name]

    @router.delete("/{name}", status_code=204, response_class=Response, operation_id=f"delete_{kind_name}",
                   summary=f"Delete a {kind_name}")
    def delete(name: NamePath, session: DB, me: Me) -> None:
        objects.delete(session, me.actor, kind, name, None)
