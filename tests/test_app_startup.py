"""The app's start-up helpers: the background model load, the kept Keras session, the frontend preload, the
server's socket options."""
from __future__ import annotations

import asyncio
import socket

import pytest

from app.runtime import server_socket
from model_training.bundle.files import BundleError


def test_a_failed_load_is_reported_and_tried_again(tmp_path):
    from app.runtime import model_loader

    bundle = str(tmp_path / "no-such-bundle")
    first = model_loader.start(bundle)
    with pytest.raises(BundleError, match="not a PathReview model bundle"):
        first.result(timeout=120)
    second = model_loader.start(bundle)
    assert second is not first  # the next request loads again, as a fixed bundle should be picked up
    with pytest.raises(BundleError):
        second.result(timeout=120)


def test_streamlit_no_longer_clears_the_keras_session():
    from streamlit.runtime.scriptrunner import script_runner

    from app.runtime import keras_session

    keras_session.keep()
    keras_session.keep()  # idempotent
    assert script_runner._clean_problem_modules is keras_session._clean_up_except_keras


def test_every_preloaded_frontend_module_is_in_the_installed_streamlit():
    from app.runtime import frontend_preload

    files = frontend_preload.module_files()
    missing = [m for m in frontend_preload.MODULES if not any(f.startswith(f"{m}.") for f in files)]
    assert not missing, f"Streamlit's frontend no longer has {missing}: update MODULES"



@pytest.mark.skipif(not server_socket.FDS.is_dir(), reason="finds the listening socket through /proc (Linux)")
def test_the_server_start_turns_nagle_off_for_every_connection(tmp_path, monkeypatch):
    """As uvicorn serves the app: asyncio accepts on a socket bound as Streamlit 1.67 binds it. The server
    start then opens the review store in the background, without any page view."""
    from app import main, store
    from app.runtime import model_loader, server_start, state

    db = tmp_path / "reviews.db"
    monkeypatch.setenv("PATHREVIEW_DB_URL", f"sqlite:///{db}")
    listener = socket.socket(family=socket.AF_INET)  # protocol 0, as Streamlit's _bind_socket makes it
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)

    async def serve() -> tuple[int, int]:
        accepted: asyncio.Queue = asyncio.Queue()

        async def handle(reader, writer):
            await accepted.put(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        async def next_connection() -> int:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            value = await asyncio.wait_for(accepted.get(), 10)
            writer.close()
            return value

        server = await asyncio.start_server(handle, sock=listener)
        async with server:
            before = await next_connection()
            async with main.preload(None):  # the app's server start
                after = await next_connection()
        return before, after

    try:
        before, after = asyncio.run(serve())
    finally:
        listener.close()
    # asyncio turns Nagle off only on IPPROTO_TCP sockets: without the app's fix each kept-alive response
    # waits for the browser's delayed acknowledgement (40 ms)
    assert before == 0
    assert after != 0
    server_start.join(120)
    assert db.exists()  # created and migrated by the server start itself
    assert store.open_store().ok
    # the model load it began: let it finish, or ONNX Runtime's threads abort the interpreter's exit
    model_loader.start(str(state.bundle_path())).result(120)
