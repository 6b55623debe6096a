"""People, their workspaces and what they share (issue 16): the library side, no Streamlit.

Each person's workspace is named from a hash of the issuer and subject; a dataset is shared by
email and opens only for a person whose provider says that email is verified, as a view that
refuses every write. Attacked from outside: a second person guessing ids, an unverified or
look-alike address, hostile addresses, a read-only viewer calling a save.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from pathlib import Path

import pytest

from pipeline import InputError
from pipeline.dataset_state import DatasetState
from pipeline.operator import OperatorSettings, check_auth_section
from pipeline.store import PEOPLE_DIR, SHARES_FILE, Person, Team, Workspace, normalize_email, valid_token

ISSUER = "https://id.example.org"
ALICE = Person(ISSUER, "alice-sub", "alice@example.org", True, "Alice")
BOB = Person(ISSUER, "bob-sub", "Bob@Example.org", True, "Bob")
MALLORY = Person(ISSUER, "mallory-sub", "bob@example.org", False, "Mallory")  # Bob's address, unverified
CSV = b"id,comment\n1,the refund never arrived\n2,the app crashes on start\n3,I love this app\n"


@pytest.fixture
def team(tmp_path) -> Team:
    return Team(tmp_path / "workspaces")


def add(team: Team, who: Person, data: bytes = CSV, name: str = "feedback.csv") -> str:
    info, _ = team.workspace(who).add(data, name)
    return info.id


# ---------------------------------------------------------------------------- who owns what


def test_a_workspace_is_named_by_a_hash_of_issuer_and_subject_never_reachable_by_a_link(team, tmp_path):
    ws = team.workspace(ALICE)
    expected = hashlib.sha256(f"{len(ISSUER)}:{ISSUER}alice-sub".encode()).hexdigest()
    assert ws.path == tmp_path / "workspaces" / PEOPLE_DIR / expected
    assert ws.token == ""  # no ?ws= names it
    assert not valid_token(PEOPLE_DIR)  # and no token reaches the people folder
    owner = json.loads((ws.path / "person.json").read_text())
    assert owner == {"issuer": ISSUER, "subject": "alice-sub", "email": "alice@example.org", "name": "Alice"}
    # the same account with a new email or name keeps its workspace; the issuer and subject decide
    renamed = Person(ISSUER, "alice-sub", "alice@new.example.org", True, "Alice B")
    assert team.workspace(renamed).path == ws.path
    # issuer and subject never run together into another pair's name
    assert Person("https://a.org", "bc", "").id != Person("https://a.orgb", "c", "").id
    assert Person("https://other.example.org", "alice-sub").id != ALICE.id


def test_claims_make_a_person_and_only_a_true_email_verified_verifies(team):
    claims = {"iss": ISSUER, "sub": "s1", "email": " Ann@Example.ORG ", "email_verified": True, "name": "Ann"}
    assert Person.from_claims(claims).verified_email == "ann@example.org"
    assert Person.from_claims(claims | {"email_verified": "true"}).verified_email == "ann@example.org"
    for unverified in (False, "false", "yes", 1, None):
        assert Person.from_claims(claims | {"email_verified": unverified}).verified_email == ""
    assert Person.from_claims({k: v for k, v in claims.items() if k != "email_verified"}).verified_email == ""
    for missing in ("iss", "sub"):
        with pytest.raises(InputError, match="did not say who signed in"):
            Person.from_claims({k: v for k, v in claims.items() if k != missing})


def test_a_second_person_never_sees_the_first_ones_datasets(team):
    dataset = add(team, ALICE)
    bob = team.workspace(BOB)
    assert bob.datasets() == []
    assert not (bob.path / "datasets" / dataset).exists()  # guessing (or knowing) the id opens nothing
    assert team.shared_with(BOB) == []
    with pytest.raises(InputError, match="not shared with you"):
        team.open_shared(BOB, ALICE.id, dataset)


# ---------------------------------------------------------------------------- sharing


def test_share_opens_read_only_for_the_verified_email_and_revoke_takes_it_back(team):
    dataset = add(team, ALICE)
    share = team.share(ALICE, dataset, "  BOB@example.org ")
    assert (share.email, share.dataset_name, share.recipient) == ("bob@example.org", "feedback.csv", "")
    assert share.owner_label == "Alice (alice@example.org)"
    assert team.share(ALICE, dataset, "bob@example.org") == share  # the same share twice is one
    assert team.shared_by(ALICE) == [share]

    (seen,) = team.shared_with(BOB)  # Bob signs in later with that address, verified
    assert seen.recipient == BOB.id and seen.dataset == dataset
    view = team.open_shared(BOB, ALICE.id, dataset)
    assert view.read_only and [d.id for d in view.datasets()] == [dataset]
    assert len(view.table(dataset).frame) == 3  # reads: table, info, state, cache folder
    assert view.dataset_state(dataset) == DatasetState()

    assert team.revoke(ALICE, dataset, "bob@example.org") == 1
    assert team.shared_with(BOB) == []
    with pytest.raises(InputError, match="not shared with you"):
        team.open_shared(BOB, ALICE.id, dataset)


def test_only_the_shared_dataset_opens_in_the_view(team):
    shared = add(team, ALICE)
    private = add(team, ALICE, CSV + b"4,another one\n", "private.csv")
    team.share(ALICE, shared, BOB.email)
    view = team.open_shared(BOB, ALICE.id, shared)
    assert [d.id for d in view.datasets()] == [shared]
    for read in (view.info, view.table, view.cache_dir, view.dataset_state):
        with pytest.raises(InputError, match="unknown dataset"):
            read(private)
    with pytest.raises(InputError, match="not shared with you"):
        team.open_shared(BOB, ALICE.id, private)


def test_a_read_only_view_refuses_every_write(team):
    dataset = add(team, ALICE)
    team.workspace(ALICE).save_dataset_state(dataset, DatasetState().with_text_column("comment"))
    team.share(ALICE, dataset, BOB.email)
    view = team.open_shared(BOB, ALICE.id, dataset)
    before = team.workspace(ALICE).state(dataset)
    for write in (
        lambda: view.save_dataset_state(dataset, DatasetState().with_text_column("id")),
        lambda: view.save_state(dataset, {"text_column": "id"}),
        lambda: view.add(b"a,b\n1,2\n", "more.csv"),
        lambda: view.delete(dataset),
    ):
        with pytest.raises(InputError, match="shared with you read-only"):
            write()
    assert team.workspace(ALICE).state(dataset) == before
    assert [d.id for d in team.workspace(ALICE).datasets()] == [dataset]


def test_an_unverified_email_never_opens_a_share_and_the_first_verified_owner_keeps_it(team):
    dataset = add(team, ALICE)
    team.share(ALICE, dataset, "bob@example.org")
    assert team.shared_with(MALLORY) == []  # the same address, not verified by the provider
    with pytest.raises(InputError):
        team.open_shared(MALLORY, ALICE.id, dataset)
    assert team.shared_with(BOB)  # Bob, verified, claims it
    # a later account given the same verified address (a reused mailbox) does not see it
    successor = Person(ISSUER, "someone-else", "bob@example.org", True)
    assert team.shared_with(successor) == []
    assert team.shared_with(BOB)


def test_nobody_shares_what_is_not_theirs_nor_with_themselves(team):
    dataset = add(team, ALICE)
    with pytest.raises(InputError, match="unknown dataset"):
        team.share(BOB, dataset, "carol@example.org")  # Bob knows Alice's id: not his dataset
    with pytest.raises(InputError, match="unknown dataset"):
        team.share(ALICE, "0" * 64, "bob@example.org")
    with pytest.raises(InputError, match="your own address"):
        team.share(ALICE, dataset, "ALICE@example.org")
    assert team.revoke(BOB, dataset) == 0  # nor revokes Alice's shares
    team.share(ALICE, dataset, "bob@example.org")
    assert team.revoke(BOB, dataset, "bob@example.org") == 0
    assert len(team.shared_by(ALICE)) == 1


@pytest.mark.parametrize(
    "email",
    [
        "../../etc/passwd@example.org",
        "bob/../../x@example.org",
        "bob@example.org/../../shares.json",
        "bob\\x@example.org",
        "bob\n@example.org",
        "bob@example.org\x00",
        "bob @example.org",
        '"bob"@example.org',
        "bob@localhost",
        "bob@@example.org",
        "bob..x@example.org",
        "",
        "a" * 65 + "@example.org",
    ],
)
def test_hostile_addresses_are_refused_and_nothing_is_written(team, tmp_path, email):
    dataset = add(team, ALICE)
    with pytest.raises(InputError, match="is not an email address"):
        team.share(ALICE, dataset, email)
    assert not (tmp_path / "workspaces" / PEOPLE_DIR / SHARES_FILE).exists()
    assert sorted(p.name for p in (tmp_path / "workspaces").rglob("*") if ".." in p.name) == []


def test_normalize_email():
    assert normalize_email(" Bob.Smith+team@Mail.Example.ORG ") == "bob.smith+team@mail.example.org"


def test_a_deleted_dataset_is_no_longer_shared(team):
    dataset = add(team, ALICE)
    team.share(ALICE, dataset, BOB.email)
    assert team.shared_with(BOB)
    team.workspace(ALICE).delete(dataset)
    assert team.shared_with(BOB) == []
    with pytest.raises(InputError):
        team.open_shared(BOB, ALICE.id, dataset)


def _share_many(root: str, start: int) -> None:
    team = Team(root)
    dataset = next(d.id for d in team.workspace(ALICE).datasets())
    for i in range(start, start + 15):
        team.share(ALICE, dataset, f"person{i}@example.org")


def test_shares_made_at_once_by_two_processes_are_all_kept(team):
    add(team, ALICE)
    root = str(team.root.parent)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_share_many, args=(root, n)) for n in (0, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert len(team.shared_by(ALICE)) == 30


def test_a_damaged_shares_file_shares_nothing_and_is_not_a_crash(team):
    dataset = add(team, ALICE)
    team.share(ALICE, dataset, BOB.email)
    Path(team.root / SHARES_FILE).write_text("{not json", encoding="utf-8")
    assert team.shared_with(BOB) == []
    Path(team.root / SHARES_FILE).write_text(json.dumps([{"owner": 1, "evil": True}, "x"]), encoding="utf-8")
    assert team.shared_with(BOB) == []


def test_token_workspaces_are_unchanged(tmp_path):
    token = "A" * 22 + "b" * 22
    ws = Workspace(token, tmp_path)
    assert not ws.read_only and ws.path == tmp_path / token
    info, _ = ws.add(CSV, "x.csv")
    ws.delete(info.id)
    assert ws.datasets() == []


# ---------------------------------------------------------------------------- operator settings


def test_token_links_and_booleans_are_parsed_strictly():
    assert OperatorSettings.load({}, {}).token_links is False
    assert OperatorSettings.load({"token_links": True}, {}).token_links is True
    for text, value in [
        ("true", True),
        ("YES", True),
        ("1", True),
        ("false", False),
        ("no", False),
        ("0", False),
    ]:
        assert OperatorSettings.load({}, {"CLUSTERLAB_TOKEN_LINKS": text}).token_links is value
    assert OperatorSettings.load({"token_links": True}, {"CLUSTERLAB_TOKEN_LINKS": "no"}).token_links is False
    for bad in ("ture", "on", "2", "enabled"):
        with pytest.raises(Exception, match=r"token_links .*CLUSTERLAB_TOKEN_LINKS.* expected true or false"):
            OperatorSettings.load({}, {"CLUSTERLAB_TOKEN_LINKS": bad})
    with pytest.raises(Exception, match="expected true or false"):
        OperatorSettings.load({"token_links": "sometimes"}, {})


def test_an_unknown_key_under_clusterlab_is_named_with_the_known_ones():
    with pytest.raises(Exception, match="unknown setting under \\[clusterlab\\].*: max_row") as caught:
        OperatorSettings.load({"max_row": 10}, {})
    assert "max_rows" in caught.value.hint and "token_links" in caught.value.hint
    with pytest.raises(Exception, match="unknown settings .*: a, b"):
        OperatorSettings.load({"b": 1, "a": 2}, {})


def test_the_auth_section_says_what_it_lacks():
    good = {
        "redirect_uri": "https://lab.example.org/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "clusterlab",
        "client_secret": "s",
        "server_metadata_url": "https://id.example.org/.well-known/openid-configuration",
    }
    check_auth_section(good)
    with pytest.raises(Exception, match=r"\[auth\] lacks cookie_secret, client_secret"):
        check_auth_section({k: v for k, v in good.items() if k not in ("cookie_secret", "client_secret")})
    with pytest.raises(Exception, match="not this app's sign-in address"):
        check_auth_section(good | {"redirect_uri": "https://lab.example.org/"})
    shared = {"redirect_uri": good["redirect_uri"], "cookie_secret": "x" * 32}
    named = {k: good[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    check_auth_section(shared | {"okta": named}, "okta")
    with pytest.raises(Exception, match=r"no \[auth.okta\] table"):
        check_auth_section(shared, "okta")


def test_opening_a_new_workspace_writes_nothing_until_the_first_upload(tmp_path):
    from pipeline.store import Tokens, Workspace

    root = tmp_path / "workspaces"
    tokens = Tokens.for_root(root)
    visits = [Workspace(tokens.new(), root, tokens=tokens) for _ in range(20)]  # 20 visits without a link
    assert list(root.glob("*")) == []  # no folder per visit
    assert all(ws.datasets() == [] and ws.usage_bytes() == 0 for ws in visits)
    info, _ = visits[0].add(b"comment\nhello\nworld\n", "a.csv")
    assert [d.id for d in visits[0].datasets()] == [info.id]
    assert Workspace(visits[0].token, root, tokens=tokens).datasets()[0].id == info.id
