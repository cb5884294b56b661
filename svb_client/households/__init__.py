"""SVB's household file: read, validated (out of core, so a national file fits in memory),
and handed to the batch a part at a time.

- :mod:`~svb_client.households.rows`: reading the file in parts, and the checks of each row;
- :mod:`~svb_client.households.validate`: the checks that span rows (households, a BSN in two
  households) in a DuckDB database that spills to disk;
- :mod:`~svb_client.households.batch`: accepted households as columns.

A row that is wrong rejects its household with the line and field named; a household that is
wrong as a whole (mixed categories, too many members, a BSN also in another household) is
rejected with the reason. Nothing is dropped silently: every household in the file ends up
either accepted or rejected.
"""

from svb_client.households.batch import HouseholdBatch, IntArray
from svb_client.households.rows import COLUMNS, OPTIONAL_COLUMNS, check_readable, read_parts
from svb_client.households.validate import (
    MEMORY_LIMIT,
    ValidatedHouseholds,
    read_households,
    validate_households,
)

__all__ = [
    "COLUMNS",
    "MEMORY_LIMIT",
    "OPTIONAL_COLUMNS",
    "HouseholdBatch",
    "IntArray",
    "ValidatedHouseholds",
    "check_readable",
    "read_households",
    "read_parts",
    "validate_households",
]
