#include "api/admin_service.h"

#include <algorithm>
#include <chrono>

#include "api/wire_errors.h"
#include "controller/metadata_image.h"
#include "controller/topic_config.h"
#include "groups/group_coordinator.h"

namespace rill::broker {

namespace {

using Clock = std::chrono::steady_clock;

void FillTopicResult(const TopicOpResult& in, v1::TopicResult* out) {
  out->set_topic(in.topic);
  out->set_error(WireError(in.error));
  out->set_error_message(in.message);
}

grpc::ServerUnaryReactor* Fail(ServiceContext* ctx, grpc::CallbackServerContext* context, Api api,
                               Clock::time_point start, std::string message) {
  auto* reactor = context->DefaultReactor();
  ctx->metrics->RecordRequest(api, start, true);
  reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, std::move(message)});
  return reactor;
}

// The effective configs shown to users: topic_config defaults, broker defaults, then overrides.
std::map<std::string, std::string> ShownOverrides(const ServiceContext& ctx,
                                                  const TopicMetadata& t) {
  return ctx.partitions->EffectiveConfig(t);
}

// The index an image must reach to show the outcome of `results`: the active controller's
// applied index when it answered (a forwarded operation), at least this node's current one.
uint64_t OutcomeIndex(ServiceContext* ctx, const std::vector<TopicOpResult>& results) {
  auto image = ctx->controller->image();
  uint64_t index = image ? image->applied_index : 0;
  for (const TopicOpResult& r : results) index = std::max(index, r.applied_index);
  return index;
}

// Answers once this node's partitions have applied the image that holds the operation's outcome
// (the active controller's applied index when it answered), so that a client which creates a
// topic and then produces to this node finds its partitions open here, even when this node only
// forwarded the operation.
void FinishWhenApplied(ServiceContext* ctx, grpc::ServerUnaryReactor* reactor,
                       const std::vector<TopicOpResult>& results) {
  ctx->partitions->WhenApplied(OutcomeIndex(ctx, results),
                               [reactor](bool) { reactor->Finish(grpc::Status::OK); });
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::CreateTopics(grpc::CallbackServerContext* context,
                                                     const v1::CreateTopicsRequest* request,
                                                     v1::CreateTopicsResponse* response) {
  auto start = Clock::now();
  std::vector<NewTopicSpec> specs;
  for (int i = 0; i < request->topics_size(); ++i) {
    const auto& t = request->topics(i);
    if (t.partitions() < 0) {
      return Fail(ctx_, context, Api::kCreateTopics, start,
                  "topics[" + std::to_string(i) + "].partitions is negative");
    }
    if (t.replication_factor() < 0) {
      return Fail(ctx_, context, Api::kCreateTopics, start,
                  "topics[" + std::to_string(i) + "].replication_factor is negative");
    }
    NewTopicSpec s;
    s.name = t.name();
    s.partitions = t.partitions();
    s.replication_factor = t.replication_factor();
    s.configs.insert(t.configs().begin(), t.configs().end());
    specs.push_back(std::move(s));
  }
  auto* reactor = context->DefaultReactor();
  ServiceContext* ctx = ctx_;
  ctx_->controller->CreateTopics(
      std::move(specs), request->validate_only(),
      [reactor, response, ctx, start](std::vector<TopicOpResult> results) {
        for (const auto& r : results) FillTopicResult(r, response->add_results());
        ctx->metrics->RecordRequest(Api::kCreateTopics, start, false);
        FinishWhenApplied(ctx, reactor, results);
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::DeleteTopics(grpc::CallbackServerContext* context,
                                                     const v1::DeleteTopicsRequest* request,
                                                     v1::DeleteTopicsResponse* response) {
  auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  ServiceContext* ctx = ctx_;
  // Internal topics are refused here, before the controller, unless the request says otherwise:
  // deleting __consumer_offsets drops every group's committed offsets (Kafka refuses it too).
  std::vector<std::string> topics;
  auto image = ctx_->partitions->image();
  for (const auto& name : request->topics()) {
    bool internal = name == kConsumerOffsetsTopic;
    if (const TopicMetadata* t = image ? image->FindTopic(name) : nullptr) {
      internal = internal || t->internal;
    }
    if (internal && !request->allow_internal()) {
      auto* r = response->add_results();
      r->set_topic(name);
      r->set_error(v1::INVALID_REQUEST);
      r->set_error_message("topic '" + name +
                           "' is internal and is not deleted (it holds the consumer groups' "
                           "committed offsets); set allow_internal (rillctl topic delete "
                           "--allow-internal) to delete it anyway");
      continue;
    }
    topics.push_back(name);
  }
  if (topics.empty() && request->topics_size() > 0) {
    ctx_->metrics->RecordRequest(Api::kDeleteTopics, start, false);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  ctx_->controller->DeleteTopics(
      std::move(topics), [reactor, response, ctx, start](std::vector<TopicOpResult> results) {
        for (const auto& r : results) FillTopicResult(r, response->add_results());
        ctx->metrics->RecordRequest(Api::kDeleteTopics, start, false);
        FinishWhenApplied(ctx, reactor, results);
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ListTopics(grpc::CallbackServerContext* context,
                                                   const v1::ListTopicsRequest* request,
                                                   v1::ListTopicsResponse* response) {
  auto start = Clock::now();
  auto image = ctx_->partitions->image();
  if (image) {
    for (const auto& [name, t] : image->topics) {
      if (t.internal && !request->include_internal()) continue;
      auto* l = response->add_topics();
      l->set_name(name);
      l->set_partitions(static_cast<int32_t>(t.partitions.size()));
      l->set_replication_factor(
          t.partitions.empty() ? 0 : static_cast<int32_t>(t.partitions[0].replicas.size()));
      l->set_internal(t.internal);
    }
  }
  ctx_->metrics->RecordRequest(Api::kListTopics, start, false);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::DescribeTopics(grpc::CallbackServerContext* context,
                                                       const v1::DescribeTopicsRequest* request,
                                                       v1::DescribeTopicsResponse* response) {
  auto start = Clock::now();
  auto image = ctx_->partitions->image();
  std::vector<std::string> names(request->topics().begin(), request->topics().end());
  if (names.empty() && image) {
    for (const auto& [name, t] : image->topics) {
      if (!t.internal) names.push_back(name);
    }
  }
  for (const auto& name : names) {
    auto* d = response->add_topics();
    d->set_name(name);
    const TopicMetadata* t = image ? image->FindTopic(name) : nullptr;
    if (t == nullptr) {
      d->set_error(v1::UNKNOWN_TOPIC);
      d->set_error_message("topic '" + name + "' does not exist");
      continue;
    }
    d->set_internal(t->internal);
    for (const auto& [k, v] : EffectiveTopicConfigs(ShownOverrides(*ctx_, *t))) {
      (*d->mutable_configs())[k] = v;
    }
    for (const auto& pa : t->partitions) {
      auto* p = d->add_partitions();
      p->set_partition(pa.partition);
      p->set_leader_id(pa.leader.value());
      p->set_leader_epoch(pa.leader_epoch.value());
      for (auto r : pa.replicas) p->add_replicas(r.value());
      for (auto r : pa.isr) p->add_isr(r.value());
      p->set_log_start_offset(-1);
      p->set_high_watermark(-1);
      p->set_log_end_offset(-1);
      p->set_size_bytes(-1);
      if (auto part = ctx_->partitions->Get(name, pa.partition)) {
        p->set_log_start_offset(part->log().log_start_offset().value());
        p->set_high_watermark(part->high_watermark().value());
        p->set_log_end_offset(part->log().log_end_offset().value());
        p->set_size_bytes(static_cast<int64_t>(part->log().size_bytes()));
      }
    }
  }
  ctx_->metrics->RecordRequest(Api::kDescribeTopics, start, false);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::CreatePartitions(
    grpc::CallbackServerContext* context, const v1::CreatePartitionsRequest* request,
    v1::CreatePartitionsResponse* response) {
  auto start = Clock::now();
  if (request->topic().empty()) {
    return Fail(ctx_, context, Api::kCreatePartitions, start, "topic is empty");
  }
  if (request->new_total_count() <= 0) {
    return Fail(ctx_, context, Api::kCreatePartitions, start, "new_total_count must be > 0");
  }
  auto* reactor = context->DefaultReactor();
  ServiceContext* ctx = ctx_;
  ctx_->controller->CreatePartitions(
      request->topic(), request->new_total_count(),
      [reactor, response, ctx, start, topic = request->topic()](std::vector<TopicOpResult> results) {
        if (results.empty()) {
          response->mutable_result()->set_topic(topic);
        } else {
          FillTopicResult(results.front(), response->mutable_result());
        }
        ctx->metrics->RecordRequest(Api::kCreatePartitions, start, false);
        FinishWhenApplied(ctx, reactor, results);
      });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::DescribeConfigs(grpc::CallbackServerContext* context,
                                                        const v1::DescribeConfigsRequest* request,
                                                        v1::DescribeConfigsResponse* response) {
  auto start = Clock::now();
  if (request->topic().empty()) {
    return Fail(ctx_, context, Api::kDescribeConfigs, start, "topic is empty");
  }
  auto image = ctx_->partitions->image();
  const TopicMetadata* t = image ? image->FindTopic(request->topic()) : nullptr;
  if (t == nullptr) {
    response->set_error(v1::UNKNOWN_TOPIC);
    response->set_error_message("topic '" + request->topic() + "' does not exist");
  } else {
    // Broker-wide defaults count as defaults; only the topic's own overrides are not.
    auto shown = DescribeTopicConfigs(ShownOverrides(*ctx_, *t));
    for (const auto& c : shown) {
      auto* e = response->add_entries();
      e->set_name(c.name);
      e->set_value(c.value);
      e->set_is_default(t->configs.find(c.name) == t->configs.end());
      e->set_documentation(c.doc);
    }
  }
  ctx_->metrics->RecordRequest(Api::kDescribeConfigs, start, false);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::AlterConfigs(grpc::CallbackServerContext* context,
                                                     const v1::AlterConfigsRequest* request,
                                                     v1::AlterConfigsResponse* response) {
  auto start = Clock::now();
  if (request->topic().empty()) {
    return Fail(ctx_, context, Api::kAlterConfigs, start, "topic is empty");
  }
  auto* reactor = context->DefaultReactor();
  ServiceContext* ctx = ctx_;
  std::map<std::string, std::string> set(request->set().begin(), request->set().end());
  std::vector<std::string> remove(request->delete_().begin(), request->delete_().end());
  ctx_->controller->AlterConfigs(
      request->topic(), std::move(set), std::move(remove), request->validate_only(),
      [reactor, response, ctx, start, topic = request->topic()](std::vector<TopicOpResult> results) {
        if (results.empty()) {
          response->mutable_result()->set_topic(topic);
        } else {
          FillTopicResult(results.front(), response->mutable_result());
        }
        ctx->metrics->RecordRequest(Api::kAlterConfigs, start, false);
        FinishWhenApplied(ctx, reactor, results);
      });
  return reactor;
}

namespace {
// Cluster id, active controller and brokers: shared by DescribeCluster (every registered
// broker, fenced ones marked) and Metadata.Get (only the unfenced ones clients may use), whose
// responses carry the same three fields.
template <typename Response>
void FillCluster(const MetadataImage& image, bool include_fenced, Response* response) {
  response->set_cluster_id(image.cluster_id);
  response->set_controller_id(image.controller_id.value());
  for (const auto& [id, b] : image.brokers) {
    if (b.fenced && !include_fenced) continue;
    auto* out = response->add_brokers();
    out->set_node_id(id.value());
    out->set_host(b.host);
    out->set_port(b.port);
    out->set_rack(b.rack);
    out->set_fenced(b.fenced);
  }
}

// The per-partition answer of a preferred-leader election, from the image after it: `planned`
// is what the image before it showed.
void FillElection(const MetadataImage& after, const ElectionPlan& planned,
                  v1::ElectLeadersResult* out) {
  out->set_topic(planned.topic);
  out->set_partition(planned.partition);
  const TopicMetadata* t = after.FindTopic(planned.topic);
  const PartitionAssignment* p =
      t != nullptr && planned.partition >= 0 &&
              static_cast<size_t>(planned.partition) < t->partitions.size()
          ? &t->partitions[planned.partition]
          : nullptr;
  out->set_leader_id(p != nullptr ? p->leader.value() : -1);
  switch (planned.outcome) {
    case ElectionOutcome::kUnknownTopic:
      out->set_error(v1::UNKNOWN_TOPIC);
      out->set_error_message("topic '" + planned.topic + "' does not exist");
      return;
    case ElectionOutcome::kUnknownPartition:
      out->set_error(v1::UNKNOWN_PARTITION);
      out->set_error_message("topic '" + planned.topic + "' has no partition " +
                             std::to_string(planned.partition));
      return;
    case ElectionOutcome::kNotNeeded:
      out->set_error(v1::ELECTION_NOT_NEEDED);
      out->set_error_message("the preferred replica already leads");
      return;
    case ElectionOutcome::kNotAvailable:
      out->set_error(v1::PREFERRED_LEADER_NOT_AVAILABLE);
      out->set_error_message("the preferred replica is fenced or not in the ISR");
      return;
    case ElectionOutcome::kElect:
      if (p == nullptr || p->replicas.empty() || p->leader != p->replicas.front()) {
        out->set_error(v1::PREFERRED_LEADER_NOT_AVAILABLE);
        out->set_error_message("the preferred replica did not take the leadership (it left the "
                               "ISR or was fenced meanwhile)");
      }
      return;
  }
}
}  // namespace

grpc::ServerUnaryReactor* AdminService::DescribeCluster(grpc::CallbackServerContext* context,
                                                        const v1::DescribeClusterRequest* request,
                                                        v1::DescribeClusterResponse* response) {
  auto start = Clock::now();
  auto image = ctx_->partitions->image();
  if (image) {
    FillCluster(*image, /*include_fenced=*/true, response);
  }
  ctx_->metrics->RecordRequest(Api::kDescribeCluster, start, false);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ElectLeaders(grpc::CallbackServerContext* context,
                                                     const v1::ElectLeadersRequest* request,
                                                     v1::ElectLeadersResponse* response) {
  auto start = Clock::now();
  ElectionTargets targets;
  for (int i = 0; i < request->targets_size(); ++i) {
    const v1::TopicPartitions& t = request->targets(i);
    if (t.topic().empty()) {
      return Fail(ctx_, context, Api::kElectLeaders, start,
                  "targets[" + std::to_string(i) + "].topic is empty");
    }
    auto& partitions = targets[t.topic()];
    partitions.insert(partitions.end(), t.partitions().begin(), t.partitions().end());
  }
  auto before = ctx_->partitions->image();
  if (!before) {
    return Fail(ctx_, context, Api::kElectLeaders, start, "no metadata yet");
  }
  auto plans = std::make_shared<std::vector<ElectionPlan>>(PlanPreferredElection(*before, targets));
  auto* reactor = context->DefaultReactor();
  ServiceContext* ctx = ctx_;
  ctx_->controller->ElectPreferredLeaders(
      std::move(targets),
      [reactor, response, ctx, start, plans](std::vector<TopicOpResult> results) {
        TopicOpResult r = results.empty() ? TopicOpResult{} : results.front();
        ctx->partitions->WhenApplied(
            OutcomeIndex(ctx, results), [reactor, response, ctx, start, plans, r](bool) {
              auto after = ctx->partitions->image();
              for (const ElectionPlan& plan : *plans) {
                v1::ElectLeadersResult* out = response->add_results();
                if (r.error != TopicOpError::kNone && plan.outcome == ElectionOutcome::kElect) {
                  out->set_topic(plan.topic);
                  out->set_partition(plan.partition);
                  out->set_error(WireError(r.error));
                  out->set_error_message(r.message);
                  continue;
                }
                FillElection(*after, plan, out);
              }
              ctx->metrics->RecordRequest(Api::kElectLeaders, start, r.error != TopicOpError::kNone);
              reactor->Finish(grpc::Status::OK);
            });
      });
  return reactor;
}

grpc::ServerUnaryReactor* MetadataService::Get(grpc::CallbackServerContext* context,
                                               const v1::MetadataRequest* request,
                                               v1::MetadataResponse* response) {
  auto start = Clock::now();
  auto image = ctx_->partitions->image();
  if (image) {
    FillCluster(*image, /*include_fenced=*/false, response);
    std::vector<std::string> names(request->topics().begin(), request->topics().end());
    if (names.empty()) {
      for (const auto& [name, t] : image->topics) names.push_back(name);
    }
    for (const auto& name : names) {
      auto* tm = response->add_topics();
      tm->set_name(name);
      const TopicMetadata* t = image->FindTopic(name);
      if (t == nullptr) {
        tm->set_error(v1::UNKNOWN_TOPIC);
        tm->set_error_message("topic '" + name + "' does not exist");
        continue;
      }
      tm->set_internal(t->internal);
      for (const auto& pa : t->partitions) {
        auto* pm = tm->add_partitions();
        pm->set_partition(pa.partition);
        pm->set_leader_id(pa.leader.value());
        pm->set_leader_epoch(pa.leader_epoch.value());
        for (auto r : pa.replicas) pm->add_replicas(r.value());
        for (auto r : pa.isr) pm->add_isr(r.value());
      }
    }
  }
  ctx_->metrics->RecordRequest(Api::kMetadata, start, false);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace rill::broker
