"""The real recordings the hearing benchmark plays: two disjoint sets.

``bench`` is the benchmark of the README table (issue "Hearing in real rooms"). ``heldout``
is a second, smaller set from Debian packages that neither the benchmark nor training
uses (Scratch's sound library, Extreme Tux Racer, LBreakout2, Tux Typing), with its own
espeak-ng voices and text: a recipe that only learned the benchmark's or the training's
recordings shows it here. Training (``avag_core.events.onset_data``) leaves out every file
of both sets and every variant of one. The held-out actions are physical sounds (no
buzzers or voices) whose onset is not a matter of definition: each reaches within 20 dB
of its loudest 10 ms within 80 ms of becoming audible (40 dB below it), as every action of
the README's set does (Scratch's Plunge and LBreakout2's wall start 250 and 90 ms before
that: left out).

Licences: lincity-ng-data GPL-2+, tuxpaint GPL-2+, frozen-bubble GPL-2, pingus GPL-2+,
heroes GPL-2+, sound-theme-freedesktop CC-BY-SA 3.0 / CC-BY 3.0, openclonk-data
CC-BY 3.0 / ISC; scratch (its Media/) CC-BY-SA 3.0, extremetuxracer-data GPL-2+,
lbreakout2-data GPL, tuxtype-data GPL-2 (each package's /usr/share/doc/*/copyright).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

LC = "/usr/share/games/lincity-ng/sounds/"
TP = "/usr/share/tuxpaint/sounds/"
FB = "/usr/share/games/frozen-bubble/snd/"
PG = "/usr/share/games/pingus/data/sounds/"
HE = "/usr/share/games/heroes/sfx/"
FD = "/usr/share/sounds/freedesktop/stereo/"
OC = "/usr/share/games/openclonk/Music.ocg/"
LM = "/usr/share/games/lincity-ng/music/default/"
SC = "/usr/share/scratch/Media/Sounds/"
ETR = "/usr/share/games/etr/"
LB = "/usr/share/games/lbreakout2/sounds/"
TT = "/usr/share/tuxtype/sounds/"


@dataclass(frozen=True)
class RecordingSet:
    """Action sounds and backgrounds of one benchmark set.

    ``actions``: (Debian package, path), one physical action each (<= 2 s used);
    ``backgrounds``: name -> (Debian packages, paths); "speech" is espeak-ng reading
    ``text`` in ``voices``, "white" and "pink" are generated.
    """

    name: str
    actions: tuple[tuple[str, str], ...]
    backgrounds: dict[str, tuple[str, tuple[str, ...]]]
    voices: tuple[str, ...]
    text: str

    @property
    def apt(self) -> str:
        """The Debian packages to install: espeak-ng, then each package once, in order of use."""
        names = [p for p, _ in self.actions] + [q.strip() for p, _ in self.backgrounds.values() for q in p.split(",")]
        return " ".join(dict.fromkeys(["espeak-ng", *names]))

    def files(self) -> list[str]:
        return [p for _, p in self.actions] + [p for _, ps in self.backgrounds.values() for p in ps]

    def missing(self) -> list[str]:
        """Files (and tools) this set needs that the machine does not have."""
        missing = [p for p in self.files() if not Path(p).is_file()]
        if shutil.which("espeak-ng") is None:
            missing.append("espeak-ng")
        return missing


BENCH = RecordingSet(
    name="bench",
    actions=(
        *[("lincity-ng-data", LC + f) for f in (
            "Build2.wav", "Raze1.wav", "Raze2.wav", "Raze3.wav", "Pottery1.wav", "Pottery2.wav", "Click.wav",
            "WindowClose.wav", "WindowOpen.wav", "SubstationOn.wav", "SubstationOff.wav")],
        *[("tuxpaint-data", TP + f) for f in (
            "click.wav", "keyclick.wav", "stamp.wav", "eraser1.wav", "flip.wav", "scroll.wav", "fill.wav")],
        *[("tuxpaint-plugins-default", TP + "magic/" + f) for f in (
            "brick.wav", "blocks.wav", "puzzle.wav", "snowball.ogg", "drip.wav", "chalk.wav", "fold.wav",
            "smudge.wav", "metalpaint.wav")],
        *[("frozen-bubble-data", FB + f) for f in ("launch.ogg", "rebound.ogg", "stick.ogg", "typewriter.ogg")],
        *[("pingus-data", PG + f) for f in ("chink.wav", "tick.wav", "plop.wav", "splash.wav", "digger.wav")],
        *[("heroes-sound-effects", HE + f) for f in ("ecrase02.wav", "coins.wav")],
        *[("sound-theme-freedesktop", FD + f) for f in ("camera-shutter.oga", "trash-empty.oga")],
    ),
    backgrounds={
        "music": ("openclonk-data, lincity-ng-data, frozen-bubble-data", (
            OC + "Cavern.ogg", OC + "Motorway.ogg", OC + "UrbanBolero.ogg", OC + "TheSkylands.ogg",
            LM + "02 - Robert van Herk - City Blues.ogg", FB + "introzik.ogg")),
        "rain": ("tuxpaint-plugins-default, lincity-ng-data", (
            TP + "magic/rain.ogg", LC + "Water1.wav", LC + "Water2.wav")),
        "machine": ("lincity-ng-data", tuple(LC + f for f in (
            "IndustryHigh1.wav", "IndustryHigh3.wav", "PowerCoalFull.wav", "Mill1.wav", "CoalMine1.wav"))),
        "crackle": ("lincity-ng-data", (LC + "Fire1.wav", LC + "Fire2.wav", LC + "Fire3.wav")),
        "traffic": ("lincity-ng-data", (LC + "TraficHigh1.wav", LC + "TraficHigh3.wav", LC + "TraficLow1.wav")),
    },
    voices=("en-us", "en+f3", "en-gb-scotland", "de", "fr+f2", "es+m3"),
    text="/usr/share/common-licenses/GPL-3",
)

HELDOUT = RecordingSet(
    name="heldout",
    actions=(
        *[("scratch", SC + f) for f in (
            "Effects/DoorClose.mp3", "Effects/DoorCreak.wav", "Effects/Pop.wav",
            "Effects/Rattle.wav", "Effects/Typing.mp3", "Effects/BalloonScratch.mp3", "Human/FingerSnap.wav",
            "Percussion/DrumBuzz.wav", "Percussion/RideCymbal.wav", "Percussion/Shaker.wav", "Percussion/Gong.wav",
            "Instruments/GuitarStrum.wav")],
        ("extremetuxracer-data", ETR + "sounds/tree_hit.wav"),
        *[("lbreakout2-data", LB + f) for f in ("metal.wav", "shot.wav")],
        *[("tuxtype-data", TT + f) for f in ("bite.wav", "splat.wav", "tock.wav", "pop.wav")],
    ),
    backgrounds={
        "music": ("extremetuxracer-data, tuxtype-data, scratch", (
            ETR + "music/calmrace-ks.ogg", ETR + "music/freezingpoint.ogg", ETR + "music/spunkyrace-ks.ogg",
            ETR + "music/start1-jt.ogg", TT + "chiptune2.ogg", TT + "tuxi.ogg",
            SC + "Music Loops/GuitarChords1.mp3", SC + "Music Loops/Medieval1.mp3", SC + "Music Loops/HipHop.mp3",
            SC + "Music Loops/Techno.mp3", SC + "Music Loops/Garden.mp3")),
        "sliding": ("extremetuxracer-data", tuple(ETR + "sounds/" + f for f in (
            "rock_slide.wav", "mud_slide.wav", "leaves_slide.wav", "snow_slide.wav", "ice_slide.wav"))),
        "engines": ("scratch", (SC + "Effects/SewingMachine.mp3", SC + "Effects/MotorcyclePassing.wav",
                                SC + "Effects/CarPassing.wav", SC + "Electronic/DirtyWhir.wav")),
        "crowd": ("scratch", (SC + "Human/PartyNoise.wav", SC + "Animal/Crickets.wav")),
    },
    voices=("en-gb-x-gbclan", "en-us+m7", "da", "fi+f1", "ro", "hu+m2"),
    text="/usr/share/common-licenses/LGPL-2.1",
)

SETS = {s.name: s for s in (BENCH, HELDOUT)}
