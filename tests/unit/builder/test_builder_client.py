"""The notebook client's local logic: identity, path mapping (where symlink escapes are caught), SSE parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.client import BuildError, iter_sse, main, read_identity, volume_path


def test_identity_is_read_from_the_service_account_dir(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "namespace").write_text("alice")
    ident = read_identity(tmp_path)
    assert (ident.token, ident.namespace) == ("tok", "alice")


def test_missing_identity_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="service-account token"):
        read_identity(tmp_path)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / "proj" / "sub").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    return tmp_path / "home"


def test_folders_map_to_volume_relative_paths(home: Path) -> None:
    assert volume_path(home / "proj", home) == "proj"
    assert volume_path(home / "proj" / "sub", home) == "proj/sub"
    assert volume_path(home, home) == ""
    assert volume_path(home / "proj" / ".." / "proj", home) == "proj"


def test_a_symlink_leading_out_of_the_volume_is_refused(home: Path) -> None:
    os.symlink(home.parent / "other", home / "escape")
    with pytest.raises(BuildError, match="outside the workspace volume"):
        volume_path(home / "escape", home)


def test_a_symlink_inside_the_volume_maps_to_its_target(home: Path) -> None:
    os.symlink(home / "proj" / "sub", home / "shortcut")
    assert volume_path(home / "shortcut", home) == "proj/sub"


def test_paths_outside_the_volume_and_files_are_refused(home: Path) -> None:
    with pytest.raises(BuildError, match="outside"):
        volume_path(home.parent / "other", home)
    (home / "file").write_text("x")
    with pytest.raises(BuildError, match="not a directory"):
        volume_path(home / "file", home)


def test_sse_parsing() -> None:
    lines = ["retry: 3000", "", "id: 0", 'data: {"phase": "waiting"}', "", ": heartbeat", "",
             "id: 1", 'data: {"phase": "log", "message": "x"}', ""]
    assert list(iter_sse(iter(lines))) == [("0", {"phase": "waiting"}), (None, None),
                                           ("1", {"phase": "log", "message": "x"})]


def test_cli_without_a_volume_fails_with_a_message(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BUILDER_WORKSPACE_PVC", raising=False)
    monkeypatch.delenv("NBP_WORKSPACE_PVC", raising=False)
    assert main([str(home / "proj"), "registry.local:5000/alice/app"]) == 1
    assert "BUILDER_WORKSPACE_PVC" in capsys.readouterr().err


def test_in_a_hub_notebook_the_hubs_variables_stand_in_for_unset_builder_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.client import _env

    for name in ("BUILDER_WORKSPACE_PVC", "NBP_WORKSPACE_PVC"):
        monkeypatch.delenv(name, raising=False)
    assert _env("BUILDER_WORKSPACE_PVC", "NBP_WORKSPACE_PVC") is None
    assert _env("BUILDER_WORKSPACE_PVC", "NBP_WORKSPACE_PVC", "d") == "d"
    monkeypatch.setenv("NBP_WORKSPACE_PVC", "workspace")
    assert _env("BUILDER_WORKSPACE_PVC", "NBP_WORKSPACE_PVC") == "workspace"
    monkeypatch.setenv("BUILDER_WORKSPACE_PVC", "mine")
    assert _env("BUILDER_WORKSPACE_PVC", "NBP_WORKSPACE_PVC") == "mine"
