"""Sign-in for a team server, through Streamlit's AppTest (issue 16): who sees what.

``at.secrets["auth"]`` turns sign-in on as an ``[auth]`` section in secrets.toml does, and
``at.user`` is what the identity provider said (``st.user``). The real sign-in, with an identity
provider and a browser, is tests/test_e2e_auth.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.store import PEOPLE_DIR, Person, Workspace
from tests.conftest import APP
from tests.test_app import (
    assert_healthy,
    errors,
    nodes,
    run_clustering,
    sidebar_datasets,
    topic_csv,
    unescape,
    upload,
    warnings,
)

ISSUER = "https://id.example.org"
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-some-length",
    "client_id": "clusterlab",
    "client_secret": "test",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ALICE = {"iss": ISSUER, "sub": "alice", "email": "alice@example.org", "email_verified": True, "name": "Alice"}
BOB = {"iss": ISSUER, "sub": "bob", "email": "bob@example.org", "email_verified": True, "name": "Bob"}
# Bob's address, but the provider does not vouch for it
MALLORY = {"iss": ISSUER, "sub": "mallory", "email": "bob@example.org", "email_verified": False}


def open_as(user: dict | None, ws: str | None = None, clusterlab: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["auth"] = AUTH
    if clusterlab is not None:
        at.secrets["clusterlab"] = clusterlab
    at.user = {"is_logged_in": False} if user is None else {"is_logged_in": True, **user}
    if ws is not None:
        at.query_params["ws"] = ws
    return at.run()


def own_folder(app, user: dict) -> Path:
    return app.root / PEOPLE_DIR / Person.from_claims(user).id


def shared_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button if (b.key or "").startswith("shared:")]


def click(at: AppTest, label: str) -> AppTest:
    (button,) = [b for b in at.button if b.label == label]
    return button.click().run()


def share(at: AppTest, email: str) -> AppTest:
    at.text_input(key="share_email").input(email)
    return click(at, "Share read-only")


def test_a_signed_out_visitor_sees_only_the_sign_in_button(app):
    at = open_as(None)
    assert_healthy(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert [t.value for t in at.title] == ["Clusterlab"]
    assert not at.file_uploader and not at.sidebar.children
    assert "ws" not in at.query_params
    assert not app.root.exists()  # no workspace was made or opened
    # a page URL, or a link to a workspace, shows the same and opens nothing
    token = app.new_token()
    upload(app.open(token), "theirs.csv", topic_csv())
    at = open_as(None, ws=token)
    assert [b.label for b in at.button] == ["Sign in"] and not at.dataframe
    at.switch_page("pages/explore.py").run()
    assert [b.label for b in at.button] == ["Sign in"] and not at.dataframe and not at.slider


def test_each_person_gets_their_own_workspace_and_links_are_off(app):
    alice = upload(open_as(ALICE), "alice.csv", topic_csv(seed=1))
    assert_healthy(alice)
    assert sidebar_datasets(alice) == ["alice\\.csv · 120 rows"]
    assert "ws" not in alice.query_params  # nothing in the URL names it
    (dataset,) = (own_folder(app, ALICE) / "datasets").iterdir()
    assert "Signed in as Alice (alice@example.org)" in [unescape(c.value) for c in alice.sidebar.caption]

    bob = open_as(BOB)
    assert sidebar_datasets(bob) == [] and shared_buttons(bob) == []
    # Bob knows Alice's dataset id: opening it by session state opens nothing
    bob.session_state["dataset_id"] = dataset.name
    bob.run()
    assert not bob.dataframe and not bob.multiselect

    # a workspace link (issued by this server, with data in it) opens nothing while links are off
    token = app.new_token()
    upload(app.open(token), "linked.csv", topic_csv(seed=3))
    bob = open_as(BOB, ws=token)
    assert_healthy(bob)
    assert warnings(bob) == ["Workspace links are turned off on this server: this is your own workspace."]
    assert sidebar_datasets(bob) == [] and "ws" not in bob.query_params

    # the next day, Alice signs in again: her dataset is there
    assert sidebar_datasets(open_as(ALICE)) == ["alice\\.csv · 120 rows"]


def test_token_links_open_when_the_operator_turns_them_on(app):
    token = app.new_token()
    upload(app.open(token), "linked.csv", topic_csv(seed=3))
    at = open_as(BOB, ws=token, clusterlab={"token_links": True})
    assert_healthy(at)
    assert sidebar_datasets(at) == ["linked\\.csv · 120 rows"]
    assert at.query_params["ws"] == token
    assert open_as(None, ws=token, clusterlab={"token_links": True}).button[0].label == "Sign in"


def test_a_dataset_shared_by_email_is_read_only_for_that_person_until_revoked(app):
    alice = upload(open_as(ALICE), "alice.csv", topic_csv(seed=1))
    run_clustering(alice)
    alice = share(alice, "Bob@Example.org")
    assert_healthy(alice)
    assert [s.value for s in alice.success] == ["Shared with bob@example\\.org\\."]
    (dataset,) = (own_folder(app, ALICE) / "datasets").iterdir()
    state_before = (dataset / "state.json").read_bytes()

    assert shared_buttons(open_as(MALLORY)) == []  # the same address, not verified: nothing

    bob = open_as(BOB)
    assert sidebar_datasets(bob) == []  # his own list stays his
    assert shared_buttons(bob) == ["alice\\.csv · shared by Alice \\(alice@example\\.org\\)"]
    (button,) = [b for b in bob.sidebar.button if (b.key or "").startswith("shared:")]
    button.click().run()
    assert_healthy(bob)
    assert bob.session_state["shared_from"] == Person.from_claims(ALICE).id
    assert bob.multiselect(key=f"text_column:{dataset.name}").disabled
    assert bob.button(key="run").disabled
    assert not [b for b in bob.sidebar.button if (b.key or "").startswith("delete:")]

    bob.switch_page("pages/explore.py").run()
    assert_healthy(bob)
    settings = [n for n in nodes(bob) if str(getattr(n, "key", "") or "").startswith("set:")]
    assert settings == []  # no settings to change (filters and search, which only read, stay)
    assert "Shared with you read-only: the owner's settings." in [c.value for c in bob.sidebar.caption]
    (editor,) = bob.data_editor
    assert editor.proto.disabled or editor.disabled is True
    assert not [b for b in bob.button if b.label == "Merge"]
    assert "Shared with you read-only: renaming and merging are up to its owner." in [
        i.value for i in bob.info
    ]
    bob.switch_page("pages/export.py").run()
    assert_healthy(bob)
    assert {b.key for b in bob.get("download_button")} >= {"dl_csv", "dl_summary"}
    assert (dataset / "state.json").read_bytes() == state_before  # Bob's visit wrote nothing of Alice's

    # Bob uploads his own file while Alice's is open: it goes to his workspace
    upload(bob.switch_page("pages/upload.py").run(), "bob.csv", topic_csv(seed=2))
    assert_healthy(bob)
    assert sidebar_datasets(bob) == ["bob\\.csv · 120 rows"]
    assert len(list((own_folder(app, ALICE) / "datasets").iterdir())) == 1

    # Alice revokes: Bob's open view goes at his next click, and the list no longer has it
    (revoke,) = [b for b in alice.sidebar.button if b.label == "Revoke"]
    revoke.click().run()
    assert_healthy(alice)
    bob.session_state["shared_from"] = Person.from_claims(ALICE).id
    bob.session_state["dataset_id"] = dataset.name
    bob.run()
    assert_healthy(bob)
    assert any("not shared with you" in e for e in errors(bob))
    assert shared_buttons(bob) == [] and not bob.session_state["shared_from"]


def test_a_read_only_viewer_forging_a_save_is_refused_by_the_store(app):
    alice = upload(open_as(ALICE), "alice.csv", topic_csv(seed=1))
    share(alice, "bob@example.org")
    (dataset,) = (own_folder(app, ALICE) / "datasets").iterdir()
    bob = open_as(BOB)
    (button,) = [b for b in bob.sidebar.button if (b.key or "").startswith("shared:")]
    button.click().run()
    # whatever the page does, the workspace it gets for Alice's dataset refuses writes
    view = Workspace.at(own_folder(app, ALICE), only=frozenset({dataset.name}))
    with pytest.raises(Exception, match="read-only"):
        view.save_state(dataset.name, {"text_column": "id"})


@pytest.mark.parametrize(
    ("secrets", "shown"),
    [
        ({"clusterlab": {"tokn_links": True}}, "unknown setting under [clusterlab]"),
        ({"clusterlab": {"token_links": "sometimes"}}, "expected true or false"),
        ({"auth": {k: v for k, v in AUTH.items() if k != "client_secret"}}, "[auth] lacks client_secret"),
    ],
)
def test_wrong_operator_settings_are_named_at_start(app, secrets, shown):
    at = AppTest.from_file(str(APP), default_timeout=60)
    for name, section in secrets.items():
        at.secrets[name] = section
    at.user = {"is_logged_in": False}
    at.run()
    assert_healthy(at)
    assert any(shown in e for e in errors(at)), errors(at)
    assert not at.file_uploader
