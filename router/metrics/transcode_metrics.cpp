#include "router/metrics/transcode_metrics.h"

namespace conduit::metrics {

TranscodeMetrics::TranscodeMetrics(prometheus::Registry& registry)
    : transcodes_(prometheus::BuildCounter()
                      .Name("conduit_transcodes_total")
                      .Help("Datasets transcoded, by source and target transfer syntax and outcome")
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
  transcodes_.Add({{"source", source_uid}, {"target", target_uid}, {"outcome", outcome}})
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
