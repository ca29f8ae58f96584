"""A Jupyter server extension for the lessons' servers (``./dev lab``, ``backpropviz lab``): the
kernel websockets send each message at once (TCP_NODELAY).

Without it a step's graph update waits ~40 ms about every other click in JupyterLab and Notebook
7: the kernel's "busy" status goes out first, and Nagle's algorithm holds the next small message
until the browser acknowledges it, which the browser delays. Enable it with
``--ServerApp.jpserver_extensions='{"backpropviz.serverext": true}'``.
"""
from __future__ import annotations


def _jupyter_server_extension_points():
    return [{"module": "backpropviz.serverext"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
    if getattr(KernelWebsocketHandler, "_bpv_nodelay", False):
        return
    opened = KernelWebsocketHandler.open

    async def open(self, *args, **kwargs):      # noqa: A001 — tornado's name for it
        self.set_nodelay(True)
        return await opened(self, *args, **kwargs)

    KernelWebsocketHandler.open = open
    KernelWebsocketHandler._bpv_nodelay = True
    serverapp.log.info("backpropviz: kernel websockets send without delay (TCP_NODELAY)")
