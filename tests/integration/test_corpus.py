"""The pydicom test corpus, sent by DCMTK storescu, stored byte for byte.

Oracle: the same storescu command lines are sent to DCMTK storescp in bit-preserving mode
(+B), which writes each dataset exactly as it came off the wire. For every SOP Instance UID the
dataset bytes after the meta group in conduit's spool must equal storescp's.

How storescu is made to keep each file's own transfer syntax: storescu proposes one
"preferred" transfer syntax (chosen with -x..) in a presentation context of its own, plus a
second context with the uncompressed fall-backs; when it sends a file it picks the accepted
context whose transfer syntax equals the file's own (storescu.cc, storeSCU()). So the corpus is
split by transfer syntax and each group is sent with the -x option that makes that syntax the
preferred one: the file goes out in its own encoding, never converted. -R proposes only the
SOP classes of the files (not DCMTK's whole list of ~120 contexts); +C is deliberately not
used, so the preferred syntax sits alone in its context and the router cannot pick a
fall-back for it. -nh keeps going past files storescu refuses (missing UIDs, truncated); those
reach neither receiver, which is what "that storescu can send" means here.

SOP classes: storescp runs with -pm (any SOP class) so it never filters; every SOP class that
reaches it from this corpus is a standard storage class (CT, MR, SC, RT, SR, waveform,
segmentation), so the router keeps its default `sop_classes: standard` and must accept them
all. `any` is not needed and would hide a gap in the router's standard list.
"""

from __future__ import annotations

import collections
import os
import warnings
from pathlib import Path

import pytest

from conftest import CALLED_AE, StoreScp, read_part10, run_storescu, running_conduit

CORPUS = Path("/usr/lib/python3/dist-packages/pydicom/data/test_files")
CALLING_AE = "CORPUSSCU"

# transfer syntax -> the storescu option that proposes it first.
STORESCU_PROPOSE = {
    "1.2.840.10008.1.2": "-xi",         # Implicit VR Little Endian (no fall-backs at all)
    "1.2.840.10008.1.2.1": "-xe",       # Explicit VR Little Endian
    "1.2.840.10008.1.2.2": "-xb",       # Explicit VR Big Endian (retired, still in the wild)
    "1.2.840.10008.1.2.1.99": "-xd",    # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50": "-xy",    # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "-xx",    # JPEG Extended (12 bit)
    "1.2.840.10008.1.2.4.70": "-xs",    # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80": "-xt",    # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "-xu",    # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": "-xv",    # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "-xw",    # JPEG 2000
    "1.2.840.10008.1.2.5": "-xr",       # RLE Lossless
}

# Families that must really be present among the stored files.
REQUIRED_SYNTAXES = {
    "implicit VR LE": {"1.2.840.10008.1.2"},
    "explicit VR LE": {"1.2.840.10008.1.2.1"},
    "explicit VR BE": {"1.2.840.10008.1.2.2"},
    "deflated": {"1.2.840.10008.1.2.1.99"},
    "JPEG": {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.70"},
    "JPEG-LS": {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"},
    "JPEG 2000": {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"},
    "RLE": {"1.2.840.10008.1.2.5"},
}

PRIVATE_INFO_KEYS = {"peer_address", "calling_ae", "called_ae", "received_at", "association_id"}


def corpus_by_transfer_syntax() -> dict[str, list[Path]]:
    """Every corpus file with file meta carrying SOP Class, SOP Instance and transfer syntax."""
    from pydicom.filereader import read_file_meta_info

    groups = collections.defaultdict(list)
    for dirpath, _, names in os.walk(CORPUS):
        for name in sorted(names):
            path = Path(dirpath) / name
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    meta = read_file_meta_info(path)
            except Exception:  # noqa: BLE001 - not a Part 10 file
                continue
            ts = str(meta.get("TransferSyntaxUID", "") or "")
            if meta.get("MediaStorageSOPClassUID") and meta.get("MediaStorageSOPInstanceUID") and ts:
                groups[ts].append(path)
    return dict(groups)


def dataset_multiset(files: list[Path]) -> collections.Counter:
    """(SOP Instance UID, transfer syntax, dataset bytes) of each Part 10 file, counted."""
    out = collections.Counter()
    for f in files:
        p = read_part10(f)
        out[(p.meta_str(0x0003), p.meta_str(0x0010), p.dataset)] += 1
    return out


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    groups = corpus_by_transfer_syntax()
    unknown = set(groups) - set(STORESCU_PROPOSE)
    assert not unknown, f"corpus has transfer syntaxes this test cannot propose: {unknown}"

    workdir = tmp_path_factory.mktemp("corpus")
    scp = StoreScp(workdir)
    try:
        with running_conduit(workdir / "conduit") as router:
            runs = {}
            for ts, files in sorted(groups.items()):
                args = ["-v", "-R", "-nh", STORESCU_PROPOSE[ts]]
                ref = run_storescu(scp.port, files, *args, aet=CALLING_AE, aec="STORESCP")
                got = run_storescu(router.port, files, *args, aet=CALLING_AE, aec=CALLED_AE)
                runs[ts] = (ref, got)
            yield {
                "groups": groups,
                "runs": runs,
                "oracle_files": scp.files(),
                "conduit_files": router.instances(),
                "parts": router.parts(),
                "router": router,
            }
    finally:
        scp.stop()


def test_corpus_is_substantial(corpus_run):
    # Guards against a vacuous pass: the oracle must really have received the corpus.
    assert sum(len(v) for v in corpus_run["groups"].values()) >= 100
    assert len(corpus_run["oracle_files"]) >= 100


def test_every_sent_dataset_is_stored_byte_for_byte(corpus_run):
    oracle = dataset_multiset(corpus_run["oracle_files"])
    stored = dataset_multiset(corpus_run["conduit_files"])
    missing = oracle - stored
    extra = stored - oracle
    if missing or extra:
        stored_by_uid = collections.defaultdict(list)
        for (uid, ts, data) in stored:
            stored_by_uid[uid].append((ts, data))
        lines = []
        for (uid, ts, data), n in missing.items():
            near = stored_by_uid.get(uid, [])
            detail = "not stored at all"
            for sts, sdata in near:
                diff = next((i for i, (a, b) in enumerate(zip(data, sdata)) if a != b),
                            min(len(data), len(sdata)))
                detail = (f"stored as ts={sts} len={len(sdata)} vs sent len={len(data)}, "
                          f"first difference at dataset offset {diff}")
            lines.append(f"missing x{n}: uid={uid} ts={ts}: {detail}")
        for (uid, ts, data), n in extra.items():
            lines.append(f"extra x{n}: uid={uid} ts={ts} len={len(data)}")
        logs = "\n".join(
            f"[{ts}] storescu->conduit rc={got.returncode}: {got.stderr[-1500:]}"
            for ts, (_, got) in corpus_run["runs"].items() if got.returncode != 0)
        pytest.fail("conduit's spool differs from what storescu sent (storescp +B):\n"
                    + "\n".join(lines) + "\n" + logs)
    assert len(corpus_run["conduit_files"]) == len(corpus_run["oracle_files"])


def test_storescu_outcome_matches_reference(corpus_run):
    # Same command line, same files: storescu must end the same way against both receivers.
    for ts, (ref, got) in corpus_run["runs"].items():
        assert got.returncode == ref.returncode, (
            f"[{ts}] storescu exit {got.returncode} against conduit vs {ref.returncode} "
            f"against storescp:\n{got.stderr[-3000:]}")
        assert got.stderr.count("Store Response (Success)") == ref.stderr.count(
            "Store Response (Success)")


def test_all_transfer_syntax_families_present(corpus_run):
    stored = {read_part10(f).meta_str(0x0010) for f in corpus_run["conduit_files"]}
    for family, syntaxes in REQUIRED_SYNTAXES.items():
        assert stored & syntaxes, f"no {family} instance stored; stored syntaxes: {sorted(stored)}"


def test_no_part_files_left(corpus_run):
    assert corpus_run["parts"] == []


def test_meta_header(corpus_run):
    oracle_meta = {}
    for f in corpus_run["oracle_files"]:
        p = read_part10(f)
        oracle_meta[p.dataset] = p
    for f in corpus_run["conduit_files"]:
        p = read_part10(f)
        ref = oracle_meta.get(p.dataset)
        assert ref is not None, f"{f.name}: dataset not among those storescu sent"
        uid = p.meta_str(0x0003)
        assert uid == ref.meta_str(0x0003), f"{f.name}: (0002,0003) {uid}"
        assert p.meta_str(0x0002) == ref.meta_str(0x0002), f"{f.name}: (0002,0002)"
        # (0002,0010) is the negotiated transfer syntax: the one storescp negotiated too.
        assert p.meta_str(0x0010) == ref.meta_str(0x0010), f"{f.name}: (0002,0010)"
        assert p.meta_str(0x0016) == CALLING_AE, f"{f.name}: (0002,0016) {p.meta.get(0x0016)}"
        assert p.meta_str(0x0017) == CALLING_AE, f"{f.name}: (0002,0017) {p.meta.get(0x0017)}"
        assert p.meta_str(0x0018) == CALLED_AE, f"{f.name}: (0002,0018) {p.meta.get(0x0018)}"
        assert p.meta[0x0001][1] == b"\x00\x01", f"{f.name}: (0002,0001)"
        assert p.meta.get(0x0012), f"{f.name}: no (0002,0012) Implementation Class UID"
        # File names are opaque ids, never built from DICOM values.
        assert uid not in f.name, f"file name {f.name} is built from the SOP Instance UID"


def test_private_information_format(corpus_run):
    for f in corpus_run["conduit_files"]:
        p = read_part10(f)
        vr, raw = p.meta.get(0x0102, ("", b""))
        assert vr == "OB" and raw and len(raw) % 2 == 0, f"{f.name}: (0002,0102) {vr} {len(raw)}"
        lines = p.private_information_lines()
        not_key_value = [line for line in lines if "=" not in line]
        assert not not_key_value, (
            f"{f.name}: (0002,0102) lines that are not key=value: {not_key_value}")


def test_private_information_content(corpus_run):
    by_ts_assoc = collections.defaultdict(set)
    for f in corpus_run["conduit_files"]:
        info = read_part10(f).private_information()
        assert PRIVATE_INFO_KEYS <= set(info), (
            f"{f.name}: (0002,0102) lacks {sorted(PRIVATE_INFO_KEYS - set(info))}; "
            f"has {sorted(info)}")
        assert info["calling_ae"] == CALLING_AE
        assert info["called_ae"] == CALLED_AE
        assert "127.0.0.1" in info["peer_address"], info["peer_address"]
        assert info["received_at"] and info["association_id"]
        by_ts_assoc[read_part10(f).meta_str(0x0010)].add(info["association_id"])
    # One storescu run = one association = one transfer-syntax group (each group is sent in its
    # own syntax, checked against storescp above, so the stored syntax names the group).
    for ts, ids in by_ts_assoc.items():
        assert len(ids) == 1, f"{ts}: files from one association carry ids {ids}"
    all_ids = [next(iter(ids)) for ids in by_ts_assoc.values()]
    assert len(set(all_ids)) == len(all_ids), f"association ids reused: {by_ts_assoc}"
