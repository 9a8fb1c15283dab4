"""python-telegram-bot's networking on aiohttp instead of httpx.

python-telegram-bot sends every Bot API call through a `BaseRequest`; its default,
`HTTPXRequest`, goes through httpx, httpcore, anyio and h11. Sampling the bot at 30
messages a second (`make bench`) put that stack at about a sixth of the event loop's busy
time, the largest single share, and one `sendMessage` to a local Bot API at 1.2 ms (0.6 ms
with aiohttp, which the bot already uses for the NLU servers). The library documents
`BaseRequest` as the place for another HTTP client; this is one, with the same error
contract: a timeout (including waiting for a free connection) raises `TimedOut`, any other
transport failure `NetworkError`, and an HTTP error status is returned for the library to
turn into its own exception (`RetryAfter`, `BadRequest`, ...).
"""

from __future__ import annotations

import aiohttp

# The same private helpers python-telegram-bot's own HTTPXRequest types its signature with.
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """Bot API calls over one aiohttp session with at most `connections` connections.

    aiohttp has no write timeout of its own, so the whole call is bounded by the sum of the
    four (waiting for a connection, connecting, writing, reading): a peer that stops reading
    the request cannot hold a call forever.
    """

    def __init__(
        self,
        *,
        connections: int,
        connect_timeout: float,
        read_timeout: float,
        write_timeout: float,
        pool_timeout: float,
    ) -> None:
        if connections < 1:
            raise ValueError("connections must be at least 1")
        self._connections = connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = _given(read_timeout, self._read_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        write = _given(write_timeout, self._write_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        # aiohttp's `connect` covers waiting for a pooled connection and opening one.
        timeout = aiohttp.ClientTimeout(
            total=_sum_unless_unlimited(pool, connect, write, read),
            connect=_sum_unless_unlimited(connect, pool),
            sock_connect=connect,
            sock_read=read,
        )
        try:
            async with session.request(
                method, url, data=_body(request_data), timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's timeouts are asyncio's TimeoutError too
            raise TimedOut(f"the Bot API did not answer in time ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _given(value: ODVInput[float], default: float) -> float | None:
    """The per-call timeout when the caller set one (None: no limit), else the default."""
    return default if isinstance(value, DefaultValue) else value


def _sum_unless_unlimited(*timeouts: float | None) -> float | None:
    """The timeouts added up; None (no limit) if any of them is None."""
    return None if any(t is None for t in timeouts) else sum(t for t in timeouts if t is not None)


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as python-telegram-bot encodes them; multipart only when a file is sent."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return fields
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mime_type) in files.items():
        form.add_field(name, content, filename=filename or name, content_type=mime_type)
    return form
