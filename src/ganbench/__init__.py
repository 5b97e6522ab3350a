"""ganbench: a benchmark harness for GANs on handwritten-digit data."""

__version__ = "0.1.0"
