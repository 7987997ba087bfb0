// The raw encode rate of one frame codec on a real study: every frame of every *.dcm in DIR is
// read with DCMTK and its native pixels kept in memory first, then all frames are encoded with
// the codec codecs::FindFrameCodec(UID) returns, on THREADS threads (default 1), and the rate
// is printed. Reading, parsing and writing files are outside the timed part: this is the codec
// alone, the "raw single-thread encode rate" bench/transcode_bench.sh compares the pipeline to.
//
// Our FrameCodec wrappers cost within 5% of the libraries they wrap (bench/codec_*_bench put
// each wrapper against the raw library call on the same frame), so this rate stands for the
// library's own single-thread rate. With --threads N the frames are dealt to N threads that
// encode at once: what the cores can do together with nothing else running (no I/O, no DICOM).
//
// usage: conduit_transcode_rate --syntax UID [--threads N] [--passes P] [--lossy] DIR
//   --syntax UID   target transfer syntax, e.g. 1.2.840.10008.1.2.4.201 (HTJ2K lossless) or
//                  1.2.840.10008.1.2.4.80 (JPEG-LS lossless)
//   --threads N    encoding threads (default 1)
//   --passes P     encode every frame P times (default 1); the rate counts every encode
//   --lossy        EncodeOptions.lossy (default lossless, as the pipeline's profiles)
// The files must hold native (uncompressed) pixel data, 8 or 16 bits allocated, monochrome,
// one frame each: the CT study from bench/generate_ct_study.py.
//
// Prints one line (for scripts) to stdout:
//   syntax UID threads N frames F seconds S frames_per_second R compression_ratio C
// and checks, untimed, that the first frame decodes back to the same samples (lossless only).
#include <dcmtk/dcmdata/dctk.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "codecs/codec_registry.h"

namespace {

using conduit::codecs::EncodeOptions;
using conduit::codecs::FrameCodec;
using conduit::codecs::FrameInfo;

struct Frame {
  FrameInfo info;
  std::vector<std::uint8_t> native;
};

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s --syntax UID [--threads N] [--passes P] [--lossy] DIR\n", argv0);
  return 2;
}

// One file's frame, or an error message (empty on success).
std::string LoadFrame(const std::filesystem::path& path, Frame& frame) {
  DcmFileFormat file;
  const OFCondition loaded = file.loadFile(path.c_str());
  if (loaded.bad()) return std::string("cannot read: ") + loaded.text();
  DcmDataset* dataset = file.getDataset();
  Uint16 rows = 0, columns = 0, samples = 1, allocated = 0, stored = 0, representation = 0;
  OFString photometric;
  Sint32 frames = 1;
  if (dataset->findAndGetUint16(DCM_Rows, rows).bad() ||
      dataset->findAndGetUint16(DCM_Columns, columns).bad() ||
      dataset->findAndGetUint16(DCM_BitsAllocated, allocated).bad() ||
      dataset->findAndGetUint16(DCM_BitsStored, stored).bad()) {
    return "Rows, Columns, BitsAllocated or BitsStored missing";
  }
  dataset->findAndGetUint16(DCM_SamplesPerPixel, samples);
  dataset->findAndGetUint16(DCM_PixelRepresentation, representation);
  dataset->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  dataset->findAndGetSint32(DCM_NumberOfFrames, frames);
  if (samples != 1 || frames > 1) return "one monochrome frame per file expected";
  if (photometric != "MONOCHROME2" && photometric != "MONOCHROME1") {
    return "MONOCHROME1/2 expected, not " + std::string(photometric.c_str());
  }
  frame.info.rows = rows;
  frame.info.columns = columns;
  frame.info.samples_per_pixel = 1;
  frame.info.bits_allocated = allocated;
  frame.info.bits_stored = stored;
  frame.info.is_signed = representation == 1;
  frame.info.photometric = photometric == "MONOCHROME1"
                               ? conduit::codecs::Photometric::kMonochrome1
                               : conduit::codecs::Photometric::kMonochrome2;
  const std::size_t bytes = frame.info.native_bytes();
  if (allocated == 16) {
    const Uint16* pixels = nullptr;
    unsigned long count = 0;
    if (dataset->findAndGetUint16Array(DCM_PixelData, pixels, &count).bad() || !pixels) {
      return "no native 16-bit PixelData";
    }
    if (count * 2 < bytes) return "PixelData shorter than Rows x Columns";
    frame.native.resize(bytes);
    // DCMTK hands the samples in host order; FrameInfo wants little-endian (this host's).
    std::memcpy(frame.native.data(), pixels, bytes);
  } else if (allocated == 8) {
    const Uint8* pixels = nullptr;
    unsigned long count = 0;
    if (dataset->findAndGetUint8Array(DCM_PixelData, pixels, &count).bad() || !pixels) {
      return "no native 8-bit PixelData";
    }
    if (count < bytes) return "PixelData shorter than Rows x Columns";
    frame.native.assign(pixels, pixels + bytes);
  } else {
    return "8 or 16 bits allocated expected";
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string syntax;
  std::string directory;
  int threads = 1;
  int passes = 1;
  EncodeOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--syntax" && i + 1 < argc) {
      syntax = argv[++i];
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--passes" && i + 1 < argc) {
      passes = std::atoi(argv[++i]);
    } else if (arg == "--lossy") {
      options.lossy = true;
    } else if (!arg.empty() && arg[0] != '-' && directory.empty()) {
      directory = arg;
    } else {
      return Usage(argv[0]);
    }
  }
  if (syntax.empty() || directory.empty() || threads < 1 || threads > 256 || passes < 1) {
    return Usage(argv[0]);
  }
  const FrameCodec* codec = conduit::codecs::FindFrameCodec(syntax);
  if (!codec) {
    std::fprintf(stderr, "no frame codec for transfer syntax %s\n", syntax.c_str());
    return 2;
  }

  std::vector<std::filesystem::path> paths;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    if (entry.is_regular_file() && entry.path().extension() == ".dcm") {
      paths.push_back(entry.path());
    }
  }
  if (error) {
    std::fprintf(stderr, "%s: %s\n", directory.c_str(), error.message().c_str());
    return 1;
  }
  std::sort(paths.begin(), paths.end());
  if (paths.empty()) {
    std::fprintf(stderr, "no *.dcm files in %s\n", directory.c_str());
    return 1;
  }

  // Every frame in memory before the clock starts.
  std::vector<Frame> frames(paths.size());
  std::size_t native_bytes = 0;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string problem = LoadFrame(paths[i], frames[i]);
    if (!problem.empty()) {
      std::fprintf(stderr, "%s: %s\n", paths[i].c_str(), problem.c_str());
      return 1;
    }
    if (auto refusal = codec->EncodeRefusal(frames[i].info, options)) {
      std::fprintf(stderr, "%s: codec refuses: %s\n", paths[i].c_str(), refusal->c_str());
      return 1;
    }
    native_bytes += frames[i].native.size();
  }

  // Frames are dealt round-robin: thread t encodes frames t, t+N, t+2N, ...
  std::vector<std::size_t> coded_bytes(static_cast<std::size_t>(threads), 0);
  std::atomic<bool> failed{false};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  auto work = [&](int t) {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    for (int pass = 0; pass < passes; ++pass) {
      for (std::size_t i = static_cast<std::size_t>(t); i < frames.size();
           i += static_cast<std::size_t>(threads)) {
        auto encoded = codec->Encode(frames[i].native, frames[i].info, options);
        if (!encoded) {
          std::fprintf(stderr, "%s: encode failed: %s\n", paths[i].c_str(),
                       encoded.error().message.c_str());
          failed = true;
          return;
        }
        if (pass == 0) coded_bytes[static_cast<std::size_t>(t)] += encoded->bytes.size();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  while (ready.load() < threads - 1) std::this_thread::yield();
  const auto started = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  work(0);  // the main thread is thread 0: --threads 1 starts no thread at all
  for (auto& thread : pool) thread.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (failed) return 1;

  // Untimed: the first frame must come back exactly (lossless targets).
  if (!options.lossy) {
    auto encoded = codec->Encode(frames[0].native, frames[0].info, options);
    bool same = false;
    if (encoded) {
      auto decoded = codec->Decode(encoded->bytes, frames[0].info);
      same = decoded && decoded->pixels == frames[0].native;
    }
    if (!same) {
      std::fprintf(stderr, "%s: the first frame does not decode back to its samples\n",
                   syntax.c_str());
      return 1;
    }
  }

  std::size_t coded = 0;
  for (const std::size_t bytes : coded_bytes) coded += bytes;
  const double encodes = static_cast<double>(frames.size()) * passes;
  std::printf(
      "syntax %s threads %d frames %zu seconds %.3f frames_per_second %.1f "
      "compression_ratio %.2f\n",
      syntax.c_str(), threads, frames.size() * static_cast<std::size_t>(passes), seconds,
      encodes / seconds, coded ? static_cast<double>(native_bytes) / coded : 0.0);
  return 0;
}
