"""C-ECHO from DCMTK echoscu and from the raw client."""

import dicom_ul as ul
from conftest import run_echoscu


def test_echoscu(conduit):
    res = run_echoscu(conduit.port, "-v")
    assert res.returncode == 0, res.stderr
    assert "Received Echo Response (Success)" in res.stderr


def test_echoscu_repeated_on_one_association(conduit):
    res = run_echoscu(conduit.port, "-v", "--repeat", "5")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("Received Echo Response (Success)") == 5


def test_raw_echo_and_release(conduit):
    a = conduit.associate(contexts=[(1, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE])])
    try:
        assert a.accepted_context(1) == ul.IMPLICIT_VR_LE
        assert a.ac.max_pdu > 0
        assert a.echo(1) == 0x0000
        assert a.echo(1) == 0x0000
        a.release()
    finally:
        a.close()


def test_unsupported_abstract_syntax_context_is_refused(conduit):
    # A context for a SOP class nobody knows must come back refused (result 3, PS3.8
    # 9.3.3.2) under the default `sop_classes: standard`, while Verification is accepted.
    a = conduit.associate(contexts=[(1, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE]),
                                    (3, "1.2.3.4.5.6.7.8.9", [ul.IMPLICIT_VR_LE])])
    try:
        assert a.ac.contexts[1][0] == 0
        assert a.ac.contexts[3][0] == 3, a.ac.contexts
        assert a.echo(1) == 0
        a.release()
    finally:
        a.close()
