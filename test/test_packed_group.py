"""OpenClonk's packed sound group (openclonk-data's Sound.ocg): read without OpenClonk's
tools, unpacked once, and its recordings reach training as a ``--more-recordings`` group."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import soundfile as sf

from avag_core.data.packed_group import read_group, unpack_group
from avag_core.events.onset_data import OC_SOUND

SOUND = Path(OC_SOUND)
needs_sound = pytest.mark.skipif(not SOUND.is_file(), reason="openclonk-data is not installed (apt-get install openclonk-data)")


@needs_sound
def test_the_sound_group_reads_as_files_of_real_audio(tmp_path):
    members = dict(read_group(SOUND))
    assert len(members) > 300
    assert "CC Attribution 3.0" in members["authors.txt"].decode("utf-8", "replace")
    fire = tmp_path / "Fire.ogg"
    fire.write_bytes(members["Fire.ocg/Fire.ogg"])  # a sub-group's file
    audio, sr = sf.read(fire)
    assert sr == 44100 and 9.0 < len(audio) / sr < 9.7 and abs(audio).max() > 0.1
    glass = tmp_path / "GlassBreak.ogg"
    glass.write_bytes(members["Hits.ocg/Materials.ocg/Glass.ocg/GlassBreak.ogg"])  # three groups deep
    assert sf.info(glass).frames > 0


@needs_sound
def test_a_group_is_unpacked_once_and_found_by_its_folder_in_training_sources(tmp_path, monkeypatch):
    from avag_core.events import onset_data

    monkeypatch.setenv("AVAG_CACHE_DIR", str(tmp_path))
    folder = unpack_group(SOUND, tmp_path / "unpacked")
    fire = folder / "Fire.ocg" / "Fire.ogg"
    stamp = fire.stat().st_mtime_ns
    assert unpack_group(SOUND, tmp_path / "unpacked") == folder and fire.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "unpacked").iterdir()] == [folder.name]  # no temporary left
    plain, more = onset_data.training_sources(), onset_data.training_sources(("openclonk",))
    assert len(more["action"]) - len(plain["action"]) > 50 and str(fire) in more["ambient"]
    monkeypatch.setattr(onset_data, "MORE_RECORDINGS", {"fire": (("ambient", str(SOUND), "Fire.ocg/Fire.ogg", 1),)})
    assert onset_data.training_sources(("fire",))["ambient"] == [*plain["ambient"], str(fire)]


def test_a_file_that_is_no_group_is_refused_in_one_line(tmp_path):
    plain = tmp_path / "Sound.ocg"
    plain.write_bytes(b"OggS" + bytes(300))
    with pytest.raises(ValueError, match=r"Sound\.ocg: not an OpenClonk packed group \(it starts 4f67, not 1e8c\)"):
        list(read_group(plain))
    broken = tmp_path / "broken.ocg"
    broken.write_bytes(b"\x1e\x8c" + bytes(64))
    with pytest.raises(ValueError, match=r"broken\.ocg: a packed group whose stream does not inflate"):
        list(read_group(broken))
    other = tmp_path / "other.ocg"  # the group's gzip stream holding something else
    other.write_bytes(b"\x1e\x8c" + gzip.compress(bytes(300))[2:])
    with pytest.raises(ValueError, match=r"other\.ocg: not an OpenClonk group \(no group header at its start\)"):
        list(read_group(other))
    with pytest.raises(ValueError, match=r"other\.ocg: not an OpenClonk group"):  # unpacking it leaves nothing
        unpack_group(other, tmp_path / "unpacked")
    assert list((tmp_path / "unpacked").iterdir()) == []


def test_training_on_a_damaged_group_stops_before_it_starts_in_one_line(tmp_path, monkeypatch, capsys):
    from avag_core.events import onset_data, train_onset

    damaged = tmp_path / "Sound.ocg"
    damaged.write_bytes(b"\x1e\x8c" + bytes(64))
    monkeypatch.setitem(onset_data.MORE_RECORDINGS, "damaged", (("ambient", str(damaged), "*.ogg", 1),))
    monkeypatch.setenv("AVAG_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as stop:
        train_onset.main(["--out", str(tmp_path / "w.safetensors"), "--more-recordings", "damaged"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and "Sound.ocg: a packed group whose stream does not inflate" in err[-1], err
    assert not (tmp_path / "w.safetensors").exists()
