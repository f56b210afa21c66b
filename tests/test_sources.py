"""Track sources: demo generator, folder trees, manifests, downloads."""

import hashlib
import tarfile

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genreflow.constants import GTZAN_GENRES
from genreflow import demo, sources


def write_tone(path, seconds=1.0, sr=22050, freq=440.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), sr)


def test_demo_track_is_deterministic_and_per_track_distinct():
    a = demo.generate_track("jazz", 3, duration=5.0)
    b = demo.generate_track("jazz", 3, duration=5.0)
    c = demo.generate_track("jazz", 4, duration=5.0)
    assert a.shape == (5 * 22050,) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert 0.85 < np.abs(a).max() <= 0.9 + 1e-6


def test_demo_genres_differ_in_tempo_and_brightness():
    # a crude, librosa-free check that genres are not the same sound: metal is brighter
    # (more high-frequency energy) than classical
    def high_share(y):
        spectrum = np.abs(np.fft.rfft(y))
        freqs = np.fft.rfftfreq(len(y), 1 / 22050)
        return spectrum[freqs > 2000].sum() / spectrum.sum()

    assert high_share(demo.generate_track("metal", 0, 5.0)) > 2 * high_share(demo.generate_track("classical", 0, 5.0))


def test_demo_unknown_genre_names_the_choices():
    with pytest.raises(KeyError, match="no demo style for genre 'polka'"):
        demo.generate_track("polka", 0)


def test_demo_tracks_lists_gtzan_layout():
    table = sources.demo_tracks("resources/demo", 2)
    assert len(table) == 20
    assert table["label"].unique().tolist() == list(GTZAN_GENRES)
    assert table.loc[0, "track"] == "blues/blues.00000"
    assert table.loc[0, "path"] == "resources/demo/blues/blues.00000.wav"


@pytest.mark.parametrize("layout", ["", "genres", "Data/genres_original"])
def test_folder_tracks_reads_labels_from_folders(tmp_path, layout):
    base = tmp_path / layout if layout else tmp_path
    write_tone(base / "rock" / "rock.00001.au")
    write_tone(base / "blues" / "blues.00000.wav")
    (base / "blues" / "notes.txt").write_text("not audio")
    table = sources.folder_tracks(tmp_path)
    assert table["track"].tolist() == ["blues/blues.00000", "rock/rock.00001"]
    assert table["label"].tolist() == ["blues", "rock"]


def test_folder_without_audio_says_what_layout_is_expected(tmp_path):
    (tmp_path / "blues").mkdir()
    with pytest.raises(ValueError, match="<label>/<file>"):
        sources.folder_tracks(tmp_path)
    with pytest.raises(FileNotFoundError, match="dataset.folder"):
        sources.folder_tracks(tmp_path / "absent")


def test_folder_with_same_track_in_two_formats_is_refused(tmp_path):
    write_tone(tmp_path / "pop" / "pop.00000.wav")
    write_tone(tmp_path / "pop" / "pop.00000.flac")
    with pytest.raises(ValueError, match="more than once"):
        sources.folder_tracks(tmp_path)


def test_manifest_resolves_paths_against_its_folder(tmp_path):
    write_tone(tmp_path / "audio" / "a.wav")
    write_tone(tmp_path / "audio" / "b.wav")
    manifest = tmp_path / "tracks.csv"
    pd.DataFrame({"path": ["audio/a.wav", "audio/b.wav"], "label": ["jazz", "pop"]}).to_csv(manifest, index=False)
    table = sources.manifest_tracks(manifest)
    assert table["track"].tolist() == ["jazz/a", "pop/b"]
    assert table["path"].tolist() == [str(tmp_path / "audio" / "a.wav"), str(tmp_path / "audio" / "b.wav")]


def test_manifest_errors_name_the_problem(tmp_path):
    manifest = tmp_path / "tracks.csv"
    manifest.write_text("file,genre\na.wav,jazz\n")
    with pytest.raises(ValueError, match="path,label"):
        sources.manifest_tracks(manifest)
    manifest.write_text("path,label\nmissing.wav,jazz\n")
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        sources.manifest_tracks(manifest)


def make_tarball(tmp_path):
    tree = tmp_path / "tree"
    write_tone(tree / "genres" / "disco" / "disco.00000.wav")
    write_tone(tree / "genres" / "metal" / "metal.00000.wav")
    archive = tmp_path / "genres.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree / "genres", arcname="genres")
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


def test_download_checks_sha256_and_unpacks(tmp_path):
    archive, digest = make_tarball(tmp_path)
    target = tmp_path / "out" / "genres.tar.gz"
    sources.fetch_archive(archive.as_uri(), digest, target)
    assert sources.sha256_of(target) == digest
    sources.unpack_archive(target, tmp_path / "out" / "genres")
    table = sources.folder_tracks(tmp_path / "out" / "genres")
    assert table["track"].tolist() == ["disco/disco.00000", "metal/metal.00000"]


def test_download_with_wrong_sha256_fails_and_keeps_nothing_as_good(tmp_path):
    archive, _ = make_tarball(tmp_path)
    target = tmp_path / "out" / "genres.tar.gz"
    with pytest.raises(ValueError, match="dataset.download.sha256"):
        sources.fetch_archive(archive.as_uri(), "0" * 64, target)
    assert not target.exists()
    assert (tmp_path / "out" / "genres.tar.gz.bad").exists()
