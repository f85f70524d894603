"""The JSON Schemas document the same formats the parsers accept."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reprolock import api, resources
from reprolock.errors import InputError
from reprolock.spec import parse_spec

ROOT = Path(__file__).parent.parent


def _schema(*parts: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "schemas" / Path(*parts)).read_text())
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def _valid(schema: dict[str, Any], data: object) -> bool:
    return bool(jsonschema.Draft202012Validator(schema).is_valid(data))


def test_bundled_examples_and_starters_validate() -> None:
    schema = _schema("reprolock.schema.json")
    texts = [
        (ROOT / "examples" / "train" / "reprolock.toml").read_text(),
        resources.starter("cpu.toml"),
        resources.starter("gpu.toml"),
    ]
    for text in texts:
        jsonschema.validate(tomllib.loads(text), schema)


BASE = '[environment]\npython = "3.11"\n'
BAD_SPECS = [
    ("[environment]\npython = 3.11\n", "wrong type"),
    (BASE + 'platforms = "linux/amd64"\n', "platforms not an array"),
    (BASE + 'platforms = ["linux/mips"]\n', "unknown platform"),
    (BASE + "platforms = []\n", "no platform"),
    (BASE + 'nme = "x"\n', "unknown key"),
    ('[enviroment]\npython = "3.11"\n', "unknown section"),
    (BASE + '[gpu]\ndriver = "-535.104.05"\n', "negative driver"),
    (BASE + '[gpu]\ndriver = "latest"\n', "non-numeric driver"),
    (BASE + "[gpu]\ndriver = 535\n", "driver as number"),
    (BASE + '[gpu]\ncuda = "=>12.1"\n', "invalid specifier"),
    (BASE + '[gpu]\ncompat = "loose"\n', "unknown compat policy"),
    (BASE + "[python]\nrequirements = []\n", "empty requirements"),
    (BASE + '[python]\nrequirements = [""]\n', "empty requirement"),
    (BASE + '[python]\nrequirements = ["x"]\nvenv = "venv"\n', "relative venv"),
    (BASE + '[python]\nrequirements = ["x"]\nprerelease = "sometimes"\n', "prerelease policy"),
    (BASE + '[python]\nrequirements = ["x"]\n[[python.index]]\nname = "a"\n', "index without url"),
    (BASE + '[apt]\npackages = ["Git"]\n', "bad deb name"),
    (BASE + '[apt]\nsnapshot = "2025-05-20"\n', "bad snapshot"),
    (BASE + '[image]\nuser = "root"\n', "root user"),
    (BASE + "[image]\nexpose = [70000]\n", "bad port"),
    (BASE + '[image]\ncmd = "python app.py"\n', "shell-form cmd"),
    (BASE + '[image]\nhealthcheck = { interval = "30s" }\n', "healthcheck without cmd"),
    (BASE + '[image]\nhealthcheck = { cmd = ["true"], interval = "soon" }\n', "bad duration"),
    (
        BASE + '[base]\nref = "nvidia/cuda:12.4.1-runtime-ubuntu22.04"\nimage = "nvidia/cuda"\n',
        "ref with image",
    ),
    (BASE + '[base]\nflavor = "tiny"\n', "unknown flavor"),
    (BASE + '[registry]\ninsecure = "x"\n', "insecure not an array"),
    # Values that would write a new Dockerfile instruction (issue 14).
    (BASE + '[image]\nworkdir = "/app\\nRUN curl evil"\n', "newline in workdir"),
    (BASE + '[image]\nworkdir = "/app dir"\n', "space in workdir"),
    (BASE + '[image]\nuser = "app\\nRUN id"\n', "newline in user"),
    (BASE + '[image]\nuser = "00"\n', "uid 0 written 00"),
    (BASE + '[image.env]\n"A\\nRUN x" = "1"\n', "newline in an env name"),
    (BASE + '[image.env]\nA = "1\\nRUN x"\n', "newline in an env value"),
    (BASE + '[image.labels]\n"a b" = "1"\n', "space in a label key"),
    (BASE + '[image.labels]\na = "x\\ry"\n', "CR in a label value"),
    (BASE + '[image]\ncopy = [["src\\nRUN x", "/app"]]\n', "newline in a copy source"),
    (BASE + '[image]\ncopy = [["-src", "/app"]]\n', "copy source like a flag"),
    (BASE + '[image]\ncopy = [["src", "/app $HOME"]]\n', "space in a copy destination"),
    (BASE + '[image]\nexpose = ["80\\nRUN x"]\n', "newline in a port"),
    (BASE + '[python]\nrequirements = ["x"]\nvenv = "/opt/v env"\n', "space in venv"),
    (BASE + '[python]\nrequirements-files = ["/root/.netrc"]\n', "absolute requirements file"),
    (BASE + '[apt]\nkeyrings = ["/etc/key.gpg"]\n', "absolute keyring"),
    (BASE + '[apt]\npackages = ["git=1.0 x"]\n', "bad apt version"),
    (BASE + '[registry]\ninsecure = ["http://reg:5000"]\n', "insecure as a URL"),
    (BASE + '[registry]\nmirrors = { "docker.io" = "mirror/path" }\n', "mirror with a path"),
    (BASE + '[registry]\nmirrors = { "docker io" = "mirror" }\n', "mirror of a bad host"),
]
# Only the parser can reject these: they need the GPU table or cross-row checks.
PARSER_ONLY = [
    (BASE + '[gpu]\ndevices = ["A1000"]\n', "unknown GPU"),
    (
        BASE + '[python]\nrequirements = ["x"]\n[[python.index]]\nname = "a"\nurl = "https://a/s"\n'
        '[[python.index]]\nname = "a"\nurl = "https://b/s"\n',
        "duplicate index names",
    ),
    (BASE + '[python]\nrequirements = ["torch=2.5"]\n', "invalid requirement"),
    # A trailing newline: the schema's `$` rejects it in ECMA-262 (as editors read it), but
    # Python's `re`, which jsonschema uses, lets `$` match before a final newline.
    (BASE + '[image]\nhealthcheck = { cmd = ["true"], interval = "1s\\n" }\n', "duration+newline"),
    (BASE + '[image]\nuser = "app\\n"\n', "user and a newline"),
]


def _parser_rejects(text: str) -> bool:
    try:
        parse_spec(
            text, file="reprolock.toml", matrices=api.shipped_matrices(), read_file=lambda name: ""
        )
    except InputError:
        return True
    return False


@pytest.mark.parametrize(("text", "what"), BAD_SPECS, ids=[w for _, w in BAD_SPECS])
def test_parser_and_schema_reject_the_same_inputs(text: str, what: str) -> None:
    schema = _schema("reprolock.schema.json")
    assert _parser_rejects(text), what
    assert not _valid(schema, tomllib.loads(text)), what


@pytest.mark.parametrize(("text", "what"), PARSER_ONLY, ids=[w for _, w in PARSER_ONLY])
def test_parser_rejects_semantic_errors(text: str, what: str) -> None:
    assert _parser_rejects(text), what


@pytest.mark.parametrize(
    "text",
    [
        BASE,
        BASE + '[gpu]\ndevices = ["8.0", "H100"]\ncuda = "12.4"\ncudnn = "9.*"\n',
        BASE + '[python]\nrequirements-files = ["r.in"]\n',
        BASE + '[image]\nexpose = [8000, "9000/udp"]\nenv = { A_B = "1" }\n',
        BASE + '[image]\nworkdir = "/srv/app-1.0"\ncopy = [["src/*.py", "/srv/app-1.0/"]]\n'
        'env = { PATH = "/opt/x:$PATH", Q = "a \\"b\\" \\\\c" }\nlabels = { "org.x/y" = "v" }\n',
        BASE + '[registry]\nmirrors = { "docker.io" = "https://mirror.example.com/hub" }\n'
        'insecure = ["localhost:5000", "[::1]:5000"]\n',
    ],
)
def test_parser_and_schema_accept_the_same_good_inputs(text: str) -> None:
    assert not _parser_rejects(text)
    assert _valid(_schema("reprolock.schema.json"), tomllib.loads(text))


def test_locks_validate_against_the_lock_schema() -> None:
    schema = _schema("reprolock.lock.schema.json")
    for path in (
        ROOT / "tests" / "golden" / "reprolock.lock",
        ROOT / "examples" / "cpu" / "reprolock.lock",
    ):
        data = tomllib.loads(path.read_text())
        jsonschema.validate(data, schema)
        assert "integrity" in data, path
    data = tomllib.loads((ROOT / "tests" / "golden" / "reprolock.lock").read_text())
    data["image"]["workdir"] = "/app\nRUN curl evil"
    data["targets"][0]["packages"][0]["wheels"][0]["filename"] = "../../x.whl"
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    assert len(errors) == 2, errors


def test_matrices_validate_against_their_schemas() -> None:
    for name in (
        "gpus",
        "cuda",
        "matrices",
        "pytorch",
        "tensorflow",
        "jax",
        "cudnn",
        "images",
        "requires",
        "ptx",
        "python",
    ):
        data = tomllib.loads((ROOT / "matrices" / f"{name}.toml").read_text())
        jsonschema.validate(data, _schema("matrices", f"{name}.schema.json"))


@pytest.mark.parametrize(
    ("name", "tables"),
    [
        ("gpus", ("gpu", "arch")),
        ("cuda", ("toolkit", "family")),
        ("pytorch", ("index", "series", "variant", "arches", "release", "pypi-arches")),
        ("tensorflow", ("release", "arches")),
        ("jax", ("plugin", "release")),
        ("cudnn", ("support", "wheels")),
        ("images", ("family", "cuda", "ngc")),
        ("ptx", ("isa",)),
        ("python", ("images", "standalone")),
    ],
)
def test_every_matrix_row_cites_a_known_source(name: str, tables: tuple[str, ...]) -> None:
    data = tomllib.loads((ROOT / "matrices" / f"{name}.toml").read_text())
    known = set(data["sources"])
    for table in tables:
        value = data[table]
        rows = (
            [value] if "sources" in value else value.values() if isinstance(value, dict) else value
        )
        for row in rows:
            if "measured" in row and "sources" not in row:  # a measurement of a named file
                assert re.fullmatch(r"\S+\.whl sha256:[0-9a-f]{64}", row["measured"]), row
                continue
            assert row["sources"], row
            assert set(row["sources"]) <= known, row
    for text in data["sources"].values():
        assert (
            "http" in text
            or "commit" in text
            or "docs.nvidia.com" in text
            or "release notes" in text.lower()
            or "project docs" in text
            or re.search(r"@ [0-9a-f]{7,}", text)  # a repository file at a commit
        ), text


def test_cli_prints_the_shipped_schemas(cli: Any) -> None:
    run = cli("schema", "lock")
    assert run.code == 0
    assert json.loads(run.out)["title"] == "reprolock.lock"
