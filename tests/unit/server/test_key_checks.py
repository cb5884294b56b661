"""UWV's cut-and-choose key check (issue 14), in process: accept, catch, abort, persist.

Small: the N=8192 strict set and K=3 (a test, not a setting). The challenge is forced through
the ``choose`` seam where a test needs a known index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.audit.entry import KeyCheckOutcome
from shared.errors import InputError
from shared.he.keysets import StrictKeyFamily
from shared.he.params import STRICT_BFV_N8192 as PARAMS
from uwv_server.contexts import ContextRegistry, KeysNotChecked
from uwv_server.key_checks import KeyCheckFailed, KeyCheckRefused, UnknownProposal

K = 3
CALLER = "SVB (OIN 00000001001234567000)"


class Log:
    def __init__(self) -> None:
        self.outcomes: list[tuple[str, KeyCheckOutcome]] = []

    def record_key_check(self, *, caller: str, outcome: KeyCheckOutcome, **_: Any) -> int:
        self.outcomes.append((caller, outcome))
        return len(self.outcomes) - 1


@pytest.fixture(scope="module")
def family() -> StrictKeyFamily:
    return StrictKeyFamily(PARAMS, bytes(range(32)))


@pytest.fixture(scope="module")
def contexts(family: StrictKeyFamily) -> list[bytes]:
    return family.public_contexts(K)


def registry(path: Path, chosen: int = 1) -> ContextRegistry:
    return ContextRegistry(path, strict_key_sets=K, key_check_choose=lambda k: chosen)


def test_honest_sets_are_accepted_and_logged(
    tmp_path: Path, family: StrictKeyFamily, contexts: list[bytes]
) -> None:
    reg, log = registry(tmp_path), Log()
    challenge = reg.key_check.propose(CALLER, PARAMS.name, contexts, log)
    assert challenge.chosen == 1 and challenge.key_sets == K
    # an audit label: no run of nine digits (the log refuses what could be a BSN)
    assert challenge.proposal_id.isalpha()
    digest = reg.key_check.open(CALLER, challenge.proposal_id, family.openings(K, 1), log)
    assert reg.known(digest)
    assert log.outcomes == [(CALLER, "accepted")]
    # the same commitment again: the same challenge, already accepted (no resampling)
    again = reg.key_check.propose(CALLER, PARAMS.name, contexts, log)
    assert (again.proposal_id, again.chosen, again.accepted) == (challenge.proposal_id, 1, True)
    # and the accepted bytes may be uploaded plainly (e.g. by a sealed request file)
    assert reg.upload(PARAMS.name, contexts[1], CALLER)[1] is True
    with pytest.raises(KeysNotChecked, match="key check"):
        reg.upload(PARAMS.name, contexts[0], CALLER)
    reg.close()


def test_a_seed_that_does_not_regenerate_its_upload_is_a_cheat(
    tmp_path: Path, family: StrictKeyFamily, contexts: list[bytes]
) -> None:
    reg, log = registry(tmp_path, chosen=0), Log()
    challenge = reg.key_check.propose(CALLER, PARAMS.name, contexts, log)
    seeds = family.openings(K, 0)
    seeds[2] = bytes(32)  # not the seed set 2 was made from
    with pytest.raises(KeyCheckFailed, match=r"cheat detected.*\[2\]"):
        reg.key_check.open(CALLER, challenge.proposal_id, seeds, log)
    assert log.outcomes == [(CALLER, "cheat-detected")]
    assert not reg.known(challenge.digests[0])
    assert reg.key_check.failures(CALLER) == 1
    with pytest.raises(UnknownProposal):
        reg.key_check.open(CALLER, challenge.proposal_id, family.openings(K, 0), log)
    reg.close()


def test_second_proposal_while_one_is_open_is_a_logged_failure(
    tmp_path: Path, family: StrictKeyFamily, contexts: list[bytes]
) -> None:
    reg, log = registry(tmp_path), Log()
    reg.key_check.propose(CALLER, PARAMS.name, contexts, log)
    other = [*contexts[1:], StrictKeyFamily(PARAMS, bytes(32)).key_set(0).public_bytes()]
    with pytest.raises(KeyCheckRefused, match="recorded as failed"):
        reg.key_check.propose(CALLER, PARAMS.name, other, log)
    assert log.outcomes == [(CALLER, "abandoned")]
    # another caller is not affected by this one's open challenge
    reg.key_check.propose("someone else", PARAMS.name, other, log)
    reg.close()


def test_failures_are_capped_and_survive_a_restart(
    tmp_path: Path, family: StrictKeyFamily, contexts: list[bytes]
) -> None:
    reg, log = registry(tmp_path), Log()
    variants = [list(reversed(contexts)), contexts, [contexts[1], contexts[0], contexts[2]]]
    challenge = reg.key_check.propose(CALLER, PARAMS.name, variants[0], log)
    reg.close()
    reg = registry(tmp_path)  # a restart keeps the open challenge
    with pytest.raises(KeyCheckRefused):
        reg.key_check.propose(CALLER, PARAMS.name, variants[1], log)
    reg.key_check.propose(CALLER, PARAMS.name, variants[1], log)
    with pytest.raises(KeyCheckRefused):
        reg.key_check.propose(CALLER, PARAMS.name, variants[2], log)
    reg.key_check.propose(CALLER, PARAMS.name, variants[2], log)
    with pytest.raises(KeyCheckRefused):
        reg.key_check.propose(CALLER, PARAMS.name, variants[0], log)
    assert reg.key_check.failures(CALLER) == 3
    with pytest.raises(KeyCheckRefused, match="3 failed strict key checks"):
        reg.key_check.propose(CALLER, PARAMS.name, variants[0][::-1], log)
    assert challenge.proposal_id
    reg.close()


def test_malformed_proposals_and_openings_are_refused(
    tmp_path: Path, family: StrictKeyFamily, contexts: list[bytes]
) -> None:
    reg, log = registry(tmp_path), Log()
    with pytest.raises(InputError, match="exactly 3"):
        reg.key_check.propose(CALLER, PARAMS.name, contexts[:2], log)
    with pytest.raises(InputError, match="all differ"):
        reg.key_check.propose(CALLER, PARAMS.name, [contexts[0]] * 3, log)
    with pytest.raises(InputError, match="not a strict-mode set"):
        reg.key_check.propose(CALLER, "bfv-masked-n16384", contexts, log)
    challenge = reg.key_check.propose(CALLER, PARAMS.name, contexts, log)
    seeds = family.openings(K, 1)
    with pytest.raises(InputError, match="stays closed"):
        reg.key_check.open(CALLER, challenge.proposal_id, [seeds[0]] * 3, log)
    with pytest.raises(UnknownProposal):
        reg.key_check.open("someone else", challenge.proposal_id, seeds, log)
    assert log.outcomes == []  # malformed messages are refused, the challenge stays open
    reg.key_check.open(CALLER, challenge.proposal_id, seeds, log)
    reg.close()
