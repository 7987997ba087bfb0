// Prometheus metrics of the transcoding pipeline: transcodes by source and target syntax and
// outcome, time per frame, compression ratio, and the pool's queue and saturation. Syntaxes are
// labelled by their PS3.6 keyword (ExplicitVRLittleEndian, JPEGLSLossless, ...), never by UID:
// a fixed vocabulary, so the number of series is bounded.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

namespace conduit::metrics {

class TranscodeMetrics {
 public:
  explicit TranscodeMetrics(prometheus::Registry& registry);

  // Transfer syntax UIDs in, keywords out; `outcome`: "ok" or "failed".
  void Transcoded(const std::string& source_uid, const std::string& target_uid,
                  const std::string& outcome);
  void Frames(std::size_t frames, double seconds, double compression_ratio);
  void Queued(int change) { change > 0 ? queued_.Increment() : queued_.Decrement(); }
  void Busy(int change) { change > 0 ? busy_.Increment() : busy_.Decrement(); }
  void SetWorkers(unsigned workers) { workers_.Set(workers); }

 private:
  prometheus::Family<prometheus::Counter>& transcodes_;
  prometheus::Histogram& frame_seconds_;
  prometheus::Histogram& compression_ratio_;
  prometheus::Gauge& queued_;
  prometheus::Gauge& busy_;
  prometheus::Gauge& workers_;
};

}  // namespace conduit::metrics
