"""instrument() inside one of the SDK's child processes does nothing at all.

The SDK names its job processes ``job_proc`` and its inference process
``agents_inference_process`` (1.8) / ``inference_proc`` (1.2); multiprocessing sets the
name before the child imports the main module again. Here the current process wears
that name, as it would there, and instrument() must bind nothing, start no thread and
leave its target alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import threading

import pytest
from livekit.agents import worker as sdk_worker
from prometheus_client import CollectorRegistry

from livekit_agents_exporter import instrument
from livekit_agents_exporter.synthetic import synthetic_entrypoint

NAMES = ["job_proc", "agents_inference_process", "inference_proc"]


@pytest.mark.parametrize("name", NAMES)
def test_instrument_in_an_sdk_child_process_is_inert(name, monkeypatch, caplog):
    monkeypatch.setattr(multiprocessing.current_process(), "name", name)
    opts = sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint)
    before = (opts.load_fnc, opts.request_fnc, opts.entrypoint_fnc)
    threads = set(threading.enumerate())
    registry = CollectorRegistry()
    with socket.socket() as taken, caplog.at_level(logging.DEBUG, "livekit_agents_exporter"):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # the port is taken: a live exporter would raise ExporterStartError here
        exporter = instrument(opts, host="127.0.0.1", port=port)
        with_registry = instrument(opts, registry=registry)
    assert not exporter.active and exporter.url is None and exporter.server is None
    assert not with_registry.active and with_registry.registry is registry
    assert list(registry.collect()) == [], "the user's registry was touched"
    assert (opts.load_fnc, opts.request_fnc, opts.entrypoint_fnc) == before
    assert not hasattr(opts, "_livekit_agents_exporter")
    assert set(threading.enumerate()) == threads
    assert any("doing nothing" in r.getMessage() and r.levelno == logging.DEBUG
               for r in caplog.records), caplog.text
    exporter.close()  # harmless


def test_worker_process_names_are_not_mistaken_for_children():
    assert multiprocessing.current_process().name == "MainProcess"
    exporter = instrument(sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint),
                          host="127.0.0.1", port=0)
    try:
        assert exporter.active and exporter.url
    finally:
        exporter.close()


def test_instrument_while_the_forkserver_imports_the_main_module_is_inert(monkeypatch):
    """The forkserver is a plain ``MainProcess``: recognised by its ``main()`` on the stack."""
    import multiprocessing.forkserver as forkserver

    seen = {}

    def main(*args, **kwargs):  # stands where forkserver.main imports the main module
        seen["exporter"] = instrument(sdk_worker.WorkerOptions(entrypoint_fnc=synthetic_entrypoint),
                                      host="127.0.0.1", port=0)

    monkeypatch.setattr(forkserver, "main", main)
    forkserver.main()
    assert not seen["exporter"].active and seen["exporter"].url is None
