#pragma once

// Test-only in-memory Controller: applies topic operations at once and publishes a new image
// to its listeners on the calling thread. Validation is the controller's topic rules.

#include <mutex>
#include <vector>

#include "controller/controller.h"
#include "controller/topic_config.h"
#include "controller/topic_rules.h"

namespace rill::broker::testing {

class MemoryController final : public Controller {
 public:
  explicit MemoryController(ControllerConfig config) : config_(std::move(config)) {
    auto img = std::make_shared<MetadataImage>();
    img->cluster_id = "test-cluster";
    img->controller_id = config_.node_id;
    BrokerRegistration self = config_.self;
    self.node_id = config_.node_id;
    img->brokers[config_.node_id] = self;
    image_ = img;
  }

  Status Start() override {
    Publish(image_);
    return Status::OK();
  }
  void Stop() override {}

  void CreateTopics(std::vector<NewTopicSpec> topics, bool validate_only,
                    ResultsCallback done) override {
    std::vector<TopicOpResult> results;
    auto next = std::make_shared<MetadataImage>(*image());
    for (auto& t : topics) {
      TopicOpResult r{t.name, TopicOpError::kNone, ""};
      int32_t parts = t.partitions == 0 ? config_.default_partitions : t.partitions;
      if (Status s = ValidateTopicName(t.name, t.internal); !s.ok()) {
        r.error = TopicOpError::kInvalidTopic;
        r.message = s.message();
      } else if (next->FindTopic(t.name)) {
        r.error = TopicOpError::kTopicAlreadyExists;
        r.message = "exists";
      } else if (Status s = ValidatePartitionCount(parts, config_.max_partitions_per_topic); !s.ok()) {
        r.error = TopicOpError::kInvalidPartitions;
        r.message = s.message();
      } else if (Status s = ValidateTopicConfigs(t.configs); !s.ok()) {
        r.error = TopicOpError::kInvalidConfig;
        r.message = s.message();
      } else if (!validate_only) {
        TopicMetadata tm;
        tm.name = t.name;
        tm.topic_id = t.name + "-" + std::to_string(++ids_);
        tm.configs = t.configs;
        for (int32_t p = 0; p < parts; ++p) {
          tm.partitions.push_back({p, config_.node_id, LeaderEpoch(1), {config_.node_id},
                                   {config_.node_id}});
        }
        next->topics[t.name] = std::move(tm);
      }
      results.push_back(std::move(r));
    }
    next->applied_index++;
    if (!validate_only) Publish(next);
    done(std::move(results));
  }

  void DeleteTopics(std::vector<std::string> topics, ResultsCallback done) override {
    std::vector<TopicOpResult> results;
    auto next = std::make_shared<MetadataImage>(*image());
    for (auto& t : topics) {
      TopicOpResult r{t, TopicOpError::kNone, ""};
      if (next->topics.erase(t) == 0) r.error = TopicOpError::kUnknownTopic;
      results.push_back(r);
    }
    next->applied_index++;
    Publish(next);
    done(std::move(results));
  }

  void CreatePartitions(std::string topic, int32_t count, ResultsCallback done) override {
    auto next = std::make_shared<MetadataImage>(*image());
    TopicOpResult r{topic, TopicOpError::kNone, ""};
    auto it = next->topics.find(topic);
    if (it == next->topics.end()) {
      r.error = TopicOpError::kUnknownTopic;
    } else if (count <= static_cast<int32_t>(it->second.partitions.size())) {
      r.error = TopicOpError::kInvalidPartitions;
    } else {
      for (int32_t p = static_cast<int32_t>(it->second.partitions.size()); p < count; ++p) {
        it->second.partitions.push_back({p, config_.node_id, LeaderEpoch(1), {config_.node_id},
                                         {config_.node_id}});
      }
      next->applied_index++;
      Publish(next);
    }
    done({r});
  }

  void AlterConfigs(std::string topic, std::map<std::string, std::string> set,
                    std::vector<std::string> remove, bool validate_only,
                    ResultsCallback done) override {
    auto next = std::make_shared<MetadataImage>(*image());
    TopicOpResult r{topic, TopicOpError::kNone, ""};
    auto it = next->topics.find(topic);
    if (it == next->topics.end()) {
      r.error = TopicOpError::kUnknownTopic;
    } else if (Status s = ValidateTopicConfigs(set); !s.ok()) {
      r.error = TopicOpError::kInvalidConfig;
      r.message = s.message();
    } else if (!validate_only) {
      for (auto& [k, v] : set) it->second.configs[k] = v;
      for (auto& k : remove) it->second.configs.erase(k);
      next->applied_index++;
      Publish(next);
    }
    done({r});
  }

  // Applies the ISR change when the leader and both epochs match, as the quorum controller does.
  // One broker: nothing to move leadership to, nothing to elect.
  void ControlledShutdown(ResultsCallback done) override {
    done({{"", TopicOpError::kNone, ""}});
  }
  void ElectPreferredLeaders(ElectionTargets, ResultsCallback done) override {
    done({{"", TopicOpError::kNone, ""}});
  }
  void AllocateProducerIds(ResultsCallback done) override {
    TopicOpResult r{"", TopicOpError::kNone, ""};
    {
      std::lock_guard lock(mu_);
      r.producer_ids_first = next_producer_id_;
      next_producer_id_ += 1000;
    }
    r.producer_ids_count = 1000;
    done({std::move(r)});
  }

  void AlterPartition(AlterPartitionSpec spec, ResultsCallback done) override {
    auto next = std::make_shared<MetadataImage>(*image());
    TopicOpResult r{spec.topic, TopicOpError::kNone, ""};
    auto it = next->topics.find(spec.topic);
    if (it == next->topics.end() || spec.partition < 0 ||
        static_cast<size_t>(spec.partition) >= it->second.partitions.size()) {
      r.error = TopicOpError::kInvalidRequest;
      r.message = "unknown partition";
    } else {
      PartitionAssignment& p = it->second.partitions[spec.partition];
      if (p.leader != spec.leader || p.leader_epoch != spec.leader_epoch ||
          p.partition_epoch != spec.partition_epoch) {
        r.error = TopicOpError::kStaleEpoch;
        r.message = "stale leader or partition epoch";
      } else {
        p.isr = spec.new_isr;
        p.partition_epoch++;
        next->applied_index++;
        Publish(next);
      }
    }
    done({r});
  }

  std::shared_ptr<const MetadataImage> image() const override {
    std::lock_guard lock(mu_);
    return image_;
  }
  void AddListener(ImageListener listener) override {
    std::lock_guard lock(mu_);
    listeners_.push_back(std::move(listener));
  }
  bool IsActive() const override { return true; }
  grpc::Service* internal_service() override { return nullptr; }

  // Publishes an arbitrary image (e.g. to make this node a follower).
  void Publish(std::shared_ptr<const MetadataImage> img) {
    std::vector<ImageListener> ls;
    {
      std::lock_guard lock(mu_);
      image_ = img;
      ls = listeners_;
    }
    for (auto& l : ls) l(img, ImageChanges::All());
  }

 private:
  ControllerConfig config_;
  mutable std::mutex mu_;
  int64_t next_producer_id_ = 0;  // guarded by mu_
  std::shared_ptr<const MetadataImage> image_;
  std::vector<ImageListener> listeners_;
  int ids_ = 0;
};

}  // namespace rill::broker::testing
