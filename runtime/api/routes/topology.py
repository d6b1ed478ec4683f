"""GET /topology: the lab's devices and cables, each twin with its state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import State, Viewer
from ..errors import documented
from ..schemas import Topology, TopologyLink, TopologyNode

router = APIRouter(tags=["topology"], responses=documented(401, 403, 429))


def _link(raw: dict[str, Any]) -> TopologyLink:
    impairment = raw.get("impairment") or {}
    return TopologyLink(a=str(raw.get("a", "")), a_interface=str(raw.get("a_interface", "")),
                        b=str(raw.get("b", "")), b_interface=str(raw.get("b_interface", "")),
                        label=str(raw.get("label") or ""),
                        impairment={str(k): str(v) for k, v in impairment.items()})


@router.get("/topology", response_model=Topology, summary="Nodes and links for the view")
async def topology(state: State, user: Viewer) -> Topology:
    states = state.feed.states
    nodes = []
    for raw in state.index.nodes:
        node_id = str(raw.get("id", ""))
        twinned = bool(raw.get("twinned")) and node_id in state.index.twins
        nodes.append(TopologyNode(
            id=node_id, name=str(raw.get("name") or node_id), role=str(raw.get("role") or ""),
            twinned=twinned, uns_path=str(raw.get("uns_path") or ""),
            state=str(states.get(node_id, {}).get("state") or "unknown") if twinned else None))
    return Topology(nodes=nodes, links=[_link(link) for link in state.index.links])
