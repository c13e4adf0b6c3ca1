"""The ``demo`` command: a simulated LiveKit server, real workers, saturation on demand."""
