"""CSV paths stay inside the data root; every skipped row is printed with its line and
reason (refused feature pickles included); empty audio files get a plain message."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from avag_core.cli.main import main
from avag_core.data import AVAGDDataset, DataConfig
from avag_core.data.audio_io import audio_info, load_audio
from avag_core.errors import AvagError

ROOT = Path(__file__).resolve().parent / "data" / "avagd"
HEADER = "image,audio,mask_func,mask_dep\n"


class _RunsCode:
    """Unpickling this would call os.system: a feature file must never do that."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture
def roots(tmp_path):
    """A data root with one good row and a copy of the same files outside the root."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "hammer", root / "hammer")
    outside = tmp_path / "elsewhere"
    shutil.copytree(ROOT / "hammer", outside / "hammer")
    good = next(r for r in (ROOT / "examples.csv").read_text().splitlines()
                if r.startswith("hammer/"))  # fmt: skip
    return root, outside, good


def test_paths_outside_the_root_are_refused_unless_allowed(roots, capsys):
    root, outside, good = roots
    img, audio, func, dep = good.split(",")
    lines = [
        good,
        f"{outside / img},{audio},{func},{dep}",  # absolute path
        f"{img},../elsewhere/{audio},{func},{dep}",  # climbs out with ..
        f"{img},{audio},hammer/../../elsewhere/{func},{dep}",
        f"{img},{audio},{func},hammer/hit/../hit/{Path(dep).name}",  # stays inside: fine
    ]
    (root / "c.csv").write_text(HEADER + "\n".join(lines) + "\n")
    with pytest.raises(AvagError, match=r"c\.csv line 3: image path .* is outside the data root"):
        AVAGDDataset(root, "c.csv", 32, train=False, cfg=DataConfig(cache_dir=""))
    ds = AVAGDDataset(root, "c.csv", 32, train=False,
                      cfg=DataConfig(cache_dir="", skip_bad=True))  # fmt: skip
    assert [r.line for r in ds.rows] == [2, 6]
    assert [line for line, _ in ds.bad_rows] == [3, 4, 5]
    err = capsys.readouterr().err
    for line, col in ((3, "image"), (4, "audio"), (5, "mask_func")):
        assert f"skipped {root / 'c.csv'} line {line}: {col} path" in err
    assert "skipped 3 bad row(s), using 2" in err
    allowed = AVAGDDataset(root, "c.csv", 32, train=False,
                           cfg=DataConfig(cache_dir="", allow_outside_root=True))  # fmt: skip
    assert len(allowed) == 5 and allowed[1]["mask_func"].shape == (1, 32, 32)
    # avag data check reports the same rows, and accepts them with the flag
    assert main(["data", "check", "--data", str(root), "--csv", "c.csv", "--shallow"]) == 1
    out = capsys.readouterr().out
    assert "line 3:" in out and "line 4:" in out and "line 5:" in out and "line 6:" not in out
    assert main(["data", "check", "--data", str(root), "--csv", "c.csv", "--shallow",
                 "--allow-outside-root"]) == 0  # fmt: skip


def test_refused_feature_pickles_are_skipped_with_their_line(roots, tmp_path, capsys):
    root, _, good = roots
    ok = root / "hammer/hit/ok.pkl"
    with ok.open("wb") as fh:
        pickle.dump(torch.zeros(2, 1, 96, 64), fh)
    with (root / "hammer/hit/evil.pkl").open("wb") as fh:
        pickle.dump(_RunsCode(), fh)
    torch.save({"not": "a tensor"}, root / "hammer/hit/dict.pkl")
    rows = [f"{good},hammer/hit/ok.pkl", f"{good},hammer/hit/evil.pkl",
            f"{good},hammer/hit/dict.pkl"]  # fmt: skip
    (root / "p.csv").write_text(HEADER.strip() + ",pkl\n" + "\n".join(rows) + "\n")
    with pytest.raises(AvagError, match=r"p\.csv line 3: refused feature file .*evil\.pkl"):
        AVAGDDataset(root, "p.csv", 32, train=False, cfg=DataConfig(cache_dir="", use_pkl=True))
    ds = AVAGDDataset(root, "p.csv", 32, train=False,
                      cfg=DataConfig(cache_dir="", use_pkl=True, skip_bad=True))  # fmt: skip
    assert [r.line for r in ds.rows] == [2]
    err = capsys.readouterr().err
    assert "line 3: refused feature file" in err and "evil.pkl" in err
    assert "line 4: refused feature file" in err and "dict.pkl" in err
    assert ds[0]["audio"].shape == (2, 96, 64)


def test_empty_audio_file_says_empty(tmp_path):
    empty = tmp_path / "silence.mp3"
    empty.write_bytes(b"")
    for fn in (load_audio, audio_info):
        with pytest.raises(AvagError, match=r"silence\.mp3 is empty \(0 bytes\)$"):
            fn(empty)
