"""Sign-in for a team server, for real (issue 16): an OpenID Connect provider, the app, a browser.

``oidc-provider-mock`` runs on 127.0.0.1 (a free port) as the identity provider, with three
people: Alice and Bob, whose emails it says are verified, and Mallory, who claims Bob's address
unverified. ``streamlit run app.py`` starts from the project's root folder (its
.streamlit/config.toml) with a temporary secrets file (``--secrets.files``) holding ``[auth]``,
so the project's own .streamlit/ is never touched. Debian's Chromium signs in through the
provider's login form, one browser context (its own cookies) per person.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import ROOT, free_port, stop, wait_healthy
from tests.test_e2e import CLUSTERING_S, STEP_S, Session, browser, feedback_csv  # noqa: F401 (a fixture)

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if importlib.util.find_spec("oidc_provider_mock") is None:  # found, not imported: it runs in its own process
    pytest.skip("oidc-provider-mock (requirements-dev.txt) is not installed", allow_module_level=True)
expect = sync_api.expect

pytestmark = pytest.mark.e2e

PEOPLE = {
    "alice": {"sub": "alice", "email": "alice@example.org", "email_verified": True, "name": "Alice"},
    "bob": {"sub": "bob", "email": "bob@example.org", "email_verified": True, "name": "Bob"},
    "mallory": {"sub": "mallory", "email": "bob@example.org", "email_verified": False, "name": "Mallory"},
}


def wait_answers(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer\n--- log ---\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[str]:
    """oidc-provider-mock on 127.0.0.1; its issuer URL."""
    folder = tmp_path_factory.mktemp("oidc")
    port = free_port()
    people = [arg for claims in PEOPLE.values() for arg in ("--user-claims", json.dumps(claims))]
    command = [
        sys.executable,
        "-m",
        "oidc_provider_mock",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *people,
    ]
    log = folder / "provider.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_answers(f"{url}/.well-known/openid-configuration", process, log)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="module")
def team_url(provider, browser, tmp_path_factory) -> Iterator[str]:  # noqa: F811 (browser: a fixture)
    """The app with sign-in on: ``[auth]`` in a temporary secrets file pointing at the provider."""
    folder = tmp_path_factory.mktemp("team")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = folder / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "clusterlab-test"\n'
        'client_secret = "not-checked-by-the-mock"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n',
        encoding="utf-8",
    )
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--secrets.files", str(secrets_file),
    ]  # fmt: skip
    env = {
        **os.environ,
        "CLUSTERLAB_WORKSPACES_DIR": str(folder / "workspaces"),
        "CLUSTERLAB_CACHE_DIR": str(folder / "cache"),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    log = folder / "streamlit.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        try:
            wait_healthy(url, process)
        except Exception as exc:
            raise RuntimeError(
                f"{exc}\n--- streamlit log ---\n{log.read_text(errors='replace')[-3000:]}"
            ) from exc
        yield url
    finally:
        stop(process)


def sign_in(browser, url: str, who: str) -> Session:  # noqa: F811
    """A new browser context (its own cookies): the sign-in button, the provider's form, back."""
    user = Session(browser, url)
    page = user.page
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
    page.get_by_role("button", name=who, exact=True).click()  # the provider's predefined person
    page.wait_for_url(re.compile(re.escape(url) + r"/?(\?.*)?$"))
    expect(page.get_by_test_id("stSidebarUserContent")).to_contain_text(f"Signed in as {PEOPLE[who]['name']}")
    return user


def sidebar(user: Session):
    return user.page.get_by_test_id("stSidebarUserContent")


def test_signed_in_people_see_their_own_data_and_a_read_only_share_until_revoked(browser, team_url):  # noqa: F811
    started = time.monotonic()
    # a signed-out visitor: the sign-in button and a line saying what this is, nothing else
    visitor = Session(browser, team_url)
    try:
        page = visitor.page
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_text("sign in to see your datasets")).to_be_visible()
        assert page.get_by_role("button").count() == 1
        assert page.get_by_test_id("stSidebarNav").count() == 0
        assert page.get_by_test_id("stFileUploader").count() == 0
        assert "ws=" not in page.url
        visitor.assert_no_errors()
    finally:
        visitor.close()

    alice = sign_in(browser, team_url, "alice")
    bob = sign_in(browser, team_url, "bob")
    try:
        data, _ = feedback_csv(60, ["billing", "crash", "login"], seed=7, specials=False)
        alice.upload("alice-feedback.csv", data)
        alice.cluster()
        alice.wait_clustered()
        expect(sidebar(alice)).to_contain_text("alice-feedback.csv")
        alice.assert_no_errors()
        assert "ws=" not in alice.page.url  # no link names a person's workspace

        bob.page.reload()
        expect(sidebar(bob)).to_contain_text("None yet")
        expect(sidebar(bob)).not_to_contain_text("alice-feedback")

        # Alice shares it with Bob's address (once her page is idle: a submit clicked while a run
        # redrew the sidebar was once lost, the address still in the field)
        alice.settle()
        alice.page.get_by_text("Share the open dataset").click()
        alice.page.get_by_label("Their email").fill("bob@example.org")
        alice.settle()
        alice.page.get_by_role("button", name="Share read-only").click()
        expect(sidebar(alice)).to_contain_text("Shared with bob@example.org.")

        # Bob sees it, marked shared by Alice, and opens it read-only
        bob.page.reload()
        shared = sidebar(bob).get_by_role("button", name=re.compile("alice-feedback.csv · shared by Alice"))
        expect(shared).to_be_visible()
        shared.click()
        expect(bob.page.get_by_role("button", name="Cluster the texts")).to_be_disabled()
        bob.open("Explore")
        expect(bob.page.get_by_role("heading", name=re.compile(r"^\d+ clusters$"))).to_be_visible(
            timeout=CLUSTERING_S * 1000
        )
        expect(sidebar(bob)).to_contain_text("Shared with you read-only: the owner's settings.")
        expect(bob.page.get_by_text("renaming and merging are up to its owner")).to_be_visible()
        assert bob.page.locator('[class*="st-key-set-"]').count() == 0  # no settings widgets
        assert bob.page.get_by_role("button", name="Merge", exact=True).count() == 0
        bob.open("Export")
        expect(bob.page.get_by_role("heading", name="Download")).to_be_visible()
        bob.assert_no_errors()

        # Mallory claims Bob's address, but the provider does not vouch for it: she sees nothing
        mallory = sign_in(browser, team_url, "mallory")
        try:
            expect(sidebar(mallory)).to_contain_text("None yet")
            expect(sidebar(mallory)).not_to_contain_text("alice-feedback")
        finally:
            mallory.close()

        # Alice revokes; Bob's list no longer has it
        alice.page.get_by_role("button", name="Revoke").click()
        expect(sidebar(alice)).not_to_contain_text("bob@example.org", timeout=STEP_S * 1000)
        bob.page.reload()
        expect(sidebar(bob)).to_contain_text("Your datasets")
        expect(sidebar(bob)).not_to_contain_text("alice-feedback")
        expect(sidebar(bob)).not_to_contain_text("Shared with you")
    finally:
        alice.close()
        bob.close()
    print(f"sign-in e2e took {time.monotonic() - started:.0f} s")
