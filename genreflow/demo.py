"""A generated, deterministic demo set with GTZAN's genres and layout.

Each genre has its own tempo range, rhythm, timbre and harmony, so the study's features separate
them well above chance without being trivial: keys, tempi, melodies and mix levels vary per track.
"""

from __future__ import annotations

import zlib

import numpy as np

from genreflow.constants import SR

# swing: how late the off-beat 8th notes come, in 8ths; offbeat: chords on the off-beats; drive: distortion
GENRE_STYLES = {
    "blues": dict(bpm=(70, 95), swing=0.33, chord="dom7", timbre="saw", drums="shuffle", offbeat=False, drive=0.3, noise=0.01, bass="walk"),
    "classical": dict(bpm=(55, 80), swing=0.0, chord="major", timbre="sine", drums=None, offbeat=False, drive=0.0, noise=0.0, bass="sustain"),
    "country": dict(bpm=(95, 120), swing=0.0, chord="major", timbre="pluck", drums="train", offbeat=False, drive=0.0, noise=0.005, bass="root5"),
    "disco": dict(bpm=(115, 128), swing=0.0, chord="minor7", timbre="square", drums="four", offbeat=True, drive=0.0, noise=0.005, bass="octave"),
    "hiphop": dict(bpm=(80, 95), swing=0.15, chord="minor", timbre="sine", drums="boombap", offbeat=False, drive=0.1, noise=0.01, bass="sub"),
    "jazz": dict(bpm=(120, 170), swing=0.33, chord="maj7", timbre="triangle", drums="ride", offbeat=False, drive=0.0, noise=0.003, bass="walk"),
    "metal": dict(bpm=(150, 190), swing=0.0, chord="power", timbre="saw", drums="double", offbeat=False, drive=0.9, noise=0.03, bass="root"),
    "pop": dict(bpm=(100, 120), swing=0.0, chord="major", timbre="square", drums="backbeat", offbeat=False, drive=0.05, noise=0.005, bass="root"),
    "reggae": dict(bpm=(65, 85), swing=0.1, chord="minor", timbre="square", drums="onedrop", offbeat=True, drive=0.0, noise=0.005, bass="sub"),
    "rock": dict(bpm=(110, 140), swing=0.0, chord="power", timbre="saw", drums="backbeat", offbeat=False, drive=0.6, noise=0.015, bass="root"),
}

CHORDS = {"major": (0, 4, 7), "minor": (0, 3, 7), "dom7": (0, 4, 7, 10), "minor7": (0, 3, 7, 10),
          "maj7": (0, 4, 7, 11), "power": (0, 7, 12)}
PROGRESSIONS = ((0, 5, 7, 5), (0, 9, 5, 7), (0, 7, 9, 5), (0, 5, 0, 7))
# drum hits per 16th step of a bar: kick, snare, hat
DRUM_PATTERNS = {
    "four": ("x...x...x...x...", "....x.......x...", "..x...x...x...x."),
    "backbeat": ("x.......x.x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "boombap": ("x......x..x.....", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "shuffle": ("x.....x.x.....x.", "....x.......x...", "x..xx..xx..xx..x"),
    "train": ("x.......x.......", "..x.x.x...x.x.x.", "xxxxxxxxxxxxxxxx"),
    "ride": ("x.........x.....", ".......x........", "x..xx..xx..xx..x"),
    "double": ("xxxxxxxxxxxxxxxx", "....x.......x...", "x.x.x.x.x.x.x.x."),
    "onedrop": ("........x.......", "........x.......", "..x...x...x...x."),
}


def generate_track(genre, index, duration=30.0, seed=0, sr=SR):
    """Synthesise one demo track: mono float32 audio of ``duration`` seconds, peaking at 0.9.

    ``genre`` is one of ``GENRE_STYLES``; the track number ``index`` within it and the seed of the
    whole set, ``seed``, fix every random choice.
    """
    if genre not in GENRE_STYLES:
        raise KeyError(f"no demo style for genre '{genre}'; choose from {sorted(GENRE_STYLES)}")
    style = GENRE_STYLES[genre]
    # a stable 32-bit seed: same inputs, same track, on any machine
    rng = np.random.default_rng(zlib.crc32(f"{seed}:{genre}:{index}".encode()))
    n = int(round(duration * sr))
    out = np.zeros(n + sr, dtype=np.float64)  # one spare second for ringing notes
    bpm = rng.uniform(*style["bpm"])
    step = 60.0 / bpm / 4  # a 16th note
    key = 45 + int(rng.integers(0, 12))  # MIDI note of the tonic (A2..G#3)
    progression = PROGRESSIONS[int(rng.integers(0, len(PROGRESSIONS)))]
    chord = CHORDS[style["chord"]]
    levels = {"drums": rng.uniform(0.6, 1.0), "bass": rng.uniform(0.4, 0.7)}
    levels.update(chords=rng.uniform(0.2, 0.4), lead=rng.uniform(0.2, 0.4))
    for s in range(int(duration / step) + 1):
        bar, pos = divmod(s, 16)
        t = s * step + (style["swing"] * 2 * step if pos % 4 == 2 else 0.0)
        start = int(t * sr)
        if start >= n:
            break
        root = key + progression[bar % len(progression)]
        if style["drums"]:
            kick, snare, hat = DRUM_PATTERNS[style["drums"]]
            if kick[pos] == "x":
                _add(out, start, _kick(sr) * levels["drums"])
            if snare[pos] == "x":
                _add(out, start, _snare(rng, sr) * levels["drums"] * 0.7)
            if hat[pos] == "x":
                _add(out, start, _hat(rng, sr) * levels["drums"] * 0.3)
        _add_bass(out, start, style["bass"], root, pos, step, levels["bass"], rng, sr)
        chord_on = pos in (2, 6, 10, 14) if style["offbeat"] else pos == 0
        if chord_on:
            length = step * (1.5 if style["offbeat"] else 16)
            for interval in chord:
                tone = _tone(midi_hz(root + 12 + interval), length, style["timbre"], sr)
                _add(out, start, tone * levels["chords"] / len(chord))
        if pos % 2 == 0 and rng.random() < 0.45:
            degree = chord[int(rng.integers(0, len(chord)))] + 12 * int(rng.integers(1, 3))
            _add(out, start, _tone(midi_hz(root + degree), step * 2, style["timbre"], sr) * levels["lead"])

    out = out[:n]
    if style["drive"]:
        out = np.tanh(out * (1 + 8 * style["drive"])) / np.tanh(1 + 8 * style["drive"])
    out += style["noise"] * rng.standard_normal(n)
    return (0.9 * out / max(np.max(np.abs(out)), 1e-9)).astype(np.float32)


def midi_hz(note):
    """Frequency of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _add(out, start, signal):
    end = min(len(out), start + len(signal))
    out[start:end] += signal[: end - start]


def _envelope(n, sr, attack=0.005, decay=None):
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / attack)
    if decay:
        env *= np.exp(-t / decay)
    else:
        env *= np.minimum(1.0, (n - np.arange(n)) / (0.02 * sr))  # short release
    return env


def _tone(freq, seconds, timbre, sr):
    n = max(1, int(seconds * sr))
    phase = 2 * np.pi * freq * np.arange(n) / sr
    if timbre == "sine":
        return (np.sin(phase) + 0.2 * np.sin(2 * phase)) * _envelope(n, sr, attack=0.05)
    if timbre == "triangle":
        return 2 / np.pi * np.arcsin(np.sin(phase)) * _envelope(n, sr, decay=0.6)
    if timbre == "square":
        return np.sign(np.sin(phase)) * 0.6 * _envelope(n, sr)
    if timbre == "pluck":
        return sum(np.sin(k * phase) / k for k in range(1, 6)) * _envelope(n, sr, attack=0.002, decay=0.25)
    return (2 * ((phase / (2 * np.pi)) % 1.0) - 1) * _envelope(n, sr)  # saw


def _kick(sr):
    n = int(0.18 * sr)
    t = np.arange(n) / sr
    freq = 50 + 100 * np.exp(-t / 0.03)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.07)


def _snare(rng, sr):
    n = int(0.15 * sr)
    t = np.arange(n) / sr
    noise = np.diff(rng.standard_normal(n + 1))
    return (0.6 * noise + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.05)


def _hat(rng, sr):
    n = int(0.05 * sr)
    t = np.arange(n) / sr
    return np.diff(np.diff(rng.standard_normal(n + 2))) * 0.5 * np.exp(-t / 0.012)


def _add_bass(out, start, kind, root, pos, step, level, rng, sr):
    note = root - 12
    if kind == "sustain":
        if pos == 0:
            _add(out, start, _tone(midi_hz(note), 16 * step, "sine", sr) * level * 0.6)
        return
    if pos % 4 and not (kind == "octave" and pos % 2 == 0):
        return
    if kind == "walk":
        note += (0, 4, 7, 9)[pos // 4]
    elif kind == "root5":
        note += 7 * ((pos // 4) % 2)
    elif kind == "octave":
        note += 12 * ((pos // 2) % 2)
    elif kind == "sub":
        note -= 12 * int(rng.random() < 0.3)
    _add(out, start, _tone(midi_hz(note), 3 * step, "sine", sr) * level)
