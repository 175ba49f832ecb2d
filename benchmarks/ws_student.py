"""A student without a browser: speaks Streamlit's own websocket protocol to the "Take a quiz" page.

It sends what the browser sends (a rerun request with the widget values: the typed code and name, the chosen
answer and confidence, a click on a button) and reads what the browser receives (the page's elements, until
the run finishes), then fetches the page's images over HTTP as the browser would. The server does exactly
the work it does for a browser; only the drawing is left out, so many of these fit on a small machine.
"""
from __future__ import annotations

import time

import httpx
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import StringArray
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

DONE = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)


class Page:
    """The elements of one finished script run, by kind."""

    def __init__(self) -> None:
        self.elements = []

    def add(self, element) -> None:
        self.elements.append(element)

    def of(self, kind: str) -> list:
        return [getattr(e, kind) for e in self.elements if e.WhichOneof("type") == kind]

    def widget(self, kind: str, key: str | None = None, label: str | None = None):
        for w in self.of(kind):
            if (key is None or w.id.endswith(f"-{key}")) and (label is None or w.label == label):
                return w
        raise LookupError(f"no {kind} {key or label!r} on the page: {self.texts()[:20]}")

    def texts(self) -> list[str]:
        out = [h.body for h in self.of("heading")] + [m.label for m in self.of("metric")]
        return out + [b.label for b in self.of("button")]

    def image_urls(self) -> list[str]:
        return [img.url for imgs in self.of("imgs") for img in imgs.imgs]


class WsStudent:
    """One student's browser session, driven over the websocket."""

    def __init__(self, base: str, page_name: str = "quiz"):
        self.base, self.page_name = base, page_name
        self.query, self.page_hash = "", ""
        self.ws = None
        self.http = httpx.AsyncClient(base_url=base, timeout=120)

    async def open(self) -> Page:
        ws_url = self.base.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None)
        return await self.rerun([])

    async def close(self) -> None:
        await self.ws.close()
        await self.http.aclose()

    async def rerun(self, widgets: list[WidgetState]) -> Page:
        """Send a rerun with ``widgets`` and collect the page until the run (and any rerun it asks) is done."""
        state = ClientState(query_string=self.query, widget_states=WidgetStates(widgets=widgets),
                            page_script_hash=self.page_hash, page_name="" if self.page_hash else self.page_name)
        await self.ws.send(BackMsg(rerun_script=state).SerializeToString())
        page = Page()
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self.ws.recv())
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                page = Page()  # a new run (st.rerun) replaces the page
            elif kind == "navigation":
                self.page_hash = msg.navigation.page_script_hash or self.page_hash
            elif kind == "page_info_changed":
                self.query = msg.page_info_changed.query_string
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                page.add(msg.delta.new_element)
            elif kind == "script_finished" and msg.script_finished in DONE:
                return page

    async def fetch_images(self, page: Page) -> None:
        """GET every image of the page, as the browser does before it can show them."""
        for url in page.image_urls():
            r = await self.http.get(url)
            r.raise_for_status()

    async def join(self, code: str, name: str) -> Page:
        page = await self.open()
        return await self.rerun([
            WidgetState(id=page.widget("text_input", "quiz-code").id, string_value=code),
            WidgetState(id=page.widget("text_input", "quiz-name").id, string_value=name),
            WidgetState(id=page.widget("button", label="Start").id, trigger_value=True)])

    async def answer(self, page: Page, pos: int, choice: str, confidence: int) -> tuple[Page, float]:
        """Answer tile ``pos`` on ``page``; returns the feedback page and the seconds until it and its images
        were received."""
        t0 = time.perf_counter()
        fb = await self.rerun([
            WidgetState(id=page.widget("radio", f"quiz-answer-{pos}").id, string_value=choice),
            WidgetState(id=page.widget("slider", f"quiz-confidence-{pos}").id,
                        string_array_value=StringArray(data=[str(confidence)])),
            WidgetState(id=page.widget("button", label="Submit answer").id, trigger_value=True)])
        await self.fetch_images(fb)
        seconds = time.perf_counter() - t0
        if "Model P(tumour)" not in fb.texts():
            raise RuntimeError(f"no feedback after answering tile {pos + 1}: {fb.texts()}")
        return fb, seconds

    async def next(self, page: Page, pos: int) -> Page:
        nxt = await self.rerun([WidgetState(id=page.widget("button", f"quiz-next-{pos}").id, trigger_value=True)])
        await self.fetch_images(nxt)
        return nxt
