"""The client pipeline: one batch runner for the masked, strict and compute-to-data modes.

- :mod:`.run`       :func:`run_screen` and :class:`ScreenJob`: plan, journal, exchange, write
- :mod:`.method`    the seam between the pipeline and a mode
- :mod:`.he`        masked and strict (thresholds, encryption, decisions, chunks in flight)
- :mod:`.enclave`   compute-to-data (runs, statement verification, replay packages)
- :mod:`.outreach`  the one fsynced writer of result files
- :mod:`.summary`   the summary every mode prints, and the progress line
"""

from svb_client.pipeline.run import DEFAULT_RULE, MODES, ScreenJob, run_screen
from svb_client.pipeline.summary import Summary

__all__ = ["DEFAULT_RULE", "MODES", "ScreenJob", "Summary", "run_screen"]
