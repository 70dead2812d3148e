"""docs/plugins.md shows the NPS example plugin's files verbatim and completely.

Each block marked ``<!-- file: PATH -->`` must equal that file; every source, test and project
file of examples/plugin_example must be shown once. Edit the example, then paste it into the
guide (or the other way round) — this test says which file drifted.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "plugin_example"
BLOCK = re.compile(
    r"<!-- file: (?P<path>\S+) -->\n```[a-z]*\n(?P<code>.*?)^```$", re.DOTALL | re.MULTILINE
)


def shown() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for match in BLOCK.finditer(GUIDE.read_text(encoding="utf-8")):
        assert match["path"] not in blocks, f"{match['path']} is shown twice"
        blocks[match["path"]] = match["code"]
    return blocks


def example_files() -> list[str]:
    files = [
        EXAMPLE / "pyproject.toml",
        *sorted((EXAMPLE / "src").rglob("*.py")),
        *sorted((EXAMPLE / "tests").rglob("*.py")),
    ]
    return [p.relative_to(ROOT).as_posix() for p in files]


def test_every_file_of_the_example_is_shown():
    assert sorted(shown()) == sorted(example_files())


@pytest.mark.parametrize("path", example_files())
def test_the_guide_shows_the_real_code(path):
    assert shown().get(path) == (ROOT / path).read_text(encoding="utf-8"), (
        f"docs/plugins.md and {path} differ"
    )


def test_the_guide_links_the_hook_reference_and_the_examples():
    text = GUIDE.read_text(encoding="utf-8")
    for target in ("hooks.md", "../examples/plugin_example", "../examples/web_mount"):
        assert f"]({target}" in text
    for hook in re.findall(
        r"^### `(crm_\w+)\(", (ROOT / "docs" / "hooks.md").read_text(encoding="utf-8"), re.MULTILINE
    ):
        assert f"`{hook}`" in text, f"{hook} is not mentioned in docs/plugins.md"
