#include "router/metrics/transcode_metrics.h"

#include <string_view>
#include <utility>

namespace conduit::metrics {
namespace {

// PS3.6 Table A-1 keywords of the transfer syntaxes Conduit can transcode between (the codecs'
// registry), so that a label value reads "JPEGLSLossless" rather than a UID. Anything else, which
// the pipeline never passes, shares "other": the label set stays bounded whatever happens.
constexpr std::pair<std::string_view, std::string_view> kTransferSyntaxKeywords[] = {
    {"1.2.840.10008.1.2", "ImplicitVRLittleEndian"},
    {"1.2.840.10008.1.2.1", "ExplicitVRLittleEndian"},
    {"1.2.840.10008.1.2.1.99", "DeflatedExplicitVRLittleEndian"},
    {"1.2.840.10008.1.2.2", "ExplicitVRBigEndian"},
    {"1.2.840.10008.1.2.4.50", "JPEGBaseline8Bit"},
    {"1.2.840.10008.1.2.4.51", "JPEGExtended12Bit"},
    {"1.2.840.10008.1.2.4.57", "JPEGLossless"},
    {"1.2.840.10008.1.2.4.70", "JPEGLosslessSV1"},
    {"1.2.840.10008.1.2.4.80", "JPEGLSLossless"},
    {"1.2.840.10008.1.2.4.81", "JPEGLSNearLossless"},
    {"1.2.840.10008.1.2.4.90", "JPEG2000Lossless"},
    {"1.2.840.10008.1.2.4.91", "JPEG2000"},
    {"1.2.840.10008.1.2.4.201", "HTJ2KLossless"},
    {"1.2.840.10008.1.2.4.202", "HTJ2KLosslessRPCL"},
    {"1.2.840.10008.1.2.4.203", "HTJ2K"},
    {"1.2.840.10008.1.2.5", "RLELossless"},
};

std::string TransferSyntaxLabel(std::string_view uid) {
  for (const auto& [known, keyword] : kTransferSyntaxKeywords) {
    if (known == uid) {
      return std::string(keyword);
    }
  }
  return "other";
}

}  // namespace

TranscodeMetrics::TranscodeMetrics(prometheus::Registry& registry)
    : transcodes_(prometheus::BuildCounter()
                      .Name("conduit_transcodes_total")
                      .Help("Datasets transcoded, by source and target transfer syntax (PS3.6 "
                            "keyword) and outcome (ok, failed)")
                      .Register(registry)),
      frame_seconds_(prometheus::BuildHistogram()
                         .Name("conduit_transcode_frame_seconds")
                         .Help("Decode plus encode time per frame")
                         .Register(registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025,
                                                                          0.005, 0.01, 0.025, 0.05,
                                                                          0.1, 0.25, 0.5, 1, 2.5})),
      compression_ratio_(
          prometheus::BuildHistogram()
              .Name("conduit_transcode_compression_ratio")
              .Help("Native pixel bytes over written pixel bytes, per dataset")
              .Register(registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.9, 1, 1.5, 2, 2.5, 3, 4, 6, 10, 20,
                                                               50})),
      queued_(prometheus::BuildGauge()
                  .Name("conduit_transcode_queue_depth")
                  .Help("Jobs waiting for a transcoding worker")
                  .Register(registry)
                  .Add({})),
      busy_(prometheus::BuildGauge()
                .Name("conduit_transcode_workers_busy")
                .Help("Transcoding workers at work (saturated when equal to the workers)")
                .Register(registry)
                .Add({})),
      workers_(prometheus::BuildGauge()
                   .Name("conduit_transcode_workers")
                   .Help("Transcoding workers (transcoding.threads)")
                   .Register(registry)
                   .Add({})) {}

void TranscodeMetrics::Transcoded(const std::string& source_uid, const std::string& target_uid,
                                  const std::string& outcome) {
  transcodes_
      .Add({{"source", TransferSyntaxLabel(source_uid)},
            {"target", TransferSyntaxLabel(target_uid)},
            {"outcome", outcome}})
      .Increment();
}

void TranscodeMetrics::Frames(std::size_t frames, double seconds, double compression_ratio) {
  if (frames > 0) {
    const double per_frame = seconds / static_cast<double>(frames);
    for (std::size_t i = 0; i < frames; ++i) frame_seconds_.Observe(per_frame);
  }
  compression_ratio_.Observe(compression_ratio);
}

}  // namespace conduit::metrics
