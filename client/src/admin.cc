#include "rill/client/admin.h"

#include "grpc_util.h"
#include "metadata_cache.h"
#include "rill/client/errors.h"
#include "rill/v1/admin.grpc.pb.h"
#include "rill/v1/metadata.grpc.pb.h"

namespace rill::client {

class AdminImpl {
 public:
  explicit AdminImpl(const AdminConfig& c)
      : config(c),
        channel(internal::MakeChannel(c.bootstrap)),
        admin(v1::Admin::NewStub(channel)),
        metadata(v1::Metadata::NewStub(channel)) {}

  // Runs one unary RPC with the configured deadline.
  template <typename Req, typename Resp, typename Fn>
  Status Call(std::string_view what, const Req& req, Resp* resp, Fn fn) {
    grpc::ClientContext ctx;
    internal::SetTimeout(&ctx, config.request_timeout_ms);
    grpc::Status s = fn(&ctx, req, resp);
    return internal::FromGrpc(s, what, config.bootstrap);
  }

  const AdminConfig config;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Admin::Stub> admin;
  std::unique_ptr<v1::Metadata::Stub> metadata;
};

namespace {

Status TopicStatus(const std::string& topic, int32_t code, const std::string& message) {
  if (code == v1::NONE) return Status::OK();
  Status st = StatusFromErrorCode(code, message);
  return Status(st.code(), "topic '" + topic + "': " + st.message());
}

std::vector<TopicOutcome> Outcomes(const google::protobuf::RepeatedPtrField<v1::TopicResult>& rs) {
  std::vector<TopicOutcome> out;
  for (const auto& r : rs) {
    out.push_back({r.topic(), TopicStatus(r.topic(), r.error(), r.error_message())});
  }
  return out;
}

BrokerInfo ToBroker(const v1::Broker& b) { return {b.node_id(), b.host(), b.port(), b.rack()}; }

}  // namespace

Admin::Admin(std::unique_ptr<AdminImpl> impl) : impl_(std::move(impl)) {}
Admin::~Admin() = default;

Result<std::unique_ptr<Admin>> Admin::Create(const AdminConfig& config) {
  if (config.bootstrap.empty()) return Status::InvalidArgument("bootstrap address is empty");
  return std::unique_ptr<Admin>(new Admin(std::make_unique<AdminImpl>(config)));
}

Status Admin::FirstError(const std::vector<TopicOutcome>& outcomes) {
  for (const auto& o : outcomes) {
    if (!o.status.ok()) return o.status;
  }
  return Status::OK();
}

Result<std::vector<TopicOutcome>> Admin::CreateTopics(const std::vector<NewTopic>& topics,
                                                      bool validate_only) {
  v1::CreateTopicsRequest req;
  for (const auto& t : topics) {
    auto* nt = req.add_topics();
    nt->set_name(t.name);
    nt->set_partitions(t.partitions);
    nt->set_replication_factor(t.replication_factor);
    for (const auto& [k, v] : t.configs) (*nt->mutable_configs())[k] = v;
  }
  req.set_validate_only(validate_only);
  req.set_timeout_ms(impl_->config.request_timeout_ms);
  v1::CreateTopicsResponse resp;
  RILL_RETURN_IF_ERROR(
      impl_->Call("Admin.CreateTopics", req, &resp,
                  [&](auto* c, auto& q, auto* r) { return impl_->admin->CreateTopics(c, q, r); }));
  return Outcomes(resp.results());
}

Result<std::vector<TopicOutcome>> Admin::DeleteTopics(const std::vector<std::string>& topics) {
  v1::DeleteTopicsRequest req;
  for (const auto& t : topics) req.add_topics(t);
  req.set_timeout_ms(impl_->config.request_timeout_ms);
  v1::DeleteTopicsResponse resp;
  RILL_RETURN_IF_ERROR(
      impl_->Call("Admin.DeleteTopics", req, &resp,
                  [&](auto* c, auto& q, auto* r) { return impl_->admin->DeleteTopics(c, q, r); }));
  return Outcomes(resp.results());
}

Result<std::vector<TopicListing>> Admin::ListTopics(bool include_internal) {
  v1::ListTopicsRequest req;
  req.set_include_internal(include_internal);
  v1::ListTopicsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call("Admin.ListTopics", req, &resp, [&](auto* c, auto& q, auto* r) {
    return impl_->admin->ListTopics(c, q, r);
  }));
  std::vector<TopicListing> out;
  for (const auto& t : resp.topics()) {
    out.push_back({t.name(), t.partitions(), t.replication_factor(), t.internal()});
  }
  return out;
}

Result<std::vector<TopicInfo>> Admin::DescribeTopics(const std::vector<std::string>& topics) {
  v1::DescribeTopicsRequest req;
  for (const auto& t : topics) req.add_topics(t);
  v1::DescribeTopicsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.DescribeTopics", req, &resp,
      [&](auto* c, auto& q, auto* r) { return impl_->admin->DescribeTopics(c, q, r); }));
  std::vector<TopicInfo> out;
  for (const auto& t : resp.topics()) {
    TopicInfo ti;
    ti.name = t.name();
    ti.status = TopicStatus(t.name(), t.error(), t.error_message());
    ti.internal = t.internal();
    for (const auto& p : t.partitions()) {
      PartitionInfo pi;
      pi.partition = p.partition();
      pi.leader_id = p.leader_id();
      pi.leader_epoch = p.leader_epoch();
      pi.replicas.assign(p.replicas().begin(), p.replicas().end());
      pi.isr.assign(p.isr().begin(), p.isr().end());
      pi.log_start_offset = p.log_start_offset();
      pi.high_watermark = p.high_watermark();
      pi.log_end_offset = p.log_end_offset();
      pi.size_bytes = p.size_bytes();
      ti.partitions.push_back(std::move(pi));
    }
    for (const auto& [k, v] : t.configs()) ti.configs[k] = v;
    out.push_back(std::move(ti));
  }
  return out;
}

Status Admin::CreatePartitions(const std::string& topic, int32_t new_total_count) {
  v1::CreatePartitionsRequest req;
  req.set_topic(topic);
  req.set_new_total_count(new_total_count);
  req.set_timeout_ms(impl_->config.request_timeout_ms);
  v1::CreatePartitionsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.CreatePartitions", req, &resp,
      [&](auto* c, auto& q, auto* r) { return impl_->admin->CreatePartitions(c, q, r); }));
  return TopicStatus(topic, resp.result().error(), resp.result().error_message());
}

Result<std::vector<ConfigEntry>> Admin::DescribeConfigs(const std::string& topic) {
  v1::DescribeConfigsRequest req;
  req.set_topic(topic);
  v1::DescribeConfigsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.DescribeConfigs", req, &resp,
      [&](auto* c, auto& q, auto* r) { return impl_->admin->DescribeConfigs(c, q, r); }));
  RILL_RETURN_IF_ERROR(TopicStatus(topic, resp.error(), resp.error_message()));
  std::vector<ConfigEntry> out;
  for (const auto& e : resp.entries()) {
    out.push_back({e.name(), e.value(), e.is_default(), e.documentation()});
  }
  return out;
}

Status Admin::AlterConfigs(const std::string& topic, const std::map<std::string, std::string>& set,
                           const std::vector<std::string>& reset, bool validate_only) {
  v1::AlterConfigsRequest req;
  req.set_topic(topic);
  for (const auto& [k, v] : set) (*req.mutable_set())[k] = v;
  for (const auto& k : reset) req.add_delete_(k);
  req.set_validate_only(validate_only);
  v1::AlterConfigsResponse resp;
  RILL_RETURN_IF_ERROR(
      impl_->Call("Admin.AlterConfigs", req, &resp,
                  [&](auto* c, auto& q, auto* r) { return impl_->admin->AlterConfigs(c, q, r); }));
  return TopicStatus(topic, resp.result().error(), resp.result().error_message());
}

Result<ClusterInfo> Admin::DescribeCluster() {
  v1::DescribeClusterRequest req;
  v1::DescribeClusterResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.DescribeCluster", req, &resp,
      [&](auto* c, auto& q, auto* r) { return impl_->admin->DescribeCluster(c, q, r); }));
  ClusterInfo out;
  out.cluster_id = resp.cluster_id();
  out.controller_id = resp.controller_id();
  for (const auto& b : resp.brokers()) out.brokers.push_back(ToBroker(b));
  return out;
}

Result<ClusterMetadata> Admin::Metadata(const std::vector<std::string>& topics) {
  v1::MetadataRequest req;
  for (const auto& t : topics) req.add_topics(t);
  v1::MetadataResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call("Metadata.Get", req, &resp, [&](auto* c, auto& q, auto* r) {
    return impl_->metadata->Get(c, q, r);
  }));
  ClusterMetadata out;
  out.cluster_id = resp.cluster_id();
  out.controller_id = resp.controller_id();
  for (const auto& b : resp.brokers()) out.brokers.push_back(ToBroker(b));
  for (const auto& t : resp.topics()) {
    TopicMetadata tm;
    tm.name = t.name();
    tm.status = TopicStatus(t.name(), t.error(), t.error_message());
    tm.internal = t.internal();
    for (const auto& p : t.partitions()) {
      PartitionMetadata pm;
      pm.partition = p.partition();
      pm.status = StatusFromErrorCode(p.error(), "");
      pm.leader_id = p.leader_id();
      pm.leader_epoch = p.leader_epoch();
      pm.replicas.assign(p.replicas().begin(), p.replicas().end());
      pm.isr.assign(p.isr().begin(), p.isr().end());
      tm.partitions.push_back(std::move(pm));
    }
    out.topics.push_back(std::move(tm));
  }
  return out;
}

}  // namespace rill::client
