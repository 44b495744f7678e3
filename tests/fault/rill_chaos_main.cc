// rill-chaos: the fault-injection run of issue 16 (tests/fault/README.md). Starts a cluster of
// real brokers, puts acks=all producers, a consumer and a consumer group on an RF=3 topic,
// applies --cycles faults chosen from a printed seed, heals, waits for every partition's full
// ISR, reads every partition from the start, and checks the history (checker.h).
//
//   rill-chaos --cycles 100                      a long run; --seed S replays a run's faults
//   rill-chaos --check history.jsonl             checks a saved history again
//
// Exit codes: 0 the check passed; 1 it found anomalies or the cluster did not recover;
// 2 usage; 3 the harness could not run (no broker binary, no iptables for network faults...).

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "chaos_cluster.h"
#include "checker.h"
#include "history.h"
#include "nemesis.h"
#include "network_partition.h"
#include "rill/client/admin.h"
#include "rill/client/consumer.h"
#include "rill/client/producer.h"
#include "support/poll.h"
#include "workload.h"

namespace rill::fault {
namespace {

using namespace std::chrono_literals;

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted = true; }

struct Options {
  uint64_t seed = 0;
  bool seed_given = false;
  int cycles = 10;
  int nodes = 3;
  int partitions = 4;
  int producers = 3;
  int rate = 300;
  int group_members = 2;
  int quiet_ms = 1000;
  int max_extra_hold_ms = 2000;
  int session_timeout_ms = 3000;
  std::string faults;
  std::string dir;
  bool round_robin = false;
  bool keep = false;
  bool fail_on_duplicates = false;
  bool fail_on_out_of_range = false;
  bool fail_on_reorder = false;
  bool reset_earliest = false;
  bool no_idempotence = false;
  std::string check_file;
  std::string command_line;  // as given, for the replay line
  std::string broker_binary = RILL_CHAOS_BROKER_BINARY;
  std::string fsync_shim = RILL_CHAOS_FSYNC_SHIM;
};

int CheckOnly(const Options& o) {
  std::vector<Op> history;
  std::string error;
  if (!ReadHistory(o.check_file, &history, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 3;
  }
  int cycles = 0;
  for (const Op& op : history) cycles += op.f == "fault";
  CheckOptions co{.fail_on_duplicates = o.fail_on_duplicates,
                  .fail_on_out_of_range = o.fail_on_out_of_range,
                  .fail_on_reorder = o.fail_on_reorder};
  CheckResult r = Check(history, co);
  std::printf("%s", Report(r, cycles).c_str());
  return r.ok(co) ? 0 : 1;
}

// One acks=all record per partition after the run, recorded like any send: once acknowledged,
// every record before it is below the high watermark, so the final read can stop there.
// `(*marker_offsets)[p]` is -1 where the marker was not acknowledged (in *error).
void WriteMarkers(const std::string& bootstrap, const std::string& topic, int partitions,
                  HistoryWriter* history, std::vector<int64_t>* marker_offsets,
                  std::string* error) {
  marker_offsets->assign(partitions, -1);
  client::ProducerConfig pc;
  pc.bootstrap = bootstrap;
  pc.client_id = "final-marker";
  pc.acks = -1;
  pc.delivery_timeout_ms = 30000;
  pc.request_timeout_ms = 5000;
  auto producer = client::Producer::Create(pc);
  if (!producer.ok()) {
    *error = producer.status().ToString();
    return;
  }
  for (int p = 0; p < partitions; ++p) {
    const std::string value = "final-" + std::to_string(p);
    history->Append({0, "final-marker", OpType::kInvoke, "send", value, p});
    client::ProducerRecord record;
    record.topic = topic;
    record.partition = p;
    record.value = value;
    auto md = (*producer)->Send(record).get();
    if (!md.ok()) {
      history->Append(
          {0, "final-marker", OpType::kInfo, "send", value, p, -1, -1, md.status().ToString()});
      *error += "the final marker of partition " + std::to_string(p) +
                " was not acknowledged: " + md.status().ToString() + "; ";
      continue;
    }
    history->Append({0, "final-marker", OpType::kOk, "send", value, md->partition, md->offset});
    (*marker_offsets)[p] = md->offset;
  }
}

// Reads each partition from offset 0 through its marker into the history (final-read). A
// partition without a marker, or that cannot be read through it, is recorded as
// final-unreadable (the checker then cannot judge it) and named in *error.
void FinalRead(const std::string& bootstrap, const std::string& topic,
               const std::vector<int64_t>& markers, HistoryWriter* history, std::string* error) {
  for (int p = 0; p < static_cast<int>(markers.size()); ++p) {
    if (markers[p] < 0) {
      history->Append({0, "final", OpType::kInfo, "final-unreadable", "", p});
      continue;
    }
    client::ConsumerConfig cc;
    cc.bootstrap = bootstrap;
    cc.client_id = "final-read";
    cc.auto_offset_reset = client::OffsetReset::kError;
    cc.fetch_max_wait_ms = 200;
    auto consumer = client::Consumer::Create(cc);
    if (!consumer.ok()) {
      *error += consumer.status().ToString() + "; ";
      history->Append({0, "final", OpType::kInfo, "final-unreadable", "", p});
      continue;
    }
    client::TopicPartition tp{topic, p};
    (void)(*consumer)->Assign({tp});
    (void)(*consumer)->Seek(tp, 0);
    int64_t next = 0;
    std::string last_error;
    // Records go to a buffer first: an unreadable partition leaves no partial final read.
    std::vector<Op> read;
    const bool done = test::PollUntil(
        [&] {
          auto records = (*consumer)->Poll(200ms);
          if (!records.ok()) {
            last_error = records.status().ToString();
            (void)(*consumer)->Seek(tp, next);
            return false;
          }
          for (const auto& r : *records) {
            read.push_back({0, "final", OpType::kOk, "final-read",
                            std::string(r.value.value_or("")), r.partition, r.offset});
            next = r.offset + 1;
          }
          return next > markers[p];
        },
        60s, 0ms);
    if (!done) {
      *error += "partition " + std::to_string(p) + " could not be read through its marker at " +
                std::to_string(markers[p]) + " (read up to " + std::to_string(next) + ") " +
                last_error + "; ";
      history->Append({0, "final", OpType::kInfo, "final-unreadable", "", p});
      continue;
    }
    for (Op& op : read) history->Append(std::move(op));
  }
}

int Run(Options o) {
  if (!o.seed_given) o.seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  std::vector<FaultKind> kinds;
  if (o.faults.empty()) {
    kinds = DefaultFaultKinds();
  } else {
    size_t pos = 0;
    while (pos <= o.faults.size()) {
      size_t comma = o.faults.find(',', pos);
      std::string name = o.faults.substr(pos, comma == std::string::npos ? comma : comma - pos);
      auto kind = ParseFault(name);
      if (!kind) {
        std::fprintf(stderr, "rill-chaos: unknown fault kind '%s'\n", name.c_str());
        return 2;
      }
      kinds.push_back(*kind);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  std::printf("rill-chaos: seed %llu\n", static_cast<unsigned long long>(o.seed));
  std::fflush(stdout);
  if (!std::filesystem::exists(o.broker_binary)) {
    std::fprintf(stderr, "rill-chaos: no broker binary at %s\n", o.broker_binary.c_str());
    return 3;
  }
  const bool want_network =
      std::any_of(kinds.begin(), kinds.end(), [](FaultKind k) { return NeedsNetwork(k); });
  std::string cgroup_root;
  if (want_network) {
    std::string why;
    if (!NetworkPartition::Available(&cgroup_root, &why)) {
      if (!o.faults.empty()) {
        std::fprintf(stderr, "rill-chaos: network faults asked for but unavailable: %s\n",
                     why.c_str());
        return 3;
      }
      std::printf("rill-chaos: network faults left out: %s\n", why.c_str());
      kinds.erase(
          std::remove_if(kinds.begin(), kinds.end(), [](FaultKind k) { return NeedsNetwork(k); }),
          kinds.end());
      cgroup_root.clear();
    }
  }
  if (o.dir.empty()) {
    o.dir = (std::filesystem::temp_directory_path() / ("rill_chaos_" + std::to_string(::getpid())))
                .string();
  }
  std::filesystem::remove_all(o.dir);
  std::filesystem::create_directories(o.dir);
  const std::string history_path = o.dir + "/history.jsonl";
  std::printf("rill-chaos: history in %s\n", history_path.c_str());

  std::mt19937_64 rng(o.seed);
  const std::string topic = "chaos";
  const std::string group = "chaos-group";
  int exit_code = 0;
  int cycles_done = 0;
  std::string failure;
  {
    ClusterOptions co;
    co.nodes = o.nodes;
    co.broker_binary = o.broker_binary;
    co.fsync_shim = std::filesystem::exists(o.fsync_shim) ? o.fsync_shim : "";
    co.dir = o.dir;
    co.cgroup_root = cgroup_root;
    co.session_timeout_ms = o.session_timeout_ms;
    co.replica_lag_time_max_ms = o.session_timeout_ms / 2;
    // Ports are picked free before the brokers bind them: another process on the machine may
    // take one meanwhile, so a cluster that does not start is tried again on new ports.
    std::unique_ptr<ChaosCluster> cluster_owner;
    std::string error;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      cluster_owner.reset();  // stops the brokers of a failed attempt
      for (int n = 1; n <= o.nodes; ++n) {
        std::filesystem::remove_all(o.dir + "/node" + std::to_string(n));
      }
      cluster_owner = std::make_unique<ChaosCluster>(co);
      if (cluster_owner->Start(&error)) break;
      std::fprintf(stderr, "rill-chaos: the cluster did not start (attempt %d): %s\n", attempt,
                   error.c_str());
      if (attempt == 3) return 3;
    }
    ChaosCluster& cluster = *cluster_owner;
    std::unique_ptr<NetworkPartition> network;
    if (!cgroup_root.empty()) {
      std::vector<int> ports;
      std::vector<std::string> cgroups;
      for (int n = 1; n <= o.nodes; ++n) {
        ports.push_back(cluster.internal_port(n));
        cgroups.push_back(cluster.cgroup(n));
      }
      network = std::make_unique<NetworkPartition>(ports, cgroups);
      if (!network->Setup(&error)) {
        std::fprintf(stderr, "rill-chaos: cannot set up network faults: %s\n", error.c_str());
        return 3;
      }
    }
    client::NewTopic new_topic;
    new_topic.name = topic;
    new_topic.partitions = o.partitions;
    new_topic.replication_factor = std::min(o.nodes, 3);
    auto created = cluster.admin().CreateTopics({new_topic});
    if (!created.ok() || !client::Admin::FirstError(*created).ok()) {
      std::fprintf(stderr, "rill-chaos: cannot create the topic: %s\n",
                   (created.ok() ? client::Admin::FirstError(*created) : created.status())
                       .ToString()
                       .c_str());
      return 3;
    }
    HistoryWriter history(history_path);
    NemesisOptions no;
    no.topic = topic;
    no.partitions = o.partitions;
    no.session_timeout_ms = o.session_timeout_ms;
    no.max_extra_hold_ms = o.max_extra_hold_ms;
    no.lost_disk_topics = {topic, "__consumer_offsets"};
    no.interrupted = &g_interrupted;
    Nemesis nemesis(&cluster, network.get(), &history, &rng, no);
    if (!nemesis.WaitHealthy(60s, &error)) {
      std::fprintf(stderr, "rill-chaos: %s\n", error.c_str());
      return 3;
    }

    WorkloadOptions wo;
    wo.bootstrap = cluster.Bootstrap();
    wo.topic = topic;
    wo.group = group;
    wo.partitions = o.partitions;
    wo.producers = o.producers;
    wo.rate_per_producer = o.rate;
    wo.group_members = o.group_members;
    wo.reset_earliest = o.reset_earliest;
    wo.idempotence = !o.no_idempotence;
    Workload workload(wo, &history);
    if (o.group_members > 0) {
      // Retried: __consumer_offsets is created on first use.
      if (!test::PollUntil(
              [&] { return CommitInitialOffsets(cluster.admin(), wo, &history, &error); }, 60s,
              200ms)) {
        failure = "the group's initial offsets: " + error;
      }
    }
    workload.Start();
    if (!test::PollUntil([&] { return workload.acked() >= o.partitions; }, 60s, 10ms)) {
      failure = "the workload got no acknowledgement before any fault";
    }
    const auto started = std::chrono::steady_clock::now();
    for (int cycle = 1; failure.empty() && cycle <= o.cycles && !g_interrupted; ++cycle) {
      // The workload runs undisturbed between faults (the run's pacing); a stop request ends the
      // quiet period early.
      test::PollUntil([] { return g_interrupted.load(); }, std::chrono::milliseconds(o.quiet_ms),
                      10ms);
      if (g_interrupted) break;
      const FaultKind kind =
          o.round_robin ? kinds[(cycle - 1) % kinds.size()] : kinds[rng() % kinds.size()];
      const auto t0 = std::chrono::steady_clock::now();
      if (!nemesis.RunCycle(kind, &error)) {
        failure = "cycle " + std::to_string(cycle) + " (" + FaultName(kind) + "): " + error;
        break;
      }
      ++cycles_done;
      std::printf("cycle %d/%d %-18s %5.1f s, acked %s\n", cycle, o.cycles, FaultName(kind),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                  WithThousands(workload.acked()).c_str());
      std::fflush(stdout);
    }
    nemesis.HealAll();
    workload.Stop();
    // Also after a failure: what the cluster still holds is what tells whether data was lost.
    std::vector<int64_t> markers;
    if (!nemesis.WaitHealthy(failure.empty() ? 120s : 30s, &error) && failure.empty()) {
      failure = "after the run: " + error;
    }
    error.clear();
    WriteMarkers(cluster.Bootstrap(), topic, o.partitions, &history, &markers, &error);
    FinalRead(cluster.Bootstrap(), topic, markers, &history, &error);
    if (!error.empty() && failure.empty()) failure = "final read: " + error;
    {
      std::vector<client::TopicPartition> tps;
      for (int p = 0; p < o.partitions; ++p) tps.push_back({topic, p});
      auto committed = cluster.admin().FetchOffsets(group, tps);
      if (committed.ok()) {
        for (const auto& c : *committed) {
          if (c.offset >= 0) {
            history.Append({0, "final", OpType::kInfo, "committed", "", c.partition, c.offset});
          }
        }
      }
    }
    history.Flush();
    std::printf("rill-chaos: %d cycles in %.0f s\n", cycles_done,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (!failure.empty()) {
      for (int n = 1; n <= o.nodes; ++n) {
        std::printf("---- node %d log (end) ----\n%s\n", n, cluster.LogTail(n).c_str());
      }
    }
  }  // brokers stopped, rules and cgroups removed

  std::vector<Op> ops;
  std::string error;
  if (!ReadHistory(history_path, &ops, &error)) {
    std::fprintf(stderr, "rill-chaos: %s\n", error.c_str());
    return 3;
  }
  CheckOptions check_options{.fail_on_duplicates = o.fail_on_duplicates,
                             .fail_on_out_of_range = o.fail_on_out_of_range,
                             .fail_on_reorder = o.fail_on_reorder};
  CheckResult result = Check(ops, check_options);
  std::printf("%s", Report(result, cycles_done).c_str());
  if (!failure.empty()) {
    std::printf("FAILED (liveness): %s\n", failure.c_str());
    exit_code = 1;
  }
  if (!result.ok(check_options)) {
    std::printf("FAILED: the history shows anomalies\n");
    exit_code = 1;
  }
  if (exit_code != 0) {
    std::printf("replay: %s%s%llu   (history kept in %s)\n", o.command_line.c_str(),
                o.seed_given ? "  # seed " : " --seed ", static_cast<unsigned long long>(o.seed),
                o.dir.c_str());
  } else {
    std::printf("PASSED\n");
    if (!o.keep) std::filesystem::remove_all(o.dir);
  }
  return exit_code;
}

}  // namespace
}  // namespace rill::fault

int main(int argc, char** argv) {
  if (auto code = rill::fault::LaunchedBrokerMain(argc, argv)) return *code;
  rill::fault::Options o;
  CLI::App app{"rill-chaos: fault injection against a cluster of real brokers (issue 16)"};
  auto* seed = app.add_option("--seed", o.seed, "Seed of the fault schedule (printed; replays)");
  app.add_option("--cycles", o.cycles, "Faults to apply, one per cycle")
      ->check(CLI::Range(0, 100000));
  app.add_option("--nodes", o.nodes, "Brokers (combined broker + controller nodes)")
      ->check(CLI::Range(3, 5));
  app.add_option("--partitions", o.partitions, "Partitions of the RF=3 topic")
      ->check(CLI::Range(1, 64));
  app.add_option("--producers", o.producers, "acks=all producers")->check(CLI::Range(1, 32));
  app.add_option("--rate", o.rate, "Records per second per producer")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--group-members", o.group_members, "Members of the consumer group")
      ->check(CLI::Range(0, 16));
  app.add_option("--quiet-ms", o.quiet_ms, "Undisturbed load before each fault")
      ->check(CLI::Range(0, 600000));
  app.add_option("--max-extra-hold-ms", o.max_extra_hold_ms,
                 "A fault lasts up to this much longer than it needs (random)")
      ->check(CLI::Range(0, 600000));
  app.add_option("--session-timeout-ms", o.session_timeout_ms, "The brokers' session timeout")
      ->check(CLI::Range(500, 60000));
  std::string kinds_help = "Comma-separated fault kinds (default: all):";
  for (auto k : rill::fault::AllFaultKinds()) kinds_help += std::string(" ") + FaultName(k);
  app.add_option("--faults", o.faults, kinds_help);
  app.add_flag("--round-robin", o.round_robin,
               "Apply the fault kinds in turn instead of at random (targets stay random)");
  app.add_option("--dir", o.dir, "Run directory (default: a new one under the temp dir)");
  app.add_flag("--keep", o.keep, "Keep the run directory and history when the run passes");
  app.add_flag("--fail-on-duplicates", o.fail_on_duplicates,
               "Fail on duplicated records (once the producer is idempotent)");
  app.add_flag("--fail-on-out-of-range", o.fail_on_out_of_range,
               "Fail on OFFSET_OUT_OF_RANGE answers for offsets the log holds (a known broker "
               "bug, tests/fault/README.md)");
  app.add_flag("--fail-on-reorder", o.fail_on_reorder,
               "Fail when a producer's record lands below one it sent earlier (a known client "
               "bug, tests/fault/README.md)");
  app.add_flag("--no-idempotence", o.no_idempotence,
               "Producers without idempotence (by default they are idempotent, and a duplicate "
               "or a record landing below one sent earlier fails the run)");
  app.add_flag("--consumers-reset-earliest", o.reset_earliest,
               "Consumers rewind to the log start on OFFSET_OUT_OF_RANGE (the client's "
               "'earliest') instead of reporting it: known bug 1 shows as out-of-order reads");
  app.add_option("--check", o.check_file, "Only check this saved history file");
  app.add_option("--broker", o.broker_binary, "The rill-broker binary");
  CLI11_PARSE(app, argc, argv);
  if (!o.no_idempotence) {
    // Idempotent producers promise both (docs/IDEMPOTENCE.md): any duplicate or reordering is
    // a failure.
    o.fail_on_duplicates = true;
    o.fail_on_reorder = true;
  }
  o.seed_given = seed->count() > 0;
  for (int i = 0; i < argc; ++i) o.command_line += (i ? " " : "") + std::string(argv[i]);
  if (!o.check_file.empty()) return rill::fault::CheckOnly(o);
  struct sigaction sa {};
  sa.sa_handler = rill::fault::OnSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return rill::fault::Run(o);
}
