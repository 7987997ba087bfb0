"""Presentation context negotiation (default_config.yaml): sop_classes and
transfer_syntax_preference / accepted_transfer_syntaxes, seen in the A-ASSOCIATE-AC."""

import dicom_ul as ul

SC = ul.SECONDARY_CAPTURE_STORAGE
PRIVATE_SOP = "1.2.826.0.1.3680043.9.7433.99.1"  # no such class in the standard
ALL_UNCOMPRESSED = [ul.IMPLICIT_VR_LE, ul.EXPLICIT_VR_BE, ul.EXPLICIT_VR_LE]


def test_sender_preference_takes_the_senders_first_choice(conduit):
    a = conduit.associate(contexts=[(1, SC, [ul.EXPLICIT_VR_BE, ul.EXPLICIT_VR_LE]),
                                    (3, SC, [ul.EXPLICIT_VR_LE, ul.IMPLICIT_VR_LE]),
                                    (5, SC, ["1.2.3.4.5.6.7.8.9.10"])])
    try:
        assert a.accepted_context(1) == ul.EXPLICIT_VR_BE
        assert a.accepted_context(3) == ul.EXPLICIT_VR_LE
        assert a.ac.contexts[5][0] == 4, a.ac.contexts  # transfer syntaxes not supported
        a.release()
    finally:
        a.close()


def test_listed_preference(start_conduit):
    c = start_conduit({"listener": {"transfer_syntax_preference": "listed",
                                    "accepted_transfer_syntaxes": [ul.EXPLICIT_VR_LE,
                                                                   ul.IMPLICIT_VR_LE]}})
    a = c.associate(contexts=[(1, SC, ALL_UNCOMPRESSED),
                              (3, SC, [ul.IMPLICIT_VR_LE]),
                              (5, SC, [ul.EXPLICIT_VR_BE])])
    try:
        assert a.accepted_context(1) == ul.EXPLICIT_VR_LE  # our first choice, not the sender's
        assert a.accepted_context(3) == ul.IMPLICIT_VR_LE
        assert a.ac.contexts[5][0] == 4, a.ac.contexts  # big endian is not in our list
        a.release()
    finally:
        a.close()


def test_sop_classes_any_accepts_private_class(start_conduit):
    c = start_conduit({"listener": {"sop_classes": "any"}})
    a = c.associate(contexts=[(1, PRIVATE_SOP, [ul.EXPLICIT_VR_LE])])
    try:
        assert a.accepted_context(1) == ul.EXPLICIT_VR_LE
        a.release()
    finally:
        a.close()


def test_sop_classes_standard_refuses_private_class(conduit):
    a = conduit.associate(contexts=[(1, PRIVATE_SOP, [ul.EXPLICIT_VR_LE]),
                                    (3, SC, [ul.EXPLICIT_VR_LE])])
    try:
        assert a.ac.contexts[1][0] == 3, a.ac.contexts  # abstract syntax not supported
        assert a.accepted_context(3) == ul.EXPLICIT_VR_LE
        a.release()
    finally:
        a.close()


def test_sop_classes_listed(start_conduit):
    c = start_conduit({"listener": {"sop_classes": [ul.CT_IMAGE_STORAGE]}})
    a = c.associate(contexts=[(1, ul.CT_IMAGE_STORAGE, [ul.EXPLICIT_VR_LE]),
                              (3, SC, [ul.EXPLICIT_VR_LE]),
                              (5, ul.VERIFICATION_SOP_CLASS, [ul.IMPLICIT_VR_LE])])
    try:
        assert a.accepted_context(1) == ul.EXPLICIT_VR_LE
        assert a.ac.contexts[3][0] == 3, a.ac.contexts
        assert a.accepted_context(5) == ul.IMPLICIT_VR_LE  # Verification always
        assert a.echo(5) == 0
        a.release()
    finally:
        a.close()
