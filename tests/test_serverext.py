"""The lessons' Jupyter server extension (backpropviz/serverext.py)."""


def test_the_server_extension_sends_kernel_messages_without_delay():
    """backpropviz.serverext (./dev lab, backpropviz lab, the browser tests' servers): a kernel
    websocket sets TCP_NODELAY when it opens, once however often the extension loads."""
    import asyncio
    import logging
    from types import SimpleNamespace

    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler

    from backpropviz import serverext
    calls = []

    async def opened(self, *args, **kwargs):
        calls.append("open")

    original = KernelWebsocketHandler.open
    try:
        KernelWebsocketHandler.open = opened
        if hasattr(KernelWebsocketHandler, "_bpv_nodelay"):
            del KernelWebsocketHandler._bpv_nodelay
        app = SimpleNamespace(log=logging.getLogger("test"))
        serverext._load_jupyter_server_extension(app)
        serverext._load_jupyter_server_extension(app)          # loaded twice: patched once
        handler = SimpleNamespace(set_nodelay=lambda on: calls.append(("nodelay", on)))
        asyncio.run(KernelWebsocketHandler.open(handler, "kernel-id"))
        assert calls == [("nodelay", True), "open"]
    finally:
        KernelWebsocketHandler.open = original
        if hasattr(KernelWebsocketHandler, "_bpv_nodelay"):
            del KernelWebsocketHandler._bpv_nodelay
