"""ScaleLab's simulation core: document model, file format, engine, analysis, CLI.

Pure Python + numpy + networkx; never imports Qt.
"""
__version__ = "0.1.0"
