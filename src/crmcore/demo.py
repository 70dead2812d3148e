"""``crm demo``: a synthetic population and D days of activity on the embedded store.

The core drives what any stack has (customers arrive, buy, ask, complain; reps work their due
tasks; the worker sweeps) and every plugin acts out its own workflow through ``crm_simulate``.
"""

from __future__ import annotations

import random
import tempfile
import tomllib
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click

from crmcore.app import CRM, open_crm
from crmcore.clock import ManualClock
from crmcore.config import Config, profile_text
from crmcore.entities import Channel, Gender, TaskStatus
from crmcore.i18n import store_gettext
from crmcore.markers import N_
from crmcore.outputs import configured_paths, private_folder, write_output
from crmcore.render import render_terminal
from crmcore.report import build_report
from crmcore.security import ActorSettings

if TYPE_CHECKING:
    from crmcore.cli.context import CliState

FAMILY = [
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Lin",
    "Luo",
    "Gao",
    "Smith",
    "Garcia",
    "Khan",
    "Müller",
    "Rossi",
    "Silva",
    "Kim",
    "Nguyen",
    "Ivanova",
    "Okafor",
]
GIVEN = [
    "Wei",
    "Fang",
    "Min",
    "Jing",
    "Lei",
    "Yan",
    "Jun",
    "Hui",
    "Ling",
    "Tao",
    "Xin",
    "Bo",
    "Mei",
    "Qiang",
    "Na",
    "Anna",
    "James",
    "Maria",
    "Omar",
    "Sofia",
    "Lucas",
    "Aiko",
    "Priya",
    "Noah",
    "Elena",
    "Chidi",
    "Hana",
    "Mateo",
    "Yuki",
    "Leila",
]
REGIONS = ["North", "South", "East", "West", "Central"]
OCCUPATIONS = [
    "teacher",
    "engineer",
    "nurse",
    "shop owner",
    "student",
    "retired",
    "driver",
    "designer",
    "accountant",
    "chef",
]
#: What the reps write about each contact (in the store's language: ``store_gettext``).
SUMMARIES = {
    "consultation": N_("asked about plans and prices"),
    "purchase": N_("bought"),
    "visit": N_("came in"),
    "inquiry": N_("asked a question"),
    "feedback": N_("praised the service"),
    "complaint": N_("unhappy with the last order"),
    "treatment": N_("had a treatment"),
    "business": N_("a service was set up"),
    "billing": N_("asked about the bill"),
    "event": N_("came to a member event"),
}
# How often each kind of contact happens, per industry (DOMAIN §8).
ACTIVITY = {
    "retail": {
        "consultation": 4,
        "purchase": 3,
        "visit": 1,
        "inquiry": 2,
        "feedback": 1,
        "complaint": 0.6,
    },
    "telecom": {
        "consultation": 3,
        "business": 2,
        "billing": 2,
        "inquiry": 2,
        "purchase": 1,
        "feedback": 1,
        "complaint": 0.8,
    },
    "hospital": {
        "consultation": 3,
        "treatment": 2,
        "visit": 2,
        "purchase": 1,
        "event": 0.5,
        "feedback": 1,
        "complaint": 0.4,
    },
}
STAFF = {
    "ann": "north",
    "bo": "north",
    "chen": "south",
    "dana": "south",
    "eli": "east",
    "fei": "east",
}
REPS = list(STAFF)


@attrs.frozen
class DemoResult:
    directory: Path
    config_path: Path
    customers: int
    interactions: int
    tasks_done: int


def _person(rng: random.Random, n: int) -> dict[str, Any]:
    family, given = rng.choice(FAMILY), rng.choice(GIVEN)
    birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    return {
        "name": f"{given} {family}",
        "phone": f"+86 13{rng.randrange(10)} {rng.randrange(10**8):08d}",
        "email": f"{given}.{family}{n}@example.com".lower().replace("ü", "u"),
        "gender": rng.choice([Gender.FEMALE, Gender.MALE]),
        "birth_date": birth,
        "region": rng.choice(REGIONS),
        "occupation": rng.choice(OCCUPATIONS),
        "owner": rng.choice(REPS),
        "source": rng.choice(["form", "online", "survey", "walk-in", "referral"]),
    }


def _day_activity(
    crm: CRM,
    rng: random.Random,
    day_start: datetime,
    ids: list[str],
    engagement: dict[str, float],
    profile: str,
) -> int:
    logged = 0
    weights = ACTIVITY.get(profile, ACTIVITY["retail"])
    said = store_gettext(crm)
    kinds = [k for k in weights if k in crm.interaction_kinds]
    for customer_id in ids:
        if rng.random() > engagement[customer_id]:
            continue
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        at = day_start + timedelta(hours=rng.uniform(1, 9))
        # the customer's own rep handles the contact (as permissions would require)
        rep = crm.customers.get(customer_id).owner or rng.choice(REPS)
        fields: dict[str, object] = {
            "summary": said(SUMMARIES[kind]),
            "channel": rng.choice(list(Channel)[:4]),
            "rep": rep,
        }
        if kind in ("purchase", "treatment"):
            fields["amount"] = round(rng.lognormvariate(5 if kind == "purchase" else 7, 0.8), 2)
        if kind == "feedback":
            fields["satisfaction"] = rng.choice([4, 5, 5])
        crm.interactions.log(
            actor=str(fields["rep"]), customer_id=customer_id, kind=kind, occurred_at=at, **fields
        )
        logged += 1
    return logged


def _work_due_tasks(crm: CRM, rng: random.Random, now: datetime) -> int:
    done = 0
    outcomes = ["reached", "reached", store_gettext(crm)(N_("left message"))]
    for task in crm.tasks.due(now=now, limit=500):
        if rng.random() < 0.85:  # reps get through most of their queue each day
            owner = crm.customers.get_any(task.customer_id).owner if task.customer_id else None
            who = task.assignee or owner or rng.choice(REPS)
            if crm.config.security.enforce and crm.actor(who) is None:
                who = "demo-staff"  # someone outside the directory: the simulation stands in
            crm.tasks.complete(task.id, actor=who, outcome=rng.choice(outcomes))
            done += 1
    return done


def _with_demo_staff(config: Config) -> Config:
    """Permissions are enforced in this profile: give the demo's reps and leads their roles."""
    actors = dict(config.security.actors)
    for name, team in STAFF.items():
        actors[name] = ActorSettings(role="agent", team=team, department="service")
    actors["lead"] = ActorSettings(role="shift_lead", team="north", department="service")
    actors["manager"] = ActorSettings(role="manager", department="service")
    system = [*config.security.system_actors, "demo-*"]  # the simulation's own staff
    return attrs.evolve(
        config, security=attrs.evolve(config.security, actors=actors, system_actors=system)
    )


def demo_overlay(profile: str) -> dict[str, Any]:
    """What the demo adds to a profile's plugin sections so that its rules have people to act
    on (``profiles/demo/<profile>.toml``: the rota, department managers, team leads, filled
    with the demo's staff); {} for a profile without one."""
    path = resources.files("crmcore") / "profiles" / "demo" / f"{profile}.toml"
    if not path.is_file():
        return {}
    return tomllib.loads(path.read_text("utf-8"))


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it: tables merged key by key, anything else
    (values, arrays) replaced."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def demo_config(config_path: Path, profile: str) -> Config:
    """The configuration the demo runs with: the profile as written to ``config_path``, on
    the embedded store beside it, with the demo's staff in the directory (where permissions
    are enforced) and its overlay (``demo_overlay``) over the plugin sections."""
    config = Config.load(config_path, environ={})
    if config.storage.backend != "tinydb":
        config = attrs.evolve(config, storage=attrs.evolve(config.storage, backend="tinydb"))
    config = attrs.evolve(
        config, storage=attrs.evolve(config.storage, location=str(config_path.parent / "crm-data"))
    )
    if config.security.enforce:
        config = _with_demo_staff(config)
    return attrs.evolve(config, sections=merged(config.sections, demo_overlay(profile)))


def run_demo(
    ctx: click.Context, *, profile: str, customers: int, days: int, directory: str | None, seed: int
) -> DemoResult:
    """Create the store, simulate, report, and say where the data is."""
    from crmcore.cli.context import progress, state

    st: CliState = state(ctx)
    text = profile_text(profile)
    if directory:
        private_folder(directory, protected=configured_paths(st.config_path), what="--dir")
        folder = Path(directory)
    else:
        folder = Path(tempfile.mkdtemp(prefix="crm-demo-"))
    config_path = folder / "crm.toml"
    write_output(config_path, text, what="--dir")
    config = demo_config(config_path, profile)
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=days), time(0, 0), tzinfo=UTC)
    clock = ManualClock(start + timedelta(hours=8))
    interactions = tasks_done = 0
    with open_crm(config, clock=clock) as crm:
        ids = []
        for n in progress(ctx, range(customers), total=customers, description="customers"):
            ids.append(crm.customers.add(actor="demo-import", **_person(rng, n)).id)
        engagement = {cid: rng.betavariate(1.2, 12) for cid in ids}
        for day in progress(ctx, range(days), total=days, description=f"{days} days"):
            day_start = start + timedelta(days=day, hours=8)
            clock.set(day_start)
            interactions += _day_activity(crm, rng, day_start, ids, engagement, profile)
            clock.set(day_start + timedelta(hours=10))
            tasks_done += _work_due_tasks(crm, rng, clock.now())
            crm.plugins.crm_simulate(crm=crm, now=clock.now(), rng=rng, actor="demo-staff")
            crm.tick(worker="demo")
        if not st.as_json:
            render_terminal(st.console, build_report(crm))
        store = crm.store.describe()
        # the summary counts what the store (and so the report) holds: plugins' simulations
        # add customers (referrals), interactions and done tasks of their own
        customers = crm.customers.count()
        interactions = crm.interactions.count()
        tasks_done = crm.tasks.count({"status": TaskStatus.DONE.value})
        clock.set(datetime.now(UTC))
        next_steps = [
            str(line) for line in crm.plugins.crm_demo_ready(crm=crm, config_path=str(config_path))
        ]
    result = DemoResult(folder, config_path, customers, interactions, tasks_done)
    message = (
        f"demo finished: {customers} customers, {interactions} interactions, "
        f"{tasks_done} tasks done over {days} days ({profile} profile).\n"
        f"The data is in {folder} ({store}). Keep exploring:\n"
        f"  crm --config {config_path} customer list\n"
        f"  crm --config {config_path} tasks due\n"
        f"  crm --config {config_path} report --html report.html"
    )
    if next_steps:
        message += "\n" + "\n".join(next_steps)
    if st.as_json:
        from crmcore.cli.context import print_json

        print_json(
            ctx,
            {
                "directory": str(folder),
                "config": str(config_path),
                "customers": customers,
                "interactions": interactions,
                "tasks_done": tasks_done,
                "profile": profile,
                "next_steps": next_steps,
            },
        )
    else:
        st.console.print(message)
    return result
