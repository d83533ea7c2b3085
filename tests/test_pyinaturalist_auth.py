"""pyinaturalist's own ``test/test_auth.py``, run against ``keyfob.inaturalist``.

The test file comes from pyinaturalist's sdist on PyPI, fetched with pip at
test time (cached in the git-ignored ``.downloads/``; under CI a failed
download fails, elsewhere it skips), with only the module it tests renamed:
``pyinaturalist.auth`` and ``pyinaturalist.exceptions`` become
``keyfob.inaturalist`` (imports and ``patch`` targets alike), and the two
helpers it imports from pyinaturalist's other modules come from the test's
own support (``API_V0`` read from the sdist's ``constants.py``;
``ClientSession`` is what pyinaturalist's is, a ``requests.Session``).
Nothing of pyinaturalist is copied into keyfob; the support module reads the
sdist's ``conftest.py`` constants and ``sample_data`` files where they lie.

Which sdist: pyinaturalist 0.21.1 is the auth module keyfob follows, but its
sdist (built with hatch, as every release from 0.20.0 on) ships the package
only, no ``test/``. 0.19.0 is the newest sdist on PyPI that ships
``test/test_auth.py``, and its ``auth.py`` is 0.21.1's line for line but for
``validate_token`` (added in 0.20), which tests/test_inaturalist_compat.py
covers instead.

The bar (DESIGN.md): every test that patches no private helper of
pyinaturalist passes; the others fail, for the reason named below, and the
split is asserted exactly, so a test that starts passing (or failing) says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

VERSION = "0.19.0"
SHA256 = "cfe90a8ad579339f9d527e09f630f1ed0f1a43d9c5429f58f970ee294f053f73"
DOWNLOADS = Path(__file__).resolve().parent.parent / ".downloads"

#: the tests that patch no private helper of pyinaturalist: they must pass
PASSING = frozenset(
    {
        "test_get_access_token__cached_jwt",
        "test_get_keyring_credentials",
        "test_get_keyring_credentials__not_installed",
        "test_get_keyring_credentials__no_backend",
        "test_set_keyring_credentials",
    }
)
_GET_JWT = "_get_jwt"  # pyinaturalist's private GET /users/api_token; keyfob has none
#: the tests that patch a private helper, and the text their failure must show
FAILING = {
    "test_get_access_token__oauth": _GET_JWT,
    "test_get_access_token__jwt": _GET_JWT,
    "test_get_access_token__envars": _GET_JWT,
    "test_get_access_token__mixed_args_and_envars": _GET_JWT,
    "test_get_access_token__keyring": _GET_JWT,  # and ClientSession.post's arguments
    "test_get_access_token__missing_creds": _GET_JWT,
    "test_get_access_token__invalid_creds": _GET_JWT,
}

#: the only changes made to the test file: what it imports, and from where
REWRITES = (
    ("from pyinaturalist.auth import ", "from keyfob.inaturalist import "),
    ("from pyinaturalist.exceptions import ", "from keyfob.inaturalist import "),
    ("from pyinaturalist.constants import ", "from test.conftest import "),
    ("from pyinaturalist.session import ClientSession", "from test.conftest import ClientSession"),
    ("'pyinaturalist.auth.", "'keyfob.inaturalist."),
)

#: the support module in place of pyinaturalist's test/conftest.py (which imports
#: pyinaturalist itself): the same names, read from the sdist, and keyfob isolated
CONFTEST = '''\
import ast
import json
import os
from pathlib import Path

import pytest
from requests import Session as ClientSession  # pyinaturalist's is a requests.Session

from keyfob import wiring

SDIST = Path(os.environ["KEYFOB_PYINAT_SDIST"])


def _constants(path, *names):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in names:
                found[target.id] = ast.literal_eval(node.value)
    return [found[name] for name in names]


MOCK_CREDS_ENV, MOCK_CREDS_OAUTH = _constants(
    SDIST / "test" / "conftest.py", "MOCK_CREDS_ENV", "MOCK_CREDS_OAUTH"
)
(API_V0,) = _constants(SDIST / "pyinaturalist" / "constants.py", "API_V0")


def load_sample_data(filename):
    with open(SDIST / "test" / "sample_data" / filename, encoding="utf-8") as fh:
        return json.load(fh) if filename.endswith("json") else fh.read()


@pytest.fixture(autouse=True)
def keyfob_isolated(tmp_path, monkeypatch):
    """keyfob's cache and secrets in tmp_path, opened before a test clears os.environ."""
    for name in list(os.environ):
        if name.startswith(("KEYFOB_", "INAT_", "PYTHON_KEYRING")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KEYFOB_HOME", str(tmp_path / "keyfob"))
    monkeypatch.setenv("KEYFOB_KEYRING", "file")
    wiring.reset()
    wiring.via_requests().cache  # noqa: B018 - opened under KEYFOB_HOME, not a user folder
    yield
    wiring.reset()
'''

PYTEST_INI = """\
[pytest]
markers =
    enable_client_session: pyinaturalist's marker (its ClientSession; nothing here)
filterwarnings = error
"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"pyinaturalist {VERSION}'s sdist: {why}")
    pytest.skip(f"pyinaturalist {VERSION}'s sdist unavailable: {why}")


def _sdist() -> Path:
    """The sdist, downloaded once with pip and checked against its SHA-256."""
    archive = DOWNLOADS / f"pyinaturalist-{VERSION}.tar.gz"
    if archive.exists() and _digest(archive) == SHA256:
        return archive
    DOWNLOADS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DOWNLOADS) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += ["--disable-pip-version-check", "-q", "-d", tmp, f"pyinaturalist=={VERSION}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            _unavailable("pip download took more than 10 minutes")
        fetched = Path(tmp) / archive.name
        if done.returncode != 0 or not fetched.exists():
            _unavailable(f"pip download failed: {done.stderr.strip()[-500:]}")
        if _digest(fetched) != SHA256:
            pytest.fail(f"{archive.name} does not have the SHA-256 this test pins")
        fetched.replace(archive)
    return archive


def _unpacked(archive: Path) -> Path:
    folder = DOWNLOADS / f"pyinaturalist-{VERSION}"
    if not (folder / "test" / "test_auth.py").exists():
        with tempfile.TemporaryDirectory(dir=DOWNLOADS) as tmp, tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
            shutil.rmtree(folder, ignore_errors=True)
            (Path(tmp) / folder.name).replace(folder)
    return folder


def rewritten(source: str) -> str:
    """The test file with only its imports (and patch targets) renamed."""
    for old, new in REWRITES:
        assert old in source, f"pyinaturalist's test_auth.py no longer has {old!r}"
        source = source.replace(old, new)
    assert "pyinaturalist" not in source, "a pyinaturalist name the rewrite does not cover"
    return source


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each test of pyinaturalist's file -> "passed", or its failure's text."""
    sdist = _unpacked(_sdist())
    work = tmp_path_factory.mktemp("pyinaturalist-auth")
    (work / "pytest.ini").write_text(PYTEST_INI)
    (work / "test").mkdir()
    (work / "test" / "__init__.py").write_text("")
    (work / "test" / "conftest.py").write_text(CONFTEST)
    source = (sdist / "test" / "test_auth.py").read_text(encoding="utf-8")
    (work / "test" / "test_auth.py").write_text(rewritten(source))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYFOB_", "INAT_"))}
    env["KEYFOB_PYINAT_SDIST"] = str(sdist)
    report = work / "report.xml"
    pytest_args = ["-p", "no:cacheprovider", "-q", "--junitxml", str(report), "test/test_auth.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.exists(), done.stdout + done.stderr
    found: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        bad = [child for child in case if child.tag in ("failure", "error", "skipped")]
        text = " ".join((c.get("message") or "") + (c.text or "") for c in bad)
        found[case.get("name", "")] = text if bad else "passed"
    return found


def test_pyinaturalist_auth_tests_are_all_accounted_for(outcomes: dict[str, str]) -> None:
    assert set(outcomes) == PASSING | set(FAILING)


def test_every_test_that_patches_no_private_helper_passes(outcomes: dict[str, str]) -> None:
    failed = {name: outcomes[name][:300] for name in PASSING if outcomes.get(name) != "passed"}
    assert failed == {}


def test_the_others_fail_for_the_private_helper_they_patch(outcomes: dict[str, str]) -> None:
    passing = sorted(name for name in FAILING if outcomes.get(name) == "passed")
    assert passing == [], "now passing: move them to PASSING (and the README's list)"
    wrong = {
        name: outcomes.get(name, "")[:300]
        for name, why in FAILING.items()
        if why not in outcomes.get(name, "")
    }
    assert wrong == {}
