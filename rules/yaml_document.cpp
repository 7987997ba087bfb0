#include "rules/yaml_document.h"

#include <yaml-cpp/eventhandler.h>

#include <sstream>

namespace conduit::rules {
namespace {

// Records where a document's first node is; a document of nothing but `---` has none.
class ContentFinder : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& /*mark*/) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override { Found(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {
    Found(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/,
                       YAML::anchor_t /*anchor*/, YAML::EmitterStyle::value /*style*/) override {
    Found(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {
    Found(mark);
  }
  void OnMapEnd() override {}

  const std::optional<YAML::Mark>& first() const { return first_; }

 private:
  void Found(const YAML::Mark& mark) {
    if (!first_) {
      first_ = mark;
    }
  }
  std::optional<YAML::Mark> first_;
};

}  // namespace

std::optional<YAML::Mark> SecondDocumentMark(const std::string& text) {
  std::istringstream input(text);
  YAML::Parser parser(input);
  ContentFinder first;
  if (!parser.HandleNextDocument(first)) {
    return std::nullopt;
  }
  ContentFinder second;
  if (!parser.HandleNextDocument(second)) {
    return std::nullopt;
  }
  return second.first();
}

}  // namespace conduit::rules
