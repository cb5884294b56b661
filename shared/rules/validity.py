"""Is a rule in force for a reference period? Checked before anything is sent or created.

Every dated value of a rule (norms, caps, exemptions) is in force from its ``valid_from`` until
the next version's ``valid_from``; the newest until the end of its half year (see
:func:`shared.rules.model.half_year_end`). A period whose last day falls outside that range
for any definition the rule uses, or before the rule's own ``valid_from``, is refused with a
message that names the period and the newest value with its date: the screening never decides
on a stale norm.
"""

from __future__ import annotations

from shared.models import Period
from shared.rules._common import not_in_force, reference_date
from shared.rules.check import CheckedRule
from shared.rules.errors import NoNormInForce


def check_period(checked: CheckedRule, period: Period) -> None:
    """Raise :class:`NoNormInForce` unless every definition the rule uses has a published value
    in force on the period's reference date (its last day)."""
    on = reference_date(period)
    rule = checked.rule
    if rule.valid_from is not None and on < rule.valid_from:
        raise NoNormInForce(
            f"period {period} ends on {on.isoformat()}, before rule {rule.id!r} is valid "
            f"(valid_from {rule.valid_from.isoformat()})",
            expected=f"a period ending on or after {rule.valid_from.isoformat()}",
        )
    for name in checked.used_definitions:
        d = rule.definition(name)
        assert d is not None
        if d.value_on(on) is None:
            raise not_in_force(d, on, str(period))
