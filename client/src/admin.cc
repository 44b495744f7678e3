#include "rill/client/admin.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "bootstrap_list.h"
#include "broker_rotation.h"
#include "grpc_util.h"
#include "metadata_cache.h"
#include "rill/client/errors.h"
#include "rill/proto/crc32c.h"
#include "rill/v1/admin.grpc.pb.h"
#include "rill/v1/groups.grpc.pb.h"
#include "rill/v1/metadata.grpc.pb.h"

namespace rill::client {

class AdminImpl {
 public:
  explicit AdminImpl(const AdminConfig& c, std::vector<std::string> bootstrap)
      : config(c), rotation(std::move(bootstrap)) {}

  // The stubs of one broker, made per call from the rotation's channel (a stub is cheap; the
  // channel, which holds the connection, is kept).
  struct Stubs {
    explicit Stubs(const std::shared_ptr<grpc::Channel>& channel)
        : admin(v1::Admin::NewStub(channel)), metadata(v1::Metadata::NewStub(channel)) {}
    std::unique_ptr<v1::Admin::Stub> admin;
    std::unique_ptr<v1::Metadata::Stub> metadata;
  };

  // Runs one unary RPC, `fn(stubs, ctx, req, resp)`, on a live broker (any broker answers Admin
  // and Metadata requests): one that cannot be reached is skipped for the next, within
  // request_timeout_ms. `idempotent`: the call may be repeated after a timeout (not so for
  // creating or deleting topics, whose outcome a timeout leaves unknown).
  template <typename Req, typename Resp, typename Fn>
  Status Call(std::string_view what, bool idempotent, const Req& req, Resp* resp, Fn fn) {
    std::string address;
    grpc::Status s = rotation.Call(
        config.request_timeout_ms, idempotent,
        [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
          resp->Clear();
          Stubs stubs(channel);
          return fn(stubs, ctx, req, resp);
        },
        &address);
    return internal::FromGrpc(s, what, address);
  }

  // Metadata.Get on a live broker; its brokers join the rotation. `*answered` is the broker
  // that answered.
  Status GetMetadata(const v1::MetadataRequest& req, v1::MetadataResponse* resp,
                     std::string* answered) {
    grpc::Status s = rotation.Call(
        config.request_timeout_ms, /*idempotent=*/true,
        [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
          resp->Clear();
          return v1::Metadata::NewStub(channel)->Get(ctx, req, resp);
        },
        answered);
    RILL_RETURN_IF_ERROR(internal::FromGrpc(s, "Metadata.Get", *answered));
    std::vector<std::string> known;
    for (const auto& b : resp->brokers()) {
      known.push_back(internal::BrokerAddress(b));
    }
    rotation.SetKnownBrokers(std::move(known));
    return Status::OK();
  }

  // A broker answers DescribeTopics with its own replica's log start, high watermark, log end
  // and size; a follower's high watermark trails its leader's (it learns it from its next
  // fetch). So each partition's figures are taken from its leader, asked once per leader, all
  // within one request_timeout_ms. A leader that does not answer in time leaves the first
  // broker's figures.
  void TakeOffsetsFromLeaders(const v1::DescribeTopicsRequest& req, std::vector<TopicInfo>* out) {
    const int64_t deadline = internal::MonotonicMs() + config.request_timeout_ms;
    // The brokers' addresses, with metadata of the described topics only (an empty request
    // would bring every topic's).
    v1::MetadataRequest meta_req;
    for (const auto& t : *out) {
      if (!t.partitions.empty()) meta_req.add_topics(t.name);
    }
    v1::MetadataResponse meta;
    std::string answered;
    if (meta_req.topics_size() == 0 || !GetMetadata(meta_req, &meta, &answered).ok() ||
        meta.brokers_size() <= 1) {
      return;
    }
    std::map<std::pair<std::string, int32_t>, PartitionInfo*> by_partition;
    std::set<int32_t> leaders;
    for (auto& t : *out) {
      for (auto& p : t.partitions) {
        by_partition[{t.name, p.partition}] = &p;
        leaders.insert(p.leader_id);
      }
    }
    for (const auto& b : meta.brokers()) {
      const int64_t left = deadline - internal::MonotonicMs();
      if (!leaders.contains(b.node_id()) || left <= 0) continue;
      v1::DescribeTopicsResponse resp;
      grpc::ClientContext ctx;
      internal::SetTimeout(&ctx, left);
      auto stub = v1::Admin::NewStub(rotation.ChannelFor(internal::BrokerAddress(b)));
      if (!stub->DescribeTopics(&ctx, req, &resp).ok()) continue;
      for (const auto& t : resp.topics()) {
        for (const auto& p : t.partitions()) {
          auto it = by_partition.find({t.name(), p.partition()});
          // Only what this broker answers as the leader both sides name.
          if (it == by_partition.end() || p.leader_id() != b.node_id() ||
              it->second->leader_id != b.node_id() || p.high_watermark() < 0) {
            continue;
          }
          it->second->log_start_offset = p.log_start_offset();
          it->second->high_watermark = p.high_watermark();
          it->second->log_end_offset = p.log_end_offset();
          it->second->size_bytes = p.size_bytes();
        }
      }
    }
  }

  // A Groups stub for `address`, on the rotation's channel for it.
  std::unique_ptr<v1::Groups::Stub> GroupsStubFor(const std::string& address) {
    return v1::Groups::NewStub(rotation.ChannelFor(address));
  }

  // The address of group_id's coordinator from the metadata (the leader of its
  // __consumer_offsets partition). When that cannot be told: the broker that answered in a
  // single-broker cluster; else the active controller (it creates __consumer_offsets on a group's
  // first request, which other brokers only answer with COORDINATOR_NOT_AVAILABLE), else the
  // broker that answered.
  Result<std::string> FindCoordinator(const std::string& group_id) {
    v1::MetadataRequest req;
    req.add_topics(std::string(kOffsetsTopic));
    v1::MetadataResponse resp;
    std::string answered;
    RILL_RETURN_IF_ERROR(GetMetadata(req, &resp, &answered));
    if (resp.brokers_size() <= 1) return answered;
    std::string fallback = answered;
    for (const auto& b : resp.brokers()) {
      if (b.node_id() == resp.controller_id()) {
        fallback = internal::BrokerAddress(b);
      }
    }
    if (resp.topics_size() != 1 || resp.topics(0).error() != v1::NONE ||
        resp.topics(0).partitions_size() == 0) {
      return fallback;
    }
    const auto& t = resp.topics(0);
    const uint32_t h = crc32c::Value(group_id) & 0x7fffffffu;
    const auto index = static_cast<int32_t>(h % static_cast<uint32_t>(t.partitions_size()));
    for (const auto& p : t.partitions()) {
      if (p.partition() != index) continue;
      for (const auto& b : resp.brokers()) {
        if (b.node_id() == p.leader_id()) return internal::BrokerAddress(b);
      }
    }
    return fallback;
  }

  // Runs a Groups RPC on group_id's coordinator. NOT_COORDINATOR, and a coordinator that cannot
  // be reached (UNAVAILABLE: its broker died, the group moves), make it look the coordinator up
  // again through any live broker; COORDINATOR_NOT_AVAILABLE is retried with a growing backoff
  // (looking up again too: an election may be moving it). All end when request_timeout_ms has
  // passed since the first attempt, with the last response or transport error kept. Returns the
  // transport status; the caller reads resp->error().
  template <typename Req, typename Resp, typename Fn>
  Status GroupCall(std::string_view what, const std::string& group_id, const Req& req, Resp* resp,
                   Fn fn) {
    const int64_t deadline = internal::MonotonicMs() + config.request_timeout_ms;
    std::string address;
    {
      std::lock_guard lk(mu);
      auto it = coordinators.find(group_id);
      if (it != coordinators.end()) address = it->second;
    }
    if (address.empty()) {
      auto found = FindCoordinator(group_id);
      address = found.ok() ? *found : rotation.Live();
    }
    int64_t backoff_ms = 5;
    for (;;) {
      resp->Clear();
      grpc::ClientContext ctx;
      internal::SetTimeout(&ctx, std::max<int64_t>(deadline - internal::MonotonicMs(), 1));
      grpc::Status s = fn(GroupsStubFor(address).get(), &ctx, req, resp);
      if (!s.ok()) {
        {
          std::lock_guard lk(mu);
          coordinators.erase(group_id);  // the next call looks it up again
        }
        if (s.error_code() != grpc::StatusCode::UNAVAILABLE) {
          return internal::FromGrpc(s, what, address);
        }
        // The coordinator's broker is gone. Another broker names the new one (or still the old
        // one, until the election); when none answers, neither will a retry.
        rotation.ReportFailure(address);
        auto found = FindCoordinator(group_id);
        if (!found.ok()) return internal::FromGrpc(s, what, address);
        if (internal::MonotonicMs() + backoff_ms >= deadline) {
          return internal::FromGrpc(s, what, address);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
        backoff_ms = std::min<int64_t>(backoff_ms * 2, 200);
        address = *found;
        continue;
      }
      const int32_t e = resp->error();
      if (e != v1::NOT_COORDINATOR && e != v1::COORDINATOR_NOT_AVAILABLE) {
        std::lock_guard lk(mu);
        coordinators[group_id] = address;
        return Status::OK();
      }
      if (internal::MonotonicMs() + backoff_ms >= deadline) return Status::OK();
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 200);
      auto found = FindCoordinator(group_id);
      address = found.ok() ? *found : rotation.Live();
    }
  }

  static constexpr std::string_view kOffsetsTopic = "__consumer_offsets";

  const AdminConfig config;
  internal::BrokerRotation rotation;

  std::mutex mu;                                    // guards coordinators
  std::map<std::string, std::string> coordinators;  // group id -> last coordinator address
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

BrokerInfo ToBroker(const v1::Broker& b) {
  return {b.node_id(), b.host(), b.port(), b.rack(), b.fenced()};
}

// A group-level broker error as a Status: "GROUP_ID_NOT_FOUND: no group g".
Status GroupStatus(int32_t code, const std::string& message) {
  return StatusFromErrorCode(code, message);
}

std::vector<TopicPartition> ToTopicPartitions(
    const google::protobuf::RepeatedPtrField<v1::TopicPartitions>& tps) {
  std::vector<TopicPartition> out;
  for (const auto& tp : tps) {
    for (int32_t p : tp.partitions()) out.push_back({tp.topic(), p});
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Groups partitions by topic, in the wire form.
void AddTopicPartitions(const std::vector<TopicPartition>& tps,
                        google::protobuf::RepeatedPtrField<v1::TopicPartitions>* out) {
  std::map<std::string, std::vector<int32_t>> by_topic;
  for (const auto& tp : tps) by_topic[tp.topic].push_back(tp.partition);
  for (const auto& [topic, parts] : by_topic) {
    auto* t = out->Add();
    t->set_topic(topic);
    for (int32_t p : parts) t->add_partitions(p);
  }
}

std::vector<GroupOffset> ToGroupOffsets(
    const google::protobuf::RepeatedPtrField<v1::CommittedOffset>& offsets) {
  std::vector<GroupOffset> out;
  for (const auto& o : offsets) {
    GroupOffset g;
    g.topic = o.topic();
    g.partition = o.partition();
    g.offset = o.offset();
    g.metadata = o.metadata();
    if (o.error() != v1::NONE) {
      std::string what = "partition " + o.topic() + "-" + std::to_string(o.partition());
      if (!o.error_message().empty()) what += ": " + o.error_message();
      g.status = StatusFromErrorCode(o.error(), what);
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace

Admin::Admin(std::unique_ptr<AdminImpl> impl) : impl_(std::move(impl)) {}
Admin::~Admin() = default;

Result<std::unique_ptr<Admin>> Admin::Create(const AdminConfig& config) {
  RILL_ASSIGN_OR_RETURN(std::vector<std::string> bootstrap,
                        internal::ParseBootstrapList(config.bootstrap));
  return std::unique_ptr<Admin>(new Admin(std::make_unique<AdminImpl>(config, bootstrap)));
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
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.CreateTopics", /*idempotent=*/false, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->CreateTopics(c, q, r); }));
  return Outcomes(resp.results());
}

Result<std::vector<TopicOutcome>> Admin::DeleteTopics(const std::vector<std::string>& topics,
                                                      bool allow_internal) {
  v1::DeleteTopicsRequest req;
  for (const auto& t : topics) req.add_topics(t);
  req.set_allow_internal(allow_internal);
  req.set_timeout_ms(impl_->config.request_timeout_ms);
  v1::DeleteTopicsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.DeleteTopics", /*idempotent=*/false, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->DeleteTopics(c, q, r); }));
  return Outcomes(resp.results());
}

Result<std::vector<TopicListing>> Admin::ListTopics(bool include_internal) {
  v1::ListTopicsRequest req;
  req.set_include_internal(include_internal);
  v1::ListTopicsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.ListTopics", /*idempotent=*/true, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->ListTopics(c, q, r); }));
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
      "Admin.DescribeTopics", /*idempotent=*/true, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->DescribeTopics(c, q, r); }));
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
  impl_->TakeOffsetsFromLeaders(req, &out);
  return out;
}

Status Admin::CreatePartitions(const std::string& topic, int32_t new_total_count) {
  v1::CreatePartitionsRequest req;
  req.set_topic(topic);
  req.set_new_total_count(new_total_count);
  req.set_timeout_ms(impl_->config.request_timeout_ms);
  v1::CreatePartitionsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.CreatePartitions", /*idempotent=*/false, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->CreatePartitions(c, q, r); }));
  return TopicStatus(topic, resp.result().error(), resp.result().error_message());
}

Result<std::vector<ConfigEntry>> Admin::DescribeConfigs(const std::string& topic) {
  v1::DescribeConfigsRequest req;
  req.set_topic(topic);
  v1::DescribeConfigsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.DescribeConfigs", /*idempotent=*/true, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->DescribeConfigs(c, q, r); }));
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
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.AlterConfigs", /*idempotent=*/false, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->AlterConfigs(c, q, r); }));
  return TopicStatus(topic, resp.result().error(), resp.result().error_message());
}

Result<ClusterInfo> Admin::DescribeCluster() {
  v1::DescribeClusterRequest req;
  v1::DescribeClusterResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.DescribeCluster", /*idempotent=*/true, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->DescribeCluster(c, q, r); }));
  ClusterInfo out;
  out.cluster_id = resp.cluster_id();
  out.controller_id = resp.controller_id();
  for (const auto& b : resp.brokers()) out.brokers.push_back(ToBroker(b));
  return out;
}

Result<std::vector<ElectionResult>> Admin::ElectLeaders(
    const std::map<std::string, std::vector<int32_t>>& targets) {
  v1::ElectLeadersRequest req;
  for (const auto& [topic, partitions] : targets) {
    v1::TopicPartitions* t = req.add_targets();
    t->set_topic(topic);
    for (int32_t p : partitions) t->add_partitions(p);
  }
  v1::ElectLeadersResponse resp;
  RILL_RETURN_IF_ERROR(impl_->Call(
      "Admin.ElectLeaders", /*idempotent=*/true, req, &resp,
      [&](auto& s, auto* c, auto& q, auto* r) { return s.admin->ElectLeaders(c, q, r); }));
  std::vector<ElectionResult> out;
  for (const auto& r : resp.results()) {
    out.push_back({r.topic(), r.partition(),
                   r.error() == v1::NONE ? Status::OK()
                                         : StatusFromErrorCode(r.error(), r.error_message()),
                   r.leader_id()});
  }
  return out;
}

Result<ClusterMetadata> Admin::Metadata(const std::vector<std::string>& topics) {
  v1::MetadataRequest req;
  for (const auto& t : topics) req.add_topics(t);
  v1::MetadataResponse resp;
  std::string answered;
  RILL_RETURN_IF_ERROR(impl_->GetMetadata(req, &resp, &answered));
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

Result<std::vector<GroupListing>> Admin::ListGroups() {
  // Each broker lists the groups it coordinates: ask every broker (the one that answered the
  // metadata alone when the cluster has one broker, so an advertised address that differs from
  // the bootstrap entry does not matter).
  std::vector<std::string> addresses;
  {
    v1::MetadataRequest req;
    req.add_topics(std::string(AdminImpl::kOffsetsTopic));
    v1::MetadataResponse resp;
    std::string answered;
    RILL_RETURN_IF_ERROR(impl_->GetMetadata(req, &resp, &answered));
    if (resp.brokers_size() <= 1) {
      addresses.push_back(answered);
    } else {
      for (const auto& b : resp.brokers()) {
        addresses.push_back(internal::BrokerAddress(b));
      }
    }
  }
  std::map<std::string, GroupListing> merged;
  for (const auto& address : addresses) {
    v1::ListGroupsRequest req;
    v1::ListGroupsResponse resp;
    grpc::ClientContext ctx;
    internal::SetTimeout(&ctx, impl_->config.request_timeout_ms);
    grpc::Status s = impl_->GroupsStubFor(address)->ListGroups(&ctx, req, &resp);
    RILL_RETURN_IF_ERROR(internal::FromGrpc(s, "Groups.ListGroups", address));
    for (const auto& g : resp.groups()) {
      merged[g.group_id()] = {g.group_id(), g.state(), g.members()};
    }
  }
  std::vector<GroupListing> out;
  for (auto& [id, g] : merged) out.push_back(std::move(g));
  return out;
}

Result<GroupDescription> Admin::DescribeGroup(const std::string& group_id) {
  v1::DescribeGroupRequest req;
  req.set_group_id(group_id);
  v1::DescribeGroupResponse resp;
  RILL_RETURN_IF_ERROR(impl_->GroupCall(
      "Groups.DescribeGroup", group_id, req, &resp,
      [](auto* stub, auto* c, auto& q, auto* r) { return stub->DescribeGroup(c, q, r); }));
  RILL_RETURN_IF_ERROR(GroupStatus(resp.error(), resp.error_message()));
  GroupDescription d;
  d.group_id = resp.group_id();
  d.state = resp.state();
  d.group_epoch = resp.group_epoch();
  d.assignor = resp.assignor();
  d.coordinator_id = resp.coordinator_id();
  for (const auto& m : resp.members()) {
    GroupMemberDescription md;
    md.member_id = m.member_id();
    md.instance_id = m.instance_id();
    md.client_id = m.client_id();
    md.host = m.client_host();
    md.member_epoch = m.member_epoch();
    md.assignment = ToTopicPartitions(m.assignment());
    md.target_assignment = ToTopicPartitions(m.target_assignment());
    d.members.push_back(std::move(md));
  }
  for (const auto& o : resp.offsets()) {
    d.partitions.push_back({o.topic(), o.partition(), o.committed_offset(), o.log_end_offset(),
                            o.lag(), o.owner_member_id()});
  }
  std::sort(d.partitions.begin(), d.partitions.end(), [](const auto& a, const auto& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  });
  d.total_lag = resp.total_lag();
  return d;
}

Result<std::vector<GroupOffset>> Admin::FetchOffsets(
    const std::string& group_id, const std::vector<TopicPartition>& partitions) {
  v1::FetchOffsetsRequest req;
  req.set_group_id(group_id);
  AddTopicPartitions(partitions, req.mutable_partitions());
  v1::FetchOffsetsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->GroupCall(
      "Groups.FetchOffsets", group_id, req, &resp,
      [](auto* stub, auto* c, auto& q, auto* r) { return stub->FetchOffsets(c, q, r); }));
  RILL_RETURN_IF_ERROR(GroupStatus(resp.error(), resp.error_message()));
  auto out = ToGroupOffsets(resp.offsets());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  });
  return out;
}

Result<std::vector<GroupOffset>> Admin::CommitOffsets(const std::string& group_id,
                                                      const std::vector<GroupOffset>& offsets) {
  v1::CommitOffsetsRequest req;
  req.set_group_id(group_id);
  req.set_member_epoch(-1);  // from outside the group
  for (const auto& o : offsets) {
    auto* c = req.add_offsets();
    c->set_topic(o.topic);
    c->set_partition(o.partition);
    c->set_offset(o.offset);
    c->set_metadata(o.metadata);
  }
  v1::CommitOffsetsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->GroupCall(
      "Groups.CommitOffsets", group_id, req, &resp,
      [](auto* stub, auto* c, auto& q, auto* r) { return stub->CommitOffsets(c, q, r); }));
  RILL_RETURN_IF_ERROR(GroupStatus(resp.error(), resp.error_message()));
  std::map<TopicPartition, const v1::PartitionError*> errors;
  for (const auto& e : resp.partitions()) errors[{e.topic(), e.partition()}] = &e;
  std::vector<GroupOffset> out = offsets;
  for (auto& o : out) {
    auto it = errors.find({o.topic, o.partition});
    if (it != errors.end() && it->second->error() != v1::NONE) {
      o.status = StatusFromErrorCode(it->second->error(), it->second->error_message());
    } else {
      o.status = Status::OK();
    }
  }
  return out;
}

Result<std::vector<GroupOffset>> Admin::ResetOffsets(const std::string& group_id,
                                                     const GroupOffsetReset& reset) {
  v1::ResetOffsetsRequest req;
  req.set_group_id(group_id);
  for (const auto& t : reset.topics) req.add_topics(t);
  AddTopicPartitions(reset.partitions, req.mutable_partitions());
  switch (reset.to) {
    case GroupOffsetReset::To::kEarliest:
      req.set_earliest(true);
      break;
    case GroupOffsetReset::To::kLatest:
      req.set_latest(true);
      break;
    case GroupOffsetReset::To::kOffset:
      req.set_offset(reset.value);
      break;
    case GroupOffsetReset::To::kTimestamp:
      req.set_timestamp_ms(reset.value);
      break;
    case GroupOffsetReset::To::kShiftBy:
      req.set_shift_by(reset.value);
      break;
  }
  req.set_dry_run(reset.dry_run);
  v1::ResetOffsetsResponse resp;
  RILL_RETURN_IF_ERROR(impl_->GroupCall(
      "Groups.ResetOffsets", group_id, req, &resp,
      [](auto* stub, auto* c, auto& q, auto* r) { return stub->ResetOffsets(c, q, r); }));
  RILL_RETURN_IF_ERROR(GroupStatus(resp.error(), resp.error_message()));
  return ToGroupOffsets(resp.offsets());
}

Status Admin::DeleteGroup(const std::string& group_id) {
  v1::DeleteGroupRequest req;
  req.set_group_id(group_id);
  v1::DeleteGroupResponse resp;
  RILL_RETURN_IF_ERROR(impl_->GroupCall(
      "Groups.DeleteGroup", group_id, req, &resp,
      [](auto* stub, auto* c, auto& q, auto* r) { return stub->DeleteGroup(c, q, r); }));
  return GroupStatus(resp.error(), resp.error_message());
}

}  // namespace rill::client
