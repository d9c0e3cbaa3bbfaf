"""The lab's HTTP catcher: plays Slack, Discord, Teams, PagerDuty, a webhook and a heartbeat service.

Runs on the control machine's 127.0.0.1 (lab VMs reach it at 10.0.2.2), one port, one path per channel:
`/slack/<token>`, `/discord/<token>`, `/webhook/<token>`, `/teams-workflows/<token>`,
`/teams-connector/<token>`, `/pagerduty/v2/enqueue`, `/heartbeat/<token>`. Each request is checked against
the service's documented format (fabfile/lab/hook_formats.py), answered as that service answers it, and
kept as one JSON file `<arrival ns>-<seq>-<channel>.json` in the spool (a plain sort gives arrival order),
with its verdict. A path no service has is kept too (channel `unknown`, 404): a wrong URL is not silence.

`PUT /_control/fail/<channel>` with a status code as body makes that channel answer it to every request
(recorded as refused) until `DELETE /_control/fail/<channel>`: how tests make a channel fail on purpose.
`/_control/fail/<channel>/<token>` does it for one token only (one host's URL), leaving other lab hosts'
requests to that channel alone.
Run: `python -m fabfile.lab.hook_catcher` with HOOK_CATCHER_DIR and HOOK_CATCHER_PORT set.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

from aiohttp import web

from fabfile.lab.hook_formats import CHANNELS, Answer, check

_seq = itertools.count()
SPOOL_KEY: web.AppKey[Path] = web.AppKey("spool", Path)
FAIL_KEY: web.AppKey[dict[tuple[str, str], int]] = web.AppKey("fail", dict)


def keep(spool: Path, channel: str, token: str, request: web.Request, body: bytes, answer: Answer) -> Path:
    """Write one request and its verdict atomically (a reader never sees half a file)."""
    name = f"{time.time_ns():020d}-{next(_seq):04d}-{channel}.json"
    record = {"channel": channel, "token": token, "method": request.method, "path": request.path,
              "query": dict(request.query), "content_type": request.headers.get("Content-Type", ""),
              "status": answer.status, "accepted": answer.accepted, "problems": list(answer.problems),
              "body": body.decode("utf-8", errors="replace")}
    tmp = spool / f".{name}"
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1))
    os.replace(tmp, spool / name)
    return spool / name


def _respond(answer: Answer) -> web.Response:
    if answer.status == 204:
        return web.Response(status=204)
    return web.Response(status=answer.status, text=answer.body, content_type=answer.content_type)


async def _channel(request: web.Request) -> web.Response:
    channel = request.match_info.get("channel", "pagerduty")
    token = request.match_info.get("token", "")
    body = await request.read()
    fail = request.app[FAIL_KEY]
    forced = fail.get((channel, token)) or fail.get((channel, ""))
    if forced:
        answer = Answer(forced, "forced failure", problems=(f"the catcher was told to answer {forced}",))
    elif request.method != "POST":  # heartbeat services also take a GET or HEAD as a ping
        answer = Answer(200, "OK")
    else:
        answer = check(channel, body, dict(request.query))
    keep(request.app[SPOOL_KEY], channel, token, request, body, answer)
    return _respond(answer)


async def _unknown(request: web.Request) -> web.Response:
    answer = Answer(404, "no such endpoint", problems=(f"no service at {request.path}",))
    keep(request.app[SPOOL_KEY], "unknown", "", request, await request.read(), answer)
    return _respond(answer)


async def _set_fail(request: web.Request) -> web.Response:
    channel, token = request.match_info["channel"], request.match_info.get("token", "")
    if channel not in CHANNELS:
        return web.Response(status=404, text=f"unknown channel {channel}")
    if request.method == "DELETE":
        request.app[FAIL_KEY].pop((channel, token), None)
        return web.Response(text="healed")
    status = int((await request.text()).strip() or "500")
    request.app[FAIL_KEY][(channel, token)] = status
    return web.Response(text=f"{channel} answers {status}")


def make_app(spool: Path) -> web.Application:
    app = web.Application()
    app[SPOOL_KEY] = spool
    app[FAIL_KEY] = {}
    token_channels = "|".join(c for c in CHANNELS if c not in ("pagerduty", "heartbeat"))
    app.router.add_route("*", "/_control/fail/{channel}", _set_fail)
    app.router.add_route("*", "/_control/fail/{channel}/{token}", _set_fail)
    app.router.add_post(f"/{{channel:{token_channels}}}/{{token:.+}}", _channel)
    app.router.add_route("*", "/{channel:heartbeat}/{token:.+}", _channel)
    app.router.add_post("/pagerduty/v2/enqueue", _channel)
    app.router.add_route("*", "/{tail:.*}", _unknown)
    return app


def main() -> None:
    spool = Path(os.environ["HOOK_CATCHER_DIR"])
    spool.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("HOOK_CATCHER_PORT", "2527"))
    print(f"hook-catcher on 127.0.0.1:{port}, spool {spool}", flush=True)
    web.run_app(make_app(spool), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
