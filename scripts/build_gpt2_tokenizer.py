"""Build the packaged GPT-2 tokenizer files from the merge ranks in openai-whisper.

The openai-whisper source distribution on PyPI ships the GPT-2 byte-level BPE ranks as
``whisper/assets/gpt2.tiktoken``: one token per line, base64-encoded bytes and a rank.
This script converts that table into the ``vocab.json`` and ``merges.txt`` files that
Hugging Face tokenizers read, and writes them with a ``NOTICE.md`` into
``perfsuite/assets/gpt2/``.

Usage::

    python scripts/build_gpt2_tokenizer.py                   # download with pip
    python scripts/build_gpt2_tokenizer.py --sdist FILE.tar.gz
    python scripts/build_gpt2_tokenizer.py --tiktoken-file gpt2.tiktoken --license-file LICENSE
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import email.parser
import hashlib
import json
import logging
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

logger = logging.getLogger("build_gpt2_tokenizer")

PACKAGE_NAME = "openai-whisper"
# The release whose gpt2.tiktoken produced the committed assets.
DEFAULT_PACKAGE_VERSION = "20250625"
TIKTOKEN_MEMBER = "whisper/assets/gpt2.tiktoken"
LICENSE_MEMBER = "LICENSE"
PKG_INFO_MEMBER = "PKG-INFO"

END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_ID = 50256
MERGES_HEADER = "#version: 0.2"

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPOSITORY_ROOT / "perfsuite" / "assets" / "gpt2"
SCRIPT_PATH = "scripts/build_gpt2_tokenizer.py"


@dataclasses.dataclass(frozen=True)
class RankSource:
    """The raw rank table and the facts about where it came from that NOTICE.md records."""

    tiktoken_bytes: bytes
    license_text: str
    origin: str
    file_path: str
    reproduce_command: str


# ---------------------------------------------------------------------------
# Reading the rank table


def download_sdist(version: str, destination: Path) -> Path:
    """Download the openai-whisper source distribution with pip and return its path.

    Raises:
        subprocess.CalledProcessError: pip failed, for example because PyPI is unreachable.
        FileNotFoundError: pip succeeded but left no .tar.gz file in ``destination``.
    """
    requirement = f"{PACKAGE_NAME}=={version}"
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--no-binary", ":all:",
        "--dest", str(destination),
        requirement,
    ]
    logger.info("Downloading the %s source distribution with pip", requirement)
    subprocess.run(command, check=True)

    archives = sorted(destination.glob("*.tar.gz"))
    if len(archives) != 1:
        raise FileNotFoundError(
            f"expected one .tar.gz file in {destination} after pip download, found {len(archives)}"
        )
    return archives[0]


def read_sdist_member(archive: tarfile.TarFile, root: str, member: str) -> bytes:
    """Return the contents of ``root/member`` from an open source distribution."""
    name = f"{root}/{member}"
    try:
        handle = archive.extractfile(name)
    except KeyError:
        raise FileNotFoundError(f"{name} is missing from the source distribution") from None
    if handle is None:
        raise FileNotFoundError(f"{name} in the source distribution is not a regular file")
    with handle:
        return handle.read()


def read_sdist(sdist_path: Path) -> RankSource:
    """Read gpt2.tiktoken, LICENSE and the package version from a whisper source distribution."""
    with tarfile.open(sdist_path, mode="r:gz") as archive:
        names = archive.getnames()
        if not names:
            raise ValueError(f"{sdist_path} is an empty archive")
        root = PurePosixPath(names[0]).parts[0]
        tiktoken_bytes = read_sdist_member(archive, root, TIKTOKEN_MEMBER)
        license_text = read_sdist_member(archive, root, LICENSE_MEMBER).decode("utf-8")
        pkg_info = read_sdist_member(archive, root, PKG_INFO_MEMBER).decode("utf-8")

    metadata = email.parser.HeaderParser().parsestr(pkg_info)
    name = metadata["Name"]
    version = metadata["Version"]
    if name is None or version is None:
        raise ValueError(f"PKG-INFO in {sdist_path} has no Name or Version field")

    return RankSource(
        tiktoken_bytes=tiktoken_bytes,
        license_text=license_text,
        origin=f"{name} {version}, source distribution `{sdist_path.name}` from PyPI",
        file_path=TIKTOKEN_MEMBER,
        reproduce_command=f"python {SCRIPT_PATH} --package-version {version}",
    )


def read_local_files(tiktoken_path: Path, license_path: Path) -> RankSource:
    """Read a gpt2.tiktoken file and its license from disk instead of a source distribution."""
    return RankSource(
        tiktoken_bytes=tiktoken_path.read_bytes(),
        license_text=license_path.read_text(encoding="utf-8"),
        origin="a local file given with --tiktoken-file",
        file_path=tiktoken_path.name,
        reproduce_command=(
            f"python {SCRIPT_PATH} --tiktoken-file {tiktoken_path.name} "
            f"--license-file {license_path.name}"
        ),
    )


def parse_tiktoken_ranks(data: bytes) -> dict[bytes, int]:
    """Parse a .tiktoken file into a mapping from token bytes to rank.

    Raises:
        ValueError: a line is malformed, a token or rank repeats, the ranks are not
            exactly 0..n-1, or a single byte has no token of its own.
    """
    ranks: dict[bytes, int] = {}
    for line_number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f"line {line_number}: expected 'BASE64 RANK', got {line!r}")
        try:
            token = base64.b64decode(fields[0], validate=True)
            rank = int(fields[1])
        except (binascii.Error, ValueError) as error:
            raise ValueError(f"line {line_number}: invalid entry {line!r}: {error}") from None
        if token in ranks:
            raise ValueError(f"line {line_number}: token {token!r} appears twice")
        ranks[token] = rank

    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError("ranks must be the integers 0..n-1, each exactly once")
    missing_bytes = [value for value in range(256) if bytes([value]) not in ranks]
    if missing_bytes:
        raise ValueError(f"{len(missing_bytes)} single bytes have no rank, first {missing_bytes[0]}")
    return ranks


# ---------------------------------------------------------------------------
# Converting ranks to vocab.json and merges.txt


def byte_to_unicode_table() -> dict[int, str]:
    """Map each byte to the printable character that represents it in GPT-2's vocab.json.

    Printable Latin-1 bytes map to themselves. The remaining 68 bytes (controls, space,
    DEL, NBSP and the soft hyphen) map in increasing order to U+0100, U+0101 and so on,
    so no token string contains whitespace or a control character.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {value: chr(value) for value in printable}
    next_code_point = 256
    for value in range(256):
        if value not in table:
            table[value] = chr(next_code_point)
            next_code_point += 1
    return table


def bytes_to_token_string(token: bytes, table: Mapping[int, str]) -> str:
    """Spell token bytes the way vocab.json and merges.txt do."""
    return "".join(table[value] for value in token)


def split_with_lower_ranks(token: bytes, ranks: Mapping[bytes, int], max_rank: int) -> list[bytes]:
    """Run byte-level BPE on ``token`` using only merges whose rank is below ``max_rank``.

    Each step merges the adjacent pair whose concatenation has the lowest rank, the
    leftmost pair on a tie, which is the order in which GPT-2's tokenizer applies merges.
    """
    parts = [bytes([value]) for value in token]
    while len(parts) > 1:
        best_index = -1
        best_rank = max_rank
        for index in range(len(parts) - 1):
            rank = ranks.get(parts[index] + parts[index + 1])
            if rank is not None and rank < best_rank:
                best_index = index
                best_rank = rank
        if best_index < 0:
            break
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    return parts


def recover_merges(ranks: Mapping[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Recover the merge list, in rank order, from a table of token ranks.

    A multi-byte token of rank r was created by the merge of rank r, so BPE on its bytes
    with only the lower ranks allowed stops at exactly the two parts of that merge.

    Raises:
        ValueError: a token does not split into exactly two parts, so the table was not
            produced by BPE training.
    """
    merges: list[tuple[bytes, bytes]] = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = split_with_lower_ranks(token, ranks, max_rank=rank)
        if len(parts) != 2:
            raise ValueError(
                f"token {token!r} of rank {rank} splits into {len(parts)} parts, expected 2"
            )
        merges.append((parts[0], parts[1]))
    return merges


def build_vocab(ranks: Mapping[bytes, int], special_tokens: Mapping[str, int]) -> dict[str, int]:
    """Build the vocab.json mapping from token strings to ids, ordered by id.

    Raises:
        ValueError: a special token's id or spelling collides with a BPE token.
    """
    table = byte_to_unicode_table()
    vocab = {bytes_to_token_string(token, table): rank for token, rank in ranks.items()}
    used_ids = set(vocab.values())
    for token, token_id in special_tokens.items():
        if token in vocab or token_id in used_ids:
            raise ValueError(f"special token {token!r} with id {token_id} collides with a BPE token")
        vocab[token] = token_id
        used_ids.add(token_id)
    return dict(sorted(vocab.items(), key=lambda item: item[1]))


def format_merges(merges: Sequence[tuple[bytes, bytes]]) -> str:
    """Render merges.txt: the version header, then one space-separated pair per line."""
    table = byte_to_unicode_table()
    lines = [MERGES_HEADER]
    for left, right in merges:
        lines.append(f"{bytes_to_token_string(left, table)} {bytes_to_token_string(right, table)}")
    return "\n".join(lines) + "\n"


def format_vocab(vocab: Mapping[str, int]) -> str:
    """Render vocab.json with one entry per line so that a diff shows single tokens."""
    return json.dumps(vocab, ensure_ascii=False, indent=0) + "\n"


def convert_ranks(ranks: Mapping[bytes, int]) -> tuple[str, str]:
    """Convert GPT-2 merge ranks into the text of vocab.json and merges.txt."""
    vocab = build_vocab(ranks, {END_OF_TEXT: END_OF_TEXT_ID})
    merges = recover_merges(ranks)
    return format_vocab(vocab), format_merges(merges)


# ---------------------------------------------------------------------------
# Writing the assets


def render_notice(source: RankSource, tiktoken_sha256: str) -> str:
    """Render NOTICE.md, which states what the files are, their source, how to rebuild them and the license."""
    return f"""# GPT-2 tokenizer files

`vocab.json` and `merges.txt` in this folder are the byte-level BPE vocabulary and merge
list of OpenAI's GPT-2, in the format that Hugging Face tokenizers read. The special
token `{END_OF_TEXT}` has id {END_OF_TEXT_ID}. `{SCRIPT_PATH}` generated all three
files, so rebuild them with that script instead of editing them by hand.

## Source

- Package: {source.origin}
- File: `{source.file_path}`
- SHA-256 of the file: `{tiktoken_sha256}`
- OpenAI first released this vocabulary with GPT-2 in the openai/gpt-2 repository, whose
  LICENSE is a "Modified MIT License" with the line "Software Copyright (c) 2019 OpenAI".

## Rebuilding

Run from the repository root:

```
{source.reproduce_command}
```

## License

The source file is distributed under the following license, reproduced unchanged:

```
{source.license_text.rstrip()}
```
"""


def write_assets(output_dir: Path, files: Mapping[str, str]) -> None:
    """Write each named text file into ``output_dir`` as UTF-8 with LF line endings."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = output_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        logger.info("Wrote %s (%d bytes)", path, path.stat().st_size)


def build(source: RankSource, output_dir: Path) -> None:
    """Convert the rank table in ``source`` and write vocab.json, merges.txt and NOTICE.md."""
    tiktoken_sha256 = hashlib.sha256(source.tiktoken_bytes).hexdigest()
    logger.info("Read %s from %s, sha256 %s", source.file_path, source.origin, tiktoken_sha256)

    ranks = parse_tiktoken_ranks(source.tiktoken_bytes)
    logger.info("Parsed %d ranks, recovering merges", len(ranks))
    vocab_text, merges_text = convert_ranks(ranks)

    write_assets(
        output_dir,
        {
            "vocab.json": vocab_text,
            "merges.txt": merges_text,
            "NOTICE.md": render_notice(source, tiktoken_sha256),
        },
    )


# ---------------------------------------------------------------------------
# Command line


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source_group = parser.add_mutually_exclusive_group()
    source_group.add_argument(
        "--package-version",
        default=DEFAULT_PACKAGE_VERSION,
        help=f"{PACKAGE_NAME} release to download from PyPI (default: %(default)s)",
    )
    source_group.add_argument(
        "--sdist",
        type=Path,
        help=f"read an already downloaded {PACKAGE_NAME} .tar.gz instead of downloading",
    )
    source_group.add_argument(
        "--tiktoken-file",
        type=Path,
        help="read this gpt2.tiktoken file instead of a source distribution (requires --license-file)",
    )
    parser.add_argument(
        "--license-file",
        type=Path,
        help="license text to reproduce in NOTICE.md, used only with --tiktoken-file",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="folder that receives vocab.json, merges.txt and NOTICE.md (default: %(default)s)",
    )
    arguments = parser.parse_args(argv)

    if arguments.tiktoken_file is not None and arguments.license_file is None:
        parser.error("--tiktoken-file needs --license-file, because NOTICE.md must reproduce the license")
    if arguments.license_file is not None and arguments.tiktoken_file is None:
        parser.error("--license-file is only used with --tiktoken-file")
    return arguments


def load_source(arguments: argparse.Namespace) -> RankSource:
    """Read the rank table from the location the command line selects, downloading if needed."""
    if arguments.tiktoken_file is not None:
        return read_local_files(arguments.tiktoken_file, arguments.license_file)
    if arguments.sdist is not None:
        return read_sdist(arguments.sdist)
    with tempfile.TemporaryDirectory(prefix="gpt2-tokenizer-") as download_dir:
        sdist_path = download_sdist(arguments.package_version, Path(download_dir))
        return read_sdist(sdist_path)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    arguments = parse_arguments(argv)
    try:
        source = load_source(arguments)
        build(source, arguments.output_dir)
    except subprocess.CalledProcessError as error:
        logger.error("pip download failed with exit status %d. Check that PyPI is reachable.", error.returncode)
        return 1
    except (OSError, tarfile.TarError, ValueError) as error:
        logger.error("Building the GPT-2 tokenizer files failed: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
