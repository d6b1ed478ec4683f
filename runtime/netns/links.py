"""Change a running link: `dtnlab link A B down|up|delay 50ms|jitter 5ms|loss 5%|reset`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from . import shaping
from .build import restore_routes
from .impairment import Impairment, ImpairmentError
from .iproute import NetnsError, ip_batch, require_root
from .plan import Link, NetworkPlan
from .state import load_plan, save_plan

log = logging.getLogger(__name__)

ACTIONS = ("down", "up", "delay", "jitter", "loss", "clear")
VALUE_ACTIONS = ("delay", "jitter", "loss")


@dataclass(frozen=True)
class LinkChange:
    link: Link
    action: str
    before: str
    after: str

    def describe(self) -> str:
        link = self.link
        return (f"{link.a}:{link.a_netbox or link.a_dev} - {link.b}:{link.b_netbox or link.b_dev}"
                f"{f' ({link.label})' if link.label else ''}: {self.before} -> {self.after}")


def link_state(link: Link) -> str:
    impairment = Impairment.from_fields(link.impairment).describe()
    return f"{'down' if link.down else 'up'}, impairment {impairment}"


def find_link(plan: NetworkPlan, a: str, b: str, interface: str | None = None) -> int:
    """The index of the one link between nodes a and b (`interface` picks among several)."""
    matches = [i for i, link in enumerate(plan.links) if link.joins(a, b)
               and (interface is None or interface in (link.a_dev, link.b_dev, link.a_netbox,
                                                       link.b_netbox))]
    if not matches:
        plan.node(a)
        plan.node(b)  # unknown names are reported as such
        raise NetnsError(f"no link between {a} and {b}"
                         f"{f' on interface {interface}' if interface else ''}")
    if len(matches) > 1:
        choices = ", ".join(f"{plan.links[i].a_netbox or plan.links[i].a_dev}" for i in matches)
        raise NetnsError(f"{len(matches)} links join {a} and {b}; pick one with --interface "
                         f"({choices})")
    return matches[0]


def change_link(run_dir: Path, a: str, b: str, action: str, value: str | None = None,
                interface: str | None = None) -> LinkChange:
    """Apply one action to the link between a and b of the running lab, and record it.

    Args:
        action: down, up, delay, jitter, loss (with `value`: 50ms, 5%) or clear (no impairment).

    Raises:
        NetnsError: not root, the lab is not up on netns, no such link, a bad value.
    """
    require_root()
    if action not in ACTIONS:
        raise NetnsError(f"unknown link action {action!r}; actions are {', '.join(ACTIONS)}")
    if (action in VALUE_ACTIONS) != (value is not None):
        wanted = "needs a value, e.g. 50ms or 5%" if value is None else "takes no value"
        raise NetnsError(f"`{action}` {wanted}")
    plan = load_plan(run_dir)
    index = find_link(plan, a, b, interface)
    link = plan.links[index]
    before = link_state(link)
    ends = [(plan.nodes[link.a].ns, link.a_dev), (plan.nodes[link.b].ns, link.b_dev)]
    if action in ("down", "up"):
        for ns, dev in ends:
            ip_batch([f"link set {dev} {action}"], netns=ns)
        link.down = action == "down"
        if action == "up":
            restore_routes(plan, [link.a, link.b])
    else:
        try:
            impairment = (Impairment() if action == "clear"
                          else link.impaired.with_setting(action, str(value)))
        except ImpairmentError as exc:
            raise NetnsError(str(exc)) from None
        if impairment.active and plan.shaper == shaping.NONE:
            raise NetnsError("link impairments need sch_netem in the kernel, or iptables for "
                             "the userspace fallback (apt-get install iptables)")
        link.impairment = impairment.to_fields()
        shaping.apply_link(plan, index, run_dir)
    save_plan(run_dir, plan)
    change = LinkChange(link=link, action=action, before=before, after=link_state(link))
    log.debug("link %s", change.describe())
    return change
