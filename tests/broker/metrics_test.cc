// Metrics::Render: the ISR change counters count what OnIsrChange reports, every series has its
// # HELP and # TYPE, and rill_replica_fetchers appears only once a fetcher manager is attached.
// The per-partition replication gauges are checked on a real cluster
// (tests/integration/replication_integration_test.cc).

#include "http/metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace rill::broker {
namespace {

bool Has(const std::string& body, const std::string& line) {
  return body.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsTest, IsrChangeCountersCountShrinksAndExpandsApart) {
  Metrics m;
  std::string body = m.Render(nullptr);
  EXPECT_TRUE(Has(body, "# TYPE rill_isr_shrinks_total counter")) << body;
  EXPECT_TRUE(Has(body, "# TYPE rill_isr_expands_total counter")) << body;
  EXPECT_NE(body.find("# HELP rill_isr_shrinks_total "), std::string::npos);
  EXPECT_NE(body.find("# HELP rill_isr_expands_total "), std::string::npos);
  EXPECT_TRUE(Has(body, "rill_isr_shrinks_total 0")) << body;
  EXPECT_TRUE(Has(body, "rill_isr_expands_total 0")) << body;

  m.OnIsrChange(/*shrink=*/true);
  m.OnIsrChange(/*shrink=*/true);
  m.OnIsrChange(/*shrink=*/false);
  body = m.Render(nullptr);
  EXPECT_TRUE(Has(body, "rill_isr_shrinks_total 2")) << body;
  EXPECT_TRUE(Has(body, "rill_isr_expands_total 1")) << body;
}

TEST(MetricsTest, ReplicaFetchersOnlyOnceAttached) {
  Metrics m;
  EXPECT_EQ(m.Render(nullptr).find("rill_replica_fetchers"), std::string::npos);
}

}  // namespace
}  // namespace rill::broker
