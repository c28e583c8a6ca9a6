"""`/api/v1/orchestrator/nodes` (reference §3.1): list nodes with their membership and connection,
describe one (by id prefix), and approve, reject or delete one."""

from __future__ import annotations

from aiohttp import web

from bacalhau.models import (
    CONNECTED,
    DISCONNECTED,
    MEMBERSHIP_APPROVED,
    MEMBERSHIP_PENDING,
    MEMBERSHIP_REJECTED,
)
from bacalhau.models.codec import dumps

from ..middleware import json_response
from ..paging import PagingToken, next_page_token
from ..state import requester_of
from .binding import (
    BindError,
    body_str,
    query_bool,
    query_choice,
    query_int,
    query_list,
    query_str,
    read_json_object,
)

PREFIX = "/api/v1/orchestrator/nodes"

NODE_ORDER = (
    "id", "type", "available_cpu", "available_memory", "available_disk", "available_gpu",
    "approval", "status",
)
APPROVALS = (MEMBERSHIP_PENDING, MEMBERSHIP_APPROVED, MEMBERSHIP_REJECTED)
STATUSES = (CONNECTED, DISCONNECTED)
ACTIONS = ("approve", "reject", "delete")


def setup(app: web.Application) -> None:
    app.router.add_get(PREFIX, list_nodes)
    # bacalhau-apiclient's `orchestratorupdate_node` posts here with the id in the body.
    app.router.add_post(PREFIX, update_node)
    app.router.add_get(PREFIX + "/{id}", get_node)
    app.router.add_put(PREFIX + "/{id}", update_node)


async def list_nodes(request: web.Request) -> web.Response:
    """GET /nodes -> `{"Nodes": [NodeState], "NextToken"}`. The filters are hyphenated
    (`filter-approval`, `filter-status`), as Bacalhau's CLI sends them."""
    # bacalhau-apiclient spells the approval filter with an underscore.
    approval_param = "filter_approval" if "filter_approval" in request.query else "filter-approval"
    filter_approval = query_choice(request, approval_param, APPROVALS, "")
    filter_status = query_choice(request, "filter-status", STATUSES, "")
    labels = query_list(request, "labels")
    token_text = query_str(request, "next_token")
    if token_text:
        token = PagingToken.decode(token_text)
        order_by, reverse, limit, offset = token.sort_by, token.reverse, token.limit, token.offset
        if order_by not in NODE_ORDER:
            raise BindError(f"next_token: invalid paging token {token_text!r}")
    else:
        order_by = query_choice(request, "order_by", NODE_ORDER, "id")
        reverse = query_bool(request, "reverse")
        limit = query_int(request, "limit")
        offset = 0
    requester = requester_of(request)
    nodes = requester.list_nodes(
        filter_approval=filter_approval, filter_status=filter_status, labels=labels,
        order_by=order_by, reverse=reverse,
    )
    page = nodes[offset:offset + limit] if limit else nodes[offset:]
    more = bool(limit) and offset + len(page) < len(nodes)
    items = requester.nodes_wire(page)  # now: the states are live, not copies
    token = dumps(next_page_token(sort_by=order_by, reverse=reverse, limit=limit,
                                  offset=offset, returned=len(page), more=more))
    # The same list under the key bacalhau-apiclient reads too (Go decodes either key):
    # serialized once, written twice.
    body = b'{"Nodes":' + items + b',"nodes":' + items + b',"NextToken":' + token + b"}"
    return web.Response(body=body, content_type="application/json")


async def get_node(request: web.Request) -> web.Response:
    """GET /nodes/{id} (id or unique prefix) -> `{"Node": NodeState}`."""
    node = requester_of(request).get_node(request.match_info["id"]).to_dict()
    return json_response({"Node": node, "node": node})  # `node`: for bacalhau-apiclient


async def update_node(request: web.Request) -> web.Response:
    """PUT /nodes/{id} (or POST /nodes with `NodeID` in the body) `{"Action": "approve"|
    "reject"|"delete", "Message"}` -> `{"Success": true}`; failures (unknown node, already
    approved...) are APIErrors."""
    body = await read_json_object(request, "PutNodeRequest")
    action = body_str(body, "Action").strip().lower()
    if action not in ACTIONS:
        shown = body_str(body, "Action")
        raise BindError(
            f"Action: {'unknown action ' + repr(shown) if shown else 'missing'} "
            "(use approve, reject or delete)"
        )
    message = body_str(body, "Message")
    node_ref = request.match_info.get("id") or body_str(body, "NodeID")
    if not node_ref:
        raise BindError("NodeID: missing, name the node to update")
    requester = requester_of(request)
    node = requester.get_node(node_ref)
    await requester.node_action(node.node_id, action, message)
    return json_response({"Success": True, "success": True})  # `success`: bacalhau-apiclient
