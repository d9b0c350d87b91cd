"""Bad rows fail with their CSV line number; --skip-bad skips and counts them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avag_core.cli.main import main
from avag_core.data import AVAGDDataset, DataConfig
from avag_core.errors import AvagError

ROOT = Path(__file__).resolve().parent / "data" / "avagd"
HEADER = "image,audio,mask_func,mask_dep\n"


@pytest.fixture
def broken_root(tmp_path):
    """One good row (line 2) and three bad ones: missing image (3), bad audio (4), mask size (5)."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "hammer", root / "hammer")
    good = (ROOT / "examples.csv").read_text().splitlines()
    row = next(r for r in good if r.startswith("hammer/"))
    img, audio, func, dep = row.split(",")
    (root / "hammer/hit/broken.mp3").write_bytes(b"ID3 but not really an mp3" * 40)
    small = Image.fromarray(np.zeros((10, 10), np.uint8))
    small.save(root / "hammer/hit/small_mask.png")
    lines = [
        row,
        f"hammer/hit/gone.jpg,{audio},{func},{dep}",
        f"{img},hammer/hit/broken.mp3,{func},{dep}",
        f"{img},{audio},hammer/hit/small_mask.png,{dep}",
    ]
    (root / "bad.csv").write_text(HEADER + "\n".join(lines) + "\n")
    return root


def test_bad_row_fails_with_line_number(broken_root):
    with pytest.raises(AvagError, match=r"bad\.csv line 3: missing image file .*gone\.jpg"):
        AVAGDDataset(broken_root, "bad.csv", 32, train=False, cfg=DataConfig(cache_dir=""))


def test_skip_bad_skips_and_counts(broken_root):
    ds = AVAGDDataset(broken_root, "bad.csv", 32, train=False, cfg=DataConfig(cache_dir=""),
                      skip_bad=True)  # fmt: skip
    assert len(ds) == 1 and ds.rows[0].line == 2
    assert [line for line, _ in ds.bad_rows] == [3, 4, 5]
    reasons = dict(ds.bad_rows)
    assert "broken.mp3" in reasons[4]
    assert "10x10" in reasons[5] and "differs" in reasons[5]
    assert ds[0]["mask_func"].sum() > 0


def test_skip_bad_from_config(broken_root):
    ds = AVAGDDataset(broken_root, "bad.csv", 32, train=False,
                      cfg=DataConfig(cache_dir="", skip_bad=True))  # fmt: skip
    assert len(ds.bad_rows) == 3


def test_error_while_loading_names_line(broken_root):
    """A file that breaks after the up-front check still reports its CSV line."""
    ds = AVAGDDataset(broken_root, "bad.csv", 32, train=False, cfg=DataConfig(cache_dir=""),
                      skip_bad=True)  # fmt: skip
    target = ds.rows[0].audio
    target.write_bytes(b"\xff\xfb" + b"\x00" * 5)
    with pytest.raises(AvagError, match=r"line 2: .*"):
        ds[0]


def test_cli_check_reports_lines(broken_root, capsys):
    rc = main(["data", "check", "--data", str(broken_root), "--csv", "bad.csv"])
    out = capsys.readouterr().out
    assert rc == 1
    for line in (3, 4, 5):
        assert f"line {line}:" in out
    assert "line 2:" not in out
    assert "4 rows, 1 ok, 3 bad" in out
    assert (
        main(["data", "check", "--data", str(broken_root), "--csv", "bad.csv", "--skip-bad"]) == 0
    )


def test_cli_check_clean_csv(capsys):
    assert main(["data", "check", "--data", str(ROOT), "--csv", "examples.csv"]) == 0
    assert "10 rows, 10 ok, 0 bad" in capsys.readouterr().out


def test_missing_csv_and_columns(tmp_path, capsys):
    with pytest.raises(AvagError, match=r"nope\.csv"):
        AVAGDDataset(tmp_path, "nope.csv", 32, train=False)
    (tmp_path / "c.csv").write_text("image,audio\nx.jpg,y.wav\n")
    with pytest.raises(AvagError, match="lacks column"):
        AVAGDDataset(tmp_path, "c.csv", 32, train=False)
    assert main(["data", "check", "--data", str(tmp_path), "--csv", "c.csv"]) == 2
    assert "lacks column" in capsys.readouterr().err
