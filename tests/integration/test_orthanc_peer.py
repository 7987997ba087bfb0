"""The Orthanc harness itself (orthanc_peer.py): a real Orthanc 1.10 started per test, fed by
DCMTK storescu and the raw client, read back through its REST API.

Pins the Orthanc behaviours the forwarding tests rely on:
- what storescu sends is stored with the same transfer syntax and the same elements (Orthanc
  re-serialises the dataset with DCMTK, so bytes are not kept verbatim: Data Set Trailing
  Padding (FFFC,FFFC) is dropped, deflated data is stored inflated);
- stop() then start() keeps the data and the ports;
- DicomCheckCalledAet true: a wrong called AE gets A-ASSOCIATE-RJ (1, 1, 7);
- a SOP class Orthanc does not know: presentation context refused with result 3;
- refuse_sop_classes: C-STORE-RSP 0xA700, nothing stored; discard_sop_classes: 0x0000 and
  nothing stored;
- a duplicate SOP Instance UID: 0x0000, one instance kept (the first unless
  overwrite_instances), and received_counts() counts both receptions.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

import dicom_ul as ul
from conftest import HOST, encode_dataset, make_uid, run_echoscu, run_storescu, small_dataset
from orthanc_peer import orthanc_peer  # noqa: F401  (fixture)

CORPUS = Path("/usr/lib/python3/dist-packages/pydicom/data/test_files")
# file -> storescu option proposing its own transfer syntax (so nothing is converted)
FILES = {
    "CT_small.dcm": "-xe",            # Explicit VR Little Endian, ends with trailing padding
    "MR_small_implicit.dcm": "-xi",   # Implicit VR Little Endian
    "rtplan.dcm": "-xi",              # Implicit VR Little Endian, sequences, no pixel data
}
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
UNKNOWN_SOP_CLASS = "1.2.826.0.1.3680043.9.7433.99.1"

# Elements Orthanc does not keep (DCMTK drops them when it writes the file).
_NOT_KEPT = {pydicom.tag.Tag(0xFFFC, 0xFFFC)}


def _dataset_elements(ds) -> dict:
    return {e.tag: e for e in ds if e.tag.group != 0x0002 and e.tag not in _NOT_KEPT}


def assert_same_dataset(sent: Path, stored: bytes) -> None:
    a = pydicom.dcmread(str(sent))
    b = pydicom.dcmread(io.BytesIO(stored))
    assert b.file_meta.TransferSyntaxUID == a.file_meta.TransferSyntaxUID
    ea, eb = _dataset_elements(a), _dataset_elements(b)
    assert sorted(ea) == sorted(eb), f"{sent.name}: element sets differ"
    for tag, elem in ea.items():
        assert eb[tag] == elem, f"{sent.name}: {elem} != {eb[tag]}"


def _uid_of(path: Path) -> str:
    return str(pydicom.dcmread(str(path), stop_before_pixels=True).SOPInstanceUID)


def _full_dataset(uid: str, sop_class: str = ul.SECONDARY_CAPTURE_STORAGE, name: str = "A^B"):
    ds = small_dataset(uid, pixel_bytes=1024, sop_class_uid=sop_class)
    # Orthanc refuses (0xA700) instances without Study/Series Instance UIDs.
    ds.StudyInstanceUID = uid + ".1"
    ds.SeriesInstanceUID = uid + ".2"
    ds.PatientName = name
    return ds


def test_storescu_to_orthanc_reads_back_and_survives_restart(orthanc_peer):
    pacs = orthanc_peer(aet="PACS")
    assert pacs.instances() == [] and pacs.study_count() == 0

    by_option: dict[str, list[Path]] = {}
    for name, option in FILES.items():
        by_option.setdefault(option, []).append(CORPUS / name)
    for option, files in by_option.items():
        res = run_storescu(pacs.dicom_port, files, "-R", option, aet="HARNESS", aec="PACS")
        assert res.returncode == 0, res.stdout + res.stderr

    uids = {_uid_of(CORPUS / name): CORPUS / name for name in FILES}
    assert pacs.sop_instance_uids() == set(uids)
    assert len(pacs.instances()) == 3
    assert pacs.statistics()["CountInstances"] == 3
    assert pacs.received_counts() == {uid: 1 for uid in uids}
    assert pacs.received_calling_aets() == {uid: {"HARNESS"} for uid in uids}
    for uid, path in uids.items():
        assert_same_dataset(path, pacs.instance_file(uid))
        meta = pacs.instance_metadata(uid)
        assert meta["RemoteAET"] == "HARNESS" and meta["CalledAET"] == "PACS"

    # Destination down, then up: same ports, same storage.
    ports = (pacs.dicom_port, pacs.http_port)
    assert pacs.stop() == 0
    assert not pacs.alive()
    res = run_echoscu(pacs.dicom_port, aec="PACS", timeout=15)
    assert res.returncode != 0, "nothing should answer while Orthanc is stopped"
    pacs.start()
    assert (pacs.dicom_port, pacs.http_port) == ports
    assert pacs.sop_instance_uids() == set(uids)
    for uid, path in uids.items():
        assert_same_dataset(path, pacs.instance_file(uid))
    assert run_echoscu(pacs.dicom_port, aec="PACS").returncode == 0


def test_called_ae_sop_class_refusal_and_duplicates(orthanc_peer):
    pacs = orthanc_peer(aet="PACS", check_called_aet=True,
                        refuse_sop_classes=[MR_IMAGE_STORAGE],
                        discard_sop_classes=[NM_IMAGE_STORAGE])

    # Called AE checked: A-ASSOCIATE-RJ rejected-permanent, service user, called AE unknown.
    with pytest.raises(ul.Rejected) as rejected:
        ul.Association.open(HOST, pacs.dicom_port, called_ae="NOTPACS")
    rj = rejected.value.rj
    assert (rj.result, rj.source, rj.reason) == (1, 1, 7)
    assert run_echoscu(pacs.dicom_port, aec="NOTPACS").returncode != 0
    assert run_echoscu(pacs.dicom_port, aec="PACS").returncode == 0

    assoc = ul.Association.open(HOST, pacs.dicom_port, called_ae="PACS", calling_ae="RAW",
                                contexts=[(1, ul.SECONDARY_CAPTURE_STORAGE, [ul.IMPLICIT_VR_LE]),
                                          (3, MR_IMAGE_STORAGE, [ul.IMPLICIT_VR_LE]),
                                          (5, NM_IMAGE_STORAGE, [ul.IMPLICIT_VR_LE]),
                                          (7, UNKNOWN_SOP_CLASS, [ul.IMPLICIT_VR_LE])])
    try:
        # A SOP class Orthanc does not know: abstract syntax not supported (PS3.8 9.3.3.2).
        assert assoc.ac.contexts[7][0] == 3
        for pc in (1, 3, 5):
            assoc.accepted_context(pc)

        sc, mr, nm = make_uid(1), make_uid(2), make_uid(3)
        assert assoc.store(1, ul.SECONDARY_CAPTURE_STORAGE, sc,
                           encode_dataset(_full_dataset(sc, name="FIRST^COPY"))) == 0x0000
        # Duplicate: success, the first copy is kept (OverwriteInstances false).
        assert assoc.store(1, ul.SECONDARY_CAPTURE_STORAGE, sc,
                           encode_dataset(_full_dataset(sc, name="SECOND^COPY"))) == 0x0000
        assert assoc.store(3, MR_IMAGE_STORAGE, mr,
                           encode_dataset(_full_dataset(mr, MR_IMAGE_STORAGE))) == 0xA700
        assert assoc.store(5, NM_IMAGE_STORAGE, nm,
                           encode_dataset(_full_dataset(nm, NM_IMAGE_STORAGE))) == 0x0000
        assoc.release()
    finally:
        assoc.close()

    assert pacs.sop_instance_uids() == {sc}
    assert pacs.statistics()["CountInstances"] == 1
    stored = pydicom.dcmread(io.BytesIO(pacs.instance_file(sc)))
    assert str(stored.PatientName) == "FIRST^COPY"
    assert pacs.received_counts() == {sc: 2, mr: 1, nm: 1}
    assert pacs.refused() == {mr: 1}
    assert pacs.discarded() == {nm: 1}


def test_overwrite_instances_keeps_the_last_copy(orthanc_peer):
    pacs = orthanc_peer(overwrite_instances=True)
    uid = make_uid(10)
    assoc = ul.Association.open(HOST, pacs.dicom_port, called_ae=pacs.aet,
                                contexts=[(1, ul.SECONDARY_CAPTURE_STORAGE, [ul.IMPLICIT_VR_LE])])
    try:
        for name in ("FIRST^COPY", "SECOND^COPY"):
            assert assoc.store(1, ul.SECONDARY_CAPTURE_STORAGE, uid,
                               encode_dataset(_full_dataset(uid, name=name))) == 0x0000
        assoc.release()
    finally:
        assoc.close()
    assert pacs.instances() and len(pacs.instances()) == 1
    assert str(pydicom.dcmread(io.BytesIO(pacs.instance_file(uid))).PatientName) == "SECOND^COPY"
    assert pacs.received_counts() == {uid: 2}
