#pragma once

// Strong types for the integers that must never be swapped by mistake (docs/CONVENTIONS.md §2):
// a log offset is not a leader epoch, a Raft term is not a node id.

#include <compare>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>

namespace rill {

template <typename Tag, typename T>
class StrongInt {
 public:
  using value_type = T;
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  static constexpr StrongInt min() { return StrongInt(std::numeric_limits<T>::min()); }
  static constexpr StrongInt max() { return StrongInt(std::numeric_limits<T>::max()); }

  constexpr auto operator<=>(const StrongInt&) const = default;
  constexpr StrongInt operator+(T d) const { return StrongInt(v_ + d); }
  constexpr StrongInt operator-(T d) const { return StrongInt(v_ - d); }
  constexpr T operator-(StrongInt o) const { return v_ - o.v_; }
  constexpr StrongInt& operator+=(T d) { v_ += d; return *this; }
  constexpr StrongInt& operator-=(T d) { v_ -= d; return *this; }
  constexpr StrongInt& operator++() { ++v_; return *this; }
  constexpr StrongInt operator++(int) { StrongInt old = *this; ++v_; return old; }

  friend std::ostream& operator<<(std::ostream& os, StrongInt s) { return os << s.v_; }

 private:
  T v_{};
};

struct OffsetTag {};
struct LeaderEpochTag {};
struct TermTag {};
struct NodeIdTag {};

// Position of a record in a partition log. -1 means "none".
using Offset = StrongInt<OffsetTag, int64_t>;
// Epoch of the partition leader that wrote a batch (RecordBatch partitionLeaderEpoch).
using LeaderEpoch = StrongInt<LeaderEpochTag, int32_t>;
// Raft term.
using Term = StrongInt<TermTag, uint64_t>;
// Broker / controller node id.
using NodeId = StrongInt<NodeIdTag, int32_t>;

}  // namespace rill

template <typename Tag, typename T>
struct std::hash<rill::StrongInt<Tag, T>> {
  size_t operator()(rill::StrongInt<Tag, T> s) const noexcept { return std::hash<T>()(s.value()); }
};
