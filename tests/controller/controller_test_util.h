#pragma once

// Helpers shared by the controller tests: temp dirs, free ports, waiting on images without
// sleeping, synchronous operations, image dumps.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>

#include "controller.h"
#include "support/free_port.h"

namespace rill::broker::controller_test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline constexpr auto kDeadline = 30s;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "rill-controller-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Below the ephemeral port range: tests/support/free_port.h says why.
inline int FreePort() {
  const int port = rill::test::FreePort();
  EXPECT_NE(port, 0);
  return port;
}

// Waits (without sleeping) for a condition over controllers' images: every image listener
// wakes the waiter, which re-evaluates the condition.
class Waiter {
 public:
  void Watch(Controller* c) {
    c->AddListener([this](std::shared_ptr<const MetadataImage>, const ImageChanges&) {
      std::lock_guard<std::mutex> lock(mu_);
      ++version_;
      cv_.notify_all();
    });
  }
  bool WaitFor(const std::function<bool()>& pred, std::chrono::seconds timeout = kDeadline) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      lock.unlock();
      bool ok = pred();
      lock.lock();
      if (ok) return true;
      uint64_t seen = version_;
      // Listeners fire on every image; the bounded wait also covers IsActive(), which flips
      // together with an image whose controller_id changed.
      if (!cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + 100ms),
                          [&] { return version_ != seen; }) &&
          std::chrono::steady_clock::now() >= deadline) {
        lock.unlock();
        return pred();
      }
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t version_ = 0;
};

inline std::vector<TopicOpResult> Await(
    const std::function<void(Controller::ResultsCallback)>& op) {
  auto promise = std::make_shared<std::promise<std::vector<TopicOpResult>>>();
  auto future = promise->get_future();
  op([promise](std::vector<TopicOpResult> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kDeadline) != std::future_status::ready) {
    ADD_FAILURE() << "operation did not complete";
    return {};
  }
  return future.get();
}

inline NewTopicSpec Topic(std::string name, int32_t partitions, int32_t rf = 0,
                          std::map<std::string, std::string> configs = {}) {
  NewTopicSpec s;
  s.name = std::move(name);
  s.partitions = partitions;
  s.replication_factor = rf;
  s.configs = std::move(configs);
  return s;
}

// Everything the image holds, as text, to compare two images.
inline std::string Dump(const MetadataImage& img) {
  std::string out = "cluster=" + img.cluster_id + "\n";
  for (const auto& [id, b] : img.brokers) {
    out += "broker " + std::to_string(id.value()) + " " + b.host + ":" + std::to_string(b.port) +
           " internal " + std::to_string(b.internal_port) + (b.fenced ? " fenced" : "") + "\n";
  }
  for (const auto& [name, t] : img.topics) {
    out += "topic " + name + " id=" + t.topic_id + (t.internal ? " internal" : "") + "\n";
    for (const PartitionAssignment& p : t.partitions) {
      out += "  p" + std::to_string(p.partition) + " leader=" + std::to_string(p.leader.value()) +
             " epoch=" + std::to_string(p.leader_epoch.value()) + " replicas=";
      for (NodeId n : p.replicas) out += std::to_string(n.value()) + ",";
      out += " isr=";
      for (NodeId n : p.isr) out += std::to_string(n.value()) + ",";
      out += "\n";
    }
    for (const auto& [k, v] : t.configs) out += "  " + k + "=" + v + "\n";
  }
  return out;
}

}  // namespace rill::broker::controller_test
