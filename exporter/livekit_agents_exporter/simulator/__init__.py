"""A protocol-faithful LiveKit dispatch simulator, for the demo and the tests.

LiveKit's server cannot run here, and the exporter's promise is about what crosses
the worker's connection, so the simulator speaks the real worker protocol and
follows the open-source server's dispatch rules (``dispatch.py``).
"""

from .server import DispatchResult, OfferAnswer, Simulator, SimulatorConfig
from .traffic import RateProfile, TrafficGenerator
from .truth import OUTCOMES, Truth, WorkerTruth

__all__ = [
    "OUTCOMES",
    "DispatchResult",
    "OfferAnswer",
    "RateProfile",
    "Simulator",
    "SimulatorConfig",
    "TrafficGenerator",
    "Truth",
    "WorkerTruth",
]
