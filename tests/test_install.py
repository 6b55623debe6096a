"""The installed project, used from a folder outside the checkout: `import pipeline`, the `clusterlab`
command (`run`, `plan`, `app`) and the app it starts with the project's own settings.

`make run` and `make test` install the project into .venv (`pip install -e .`); these tests run
the installed command from a temporary folder, with no PYTHONPATH, as a user would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import topic_texts

from pipeline import launch
from pipeline.errors import ConfigError
from pipeline.store import SECRET_FILE

CHECKOUT = Path(__file__).resolve().parents[1]
CLUSTERLAB = Path(sys.executable).with_name("clusterlab")
PROJECT_PRIMARY_COLOR = "#3b6fb6"  # [theme] in the project's .streamlit/config.toml


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder outside the checkout, where `pipeline` is importable only if it is installed."""
    assert CHECKOUT not in tmp_path.resolve().parents
    if not CLUSTERLAB.exists():
        pytest.fail(f"{CLUSTERLAB} is missing: install the project (`make install`, or `pip install -e .`)")
    return tmp_path


def user_env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("CLUSTERLAB_")}
    env["CLUSTERLAB_CACHE_DIR"] = str(folder / "cache")
    env["CLUSTERLAB_WORKSPACES_DIR"] = str(folder / "workspaces")
    return {**env, **extra}


def run(command: list[str], folder: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=folder, env=user_env(folder, **env), capture_output=True, text=True, timeout=timeout
    )


def test_pipeline_imports_and_the_command_answers_from_any_folder(elsewhere):
    found = run(
        [sys.executable, "-c", "import pipeline, sys; print(pipeline.__file__); print(sys.path)"], elsewhere
    )
    assert found.returncode == 0, found.stderr
    module, path = found.stdout.splitlines()
    assert Path(module).resolve() == CHECKOUT / "pipeline" / "__init__.py"
    assert repr(str(CHECKOUT)) not in path  # imported through the install, not a path entry

    top = run([str(CLUSTERLAB), "--help"], elsewhere)
    assert top.returncode == 0 and top.stdout.startswith("usage: clusterlab")
    assert "{run,plan,app}" in top.stdout
    for command in ("run", "plan"):  # the very options of `python -m pipeline`
        installed = run([str(CLUSTERLAB), command, "--help"], elsewhere)
        module = run(
            [sys.executable, "-m", "pipeline", command, "--help"],
            CHECKOUT,
            CLUSTERLAB_CACHE_DIR=str(elsewhere / "cache"),  # named in the help
        )
        assert installed.returncode == module.returncode == 0
        same = module.stdout.replace("python -m pipeline", "clusterlab")
        assert installed.stdout.split() == same.split()  # the same words; the usage wraps elsewhere
        assert "--text-column" in installed.stdout


def test_clusterlab_run_writes_the_labeled_table_from_another_folder(elsewhere):
    texts, _ = topic_texts(n_per_topic=12)
    pd.DataFrame({"comment": texts}).to_csv(elsewhere / "answers.csv", index=False)
    done = run(
        [
            str(CLUSTERLAB),
            "run",
            "answers.csv",
            "--text-column",
            "comment",
            "--out",
            "out/labeled.csv",
            "--quiet",
        ],
        elsewhere,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "48 rows ->" in done.stdout
    table = pd.read_csv(elsewhere / "out" / "labeled.csv")
    assert len(table) == 48 and {"comment", "cluster_id", "cluster_label"} <= set(table.columns)
    assert (elsewhere / "out" / "labeled.clusters.csv").exists()
    assert (elsewhere / "cache" / "clusterlab.log").exists()  # $CLUSTERLAB_CACHE_DIR, not the checkout's


def test_clusterlab_app_with_a_wrong_setting_says_which_and_does_not_start(elsewhere):
    done = run([str(CLUSTERLAB), "app", "--port", "1"], elsewhere, timeout=30, CLUSTERLAB_MAX_ROWS="-1")
    assert done.returncode == 2
    assert "max_rows" in done.stderr and "CLUSTERLAB_MAX_ROWS" in done.stderr and "'-1'" in done.stderr
    assert "Traceback" not in done.stderr and "streamlit" not in done.stdout.lower()


def test_operator_settings_in_secrets_toml_are_checked_like_the_app_checks_them(tmp_path):
    secrets = tmp_path / "secrets.toml"
    assert launch.check_settings(secrets, environ={}).max_rows == 2_000_000  # no file: the defaults
    secrets.write_text('OPENAI_API_KEY = "sk-x"\n[clusterlab]\nmax_rows = 10\n')
    assert launch.check_settings(secrets, environ={}).max_rows == 10
    assert launch.check_settings(secrets, environ={"CLUSTERLAB_MAX_ROWS": "20"}).max_rows == 20
    secrets.write_text("[clusterlab]\nworkspace_quota_gb = -3\n")
    with pytest.raises(ConfigError, match="workspace_quota_gb"):
        launch.check_settings(secrets, environ={})
    secrets.write_text("[clusterlab\nmax_rows = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        launch.check_settings(secrets, environ={})
    secrets.write_text('clusterlab = "yes"\n')
    with pytest.raises(ConfigError, match=r"\[clusterlab\]"):
        launch.check_settings(secrets, environ={})


def test_relative_data_folders_stay_where_the_command_was_typed(tmp_path):
    env = {"CLUSTERLAB_WORKSPACES_DIR": "ws", "CLUSTERLAB_CACHE_DIR": "", "OTHER": "x"}
    launch.absolute_folders(env, tmp_path)
    assert env == {
        "CLUSTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"),
        "CLUSTERLAB_CACHE_DIR": "",
        "OTHER": "x",
    }


def first_session(url: str, timeout_s: float = 60):
    """Open the app's websocket as the browser does, ask for the page and return the NewSession
    message (the server's settings as the browser gets them) and the kinds of messages up to the
    end of the script run."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    session, kinds = None, []
    with connect(url, subprotocols=["streamlit"], open_timeout=10) as socket:
        ask = BackMsg()
        ask.rerun_script.query_string = ""
        ask.rerun_script.page_script_hash = ""
        socket.send(ask.SerializeToString())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and "script_finished" not in kinds:
            message = ForwardMsg()
            message.ParseFromString(socket.recv(timeout=deadline - time.monotonic()))
            kinds.append(message.WhichOneof("type"))
            if kinds[-1] == "new_session":
                session = message.new_session
    return session, kinds


def wait_healthy(base: str, process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"clusterlab app exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.3)
    pytest.fail(f"clusterlab app did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def test_clusterlab_app_serves_the_app_with_the_projects_settings_from_another_folder(elsewhere):
    from streamlit.proto.NewSession_pb2 import Config

    from pipeline.bench_browser import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = elsewhere / "app.log"
    env = user_env(elsewhere, CLUSTERLAB_WORKSPACES_DIR="workspaces")  # relative: to this folder
    with open(log, "wb") as out:
        # an option clusterlab does not know goes to streamlit: it wins over the project's file
        process = subprocess.Popen(
            [str(CLUSTERLAB), "app", "--port", str(port), "--client.toolbarMode", "viewer"],
            cwd=elsewhere,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(base, process, log)
        # the server's warm-up starts with the process, before anyone opens a page (here the
        # imports only: conftest turns the model's preload off for the tests)
        deadline = time.monotonic() + 60
        while "server warmed in" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "server warmed in" in log.read_text(), log.read_text()[-3000:]
        with urllib.request.urlopen(base + "/", timeout=10) as page:
            assert page.status == 200 and b'<div id="root">' in page.read()
        session, kinds = first_session(f"ws://127.0.0.1:{port}/_stcore/stream")
        assert session is not None, kinds
        assert Path(session.main_script_path) == CHECKOUT / "app.py"
        assert session.custom_theme.primary_color == PROJECT_PRIMARY_COLOR  # the project's config.toml
        assert session.config.toolbar_mode == Config.ToolbarMode.VIEWER  # the extra option
        assert "delta" in kinds and kinds[-1] == "script_finished"
        # the app ran with its workspaces in the folder the command was typed in: the links'
        # secret is made beside that folder, and a visit without an upload writes no workspace
        assert (elsewhere / SECRET_FILE).is_file()
        assert not (elsewhere / "workspaces").exists() or not any((elsewhere / "workspaces").iterdir())
        assert process.poll() is None
        assert log.read_text().count("server warmed in") == 1  # the page view started no second one
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_a_broken_sign_in_section_stops_clusterlab_app_before_it_starts(tmp_path):
    from pipeline import ConfigError, launch

    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="lacks") as info:
        launch.check_settings(secrets, environ={})
    assert "cookie_secret" in info.value.message and info.value.stage == "settings"
