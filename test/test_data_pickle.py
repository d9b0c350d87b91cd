"""Feature pickles are read as tensors only; a pickle that would run code is refused."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from avag_core.data import AVAGDDataset, DataConfig, load_feature_pickle
from avag_core.errors import AvagError

ROOT = Path(__file__).resolve().parent / "data" / "avagd"


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_tensor_pickles_load(tmp_path, writer):
    t = torch.randn(20, 1, 96, 64)
    path = tmp_path / "f.pkl"
    if writer == "torch":
        torch.save(t, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(t, fh)
    got = load_feature_pickle(path)
    assert got.shape == (20, 96, 64) and torch.equal(got, t[:, 0])


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_code_executing_pickle_is_refused(tmp_path, writer):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pkl"
    if writer == "torch":
        torch.save(_Evil(marker), path)
    else:
        with path.open("wb") as fh:
            pickle.dump(_Evil(marker), fh)
    assert not marker.exists()
    with pytest.raises(AvagError, match=r"refused feature file .*evil\.pkl"):
        load_feature_pickle(path)
    assert not marker.exists()
    # Sanity: the file really would run code when unpickled without protection.
    if writer == "pickle":
        with path.open("rb") as fh:
            pickle.load(fh)
        assert marker.exists()


def test_non_tensor_and_wrong_shape_refused(tmp_path):
    torch.save({"x": torch.zeros(2, 96, 64)}, tmp_path / "d.pkl")
    with pytest.raises(AvagError, match="not a tensor"):
        load_feature_pickle(tmp_path / "d.pkl")
    torch.save(torch.zeros(2, 50, 64), tmp_path / "s.pkl")
    with pytest.raises(AvagError, match=r"shape \[2, 50, 64\]"):
        load_feature_pickle(tmp_path / "s.pkl")
    (tmp_path / "g.pkl").write_bytes(b"garbage")
    with pytest.raises(AvagError, match=r"g\.pkl"):
        load_feature_pickle(tmp_path / "g.pkl")


def test_dataset_reads_pkl_column(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(ROOT / "axe", root / "axe")
    row = next(r for r in (ROOT / "examples.csv").read_text().splitlines() if r.startswith("axe/"))
    feats = torch.randn(5, 1, 96, 64)
    torch.save(feats, root / "axe/chop/feat.pkl")
    (root / "p.csv").write_text(f"image,audio,mask_func,mask_dep,pkl\n{row},axe/chop/feat.pkl\n")
    ds = AVAGDDataset(root, "p.csv", 32, train=False, cfg=DataConfig(cache_dir="", use_pkl=True))
    assert torch.equal(ds[0]["audio"], feats[:, 0]) and ds.cache.decodes == 0
