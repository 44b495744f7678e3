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

TEST(MetricsTest, HistogramPutsEachObservationInTheFirstBucketThatHoldsIt) {
  // Bounds are 50 us * 2^i for i in [0, 21); a value equal to a bound belongs to that bucket.
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    EXPECT_EQ(Histogram::BucketBound(i), 50e-6 * static_cast<double>(int64_t{1} << i)) << i;
  }
  Histogram h;
  h.Observe(0);                          // bucket 0 (le 5e-05)
  h.Observe(50e-6);                      // bucket 0: on the bound
  h.Observe(60e-6);                      // bucket 1 (le 0.0001)
  h.Observe(Histogram::BucketBound(6));  // bucket 6 (le 0.0032): on the bound
  h.Observe(10.0);                       // bucket 18 (le 13.1072)
  h.Observe(1000.0);                     // +Inf
  std::string out;
  h.Render(&out, "x", "");
  EXPECT_NE(out.find("x_bucket{le=\"5e-05\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"0.0001\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"0.0016\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"0.0032\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"6.5536\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"13.1072\"} 5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 6\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count{} 6\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace rill::broker
