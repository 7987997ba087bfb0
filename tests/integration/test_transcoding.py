"""The transcoding pipeline behind the DIMSE forwarder, with real peers: routes that ask for a
transcode profile, a destination that takes only uncompressed data for a compressed instance,
lossy output with its new SOP Instance UID, and independent decoders (GDCM's gdcmconv, pydicom)
and dciodvfy checking what we wrote."""
from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import dicom_ul as ul
from conftest import (make_instance, make_uid, metric_value, parse_metrics, run_storescu,
                      wait_until)
from test_forwarding import (FAST_RETRY, association_profile, destination, forking_scp,
                             route_all_rules, sop_uid, wait_for_metric, wait_spool_empty)

CORPUS = Path("/usr/lib/python3/dist-packages/pydicom/data/test_files")
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


def profile_rules(tmp_path: Path, profile: str) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - name: compressed\n    route:\n"
                     f"      - destination: pacs\n        transcode: {profile}\n")
    return rules


def raw_pixels(path: Path, tmp_path: Path):
    """Pixels as GDCM decodes them (gdcmconv --raw), read with pydicom: an independent decoder."""
    import pydicom
    raw = tmp_path / (path.name + ".raw.dcm")
    done = subprocess.run(["gdcmconv", "--raw", str(path), str(raw)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return pydicom.dcmread(raw).pixel_array


def dciodvfy_errors(path: Path) -> list[str]:
    done = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return sorted({line.split(" - ", 1)[-1] for line in (done.stdout + done.stderr).splitlines()
                   if line.startswith("Error")})


def test_route_profile_jpeg_ls_lossless_arrives_pixel_identical(start_conduit, tmp_path):
    import pydicom
    scp = forking_scp(tmp_path)
    try:
        conduit = start_conduit({
            "rules": {"file": str(profile_rules(tmp_path, "jls"))},
            "destinations": [destination("pacs", scp)],
            "transcoding": {"profiles": [{"name": "jls", "transfer_syntax": JPEG_LS_LOSSLESS}]},
        })
        prefix = make_uid(21)
        files = [make_instance(tmp_path / f"{i}.dcm", sop_instance_uid=f"{prefix}.{i}",
                               pixel_bytes=256 * 64, seed=i) for i in range(4)]
        assert run_storescu(conduit.port, files).returncode == 0
        wait_spool_empty(conduit)
        received = scp.files()
        assert len(received) == 4
        for path in received:
            ds = pydicom.dcmread(path)
            assert ds.file_meta.TransferSyntaxUID == JPEG_LS_LOSSLESS
            assert "LossyImageCompression" not in ds or ds.LossyImageCompression == "00"
            original = next(f for f in files if sop_uid(f) == ds.SOPInstanceUID)
            assert (raw_pixels(path, tmp_path) == pydicom.dcmread(original).pixel_array).all()
            assert dciodvfy_errors(path) == dciodvfy_errors(original)
        samples = parse_metrics(conduit.metrics_text())
        # Syntaxes are labelled by PS3.6 keyword, never by UID.
        assert metric_value(samples, "conduit_transcodes_total", outcome="ok",
                            source="ExplicitVRLittleEndian", target="JPEGLSLossless") == 4
        # The transcoded copies left with the instances.
        assert list((conduit.spool / "transcoded").glob("*.dcm")) == []
    finally:
        scp.stop()


def test_compressed_instance_is_decoded_for_a_destination_that_takes_only_uncompressed(
        start_conduit, tmp_path):
    import pydicom
    profile = tmp_path / "explicit-only.cfg"
    profile.write_text(association_profile("MRImageStorage", "LocalEndianExplicit"))
    scp = forking_scp(tmp_path, extra_args=("-xf", str(profile), "P"))
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                                 "destinations": [destination("pacs", scp)]})
        source = CORPUS / "MR_small_jp2klossless.dcm"
        done = run_storescu(conduit.port, [source], "-R", "-xv")  # sent as stored: JPEG 2000
        assert done.returncode == 0, done.stderr
        wait_spool_empty(conduit)
        [received] = scp.files()
        ds = pydicom.dcmread(received)
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT_VR_LE
        assert (ds.pixel_array == pydicom.dcmread(CORPUS / "MR_small.dcm").pixel_array).all()
    finally:
        scp.stop()


def test_lossy_profile_gives_a_new_instance_labelled_lossy_and_records_the_mapping(
        start_conduit, tmp_path):
    import pydicom
    scp = forking_scp(tmp_path)
    try:
        conduit = start_conduit({
            "rules": {"file": str(profile_rules(tmp_path, "teleradiology"))},
            "destinations": [destination("pacs", scp)],
            "transcoding": {"profiles": [{"name": "teleradiology", "transfer_syntax": JPEG_BASELINE,
                                          "lossy": True, "quality": 85}]},
        })
        original = make_instance(tmp_path / "sc.dcm", sop_instance_uid=make_uid(22, 1),
                                 pixel_bytes=256 * 256, seed=3)
        assert run_storescu(conduit.port, [original]).returncode == 0
        wait_spool_empty(conduit)
        [received] = scp.files()
        ds = pydicom.dcmread(received)
        assert ds.file_meta.TransferSyntaxUID == JPEG_BASELINE
        assert ds.LossyImageCompression == "01"
        assert ds.LossyImageCompressionMethod == "ISO_10918_1"
        assert float(ds.LossyImageCompressionRatio) > 1
        assert ds.SOPInstanceUID != sop_uid(original)
        assert ds.SOPInstanceUID.startswith("2.25.")
        mapping = (conduit.spool / "lossy-uids.tsv").read_text().split("\t")
        assert mapping[:3] == [sop_uid(original), ds.SOPInstanceUID, "pacs"]
        assert f"is the new instance {ds.SOPInstanceUID}" in conduit.log()
        raw = raw_pixels(received, tmp_path).astype(float)
        expected = pydicom.dcmread(original).pixel_array.astype(float)
        psnr = 10 * __import__("math").log10(255 ** 2 / max(((raw - expected) ** 2).mean(), 1e-9))
        assert psnr > 25, psnr
    finally:
        scp.stop()


def test_a_lossy_profile_must_say_lossy(tmp_path):
    from conftest import CONDUIT_BIN
    config = tmp_path / "conduit.yaml"
    config.write_text('{"transcoding": {"profiles": [{"name": "jpeg", "transfer_syntax": '
                      f'"{JPEG_BASELINE}"}}]}}}}\n')
    done = subprocess.run([str(CONDUIT_BIN), "config", "check", str(config)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert "is lossy: add 'lossy: true'" in done.stderr + done.stdout


# Lossless profiles whose output DCMTK's storescp accepts (it does not know the HTJ2K UIDs).
LOSSLESS_PROFILES = {
    "rle": "1.2.840.10008.1.2.5",
    "jpeg-lossless": "1.2.840.10008.1.2.4.70",
    "jpeg-ls": "1.2.840.10008.1.2.4.80",
    "j2k": "1.2.840.10008.1.2.4.90",
}


def test_every_lossless_profile_is_read_back_identically_by_gdcm(start_conduit, tmp_path):
    import pydicom
    scp = forking_scp(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n" + "".join(
        f"  - name: to-{name}\n    when: {{ attribute: PatientID, equals: {name} }}\n"
        f"    route:\n      - destination: pacs\n        transcode: {name}\n"
        for name in LOSSLESS_PROFILES))
    try:
        conduit = start_conduit({
            "rules": {"file": str(rules)},
            "destinations": [destination("pacs", scp)],
            "transcoding": {"profiles": [{"name": name, "transfer_syntax": uid}
                                         for name, uid in LOSSLESS_PROFILES.items()]},
        })
        files = {}
        for i, name in enumerate(LOSSLESS_PROFILES):
            path = make_instance(tmp_path / f"{name}.dcm", sop_instance_uid=make_uid(23, i),
                                 pixel_bytes=256 * 100, seed=i)
            ds = pydicom.dcmread(path)
            ds.PatientID = name
            ds.save_as(path)
            files[sop_uid(path)] = (name, path)
        assert run_storescu(conduit.port, [p for _, p in files.values()]).returncode == 0
        wait_spool_empty(conduit)
        assert len(scp.files()) == len(LOSSLESS_PROFILES)
        for received in scp.files():
            ds = pydicom.dcmread(received)
            name, original = files[ds.SOPInstanceUID]
            assert ds.file_meta.TransferSyntaxUID == LOSSLESS_PROFILES[name]
            assert (raw_pixels(received, tmp_path) == pydicom.dcmread(original).pixel_array).all(), name
            assert dciodvfy_errors(received) == dciodvfy_errors(original), name
    finally:
        scp.stop()


def test_a_corrupt_compressed_instance_is_dead_lettered_with_the_codec_error(start_conduit,
                                                                             tmp_path):
    profile = tmp_path / "explicit-only.cfg"
    profile.write_text(association_profile("SecondaryCaptureImageStorage", "LocalEndianExplicit"))
    scp = forking_scp(tmp_path, extra_args=("-xf", str(profile), "P"))
    try:
        conduit = start_conduit({"rules": {"file": str(route_all_rules(tmp_path, "pacs"))},
                                 "destinations": [destination("pacs", scp)]})
        # Its codestream declares 4292730882 tiles: OpenJPEG refuses it.
        broken = CORPUS / "JPEG2000-embedded-sequence-delimiter.dcm"
        assert run_storescu(conduit.port, [broken], "-R", "-xw").returncode == 0
        wait_for_metric(conduit, "conduit_forward_dead_lettered_total", 1, destination="pacs")
        assert "transcoding to 1.2.840.10008.1.2.1 failed: frame 0: JPEG 2000 decode" in \
            conduit.log()
        samples = parse_metrics(conduit.metrics_text())
        assert metric_value(samples, "conduit_transcodes_total", outcome="failed",
                            source="JPEG2000", target="ExplicitVRLittleEndian") == 1
        assert scp.files() == []
    finally:
        scp.stop()


def test_htj2k_profile_arrives_at_a_receiver_that_takes_htj2k_and_decodes_identically(
        start_conduit, tmp_path):
    """DCMTK 3.6.7, Orthanc 1.10 and GDCM 3.0 do not know the HTJ2K UIDs; a second Conduit
    does (its registry has them). What it spools is taken apart by pydicom and the frame decoded
    by OpenJPEG's opj_decompress (our encoder is OpenJPH)."""
    import pydicom
    receiver = start_conduit(name="receiver")
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - name: archive\n    route:\n"
                     "      - destination: archive\n        transcode: htj2k\n")
    sender = start_conduit({
        "rules": {"file": str(rules)},
        "destinations": [{"name": "archive", "host": "127.0.0.1", "port": receiver.port,
                          "called_ae": receiver.ae_title}],
        "transcoding": {"profiles": [{"name": "htj2k",
                                      "transfer_syntax": "1.2.840.10008.1.2.4.202"}]},
    }, name="sender")
    original = make_instance(tmp_path / "ct.dcm", sop_instance_uid=make_uid(24, 1),
                             pixel_bytes=256 * 128, seed=9)
    assert run_storescu(sender.port, [original]).returncode == 0
    wait_spool_empty(sender)
    [spooled] = receiver.instances()
    assert pydicom.dcmread(spooled).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.202"
    assert (htj2k_pixels(spooled, tmp_path) == pydicom.dcmread(original).pixel_array).all()


def htj2k_pixels(path: Path, tmp_path: Path):
    """The first frame, split out of the encapsulated pixel data by pydicom, decoded by
    opj_decompress into a PGM."""
    import numpy as np
    import pydicom
    from pydicom.encaps import generate_pixel_data_frame
    ds = pydicom.dcmread(path)
    codestream = tmp_path / "frame.j2c"
    codestream.write_bytes(next(generate_pixel_data_frame(ds.PixelData, 1)))
    image = tmp_path / "frame.pgm"
    done = subprocess.run(["opj_decompress", "-i", str(codestream), "-o", str(image)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    header, _, data = image.read_bytes().partition(b"\n255\n")  # 8-bit PGM: "P5\nW H\n255\n"
    return np.frombuffer(data, dtype=np.uint8).reshape(ds.Rows, ds.Columns)


class HoldingScp:
    """A scripted C-STORE SCP (the PDUs of dicom_ul.py) that accepts every presentation context
    in its first proposed transfer syntax and answers C-ECHO and C-STORE with success, except
    that the first C-STORE's answer waits for release() (with `drop_first`, release() closes
    the connection instead of answering). Nothing listens until listen(), so that what is sent
    to it queues first. Once `transcoded` is set (to conduit's <spool>/transcoded), it notes for
    each C-STORE-RQ whether that instance's transcoded copy was already spooled there, whole."""

    def __init__(self, drop_first: bool = False):
        self.drop_first = drop_first
        self.transcoded: Path | None = None
        self.spooled_when_sent: list[bool] = []  # per C-STORE-RQ, in order
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stored: list[str] = []  # SOP Instance UIDs, as their data sets arrived
        self.released = threading.Event()

    def listen(self) -> None:
        self.listener.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def stop(self) -> None:
        self.released.set()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(ul.Connection.accepted(sock, 60),),
                             daemon=True).start()

    def _serve(self, conn: ul.Connection) -> None:
        with conn:
            try:
                rq = conn.read_pdu()
                assert rq.type == ul.A_ASSOCIATE_RQ
                ac = ul._item(0x10, ul._uid(ul.DICOM_APPLICATION_CONTEXT))
                for item_type, item in ul._items(rq.body[68:]):
                    if item_type == 0x20:
                        first = next(sub for kind, sub in ul._items(item[4:]) if kind == 0x40)
                        ac += ul._item(0x21, bytes([item[0], 0, 0, 0]) + ul._item(0x40, first))
                conn.send(ul.pdu(ul.A_ASSOCIATE_AC, rq.body[:68] + ac + ul.user_information()))
                command, request = b"", None
                while True:
                    got = conn.read_pdu(timeout=60)
                    if got.type == ul.A_RELEASE_RQ:
                        conn.send(ul.release_rp())
                        return
                    if got.type != ul.P_DATA_TF:  # A-ABORT: conduit stopping
                        return
                    for pc_id, control, data in ul.parse_pdvs(got.body):
                        if control & 0x01:
                            command += data
                            if control & 0x02:
                                request, command = ul.parse_command(command), b""
                                if ul.command_us(request, 0x0800) == ul.NO_DATASET:
                                    self._answer(conn, pc_id, request)
                                elif self.transcoded is not None:
                                    self.spooled_when_sent.append(
                                        ul.command_ui(request, 0x1000) in self._spooled_uids())
                        elif control & 0x02:  # a data set's last fragment
                            self.stored.append(ul.command_ui(request, 0x1000))
                            if len(self.stored) == 1:
                                self.released.wait(60)
                                if self.drop_first:
                                    return  # closed with the answer owed
                            self._answer(conn, pc_id, request)
            except (ul.PeerClosed, TimeoutError, OSError):
                return

    def _spooled_uids(self) -> set[str]:
        import pydicom
        uids = set()
        for path in self.transcoded.glob("*.dcm"):  # renamed into place once durable: whole
            try:
                uids.add(str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID))
            except FileNotFoundError:  # an instance delivered meanwhile, forgotten
                pass
        return uids

    @staticmethod
    def _answer(conn: ul.Connection, pc_id: int, request: dict[int, bytes]) -> None:
        elements = [(0x0100, ul._us(ul.command_us(request, 0x0100) | 0x8000)),
                    (0x0120, request[0x0110]), (0x0800, ul._us(ul.NO_DATASET)),
                    (0x0900, ul._us(0x0000))]
        elements += [(e, request[e]) for e in (0x0002, 0x1000) if e in request]
        conn.send(ul.p_data_tf(ul.pdv(pc_id, ul.command_set(elements), command=True, last=True)))


def test_the_next_instance_is_transcoded_while_the_current_one_awaits_its_response(
        start_conduit, tmp_path):
    """One association: while the lane waits for an instance's C-STORE-RSP, the next instance
    is already being transcoded on the pool (not only once the response is in); every one is
    spooled durably before it is sent, those prepared ahead too; and the order of arrival stays
    the order of reception."""
    scp = HoldingScp()
    try:
        conduit = start_conduit({
            "rules": {"file": str(profile_rules(tmp_path, "jls"))},
            "destinations": [{"name": "pacs", "host": "127.0.0.1", "port": scp.port,
                              "called_ae": "HELD", "max_associations": 1,
                              "retry": FAST_RETRY}],
            "transcoding": {"profiles": [{"name": "jls", "transfer_syntax": JPEG_LS_LOSSLESS}]},
        })
        prefix = make_uid(26)
        files = [make_instance(tmp_path / f"{i}.dcm", sop_instance_uid=f"{prefix}.{i}",
                               pixel_bytes=256 * 64, seed=i) for i in range(3)]
        assert run_storescu(conduit.port, files).returncode == 0  # queued: nothing listens yet
        scp.transcoded = conduit.spool / "transcoded"
        scp.listen()
        wait_until(lambda: scp.stored, 30, what="the first instance at the SCP")
        wait_for_metric(conduit, "conduit_transcodes_total", 2, timeout=30, outcome="ok")
        assert scp.stored == [f"{prefix}.0"]  # its answer is still held
        scp.release()
        wait_spool_empty(conduit)
        assert scp.stored == [f"{prefix}.{i}" for i in range(3)]
        assert scp.spooled_when_sent == [True, True, True]
        samples = parse_metrics(conduit.metrics_text())
        assert metric_value(samples, "conduit_transcodes_total", outcome="ok") == 3
        assert metric_value(samples, "conduit_forward_delivered_total", destination="pacs") == 3
    finally:
        scp.stop()


def test_instances_prepared_ahead_survive_a_broken_association_and_are_not_transcoded_again(
        start_conduit, tmp_path):
    """The destination drops the association while the first instance's answer is owed and the
    second has been prepared ahead: both go again on a new association, nothing is
    dead-lettered, and neither is transcoded a second time (the spooled copies are reused)."""
    scp = HoldingScp(drop_first=True)
    try:
        conduit = start_conduit({
            "rules": {"file": str(profile_rules(tmp_path, "jls"))},
            "destinations": [{"name": "pacs", "host": "127.0.0.1", "port": scp.port,
                              "called_ae": "HELD", "max_associations": 1,
                              "retry": FAST_RETRY}],
            "transcoding": {"profiles": [{"name": "jls", "transfer_syntax": JPEG_LS_LOSSLESS}]},
        })
        prefix = make_uid(27)
        files = [make_instance(tmp_path / f"{i}.dcm", sop_instance_uid=f"{prefix}.{i}",
                               pixel_bytes=256 * 64, seed=i) for i in range(3)]
        assert run_storescu(conduit.port, files).returncode == 0
        scp.listen()
        wait_for_metric(conduit, "conduit_transcodes_total", 2, timeout=30, outcome="ok")
        scp.release()  # the association breaks with the first answer owed
        wait_spool_empty(conduit)
        uids = [f"{prefix}.{i}" for i in range(3)]
        assert scp.stored[0] == uids[0] and sorted(scp.stored[1:]) == uids  # the first, twice
        samples = parse_metrics(conduit.metrics_text())
        assert metric_value(samples, "conduit_transcodes_total", outcome="ok") == 3
        assert metric_value(samples, "conduit_forward_delivered_total", destination="pacs") == 3
        assert metric_value(samples, "conduit_forward_dead_lettered_total",
                            destination="pacs") == 0
    finally:
        scp.stop()
