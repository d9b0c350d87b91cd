#!/usr/bin/env bash
# Rooms for `hearing_bench --room`: long real recordings (24-102 s each, not the few-second
# game loops of the hearing benchmark's backgrounds) from four Debian packages that neither
# the benchmark nor the onset model's training plays.
#
#   scripts/real_rooms.sh DIR    downloads the packages into DIR/debs (apt-get download: no root,
#                                nothing installed; about 1 GB, mostly supertuxkart-data), unpacks
#                                them there and links each room's recordings into DIR/<room>/,
#                                then prints the hearing_bench command that scores them.
#
# rainfall flare-game  mods/empyrean_campaign/soundfx/environment/rain.ogg (65 s)   CC-BY-SA-3.0+
#          megaglest-data  tilesets/mediterran/sounds/rain.ogg (24.5 s)             CC-BY-SA-3.0
# street   btanks-data  data/sounds/ambient/city.ogg (60 s)                         GPL with the Battle Tanks exception
# hum      supertuxkart-data  data/sfx/spaceship.ogg (28 s; engine hum)             CC-BY-SA-3.0
#          supertuxkart-data  data/sfx/static-radio.ogg (102 s; radio static)       CC-BY-3.0
# wind     flare-game  mods/fantasycore/soundfx/environment/wind_loop.ogg (50 s)   CC-BY-SA-3.0+
# (each package's usr/share/doc/<package>/copyright, unpacked beside the recordings). The shipped
# onset model never heard them: its training plays megaglest's ambiences only with
# `train_onset --more-recordings megaglest-ambient`, a trial that was not shipped. Not here:
# supertuxkart's sara_airport_pa.ogg, an airport hall that is a montage, its stretches joined
# by seconds of digital zeros (each sound coming back out of them is heard as a new sound, as
# it should be: docs/hearing.md, "Digital silence").
set -euo pipefail

out="${1:-}"
if [[ -z "$out" || "$out" == -h || "$out" == --help ]]; then
  sed -n '2,9p' "$0"
  [[ -n "$out" ]] && exit 0 || exit 2
fi
debs="$out/debs"
mkdir -p "$debs/x"
packages=(flare-game megaglest-data btanks-data supertuxkart-data)
for p in "${packages[@]}"; do
  if ! compgen -G "$debs/${p}_*.deb" >/dev/null; then
    (cd "$debs" && apt-get download "$p" >/dev/null) ||
      { echo "real_rooms.sh: apt-get download $p failed (run apt-get update as root first?)" >&2; exit 1; }
  fi
  if [[ ! -e "$debs/x/.$p" ]]; then  # unpacked once; a second run only links
    dpkg-deb -x "$(compgen -G "$debs/${p}_*.deb" | head -1)" "$debs/x" && touch "$debs/x/.$p"
  fi
done
g="$debs/x/usr/share/games"
room() {  # room NAME FILE...: links the recordings into DIR/NAME
  local name="$1"; shift
  mkdir -p "$out/$name"
  for f in "$@"; do
    [[ -f "$f" ]] || { echo "real_rooms.sh: $f is not in its package (another version?)" >&2; exit 1; }
    local rel="${f#"$g"/}"
    ln -sfn "$f" "$out/$name/${rel%%/*}_$(basename "$f")"  # e.g. flare_rain.ogg
  done
}
room rainfall "$g/flare/mods/empyrean_campaign/soundfx/environment/rain.ogg" "$g/megaglest/tilesets/mediterran/sounds/rain.ogg"
room street "$g/btanks/data/sounds/ambient/city.ogg"
room hum "$g/supertuxkart/data/sfx/spaceship.ogg" "$g/supertuxkart/data/sfx/static-radio.ogg"
room wind "$g/flare/mods/fantasycore/soundfx/environment/wind_loop.ogg"
echo "rooms in $out: rainfall street hum wind; score them with"
echo "python -m avag_core.benchmarks.hearing_bench $(for r in rainfall street hum wind; do printf -- '--room %s=%s ' "$r" "$out/$r"; done)--json real_rooms.json"
