"""Bad-input fuzzing of the text corpus readers (UTF-8 text files, fortune files).

Each test starts from a small valid file, corrupts it (truncation inside a multi-byte
character, latin-1, UTF-16 with and without a byte-order mark, random bytes, NUL bytes, stray
``%`` lines) and checks that the reader either returns clean texts or raises ``DataError``
naming the file: never another exception, never a text the file does not hold.
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoo.data.errors import DataError
from zoo.text.corpora import _parse_fortunes, load_fortunes_br, read_text_files, read_utf8

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

VALID = "Eu não bebo água.\nPeixes transam nela!\n\nÇà e ão — “aspas” ok…\n"
FORTUNES = (
    "Porque a galinha atravessa a rua?\nPorque o upstream mandou!\n%\n"
    "Quem com ferro fere,\ncom ferro será ferido.\n\t-- Provérbio\n%\n"
    "Água mole em pedra dura\n%\n"
)


HOWS = [
    "truncate", "replace", "insert", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be",
    "bom", "random", "empty",
]  # fmt: skip


def _check_error(error, path):
    assert error.file == os.fspath(path) and str(error).startswith(os.fspath(path)), str(error)


@FUZZ
@given(
    how=st.sampled_from(HOWS),
    position=st.integers(0, 500),
    payload=st.binary(min_size=1, max_size=16),
    unit=st.sampled_from(["line", "paragraph"]),
)
def test_text_files(tmp_path, corrupt_text, how, position, payload, unit):
    path = tmp_path / "corpus.txt"
    data = corrupt_text(VALID, how, position, payload)
    path.write_bytes(data)
    try:
        texts = read_text_files([path], unit=unit)
    except DataError as error:
        _check_error(error, path)
        assert how not in ("bom",), str(error)
        return
    assert how not in ("utf-16", "utf-16-le", "utf-16-be", "empty"), f"{how} read as {texts}"
    # Only what a strict UTF-8 reading of the bytes holds, whitespace collapsed.
    text = data.decode("utf-8-sig")
    assert "\x00" not in text
    words = text.split()
    assert texts and all(t and t == " ".join(t.split()) for t in texts)
    assert " ".join(texts).split() == words
    if unit == "line":
        assert all("\n" not in t for t in texts)


@pytest.mark.parametrize(
    "data, message",
    [
        ("Ação\n".encode("latin-1"), r"line 1: not UTF-8 text \(byte b'\\xe7' at offset 1\)"),
        ("ok\nAção\n".encode("cp1252"), r"line 2: not UTF-8 text"),
        ("Ação\n".encode("utf-16"), r"UTF-16 text \(it starts with a UTF-16 byte-order mark\)"),
        ("ab\ncd\n".encode("utf-16-le"), r"line 1: NUL byte at offset 1: binary data or UTF-16"),
        (b"ok\n\x00\x01\x02", r"line 2: NUL byte at offset 3"),
        (b"", r"no text \(the file is empty or only whitespace\)"),
        (b" \n\t\n", r"no text"),
        ("Ação".encode()[:2], r"line 1: not UTF-8 text"),
    ],
)
def test_text_file_messages(tmp_path, data, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as caught:
        read_text_files(path)
    _check_error(caught.value, path)
    assert "re-encode the file as UTF-8" in str(caught.value) or "no text" in str(caught.value)


def test_missing_directory_and_unreadable(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_utf8(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="not a file"):
        read_utf8(tmp_path)
    loop = tmp_path / "loop.txt"
    os.symlink("loop.txt", loop)
    with pytest.raises(DataError, match="loop.txt: file not found|loop.txt: not a file"):
        read_utf8(loop)
    locked = tmp_path / "locked.txt"
    locked.write_text("x")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything
            assert read_utf8(locked) == "x"
        else:
            with pytest.raises(DataError, match="locked.txt: cannot read the file"):
                read_utf8(locked)
    finally:
        locked.chmod(0o644)


# === Fortunes ===


@FUZZ
@given(
    how=st.sampled_from(HOWS),
    position=st.integers(0, 500),
    payload=st.binary(min_size=1, max_size=16)
    | st.sampled_from([b"\n%\n", b"%", b"\n%%\n", b"\n% \n", b"\n-- x\n", b"\r\n%\r\n"]),
    unit=st.sampled_from(["fortune", "sentence"]),
)
def test_fortune_files(tmp_path, corrupt_text, how, position, payload, unit):
    path = tmp_path / "fortunes"
    data = corrupt_text(FORTUNES, how, position, payload)
    path.write_bytes(data)
    try:
        fortunes = load_fortunes_br(unit=unit, paths=[path])
    except DataError as error:
        _check_error(error, path)
        return
    assert how not in ("utf-16", "utf-16-le", "utf-16-be", "empty"), f"{how} read as {fortunes}"
    text = data.decode("utf-8-sig")
    assert all(f and f == " ".join(f.split()) and "\x00" not in f for f in fortunes)
    # No separator line becomes text, and every fortune is made of the file's words.
    words = set(text.split())
    assert all(f.strip() != "%" and set(f.split()) <= words for f in fortunes)
    if unit == "fortune":
        assert all(not w.startswith("--") for f in fortunes for w in f.split()[:1])


def test_fortune_parsing_golden(tmp_path):
    path = tmp_path / "fortunes"
    path.write_text(FORTUNES + "%\n%\n   \n%\n-- only an author\n%\n")
    assert _parse_fortunes(path) == [
        "Porque a galinha atravessa a rua? Porque o upstream mandou!",
        "Quem com ferro fere, com ferro será ferido.",
        "Água mole em pedra dura",
    ]
    path.write_text("%\n%\n-- nobody\n%\n")
    with pytest.raises(DataError, match=r"fortunes: no fortunes \(expected text blocks"):
        _parse_fortunes(path)
    path.write_bytes(FORTUNES.encode("latin-1"))
    message = r"fortunes: line 5: not UTF-8 text \(byte b.\\xe1. at offset 96\)"
    with pytest.raises(DataError, match=message):
        load_fortunes_br(paths=[path])
