// Google Benchmark for the Upper Layer and DIMSE parsers on the shapes they see most:
// a storescu-like A-ASSOCIATE-RQ, a full 128 KiB P-DATA-TF, and a C-STORE-RQ command set.
#include <benchmark/benchmark.h>

#include "router/dimse/command_set.h"
#include "router/net/pdu_codec.h"

namespace {

using conduit::net::Bytes;

Bytes BodyOf(const Bytes& pdu) { return Bytes(pdu.begin() + 6, pdu.end()); }

Bytes StorescuLikeAssociateRq() {
  conduit::net::AssociateRq rq;
  rq.called_ae = "CONDUIT";
  rq.calling_ae = "STORESCU";
  rq.max_pdu_length = 16384;
  rq.implementation_class_uid = "1.2.276.0.7230010.3.0.3.6.7";
  rq.implementation_version_name = "OFFIS_DCMTK_367";
  // storescu proposes two contexts for each of about 60 SOP classes.
  for (int i = 0; i < 120; ++i) {
    rq.presentation_contexts.push_back(
        {static_cast<std::uint8_t>(2 * i + 1),
         "1.2.840.10008.5.1.4.1.1." + std::to_string(i % 60 + 1),
         {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"}});
  }
  return BodyOf(conduit::net::EncodeAssociateRq(rq));
}

void BM_ParseAssociateRq(benchmark::State& state) {
  const Bytes body = StorescuLikeAssociateRq();
  for (auto _ : state) {
    auto result = conduit::net::ParseAssociateRq(body);
    benchmark::DoNotOptimize(result);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParseAssociateRq);

void BM_ParsePDataTf128KiB(benchmark::State& state) {
  const Bytes data(131072 - 6, 0x5A);
  Bytes pdu;
  conduit::net::AppendPDataTf(pdu, 1, false, false, data, 131072);
  const Bytes body = BodyOf(pdu);
  std::vector<conduit::net::Pdv> pdvs;
  for (auto _ : state) {
    pdvs.clear();
    auto error = conduit::net::ParsePDataTf(body, pdvs);
    benchmark::DoNotOptimize(error);
    benchmark::DoNotOptimize(pdvs.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParsePDataTf128KiB);

void BM_ParseCStoreCommand(benchmark::State& state) {
  conduit::dimse::CommandSet command;
  command.command_field = conduit::dimse::command_field::kCStoreRq;
  command.message_id = 7;
  command.priority = 0;
  command.data_set_type = conduit::dimse::kDataSetPresent;
  command.affected_sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  command.affected_sop_instance_uid = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789";
  const Bytes bytes = conduit::dimse::EncodeCommandSet(command);
  for (auto _ : state) {
    auto result = conduit::dimse::ParseCommandSet(bytes);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_ParseCStoreCommand);

}  // namespace

BENCHMARK_MAIN();
