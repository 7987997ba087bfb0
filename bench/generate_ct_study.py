#!/usr/bin/python3
"""Generate a synthetic but realistic CT study for Conduit's end-to-end benchmarks.

One patient, one study, one axial series of N slices (default 500), CT Image Storage,
512x512, 12 bits stored in 16 allocated, MONOCHROME2, unsigned pixels with
RescaleIntercept -1024 / RescaleSlope 1 (stored 0..4095 = -1024..3071 HU), written as
DICOM Part 10 files in Explicit VR Little Endian (about 513 KiB each).

The "anatomy" is a chest-to-abdomen phantom that varies smoothly along z: an elliptical body
(fat rim around soft tissue), two lungs that open and close along the series, a heart, an
aorta, a spine (cortical ring around cancellous bone), a posterior table, plus Gaussian noise
(sigma about 12 HU) so that pixel data does not compress trivially -- lossless codecs see
something close to a real CT (roughly 2:1 to 3:1), not a flat image.

Everything is deterministic for a given --seed: UIDs (pydicom.uid.generate_uid with entropy
sources derived from the seed), noise, dates.

Usage: generate_ct_study.py OUTDIR [--slices N] [--seed S]
"""

import argparse
import os
import sys
import time

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ROWS = COLS = 512
PIXEL_SPACING_MM = 0.78125  # 400 mm field of view
SLICE_THICKNESS_MM = 1.0
INTERCEPT = -1024.0
# Pydicom's own UID root; fine for synthetic data that never leaves a test bench.
UID_PREFIX = "1.2.826.0.1.3680043.8.498."


def uid(seed, *parts):
    """A deterministic UID: same seed and parts give the same UID on every run."""
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=["conduit-bench", str(seed), *map(str, parts)])


def smooth(t, lo, hi):
    """Smoothstep from 0 at t<=lo to 1 at t>=hi (vectorised-friendly scalar)."""
    if hi == lo:
        return float(t >= hi)
    x = min(max((t - lo) / (hi - lo), 0.0), 1.0)
    return x * x * (3 - 2 * x)


class Phantom:
    """Builds one slice of HU values at normalised position t in [0, 1] (head to feet)."""

    def __init__(self):
        # Coordinates in mm, patient LPS: x to patient left (columns), y to posterior (rows).
        c = (np.arange(COLS, dtype=np.float32) - (COLS - 1) / 2) * PIXEL_SPACING_MM
        self.x = c[np.newaxis, :]
        self.y = c[:, np.newaxis]

    def ellipse(self, cx, cy, rx, ry):
        return ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 <= 1.0

    def slice_hu(self, t):
        img = np.full((ROWS, COLS), -1000.0, dtype=np.float32)  # air

        # Table under the patient (posterior = +y).
        img[(self.y > 150) & (self.y < 160) & (np.abs(self.x) < 180)] = 200.0

        # Body: wider over the chest, a little narrower over the abdomen; a breathing-like wobble.
        rx = 165 + 12 * np.sin(2 * np.pi * t) + 6 * np.sin(7 * np.pi * t)
        ry = 115 + 8 * np.cos(3 * np.pi * t)
        cy = 20.0
        img[self.ellipse(0, cy, rx, ry)] = -100.0  # subcutaneous fat
        img[self.ellipse(0, cy, rx - 12, ry - 10)] = 40.0  # soft tissue / muscle

        # Lungs: present in the upper ~60% of the series, grow then shrink toward the diaphragm.
        lung = smooth(t, 0.0, 0.15) * (1 - smooth(t, 0.45, 0.65))
        if lung > 0.02:
            lrx, lry = 60 * lung + 5, 80 * lung + 5
            for side in (-1, 1):
                img[self.ellipse(side * 75, cy - 5, lrx, lry)] = -850.0
        # Heart between the lungs, mid-chest.
        heart = smooth(t, 0.2, 0.3) * (1 - smooth(t, 0.45, 0.55))
        if heart > 0.02:
            img[self.ellipse(20, cy - 30, 55 * heart + 3, 45 * heart + 3)] = 45.0
        # Liver on the right (patient right = -x) below the diaphragm.
        liver = smooth(t, 0.45, 0.6) * (1 - smooth(t, 0.85, 0.95))
        if liver > 0.02:
            img[self.ellipse(-60, cy - 10, 80 * liver + 3, 70 * liver + 3)] = 60.0
        # Aorta (contrast) in front of the spine all along.
        img[self.ellipse(10, cy + 45, 13, 13)] = 250.0
        # Spine: cortical ring around cancellous bone; vertebra/disc pattern along z.
        vertebra = 0.5 + 0.5 * np.cos(2 * np.pi * t * 17)
        img[self.ellipse(0, cy + 80, 24, 22)] = 700.0 + 500.0 * vertebra
        img[self.ellipse(0, cy + 80, 18, 16)] = 200.0 + 150.0 * vertebra
        return img


def make_template(seed, n):
    ds = Dataset()
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT_IMAGE_STORAGE
    # Patient
    ds.PatientName = "BENCH^CONDUIT"
    ds.PatientID = f"CONDUIT-BENCH-{seed}"
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    # General Study
    ds.StudyInstanceUID = uid(seed, "study")
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = f"BENCH{seed:08d}"[:16]
    ds.StudyDescription = "CT CHEST ABDOMEN (synthetic benchmark)"
    # General Series
    ds.Modality = "CT"
    ds.SeriesInstanceUID = uid(seed, "series")
    ds.SeriesNumber = 2
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = "101600"
    ds.SeriesDescription = f"AXIAL 1.0mm ({n} slices)"
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    # Frame of Reference
    ds.FrameOfReferenceUID = uid(seed, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    # General Equipment
    ds.Manufacturer = "Conduit Bench"
    ds.ManufacturerModelName = "generate_ct_study.py"
    ds.SoftwareVersions = "1"
    ds.InstitutionName = "Synthetic"
    # General Image / CT Image
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.AcquisitionNumber = 1
    ds.AcquisitionDate = ds.StudyDate
    ds.ContentDate = ds.StudyDate
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = "400"
    ds.ConvolutionKernel = "STANDARD"
    ds.XRayTubeCurrent = 200
    ds.ExposureTime = 500
    ds.GantryDetectorTilt = "0"
    ds.RotationDirection = "CW"
    # Image Plane
    ds.PixelSpacing = [PIXEL_SPACING_MM, PIXEL_SPACING_MM]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = str(SLICE_THICKNESS_MM)
    # Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ROWS
    ds.Columns = COLS
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = str(int(INTERCEPT))
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    # VOI LUT: soft-tissue window
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    return ds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", help="output directory (created if missing)")
    ap.add_argument("--slices", type=int, default=500, help="number of slices (default 500)")
    ap.add_argument("--seed", type=int, default=1, help="seed for UIDs and noise (default 1)")
    ap.add_argument("--noise", type=float, default=12.0, help="noise sigma in HU (default 12)")
    args = ap.parse_args(argv)
    if args.slices < 1:
        ap.error("--slices must be >= 1")

    t0 = time.monotonic()
    os.makedirs(args.outdir, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    phantom = Phantom()
    template = make_template(args.seed, args.slices)

    z0 = 0.0  # table position of the first slice (mm), descending head to feet
    for i in range(args.slices):
        t = i / max(args.slices - 1, 1)
        hu = phantom.slice_hu(t)
        hu += rng.standard_normal((ROWS, COLS), dtype=np.float32) * np.float32(args.noise)
        stored = np.clip(np.rint(hu - INTERCEPT), 0, 4095).astype("<u2")

        ds = Dataset()
        ds.update(template)
        z = z0 - i * SLICE_THICKNESS_MM
        sop_uid = uid(args.seed, "instance", i + 1)
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [
            -(COLS - 1) / 2 * PIXEL_SPACING_MM,
            -(ROWS - 1) / 2 * PIXEL_SPACING_MM,
            z,
        ]
        ds.SliceLocation = z
        # Acquisition/content time advances 0.5 s per slice (temporally related images).
        secs = 10 * 3600 + 16 * 60 + 30 + i // 2
        hhmmss = f"{secs // 3600:02d}{secs % 3600 // 60:02d}{secs % 60:02d}"
        ds.AcquisitionTime = f"{hhmmss}.{(i % 2) * 5}"
        ds.ContentTime = ds.AcquisitionTime
        ds.SmallestImagePixelValue = int(stored.min())
        ds.LargestImagePixelValue = int(stored.max())
        ds.PixelData = stored.tobytes()
        ds["PixelData"].VR = "OW"

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID_PREFIX + "1"
        meta.ImplementationVersionName = "CONDUIT_BENCH"
        ds.file_meta = meta
        ds.is_little_endian = True
        ds.is_implicit_VR = False
        ds.preamble = b"\0" * 128
        path = os.path.join(args.outdir, f"CT{i + 1:06d}.dcm")
        pydicom.dcmwrite(path, ds, write_like_original=False)

    dt = time.monotonic() - t0
    print(f"wrote {args.slices} slices to {args.outdir} in {dt:.1f} s "
          f"(study {template.StudyInstanceUID})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
