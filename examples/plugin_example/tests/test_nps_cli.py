"""``crm nps …`` run in-process, as users run it, on a named in-memory store."""

import json

import pytest


@pytest.fixture
def cli(crm_cli):
    # crmcore.testing runs `crm` in-process with this plugin alone, from its entry point, on
    # an in-memory store that every call shares
    return crm_cli("nps")


def ok_json(cli, *args):
    code, out, err = cli("--json", "--as", "ann", *args)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def surveyed(cli):
    """A customer with an open survey after a callback."""
    cid = ok_json(cli, "customer", "add", "--name", "Li Lei")["id"]
    ok_json(cli, "log", cid, "--kind", "callback", "--rep", "bo")
    return cid


def open_surveys(cli, cid):
    return ok_json(
        cli, "tasks", "due", "--customer", cid, "--kind", "nps_survey", "--within", "30d"
    )


def test_the_plugin_is_listed(cli):
    nps = next(p for p in ok_json(cli, "plugins") if p["name"] == "nps")
    assert nps["status"] == "ok" and nps["distribution"] == "crmcore-nps"
    assert "crm_interaction_logged" in nps["hooks"]


def test_answer_then_report(cli, surveyed):
    [task] = open_surveys(cli, surveyed)
    assert task["assignee"] == "bo"
    said = ok_json(cli, "nps", "answer", surveyed, "9", "--comment", "great", "--channel", "sms")
    assert (said["score"], said["category"], said["survey_task_id"]) == (9, "promoter", task["id"])
    assert open_surveys(cli, surveyed) == []
    report = ok_json(cli, "nps", "report", "--days", "30")
    assert report["windows"][0] == {
        "window": "last 30 days",
        "answers": 1,
        "promoters": 1,
        "passives": 0,
        "detractors": 0,
        "nps": 100.0,
    }
    assert (report["surveys_sent"], report["surveys_answered"]) == (1, 1)
    [line] = ok_json(cli, "customer", "show", surveyed)["summary"]
    assert line["label"] == "NPS" and line["text"].startswith("9 (promoter) on ")


def test_report_as_a_table_and_in_crm_report(cli, surveyed):
    assert cli("--as", "ann", "nps", "answer", surveyed, "4")[0] == 0
    code, out, _ = cli("nps", "report")
    assert code == 0 and "Net Promoter Score" in out and "-100.0" in out
    assert "surveys sent in the last 90 days: 1, answered: 1 (100%)" in out
    code, out, _ = cli("report")
    assert code == 0 and "Net Promoter Score" in out


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["11"], 2, "score: expected a whole number from 0 to 10, got 11"),
        (["ten"], 2, "score: expected a whole number from 0 to 10, got 'ten'"),
        (["9.5"], 2, "score: expected a whole number"),
        (["--", "-1"], 2, "score: expected a whole number from 0 to 10, got '-1'"),
        (["9", "--channel", "pigeon"], 2, "Invalid value for '--channel'"),
        ([], 2, "Missing argument 'SCORE'"),
    ],
)
def test_a_bad_answer_is_one_line_exit_2_and_writes_nothing(cli, surveyed, args, code, fragment):
    got, out, err = cli("--as", "ann", "nps", "answer", surveyed, *args)
    assert got == code and out == ""
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and fragment in line
    assert len(open_surveys(cli, surveyed)) == 1
    assert ok_json(cli, "nps", "report")["windows"][2]["answers"] == 0
    assert [i["kind"] for i in ok_json(cli, "interaction", "list", surveyed)] == ["callback"]


def test_an_unknown_customer_is_exit_3(cli):
    code, _out, err = cli("--as", "ann", "nps", "answer", "cus_missing", "9")
    [line] = err.strip().splitlines()
    assert code == 3 and line.startswith("error: ") and "'cus_missing'" in line
    assert ok_json(cli, "nps", "report")["windows"][2]["answers"] == 0


def test_report_days_must_be_positive(cli):
    code, _out, err = cli("nps", "report", "--days", "0")
    assert code == 2 and "Invalid value for '--days'" in err
