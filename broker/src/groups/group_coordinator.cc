#include "groups/group_coordinator.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <set>
#include <tuple>

#include "groups/kv_offset_store.h"
#include "groups/lag.h"
#include "rill/proto/crc32c.h"
#include "rill/proto/record_batch.h"
#include "rill/proto/thread_name.h"
#include "rill/storage/kv_store.h"

namespace rill::broker {

using groups::ConsumerGroup;
using groups::GroupError;
using groups::GroupRecord;
using groups::GroupStatus;

int32_t OffsetsPartitionFor(const std::string& group_id, int32_t partitions) {
  RILL_ASSERT(partitions > 0, "partitions %d", partitions);
  uint32_t h = crc32c::Value(group_id) & 0x7fffffffu;
  return static_cast<int32_t>(h % static_cast<uint32_t>(partitions));
}

GroupCoordinator::GroupCoordinator(GroupCoordinatorDeps deps, GroupCoordinatorConfig config)
    : deps_(deps), config_(std::move(config)), rng_(std::random_device{}()) {}

GroupCoordinator::~GroupCoordinator() { Stop(); }

int64_t GroupCoordinator::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status GroupCoordinator::Start() {
  ticker_ = std::thread([this] {
    SetCurrentThreadName("rill-group-tick");
    TickerLoop();
  });
  return Status::OK();
}

Status GroupCoordinator::OpenStore() {
  if (store_) return Status::OK();
  RILL_ASSIGN_OR_RETURN(kv_, storage::KvStore::Open(config_.dir));
  // Sync writes are unnecessary: the log is the source of truth and the suffix is replayed.
  store_ = std::make_unique<groups::KvOffsetStore>(kv_.get());
  spdlog::info("opened the group offsets store {}", config_.dir);
  return Status::OK();
}

void GroupCoordinator::Stop() {
  {
    std::lock_guard lock(ticker_mu_);
    if (stop_) return;
    stop_ = true;
  }
  ticker_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

std::string GroupCoordinator::NewMemberId() {
  char buf[40];
  snprintf(buf, sizeof buf, "%016llx-%llu", static_cast<unsigned long long>(rng_()),
           static_cast<unsigned long long>(++member_counter_));
  return buf;
}

groups::TopicPartitionCounts GroupCoordinator::TopicCounts() const {
  groups::TopicPartitionCounts counts;
  auto image = deps_.partitions->image();
  if (!image) return counts;
  for (const auto& [name, t] : image->topics) {
    if (t.internal) continue;
    counts[name] = static_cast<int32_t>(t.partitions.size());
  }
  return counts;
}

groups::GroupStatus GroupCoordinator::Resolve(const std::string& group_id, OffsetsPartition** out,
                                              int32_t* index) {
  if (group_id.empty()) return GroupStatus(GroupError::kInvalidRequest, "group_id is empty");
  auto image = deps_.partitions->image();
  const TopicMetadata* topic = image ? image->FindTopic(kConsumerOffsetsTopic) : nullptr;
  if (topic == nullptr || topic->partitions.empty()) {
    if (deps_.controller->IsActive() && !creating_topic_.exchange(true)) {
      NewTopicSpec spec;
      spec.name = kConsumerOffsetsTopic;
      spec.partitions = config_.offsets_partitions;
      spec.replication_factor = config_.offsets_replication_factor;
      spec.internal = true;
      deps_.controller->CreateTopics({spec}, false, [this](std::vector<TopicOpResult> r) {
        for (const auto& x : r) {
          if (x.error != TopicOpError::kNone && x.error != TopicOpError::kTopicAlreadyExists) {
            spdlog::warn("creating {}: {}", kConsumerOffsetsTopic, x.message);
          }
        }
        creating_topic_.store(false);
      });
    }
    return GroupStatus(GroupError::kCoordinatorNotAvailable,
                       "__consumer_offsets does not exist yet; retry");
  }
  int32_t p = OffsetsPartitionFor(group_id, static_cast<int32_t>(topic->partitions.size()));
  *index = p;
  const auto& assignment = topic->partitions[p];
  if (assignment.leader.value() != deps_.config->node_id) {
    return GroupStatus(GroupError::kNotCoordinator,
                       "coordinator is node " + std::to_string(assignment.leader.value()));
  }
  auto local = deps_.partitions->Get(kConsumerOffsetsTopic, p);
  if (!local || local->role() != PartitionRole::kLeader) {
    return GroupStatus(GroupError::kCoordinatorNotAvailable,
                       "__consumer_offsets-" + std::to_string(p) + " is not open here yet");
  }
  auto it = partitions_.find(p);
  if (it == partitions_.end() || !it->second.loaded || it->second.partition != local) {
    // The ticker thread loads (reads the log suffix); gRPC threads never do.
    ticker_cv_.notify_one();
    return GroupStatus(GroupError::kCoordinatorNotAvailable,
                       "loading __consumer_offsets-" + std::to_string(p) + "; retry");
  }
  *out = &it->second;
  return GroupStatus();
}

Result<GroupCoordinator::LoadedPartition> GroupCoordinator::ReadPartition(
    int32_t index, std::shared_ptr<Partition> partition) {
  LoadedPartition out;
  out.partition = std::move(partition);
  out.materializer = std::make_unique<groups::OffsetsMaterializer>(store_.get(), index);
  RILL_ASSIGN_OR_RETURN(Offset applied, out.materializer->AppliedOffset());
  // Read the durable suffix the store has not seen.
  std::vector<groups::OffsetsLogRecord> suffix;
  Offset end = out.partition->high_watermark();
  Offset from(std::max(applied.value() + 1, out.partition->log().log_start_offset().value()));
  while (from < end) {
    RILL_ASSIGN_OR_RETURN(ReadInfo info, out.partition->log().Read(from, 4 << 20, end));
    if (info.data.empty() || info.next_offset <= from) break;
    batch::BatchIterator it(info.data);
    while (it.Next()) {
      RILL_ASSIGN_OR_RETURN(auto reader, batch::BatchReader::Open(it.batch()));
      batch::RecordView rv;
      while (true) {
        RILL_ASSIGN_OR_RETURN(bool more, reader.Next(&rv));
        if (!more) break;
        if (rv.offset >= end.value() || !rv.key) continue;
        groups::OffsetsLogRecord rec;
        rec.offset = Offset(rv.offset);
        rec.key = std::string(*rv.key);
        if (rv.value) rec.value = std::string(*rv.value);
        suffix.push_back(std::move(rec));
      }
    }
    RILL_RETURN_IF_ERROR(it.status());
    from = info.next_offset;
  }
  // Records already applied are skipped by the materializer.
  RILL_ASSIGN_OR_RETURN(out.loaded, out.materializer->Load(suffix));
  out.replayed = suffix.size();
  return out;
}

void GroupCoordinator::InstallPartition(int32_t index, LoadedPartition loaded) {
  // Drop what this node knew about the partition's groups and rebuild them.
  std::erase_if(groups_, [index](const auto& kv) { return kv.second.partition == index; });
  int64_t now = NowMs();
  for (auto& [gid, lg] : loaded.loaded.groups) {
    GroupEntry e;
    e.partition = index;
    if (lg.metadata) {
      auto g = ConsumerGroup::Restore(
          gid, config_.group, [this] { return NewMemberId(); }, *lg.metadata, lg.members, now);
      if (!g.ok()) {
        spdlog::error("restoring group {}: {}", gid, g.status().ToString());
        continue;
      }
      e.group = std::make_unique<ConsumerGroup>(std::move(g).value());
    } else {
      e.group =
          std::make_unique<ConsumerGroup>(gid, config_.group, [this] { return NewMemberId(); });
    }
    groups_[gid] = std::move(e);
  }
  auto& op = partitions_[index];
  op.partition = std::move(loaded.partition);
  op.materializer = std::move(loaded.materializer);
  op.pending.clear();
  op.loaded = true;
  spdlog::info("loaded __consumer_offsets-{}: {} groups, replayed {} records", index,
               loaded.loaded.groups.size(), loaded.replayed);
}

void GroupCoordinator::Append(int32_t index, std::vector<GroupRecord> records,
                              std::function<void(Status)> callback) {
  std::vector<std::pair<std::function<void(Status)>, Status>> ready;
  // Nothing was appended, but the caller has already changed in-memory state for it.
  auto fail = [&](Status st) {
    Invalidate(index, st, &ready);
    ready.emplace_back(std::move(callback), st);
    // Never inline: the caller holds mu_.
    boost::asio::post(*deps_.io, [ready = std::move(ready)] {
      for (const auto& [cb, st] : ready) {
        if (cb) cb(st);
      }
    });
  };
  auto pit = partitions_.find(index);
  if (pit == partitions_.end() || !pit->second.loaded) {
    return fail(Status::Unavailable("offsets partition not loaded"));
  }
  OffsetsPartition& op = pit->second;
  batch::BatchBuilder builder;
  int64_t ts = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  for (const auto& r : records) {
    auto enc = groups::Encode(r);
    std::optional<std::string_view> value;
    if (enc.value) value = std::string_view(*enc.value);
    Status st = builder.Add(std::string_view(enc.key), value, ts);
    if (!st.ok()) return fail(st);
  }
  auto built = builder.Build();
  if (!built.ok()) return fail(built.status());
  std::string bytes = std::move(built).value();
  // acks=all, the same ack rule as a producer's (Partition::Append). The ack is handled on an
  // I/O thread, never inline: this caller holds mu_, and fills `entry` before releasing it.
  auto entry = std::make_shared<PendingAppend>();
  auto appended = op.partition->Append(
      std::span<char>(bytes.data(), bytes.size()), /*acks=*/-1, [this, index, entry](Status s) {
        boost::asio::post(*deps_.io, [this, index, entry, s] { OnDurable(index, entry, s); });
      });
  if (!appended.ok()) return fail(appended.status());
  entry->base_offset = appended->base_offset;
  entry->records = std::move(records);
  entry->callback = std::move(callback);
  op.pending.push_back(entry);
}

void GroupCoordinator::OnDurable(int32_t index, std::shared_ptr<PendingAppend> entry,
                                 Status status) {
  std::vector<std::pair<std::function<void(Status)>, Status>> ready;
  {
    std::lock_guard lock(mu_);
    entry->durable = true;
    entry->status = status;
    auto pit = partitions_.find(index);
    const bool queued = pit != partitions_.end() &&
                        std::find(pit->second.pending.begin(), pit->second.pending.end(), entry) !=
                            pit->second.pending.end();
    if (!queued) {
      // The partition was reloaded or invalidated meanwhile (the callback may have run then).
      if (entry->callback) {
        ready.emplace_back(
            std::exchange(entry->callback, nullptr),
            pit == partitions_.end() ? Status::Unavailable("partition unloaded") : entry->status);
      }
    } else if (!status.ok()) {
      // This batch, and every later one built on the in-memory state it carried, may not be in
      // the log: drop that state.
      Invalidate(index, status, &ready);
    } else {
      // Apply in log order: the materializer skips offsets at or below its applied offset.
      auto& q = pit->second.pending;
      while (!q.empty() && q.front()->durable) {
        auto e = q.front();
        q.pop_front();
        Status st = e->status;
        if (st.ok()) {
          st = pit->second.materializer->ApplyGroupRecords(e->base_offset, e->records);
        }
        if (!st.ok()) {
          spdlog::error("applying group records: {}", st.ToString());
          ready.emplace_back(std::exchange(e->callback, nullptr), st);
          Invalidate(index, st, &ready);
          break;
        }
        ready.emplace_back(std::exchange(e->callback, nullptr), st);
      }
    }
  }
  for (auto& [cb, st] : ready) {
    if (cb) cb(st);
  }
}

void GroupCoordinator::Invalidate(
    int32_t index, const Status& cause,
    std::vector<std::pair<std::function<void(Status)>, Status>>* failed) {
  auto pit = partitions_.find(index);
  if (pit == partitions_.end()) return;
  OffsetsPartition& op = pit->second;
  if (op.loaded) {
    spdlog::warn("__consumer_offsets-{}: append failed ({}); reloading its groups from the log",
                 index, cause.ToString());
  }
  std::erase_if(groups_, [index](const auto& kv) { return kv.second.partition == index; });
  for (auto& e : op.pending) {
    if (e->callback) failed->emplace_back(std::exchange(e->callback, nullptr), cause);
  }
  op.pending.clear();
  op.loaded = false;
  ticker_cv_.notify_one();
}

ConsumerGroup* GroupCoordinator::FindGroup(const std::string& group_id) {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : it->second.group.get();
}

ConsumerGroup* GroupCoordinator::CreateGroup(const std::string& group_id, int32_t index) {
  if (groups_.size() >= config_.max_groups) return nullptr;
  GroupEntry e;
  e.partition = index;
  e.group =
      std::make_unique<ConsumerGroup>(group_id, config_.group, [this] { return NewMemberId(); });
  auto* g = e.group.get();
  groups_[group_id] = std::move(e);
  return g;
}

namespace {
// Why a partition named by ResetOffsets is not open here: the topic does not exist, it has no
// such partition, or another node leads it.
GroupStatus MissingPartition(const MetadataImage& image, const groups::TopicPartition& tp) {
  const TopicMetadata* t = image.FindTopic(tp.topic);
  if (t == nullptr) {
    return GroupStatus(GroupError::kUnknownTopic, "topic '" + tp.topic + "' does not exist");
  }
  if (tp.partition < 0 || static_cast<size_t>(tp.partition) >= t->partitions.size()) {
    return GroupStatus(GroupError::kUnknownPartition,
                       "topic '" + tp.topic + "' has " + std::to_string(t->partitions.size()) +
                           " partitions; there is no partition " + std::to_string(tp.partition));
  }
  return GroupStatus(GroupError::kNotLeader,
                     "this broker does not lead " + tp.topic + "-" + std::to_string(tp.partition));
}

void FillAssignment(const groups::Assignment& a,
                    google::protobuf::RepeatedPtrField<v1::TopicPartitions>* out) {
  for (const auto& [topic, parts] : a) {
    auto* tp = out->Add();
    tp->set_topic(topic);
    for (int32_t p : parts) tp->add_partitions(p);
  }
}
}  // namespace

void GroupCoordinator::Heartbeat(const v1::GroupHeartbeatRequest& request,
                                 v1::GroupHeartbeatResponse* response, Done done) {
  std::unique_lock lock(mu_);
  auto fail = [&](GroupStatus st) {
    lock.unlock();
    done({std::move(st), {}});
  };
  int32_t index = 0;
  OffsetsPartition* op = nullptr;
  if (GroupStatus st = Resolve(request.group_id(), &op, &index); !st.ok()) {
    return fail(std::move(st));
  }
  ConsumerGroup* g = FindGroup(request.group_id());
  bool created = false;
  if (g == nullptr) {
    if (request.member_epoch() != 0) {
      return fail(GroupStatus(GroupError::kUnknownMemberId,
                              "group " + request.group_id() + " has no such member"));
    }
    g = CreateGroup(request.group_id(), index);
    if (g == nullptr) {
      return fail(GroupStatus(
          GroupError::kTooManyGroups,
          "too many groups (groups.max_groups = " + std::to_string(config_.max_groups) + ")"));
    }
    created = true;
  }
  auto result = g->Heartbeat(request, NowMs(), TopicCounts());
  *response = std::move(result.response);
  if (result.records.empty()) {
    if (created && g->members().empty()) groups_.erase(request.group_id());
    return fail(std::move(result.status));
  }
  Append(index, std::move(result.records),
         [response, done, status = std::move(result.status)](Status st) {
           if (!st.ok()) {
             response->Clear();
             return done({GroupStatus(GroupError::kCoordinatorNotAvailable,
                                      "appending group state: " + st.ToString()),
                          {}});
           }
           done({status, {}});
         });
}

void GroupCoordinator::CommitOffsets(const v1::CommitOffsetsRequest& request,
                                     v1::CommitOffsetsResponse* response, Done done) {
  std::unique_lock lock(mu_);
  auto finish = [&](GroupCallResult r) {
    lock.unlock();
    done(std::move(r));
  };
  int32_t index = 0;
  OffsetsPartition* op = nullptr;
  if (GroupStatus st = Resolve(request.group_id(), &op, &index); !st.ok()) {
    return finish({std::move(st), {}});
  }
  ConsumerGroup* g = FindGroup(request.group_id());
  if (g == nullptr) {
    if (!request.member_id().empty() || request.member_epoch() >= 0) {
      return finish({GroupStatus(GroupError::kUnknownMemberId,
                                 "group " + request.group_id() + " has no such member"),
                     {}});
    }
    g = CreateGroup(request.group_id(), index);
    if (g == nullptr) {
      return finish(
          {GroupStatus(GroupError::kTooManyGroups, "too many groups (groups.max_groups = " +
                                                       std::to_string(config_.max_groups) + ")"),
           {}});
    }
  }
  auto v = g->ValidateCommit(request, NowMs(), TopicCounts());
  GroupCallResult result{std::move(v.status), {}};
  for (auto& pc : v.partitions) {
    auto* pe = response->add_partitions();
    pe->set_topic(pc.tp.topic);
    pe->set_partition(pc.tp.partition);
    result.partitions.push_back(std::move(pc.status));
  }
  if (v.records.empty()) return finish(std::move(result));
  Append(index, std::move(v.records), [done, result = std::move(result)](Status st) mutable {
    if (!st.ok()) {
      result.status =
          GroupStatus(GroupError::kCoordinatorNotAvailable, "appending offsets: " + st.ToString());
    }
    done(std::move(result));
  });
}

GroupStatus GroupCoordinator::FetchOffsets(const v1::FetchOffsetsRequest& request,
                                           v1::FetchOffsetsResponse* response) {
  std::lock_guard lock(mu_);
  int32_t index = 0;
  OffsetsPartition* op = nullptr;
  if (GroupStatus st = Resolve(request.group_id(), &op, &index); !st.ok()) return st;
  auto all = op->materializer->ReadGroupOffsets(request.group_id());
  if (!all.ok()) return GroupStatus(GroupError::kOffsetsStoreError, all.status().ToString());
  auto add = [&](const std::string& topic, int32_t p) {
    auto* o = response->add_offsets();
    o->set_topic(topic);
    o->set_partition(p);
    auto it = all->find(groups::TopicPartition{topic, p});
    if (it == all->end()) {
      o->set_offset(-1);
    } else {
      o->set_offset(it->second.offset());
      o->set_metadata(it->second.metadata());
    }
  };
  if (request.partitions_size() == 0) {
    for (const auto& [tp, v] : *all) add(tp.topic, tp.partition);
  } else {
    for (const auto& tps : request.partitions()) {
      for (int32_t p : tps.partitions()) add(tps.topic(), p);
    }
  }
  return GroupStatus();
}

void GroupCoordinator::ListGroups(v1::ListGroupsResponse* response) {
  std::lock_guard lock(mu_);
  // Groups of the partitions this node leads and has loaded (the ticker loads them at start).
  for (const auto& [gid, e] : groups_) {
    auto* l = response->add_groups();
    l->set_group_id(gid);
    l->set_state(std::string(groups::GroupStateName(e.group->state())));
    l->set_members(static_cast<int32_t>(e.group->members().size()));
  }
}

GroupStatus GroupCoordinator::DescribeGroup(const v1::DescribeGroupRequest& request,
                                            v1::DescribeGroupResponse* response) {
  std::lock_guard lock(mu_);
  int32_t index = 0;
  response->set_group_id(request.group_id());
  OffsetsPartition* op = nullptr;
  if (GroupStatus st = Resolve(request.group_id(), &op, &index); !st.ok()) return st;
  response->set_coordinator_id(deps_.config->node_id);
  ConsumerGroup* g = FindGroup(request.group_id());
  auto offsets = op->materializer->ReadGroupOffsets(request.group_id());
  if (!offsets.ok()) {
    return GroupStatus(GroupError::kOffsetsStoreError, offsets.status().ToString());
  }
  if (g == nullptr && offsets->empty()) {
    return GroupStatus(GroupError::kGroupIdNotFound, "no group " + request.group_id());
  }
  std::set<groups::TopicPartition> tps;
  for (const auto& [tp, v] : *offsets) tps.insert(tp);
  if (g != nullptr) {
    response->set_state(std::string(groups::GroupStateName(g->state())));
    response->set_group_epoch(g->group_epoch());
    response->set_assignor(g->assignor());
    for (const auto& [mid, m] : g->members()) {
      auto* d = response->add_members();
      d->set_member_id(mid);
      d->set_instance_id(m.instance_id);
      d->set_client_id(m.client_id);
      d->set_client_host(m.client_host);
      d->set_member_epoch(m.member_epoch);
      FillAssignment(m.assigned, d->mutable_assignment());
      FillAssignment(m.target, d->mutable_target_assignment());
      for (const auto& [topic, parts] : m.Owned()) {
        for (int32_t p : parts) tps.insert(groups::TopicPartition{topic, p});
      }
    }
  } else {
    response->set_state("Empty");
  }
  std::vector<groups::PartitionOffsets> po;
  for (const auto& tp : tps) {
    groups::PartitionOffsets x;
    x.tp = tp;
    auto it = offsets->find(tp);
    if (it != offsets->end()) x.committed_offset = it->second.offset();
    if (auto part = deps_.partitions->Get(tp.topic, tp.partition)) {
      x.log_start_offset = part->log().log_start_offset().value();
      x.log_end_offset = part->high_watermark().value();
    }
    po.push_back(x);
  }
  auto lag = groups::ComputeGroupLag(po);
  for (size_t i = 0; i < po.size(); ++i) {
    auto* l = response->add_offsets();
    l->set_topic(po[i].tp.topic);
    l->set_partition(po[i].tp.partition);
    l->set_committed_offset(po[i].committed_offset);
    l->set_log_end_offset(po[i].log_end_offset);
    l->set_lag(lag.partitions[i].lag);
    if (g != nullptr) {
      if (const std::string* owner = g->OwnerOf(po[i].tp)) l->set_owner_member_id(*owner);
    }
  }
  response->set_total_lag(lag.total);
  return GroupStatus();
}

void GroupCoordinator::ResetOffsets(const v1::ResetOffsetsRequest& request,
                                    v1::ResetOffsetsResponse* response, Done done) {
  std::unique_lock lock(mu_);
  GroupCallResult result;
  auto finish = [&] {
    lock.unlock();
    done(std::move(result));
  };
  auto fail = [&](GroupError e, std::string m) {
    result.status = GroupStatus(e, std::move(m));
    finish();
  };
  int32_t index = 0;
  OffsetsPartition* op = nullptr;
  if (GroupStatus st = Resolve(request.group_id(), &op, &index); !st.ok()) {
    result.status = std::move(st);
    return finish();
  }
  ConsumerGroup* g = FindGroup(request.group_id());
  if (g != nullptr && !g->members().empty()) {
    return fail(GroupError::kGroupNotEmpty, "group " + request.group_id() + " has " +
                                                std::to_string(g->members().size()) +
                                                " active members; stop them first");
  }
  if (request.to_case() == v1::ResetOffsetsRequest::TO_NOT_SET) {
    return fail(GroupError::kInvalidRequest,
                "one of earliest, latest, offset, timestamp_ms, shift_by");
  }
  auto offsets = op->materializer->ReadGroupOffsets(request.group_id());
  if (!offsets.ok()) return fail(GroupError::kOffsetsStoreError, offsets.status().ToString());
  std::set<groups::TopicPartition> tps;
  auto image = deps_.partitions->image();
  if (!image) return fail(GroupError::kCoordinatorNotAvailable, "no metadata yet; retry");
  for (const auto& tp : request.partitions()) {
    for (int32_t p : tp.partitions()) tps.insert(groups::TopicPartition{tp.topic(), p});
  }
  for (const auto& topic : request.topics()) {
    const TopicMetadata* t = image->FindTopic(topic);
    if (t == nullptr) return fail(GroupError::kUnknownTopic, "no topic " + topic);
    for (size_t p = 0; p < t->partitions.size(); ++p) {
      tps.insert(groups::TopicPartition{topic, static_cast<int32_t>(p)});
    }
  }
  if (request.partitions_size() == 0 && request.topics_size() == 0) {
    for (const auto& [tp, v] : *offsets) tps.insert(tp);
  }
  std::vector<GroupRecord> records;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  for (const auto& tp : tps) {
    auto part = deps_.partitions->Get(tp.topic, tp.partition);
    auto* o = response->add_offsets();
    o->set_topic(tp.topic);
    o->set_partition(tp.partition);
    GroupStatus& pst = result.partitions.emplace_back();
    if (!part) {
      pst = MissingPartition(*image, tp);
      o->set_offset(-1);
      continue;
    }
    int64_t start = part->log().log_start_offset().value();
    int64_t end = part->high_watermark().value();
    auto it = offsets->find(tp);
    int64_t committed = it == offsets->end() ? -1 : it->second.offset();
    int64_t target = 0;
    switch (request.to_case()) {
      case v1::ResetOffsetsRequest::kEarliest:
        target = start;
        break;
      case v1::ResetOffsetsRequest::kLatest:
        target = end;
        break;
      case v1::ResetOffsetsRequest::kOffset:
        target = request.offset();
        break;
      case v1::ResetOffsetsRequest::kTimestampMs: {
        // No record that late moves the group to the log end (as Kafka does); a failed lookup
        // (e.g. a corrupt batch) is this partition's error and leaves its offset as it was.
        auto r = part->log().OffsetForTimestamp(request.timestamp_ms());
        if (!r.ok()) {
          spdlog::warn("group {}: reset-offsets of {}-{} to timestamp {}: {}", request.group_id(),
                       tp.topic, tp.partition, request.timestamp_ms(), r.status().ToString());
          pst = GroupStatus::LogRead(r.status(), "looking up timestamp " +
                                                     std::to_string(request.timestamp_ms()) + ": " +
                                                     r.status().ToString());
          o->set_offset(-1);
          continue;
        }
        target = r->value() >= 0 ? r->value() : end;
        break;
      }
      case v1::ResetOffsetsRequest::kShiftBy:
        target = (committed < 0 ? start : committed) + request.shift_by();
        break;
      default:
        break;
    }
    target = std::clamp(target, start, end);
    o->set_offset(target);
    if (it != offsets->end()) o->set_metadata(it->second.metadata());
    groups::pb::OffsetCommitValue v;
    v.set_offset(target);
    if (it != offsets->end()) v.set_metadata(it->second.metadata());
    v.set_commit_timestamp_ms(now);
    records.push_back(
        groups::MakeOffsetCommitRecord(request.group_id(), tp.topic, tp.partition, std::move(v)));
  }
  if (request.dry_run() || records.empty()) return finish();
  if (g == nullptr && CreateGroup(request.group_id(), index) == nullptr) {
    return fail(GroupError::kTooManyGroups,
                "too many groups (groups.max_groups = " + std::to_string(config_.max_groups) + ")");
  }
  Append(index, std::move(records), [done, result = std::move(result)](Status st) mutable {
    if (!st.ok()) {
      result.status =
          GroupStatus(GroupError::kCoordinatorNotAvailable, "appending offsets: " + st.ToString());
    }
    done(std::move(result));
  });
}

void GroupCoordinator::DeleteGroup(const v1::DeleteGroupRequest& request, Done done) {
  std::unique_lock lock(mu_);
  auto fail = [&](GroupStatus st) {
    lock.unlock();
    done({std::move(st), {}});
  };
  int32_t index = 0;
  OffsetsPartition* op = nullptr;
  if (GroupStatus st = Resolve(request.group_id(), &op, &index); !st.ok()) {
    return fail(std::move(st));
  }
  ConsumerGroup* g = FindGroup(request.group_id());
  auto offsets = op->materializer->ReadGroupOffsets(request.group_id());
  if (!offsets.ok()) {
    return fail(GroupStatus(GroupError::kOffsetsStoreError, offsets.status().ToString()));
  }
  if (g == nullptr && offsets->empty()) {
    return fail(GroupStatus(GroupError::kGroupIdNotFound, "no group " + request.group_id()));
  }
  std::vector<GroupRecord> records;
  if (g != nullptr) {
    if (g->Delete(&records) == GroupError::kGroupNotEmpty) {
      return fail(GroupStatus(GroupError::kGroupNotEmpty, "group " + request.group_id() + " has " +
                                                              std::to_string(g->members().size()) +
                                                              " active members"));
    }
    groups_.erase(request.group_id());
  }
  for (const auto& [tp, v] : *offsets) {
    records.push_back(groups::MakeOffsetTombstone(request.group_id(), tp.topic, tp.partition));
  }
  if (records.empty()) return fail(GroupStatus());
  Append(index, std::move(records), [done](Status st) {
    if (!st.ok()) {
      return done({GroupStatus(GroupError::kCoordinatorNotAvailable,
                               "appending tombstones: " + st.ToString()),
                   {}});
    }
    done({});
  });
}

std::string GroupCoordinator::RenderMetrics() {
  std::lock_guard lock(mu_);
  std::string sum =
      "# HELP rill_group_lag_sum Records behind, summed over the group's committed partitions "
      "(high watermark minus committed offset).\n# TYPE rill_group_lag_sum gauge\n";
  std::string max =
      "# HELP rill_group_lag_max Records behind on the group's most lagging partition.\n"
      "# TYPE rill_group_lag_max gauge\n";
  for (const auto& [gid, e] : groups_) {
    auto pit = partitions_.find(e.partition);
    if (pit == partitions_.end() || !pit->second.materializer) continue;
    auto offsets = pit->second.materializer->ReadGroupOffsets(gid);
    if (!offsets.ok() || offsets->empty()) continue;
    std::vector<groups::PartitionOffsets> po;
    for (const auto& [tp, v] : *offsets) {
      groups::PartitionOffsets x;
      x.tp = tp;
      x.committed_offset = v.offset();
      if (auto part = deps_.partitions->Get(tp.topic, tp.partition)) {
        x.log_start_offset = part->log().log_start_offset().value();
        x.log_end_offset = part->high_watermark().value();
      }
      po.push_back(x);
    }
    auto lag = groups::ComputeGroupLag(po);
    // Group ids are escaped for the label value.
    std::string label;
    for (char c : gid) {
      if (c == '\\' || c == '"') label += '\\';
      if (c == '\n') {
        label += "\\n";
        continue;
      }
      label += c;
    }
    sum += "rill_group_lag_sum{group=\"" + label + "\"} " + std::to_string(lag.total) + "\n";
    max += "rill_group_lag_max{group=\"" + label + "\"} " + std::to_string(lag.max) + "\n";
  }
  return sum + max;
}

void GroupCoordinator::TickerLoop() {
  std::unique_lock lock(ticker_mu_);
  while (!stop_) {
    ticker_cv_.wait_for(lock, std::chrono::milliseconds(config_.tick_ms));
    if (stop_) break;
    lock.unlock();
    TickOnce();
    lock.lock();
  }
}

void GroupCoordinator::LoadPartitions() {
  // Under mu_: which offsets partitions to load, forgetting those this node no longer leads. A
  // partition to load leaves partitions_ first, so nothing appends to it or applies to its store
  // keys while it loads (calls for its groups get "loading; retry").
  std::vector<std::pair<int32_t, std::shared_ptr<Partition>>> to_load;
  {
    std::lock_guard lock(mu_);
    auto image = deps_.partitions->image();
    const TopicMetadata* t = image ? image->FindTopic(kConsumerOffsetsTopic) : nullptr;
    // The topic is created on first group use (Resolve), so clusters without groups have none.
    if (t == nullptr) return;
    for (size_t p = 0; p < t->partitions.size(); ++p) {
      int32_t idx = static_cast<int32_t>(p);
      auto local = deps_.partitions->Get(kConsumerOffsetsTopic, idx);
      bool lead = t->partitions[p].leader.value() == deps_.config->node_id && local &&
                  local->role() == PartitionRole::kLeader;
      auto it = partitions_.find(idx);
      if (lead && it != partitions_.end() && !it->second.loaded && it->second.partition == local &&
          local->log().durable_end_offset() < local->log().log_end_offset()) {
        // Invalidated after a failed append: reload only once nothing appended is in flight, so
        // the replay sees every batch that made it into the log.
        continue;
      }
      if (!lead) {
        if (it != partitions_.end()) {
          std::erase_if(groups_, [idx](const auto& kv) { return kv.second.partition == idx; });
          partitions_.erase(it);
        }
        continue;
      }
      if (it != partitions_.end() && it->second.loaded && it->second.partition == local) continue;
      if (local->high_watermark() < local->log().log_end_offset()) {
        // A new leader's log may end in commits its high watermark does not show yet (it learns
        // the followers' ends from their next fetches). Loading only below the high watermark
        // would drop acknowledged offset commits; load once it has reached this log end (the
        // leader never truncates its own log, so all of it commits or leadership moves).
        continue;
      }
      if (it != partitions_.end()) {
        // Stale (leadership moved away and back) or invalidated: out while it reloads.
        std::erase_if(groups_, [idx](const auto& kv) { return kv.second.partition == idx; });
        partitions_.erase(it);
      }
      to_load.emplace_back(idx, std::move(local));
    }
    if (to_load.empty()) return;
    if (Status st = OpenStore(); !st.ok()) {
      spdlog::warn("opening the group offsets store: {}", st.ToString());
      return;
    }
  }
  // Reading the log suffix and replaying it into the store runs without mu_: group calls for
  // other partitions go on meanwhile.
  for (auto& [idx, local] : to_load) {
    auto loaded = ReadPartition(idx, local);
    if (!loaded.ok()) {
      spdlog::warn("loading offsets partition {}: {}", idx, loaded.status().ToString());
      continue;
    }
    std::lock_guard lock(mu_);
    // Still this node's to coordinate, and not loaded meanwhile (only this thread loads).
    auto image = deps_.partitions->image();
    const TopicMetadata* t = image ? image->FindTopic(kConsumerOffsetsTopic) : nullptr;
    const bool lead = t != nullptr && static_cast<size_t>(idx) < t->partitions.size() &&
                      t->partitions[idx].leader.value() == deps_.config->node_id &&
                      deps_.partitions->Get(kConsumerOffsetsTopic, idx) == local &&
                      local->role() == PartitionRole::kLeader;
    if (lead && partitions_.count(idx) == 0) InstallPartition(idx, std::move(loaded).value());
  }
}

void GroupCoordinator::TickOnce() {
  LoadPartitions();
  std::lock_guard lock(mu_);
  auto image = deps_.partitions->image();
  if (!image) return;
  int64_t now = NowMs();
  bool topics_changed = image != last_image_;
  last_image_ = image;
  groups::TopicPartitionCounts counts;
  if (topics_changed) counts = TopicCounts();
  // Appends after the walk: a failed append drops the groups of its partition from groups_.
  std::vector<std::tuple<int32_t, std::string, std::vector<GroupRecord>>> appends;
  for (auto& [gid, e] : groups_) {
    std::vector<GroupRecord> records;
    if (topics_changed) {
      auto r = e.group->OnTopicsChanged(counts, now);
      for (auto& x : r.records) records.push_back(std::move(x));
    }
    auto r = e.group->Tick(now);
    for (auto& x : r.records) records.push_back(std::move(x));
    if (!records.empty()) appends.emplace_back(e.partition, gid, std::move(records));
  }
  for (auto& [partition, gid, records] : appends) {
    Append(partition, std::move(records), [gid = gid](Status st) {
      if (!st.ok()) spdlog::warn("appending state of group {}: {}", gid, st.ToString());
    });
  }
}

}  // namespace rill::broker
