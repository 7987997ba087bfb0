"""Associations that die mid-dataset leave nothing behind: no instance, no .part, no fd, no
unbounded memory."""

import pytest

import dicom_ul as ul
from conftest import encode_dataset, make_uid, run_echoscu, small_dataset, wait_until

SC = ul.SECONDARY_CAPTURE_STORAGE
PARTIAL_PIXEL_BYTES = 512 * 1024


def partial_store(conduit, mode: str, n: int) -> None:
    """C-STORE-RQ + about half of a ~512 KiB dataset, then A-ABORT or a plain close."""
    a = conduit.associate(calling_ae="ABORTSCU", contexts=[(1, SC, [ul.EXPLICIT_VR_LE])],
                          max_pdu=16384)
    try:
        a.accepted_context(1)
        uid = make_uid(4, n)
        data = encode_dataset(small_dataset(uid, pixel_bytes=PARTIAL_PIXEL_BYTES), implicit=False)
        a.send_fragments(1, ul.c_store_rq(SC, uid, a.next_message_id()), command=True)
        a.send_fragments(1, data[: len(data) // 2], command=False, last=False)
        if mode == "abort":
            a.abort()
    finally:
        a.close()


def settled(conduit) -> bool:
    return not conduit.parts() and not conduit.instances()


@pytest.mark.parametrize("mode", ["abort", "close"])
def test_aborted_store_leaves_nothing(conduit, mode):
    partial_store(conduit, mode, 0)
    wait_until(lambda: not conduit.parts(), 10, what="the .part file to go")
    assert conduit.instances() == []
    assert run_echoscu(conduit.port).returncode == 0


def test_repeated_aborts_do_not_leak(conduit):
    for n in range(10):  # warm-up: let lazily created threads, buffers and files exist
        partial_store(conduit, "abort" if n % 2 else "close", n)
    wait_until(lambda: settled(conduit), 10, what="spool to settle after warm-up")
    fd_base = conduit.fd_count()
    rss_base = conduit.rss_kib()

    for n in range(10, 210):  # 100 aborted + 100 closed mid-dataset
        partial_store(conduit, "abort" if n % 2 else "close", n)

    wait_until(lambda: settled(conduit), 15, what="no .part and no instance after aborts")
    try:
        wait_until(lambda: conduit.fd_count() <= fd_base, 15, what="fd count back to baseline")
    except BaseException:
        import os
        fds = {fd: os.readlink(f"/proc/{conduit.pid}/fd/{fd}")
               for fd in os.listdir(f"/proc/{conduit.pid}/fd")}
        raise AssertionError(f"fds {fd_base} -> {conduit.fd_count()}: {fds}")
    rss_growth_mib = (conduit.rss_kib() - rss_base) / 1024
    # 200 associations each pushed ~256 KiB: leaking their buffers would be ~50 MiB.
    assert rss_growth_mib < 16, f"VmRSS grew by {rss_growth_mib:.1f} MiB over 200 aborts"
    assert conduit.instances() == []
    assert run_echoscu(conduit.port).returncode == 0
