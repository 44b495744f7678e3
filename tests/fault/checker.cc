#include "checker.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>

namespace rill::fault {
namespace {

constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

struct Position {
  int32_t partition;
  int64_t offset;
  bool operator<(const Position& o) const {
    return partition != o.partition ? partition < o.partition : offset < o.offset;
  }
  bool operator==(const Position& o) const = default;
};

std::string Where(int32_t partition, int64_t offset) {
  return std::to_string(partition) + "@" + std::to_string(offset);
}

class Examples {
 public:
  Examples(std::vector<std::string>* out, int max) : out_(out), max_(max) {}
  void Add(const std::string& kind, const std::string& text) {
    if (count_[kind]++ < max_) out_->push_back(kind + ": " + text);
  }

 private:
  std::vector<std::string>* out_;
  int max_;
  std::map<std::string, int> count_;
};

struct Send {
  int32_t partition = -1;
  bool acked = false;
  int64_t offset = -1;
};

// One fault: its kind and target, when it began and was healed, and the partitions its target
// led at the start (each must be seen led by another node before the heal).
struct Fault {
  std::string kind;
  int32_t node = -1;
  int64_t start_us = 0;
  int64_t end_us = kForever;
  std::set<int32_t> led;
  std::set<int32_t> failed_over;
  bool new_controller = false;  // kill-controller: another node seen as the active controller
};

struct Ownership {
  std::string process;
  int64_t start_us;
  int64_t end_us = kForever;
  bool lost = false;  // ended by fencing: the member may overlap its successor (a zombie)
};

}  // namespace

int64_t Unavailability::median_us() const {
  if (each_us.empty()) return 0;
  std::vector<int64_t> sorted = each_us;
  std::sort(sorted.begin(), sorted.end());
  return sorted[(sorted.size() - 1) / 2];
}

bool CheckResult::ok(const CheckOptions& options) const {
  return unreadable_partitions == 0 && lost == 0 && wrong_offset == 0 && truncated_reads == 0 &&
         phantoms == 0 && out_of_order == 0 && commits_backwards == 0 && double_owners == 0 &&
         missing_failovers == 0 && (!options.fail_on_duplicates || duplicates == 0) &&
         (!options.fail_on_out_of_range || spurious_out_of_range == 0) &&
         (!options.fail_on_reorder || reordered_sends == 0);
}

CheckResult Check(const std::vector<Op>& history, const CheckOptions& options) {
  CheckResult r;
  Examples examples(&r.examples, options.max_examples);

  // Operations by time (stable: the file order of one thread's operations is kept).
  std::vector<const Op*> ops;
  ops.reserve(history.size());
  for (const Op& op : history) ops.push_back(&op);
  std::stable_sort(ops.begin(), ops.end(),
                   [](const Op* a, const Op* b) { return a->time_us < b->time_us; });
  const int64_t end_us = ops.empty() ? 0 : ops.back()->time_us;

  // Partitions the final read could not read through: nothing about them can be judged.
  std::set<int32_t> unreadable;
  for (const Op& op : history) {
    if (op.f == "final-unreadable") unreadable.insert(op.partition);
  }
  r.unreadable_partitions = static_cast<int64_t>(unreadable.size());
  for (int32_t p : unreadable) {
    examples.Add("unreadable",
                 "partition " + std::to_string(p) + " could not be read after the run: not judged");
  }

  // The final read: what every partition holds after healing.
  std::map<Position, std::string> final_at;
  std::unordered_map<std::string, std::vector<Position>> final_of;
  std::map<int32_t, int64_t> final_last;  // partition -> last offset read (order check)
  for (const Op& op : history) {  // file order: the final read is one thread's, in log order
    if (op.f != "final-read" || op.type != OpType::kOk) continue;
    ++r.final_records;
    auto last = final_last.find(op.partition);
    if (last != final_last.end() && op.offset <= last->second) {
      ++r.out_of_order;
      examples.Add("out of order", "final read of partition " + std::to_string(op.partition) +
                                       " went from offset " + std::to_string(last->second) +
                                       " to " + std::to_string(op.offset));
    }
    final_last[op.partition] = op.offset;
    final_at[{op.partition, op.offset}] = op.value;
    final_of[op.value].push_back({op.partition, op.offset});
  }

  // Sends and their acknowledgements. One producer sends from one thread, so its invokes of a
  // partition are in send order: a record sent later must land at a higher offset.
  std::unordered_map<std::string, Send> sends;
  std::unordered_map<std::string, int64_t> invoked_at;
  std::map<std::pair<std::string, int32_t>, std::vector<std::string>> sent_in_order;
  std::map<std::pair<std::string, int32_t>, int64_t> last_ack;  // completion order
  for (const Op& op : history) {
    if (op.f != "send") continue;
    Send& s = sends[op.value];
    if (op.type == OpType::kInvoke) {
      s.partition = op.partition;
      invoked_at[op.value] = op.time_us;
      sent_in_order[{op.process, op.partition}].push_back(op.value);
    }
    if (op.type != OpType::kOk) continue;
    s.acked = true;
    s.partition = op.partition;
    s.offset = op.offset;
    ++r.acked;
    auto key = std::make_pair(op.process, op.partition);
    auto last = last_ack.find(key);
    if (last != last_ack.end() && op.offset < last->second) {
      ++r.late_acks;
      examples.Add("late ack", op.process + " was acknowledged " + Where(op.partition, op.offset) +
                                   " after " + Where(op.partition, last->second));
    }
    last_ack[key] = std::max(op.offset, last == last_ack.end() ? op.offset : last->second);
  }
  // Per partition: acknowledged sends by invoke time, with the earliest ack time from each on
  // (for unavailability: the first acknowledged write sent after a fault began).
  std::map<int32_t, std::vector<std::pair<int64_t, int64_t>>> acks_by_invoke;
  for (const Op& op : history) {
    if (op.f != "send" || op.type != OpType::kOk) continue;
    auto inv = invoked_at.find(op.value);
    acks_by_invoke[op.partition].push_back(
        {inv == invoked_at.end() ? op.time_us : inv->second, op.time_us});
  }
  for (auto& [partition, list] : acks_by_invoke) {
    std::sort(list.begin(), list.end());
    for (size_t i = list.size(); i-- > 1;) {
      list[i - 1].second = std::min(list[i - 1].second, list[i].second);
    }
  }
  for (const auto& [key, values] : sent_in_order) {
    int64_t highest = -1;
    std::string highest_value;
    for (const std::string& v : values) {
      const Send& s = sends[v];
      if (!s.acked) continue;
      if (s.offset < highest) {
        ++r.reordered_sends;
        examples.Add("reordered", key.first + " sent " + v + " after " + highest_value +
                                      " but it was acknowledged at " + Where(key.second, s.offset) +
                                      ", below " + Where(key.second, highest));
      } else {
        highest = s.offset;
        highest_value = v;
      }
    }
  }

  for (const auto& [value, s] : sends) {
    if (unreadable.count(s.partition)) continue;
    auto found = final_of.find(value);
    if (!s.acked) {
      if (found != final_of.end()) ++r.unacked_written;
      continue;
    }
    if (found == final_of.end()) {
      ++r.lost;
      examples.Add("lost", value + " acknowledged at " + Where(s.partition, s.offset));
      continue;
    }
    const auto& at = found->second;
    if (std::find(at.begin(), at.end(), Position{s.partition, s.offset}) == at.end()) {
      ++r.wrong_offset;
      examples.Add("wrong offset", value + " acknowledged at " + Where(s.partition, s.offset) +
                                       " but read at " + Where(at[0].partition, at[0].offset));
    }
  }
  for (const auto& [value, at] : final_of) {
    if (at.size() > 1) {
      r.duplicates += static_cast<int64_t>(at.size()) - 1;
      examples.Add("duplicate", value + " at " + Where(at[0].partition, at[0].offset) + " and " +
                                    Where(at[1].partition, at[1].offset));
    }
    if (!sends.count(value)) {
      ++r.phantoms;
      examples.Add("phantom",
                   value + " at " + Where(at[0].partition, at[0].offset) + " was never sent");
    }
  }

  // Consumer reads: each must match the final log, and a consumer's offsets of a partition only
  // go forward (a group member starts again from the committed offset when assigned).
  std::set<std::pair<Position, std::string>> truncated;
  std::map<std::pair<std::string, int32_t>, int64_t> last_read;
  for (const Op& op : history) {
    if (op.f == "assign") last_read.erase({op.process, op.partition});
    if (op.f == "read" && op.type == OpType::kFail && op.offset >= 0 &&
        op.error.find("out of range") != std::string::npos) {
      auto end = final_last.find(op.partition);
      if (end != final_last.end() && op.offset <= end->second) {
        ++r.spurious_out_of_range;
        examples.Add("out of range", op.process + " was refused " + Where(op.partition, op.offset) +
                                         " (" + op.error + "), an offset the log holds");
      }
    }
    if (op.f != "read" || op.type != OpType::kOk) continue;
    ++r.reads;
    auto key = std::make_pair(op.process, op.partition);
    auto last = last_read.find(key);
    if (last != last_read.end() && op.offset <= last->second) {
      ++r.out_of_order;
      examples.Add("out of order", op.process + " read " + Where(op.partition, op.offset) +
                                       " after " + Where(op.partition, last->second));
    }
    last_read[key] = op.offset;
    if (unreadable.count(op.partition)) continue;
    auto held = final_at.find({op.partition, op.offset});
    if (held != final_at.end() && held->second == op.value) continue;
    if (truncated.insert({{op.partition, op.offset}, op.value}).second) {
      ++r.truncated_reads;
      examples.Add("truncated read",
                   op.process + " read " + op.value + " at " + Where(op.partition, op.offset) +
                       ", the final log holds " +
                       (held == final_at.end() ? std::string("nothing") : held->second));
    }
  }

  // Commits: one acknowledged after another finished must not be lower; the committed offsets
  // read at the end are at least every acknowledged commit.
  struct Commit {
    int64_t invoke_us, ok_us, offset;
    std::string process;
  };
  std::map<int32_t, std::vector<Commit>> commits;  // partition -> acknowledged commits
  std::map<std::pair<std::string, int32_t>, int64_t> commit_invoked;
  for (const Op* op : ops) {
    if (op->f != "commit") continue;
    auto key = std::make_pair(op->process, op->partition);
    if (op->type == OpType::kInvoke) {
      commit_invoked[key] = op->time_us;
    } else if (op->type == OpType::kOk) {
      auto invoked = commit_invoked.find(key);
      const int64_t start = invoked == commit_invoked.end() ? op->time_us : invoked->second;
      commits[op->partition].push_back({start, op->time_us, op->offset, op->process});
      ++r.commits;
    }
  }
  for (auto& [partition, list] : commits) {
    // Sweep in invoke order; `done` holds the commits acknowledged before the current invoke.
    std::vector<const Commit*> by_invoke, by_ok;
    for (const Commit& c : list) {
      by_invoke.push_back(&c);
      by_ok.push_back(&c);
    }
    std::sort(by_invoke.begin(), by_invoke.end(),
              [](auto* a, auto* b) { return a->invoke_us < b->invoke_us; });
    std::sort(by_ok.begin(), by_ok.end(), [](auto* a, auto* b) { return a->ok_us < b->ok_us; });
    size_t next_done = 0;
    const Commit* highest = nullptr;
    for (const Commit* c : by_invoke) {
      while (next_done < by_ok.size() && by_ok[next_done]->ok_us < c->invoke_us) {
        if (!highest || by_ok[next_done]->offset > highest->offset) highest = by_ok[next_done];
        ++next_done;
      }
      if (highest && c->offset < highest->offset) {
        ++r.commits_backwards;
        examples.Add("commit backwards", c->process + " committed " + Where(partition, c->offset) +
                                             " after " + highest->process + " had committed " +
                                             Where(partition, highest->offset));
      }
    }
  }
  for (const Op* op : ops) {
    if (op->f != "committed") continue;
    int64_t highest = -1;
    for (const Commit& c : commits[op->partition]) {
      if (c.ok_us < op->time_us) highest = std::max(highest, c.offset);
    }
    if (op->offset < highest) {
      ++r.commits_backwards;
      examples.Add("commit backwards", "the group's committed offset of partition " +
                                           std::to_string(op->partition) + " is " +
                                           std::to_string(op->offset) + " after a commit of " +
                                           std::to_string(highest) + " was acknowledged");
    }
  }

  // Ownership of partitions by group members.
  std::map<int32_t, std::vector<Ownership>> owned;  // partition -> intervals
  std::map<std::pair<std::string, int32_t>, size_t> open;
  for (const Op* op : ops) {
    if (op->f != "assign" && op->f != "revoke" && op->f != "lost") continue;
    auto key = std::make_pair(op->process, op->partition);
    auto it = open.find(key);
    auto& intervals = owned[op->partition];
    if (it != open.end()) {  // a revoke or lost, or an assign without one: ends the interval
      intervals[it->second].end_us = op->time_us;
      intervals[it->second].lost = op->f == "lost";
      open.erase(it);
    }
    if (op->f == "assign") {
      open[key] = intervals.size();
      intervals.push_back({op->process, op->time_us});
    }
  }
  for (const auto& [partition, intervals] : owned) {
    for (size_t i = 0; i < intervals.size(); ++i) {
      for (size_t j = i + 1; j < intervals.size(); ++j) {
        const Ownership& a = intervals[i];
        const Ownership& b = intervals[j];
        if (a.process == b.process || a.lost || b.lost) continue;
        if (a.start_us < b.end_us && b.start_us < a.end_us) {
          ++r.double_owners;
          examples.Add("two owners", a.process + " and " + b.process + " both owned partition " +
                                         std::to_string(partition) + " at " +
                                         std::to_string(std::max(a.start_us, b.start_us)) + " us");
        }
      }
    }
  }

  // Faults: failover for every partition the target led, and unavailability.
  std::vector<Fault> faults;
  for (const Op* op : ops) {
    if (op->f == "fault") {
      Fault f;
      f.kind = op->value;
      f.node = op->node;
      f.start_us = op->time_us;
      faults.push_back(std::move(f));
    } else if (faults.empty() || faults.back().end_us != kForever) {
      continue;
    } else if (op->f == "heal") {
      faults.back().end_us = op->time_us;
    } else if (op->f == "led") {
      faults.back().led.insert(op->partition);
    } else if (op->f == "leader" && op->node >= 0 && op->node != faults.back().node) {
      faults.back().failed_over.insert(op->partition);
    } else if (op->f == "controller" && op->node >= 0 && op->node != faults.back().node) {
      faults.back().new_controller = true;
    }
  }
  r.faults = static_cast<int>(faults.size());
  for (const Fault& f : faults) {
    for (int32_t p : f.led) {
      if (f.failed_over.count(p)) continue;
      ++r.missing_failovers;
      examples.Add("no failover", "partition " + std::to_string(p) + " led by node " +
                                      std::to_string(f.node) + " got no other leader during " +
                                      f.kind + " at " + std::to_string(f.start_us) + " us");
    }
    if (f.kind == "kill-controller" && !f.new_controller) {
      ++r.missing_failovers;
      examples.Add("no failover", "no other controller was seen after node " +
                                      std::to_string(f.node) + ", the active controller, was " +
                                      "killed at " + std::to_string(f.start_us) + " us");
    }
    int64_t unavailable = 0;
    for (const auto& [partition, list] : acks_by_invoke) {
      auto first =
          std::lower_bound(list.begin(), list.end(), std::make_pair(f.start_us, int64_t{-1}));
      unavailable =
          std::max(unavailable, (first == list.end() ? end_us : first->second) - f.start_us);
    }
    Unavailability& u = r.unavailability[f.kind];
    ++u.faults;
    u.total_us += unavailable;
    u.longest_us = std::max(u.longest_us, unavailable);
    u.each_us.push_back(unavailable);
    r.unavailable_total_us += unavailable;
  }
  return r;
}

std::string WithThousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

namespace {
std::string Seconds(int64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(us) / 1e6);
  return buf;
}
}  // namespace

std::string SummaryLine(const CheckResult& r, int cycles) {
  return "cycles " + std::to_string(cycles) + ", acked " + WithThousands(r.acked) + ", lost " +
         WithThousands(r.lost) + ", wrong offset " + WithThousands(r.wrong_offset) +
         ", truncated reads " + WithThousands(r.truncated_reads) + ", duplicates " +
         WithThousands(r.duplicates) + ", unavailable " + Seconds(r.unavailable_total_us) +
         " total";
}

std::string Report(const CheckResult& r, int cycles) {
  std::string out = SummaryLine(r, cycles) + "\n";
  out += "final records " + WithThousands(r.final_records) + ", unreadable partitions " +
         WithThousands(r.unreadable_partitions) + ", reads checked " + WithThousands(r.reads) +
         ", commits checked " + WithThousands(r.commits) + ", unacknowledged but written " +
         WithThousands(r.unacked_written) + "\n";
  out += "out of order " + WithThousands(r.out_of_order) + ", reordered sends " +
         WithThousands(r.reordered_sends) + ", phantoms " + WithThousands(r.phantoms) +
         ", commits backwards " + WithThousands(r.commits_backwards) + ", two owners " +
         WithThousands(r.double_owners) + ", missing failovers " +
         WithThousands(r.missing_failovers) + ", spurious out-of-range " +
         WithThousands(r.spurious_out_of_range) + ", late acks " + WithThousands(r.late_acks) +
         "\n";
  for (const auto& [kind, u] : r.unavailability) {
    out += "  " + kind + ": " + std::to_string(u.faults) + " faults, unavailable median " +
           Seconds(u.median_us()) + ", longest " + Seconds(u.longest_us) + ", total " +
           Seconds(u.total_us) + "\n";
  }
  for (const std::string& e : r.examples) out += "  " + e + "\n";
  return out;
}

}  // namespace rill::fault
