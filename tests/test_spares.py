"""Which processors an agent keeps a spare worker for: at most ``--spares``, stopped ones first."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from pyfi.agent.agent import Agent
from pyfi.agent.deploy import Deployed, source_key
from pyfi.config import resolve
from pyfi.enums import ProcessorStatus

RUNNING, STOPPED, REMOVED = ProcessorStatus.RUNNING, ProcessorStatus.STOPPED, ProcessorStatus.REMOVED


def agent_with(tmp_path: Path, spares: int, processors: list[SimpleNamespace], deployed: set[str]) -> Agent:
    agent = Agent(resolve({}, {"PYFI_HOME": str(tmp_path)}), name="n1", workdir=tmp_path / "agent", spares=spares)
    for p in processors:
        if p.id in deployed:
            checkout = tmp_path / "repos" / p.id
            agent.deployer.deployed[p.id] = Deployed(source_key(p), "sha", checkout, checkout / "venv/bin/python", 0.0)
    return agent


def processors(**statuses: ProcessorStatus) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=f"id-{name}", name=name, requested_status=status, gitrepo=f"/repos/{name}", branch=None,
                            commit=None, requirements=None, module="sample") for name, status in statuses.items()]


def test_spares_go_to_stopped_processors_first_and_stop_at_the_cap(tmp_path: Path) -> None:
    wanted = processors(b=RUNNING, a=RUNNING, e=STOPPED, c=STOPPED, d=RUNNING, gone=REMOVED, new=RUNNING)
    ids = {p.id for p in wanted} - {"id-new"}  # "new" is not deployed yet: nothing to boot a spare from
    agent = agent_with(tmp_path, 3, wanted, ids)
    assert list(agent.spare_keys(wanted)) == ["id-c", "id-e", "id-a"]
    assert agent.spare_keys(wanted)["id-c"] == ("c", str(tmp_path / "repos/id-c/venv/bin/python"),
                                                str(tmp_path / "repos/id-c"))


def test_a_spare_that_died_by_itself_gives_its_place_to_the_next(tmp_path: Path) -> None:
    wanted = processors(a=RUNNING, b=RUNNING, c=STOPPED)
    agent = agent_with(tmp_path, 2, wanted, {p.id for p in wanted})
    agent.bad_spares.add(agent.spare_keys(wanted)["id-c"])
    assert list(agent.spare_keys(wanted)) == ["id-a", "id-b"]


def test_no_spare_from_code_of_a_processors_former_settings(tmp_path: Path) -> None:
    wanted = processors(a=STOPPED, b=STOPPED)
    agent = agent_with(tmp_path, 2, wanted, {p.id for p in wanted})
    wanted[0].gitrepo = "/repos/elsewhere"  # its new code is not deployed yet
    assert list(agent.spare_keys(wanted)) == ["id-b"]


def test_no_spares_at_all_with_zero(tmp_path: Path) -> None:
    wanted = processors(a=RUNNING, b=STOPPED)
    assert agent_with(tmp_path, 0, wanted, {p.id for p in wanted}).spare_keys(wanted) == {}
