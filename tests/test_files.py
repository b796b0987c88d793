"""npnet.files: atomic writes (one file or several together), modes from the umask, bounded
reads, stale temporaries, strict JSON."""

import os
import stat

import pytest

from npnet import files


def test_several_files_change_together_or_not_at_all(tmp_path):
    a, b, c = (tmp_path / name for name in ("a.txt", "b.txt", "c.txt"))
    a.write_text("old a")
    b.write_text("old b")

    def explode(file):
        file.write(b"half")
        raise OSError(28, "No space left on device")

    new = lambda text: lambda file: file.write(text.encode())  # noqa: E731
    with pytest.raises(OSError, match="No space left"):
        files.atomic_write_all([(a, new("new a")), (b, new("new b")), (c, explode)])
    assert (a.read_text(), b.read_text(), c.exists()) == ("old a", "old b", False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    files.atomic_write_all([(a, new("new a")), (c, new("new c"))])
    assert (a.read_text(), c.read_text()) == ("new a", "new c")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o007, 0o000])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        assert files.current_umask() == umask
        files.atomic_write_text(tmp_path / "f", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o666 & ~umask


def test_bounded_reads(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 11)
    assert files.read_text_bounded(path, 11) == "x" * 11
    with pytest.raises(ValueError, match="larger than 10 bytes"):
        files.read_text_bounded(path, 10)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        files.read_text_bounded(fifo, 10)  # without waiting for a writer
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="not UTF-8"):
        files.read_text_bounded(path, 10)


def test_only_npnet_temporaries_of_the_named_files_are_removed(tmp_path):
    ours = [tmp_path / ".weights.npz.a1b2.tmp", tmp_path / ".summary.json.x.tmp"]
    theirs = [tmp_path / "weights.npz.tmp", tmp_path / ".other.x.tmp", tmp_path / "weights.npz"]
    for path in ours + theirs:
        path.write_text("x")
    removed = files.remove_stale_temporaries(tmp_path, ["weights.npz", "summary.json"])
    assert sorted(removed) == sorted(ours)
    assert all(p.exists() for p in theirs) and not any(p.exists() for p in ours)
