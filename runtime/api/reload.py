"""Reload the API's view of the lab after a regen: twins, levels, topology, users, live routes."""

from __future__ import annotations

import logging

from ..labfiles import LabFileError, LabFiles, load_lab
from ..reconcile import ReconcilePlan, plan_twins
from .labindex import LabIndex
from .live import LiveFeed
from .state import ApiState
from .users import UserBook

log = logging.getLogger(__name__)


def retarget(feed: LiveFeed, lab: LabFiles, plan: ReconcilePlan) -> None:
    """New topic routes for the feed; a removed twin is not shown with its last state."""
    feed.route(lab)
    for twin_id in plan.removed:
        feed.forget(twin_id)


def reload_api(state: ApiState) -> ReconcilePlan | None:
    """Read the lab folder again and swap the API's index and users; None when unreadable.

    Requests in flight keep the index they started with; the next ones see the new one.
    """
    try:
        lab = load_lab(state.lab.root)
    except LabFileError as exc:
        log.error("api: reload skipped, the lab folder is not readable: %s", exc)
        return None
    index = LabIndex(lab)
    try:
        users = UserBook.from_config(index.api_config.get("users"))
    except ValueError as exc:
        log.error("api: reload skipped, the lab's users are not readable: %s", exc)
        return None
    plan = plan_twins(state.lab.twins, lab.twins)
    retarget(state.feed, lab, plan)
    state.lab, state.index, state.hub.index = lab, index, index
    # a removed user's tokens stop working, and a changed role needs a new token
    state.users = state.tokens.users = users
    log.info("api: reloaded: %d added, %d removed, %d moved, %d reconfigured",
             len(plan.added), len(plan.removed), len(plan.moved), len(plan.reconfigured))
    return plan
