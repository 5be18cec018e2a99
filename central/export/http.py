"""The HTTP side of remote write and InfluxDB line protocol: one aiohttp session per
target, a POST per batch. A 2xx is taken; 429 and 5xx are the receiver's trouble and
retried; any other 4xx refuses the data itself, so the batch is dropped (and counted)
rather than sent again forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import aiohttp

from central.export.items import Item
from central.export.outbox import SendError
from checkd.config.exports import ExportTarget

Encode = Callable[[str, list[Item]], bytes]


class HttpSender:
    def __init__(self, target: ExportTarget, encode: Encode, headers: Mapping[str, str]):
        self.target, self.encode = target, encode
        self.headers = {**headers, **dict(target.headers), "User-Agent": "checkd-export"}
        self._session: aiohttp.ClientSession | None = None

    async def send(self, items: list[Item]) -> None:
        # Encoding (and snappy) off the loop: a batch of thousands of values takes milliseconds.
        body = await asyncio.to_thread(self.encode, self.target.prefix, items)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.target.timeout))
        try:
            async with self._session.post(self.target.url, data=body, headers=self.headers) as r:
                text = (await r.text(errors="replace"))[:200].strip()
        except aiohttp.ClientError as e:
            raise SendError(f"{self.target.url}: {e}") from None
        if r.status < 300:
            return
        retry = r.status == 429 or r.status >= 500
        raise SendError(f"{self.target.url}: HTTP {r.status} {text}", retry=retry)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
