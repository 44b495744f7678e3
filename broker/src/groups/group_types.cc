#include "groups/group_types.h"

namespace rill::groups {

Assignment Union(const Assignment& a, const Assignment& b) {
  Assignment out = a;
  for (const auto& [topic, parts] : b) out[topic].insert(parts.begin(), parts.end());
  return out;
}

Assignment Intersect(const Assignment& a, const Assignment& b) {
  Assignment out;
  for (const auto& [topic, parts] : a) {
    auto it = b.find(topic);
    if (it == b.end()) continue;
    for (int32_t p : parts) {
      if (it->second.contains(p)) out[topic].insert(p);
    }
  }
  return out;
}

Assignment Minus(const Assignment& a, const Assignment& b) {
  Assignment out;
  for (const auto& [topic, parts] : a) {
    for (int32_t p : parts) {
      if (!Contains(b, topic, p)) out[topic].insert(p);
    }
  }
  return out;
}

bool IsSubset(const Assignment& a, const Assignment& b) {
  for (const auto& [topic, parts] : a) {
    for (int32_t p : parts) {
      if (!Contains(b, topic, p)) return false;
    }
  }
  return true;
}

std::string ToString(const Assignment& a) {
  std::string s;
  for (const auto& [topic, parts] : a) {
    if (!s.empty()) s += ' ';
    s += topic + "-[";
    bool first = true;
    for (int32_t p : parts) {
      if (!first) s += ',';
      first = false;
      s += std::to_string(p);
    }
    s += ']';
  }
  return s.empty() ? "{}" : s;
}

}  // namespace rill::groups
