#include "api/produce_read_gate.h"

namespace rill::broker {

bool ProduceReadGate::FitsLocked(int64_t bytes) const {
  const int64_t now_in_flight = inflight_->load(std::memory_order_acquire);
  if (now_in_flight <= 0) return true;  // nothing in flight: progress
  if (now_in_flight + bytes > bound_) return false;
  return reading_bound_ <= 0 || reserved_bytes_ == 0 || reserved_bytes_ + bytes <= reading_bound_;
}

void ProduceReadGate::ReserveLocked(Reader* reader, int64_t bytes, Clock::time_point now) {
  inflight_->fetch_add(bytes, std::memory_order_acq_rel);
  reserved_bytes_ += bytes;
  by_reader_[reader] = reserved_.insert(reserved_.end(), Reservation{reader, bytes, now});
}

bool ProduceReadGate::Reserve(Reader* reader, int64_t expected) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  LapseLocked(now);
  // Behind readers already waiting, a newcomer waits too (first come, first served).
  if (waiting_.empty() && FitsLocked(expected)) {
    ReserveLocked(reader, expected, now);
    return true;
  }
  waiting_.push_back({reader, expected});
  ArmLocked(now);
  return false;
}

void ProduceReadGate::EndRead(Reader* reader, int64_t accepted) {
  const auto now = Clock::now();
  std::vector<Reader*> resume;
  {
    std::lock_guard lock(mu_);
    int64_t held = 0;
    if (auto it = by_reader_.find(reader); it != by_reader_.end()) {
      held = it->second->bytes;
      reserved_bytes_ -= held;
      reserved_.erase(it->second);
      by_reader_.erase(it);
    }
    inflight_->fetch_add(accepted - held, std::memory_order_acq_rel);
    LapseLocked(now);
    WakeLocked(now, &resume);
  }
  for (Reader* r : resume) r->ResumeRead();
}

void ProduceReadGate::Release(int64_t bytes) {
  const auto now = Clock::now();
  std::vector<Reader*> resume;
  {
    std::lock_guard lock(mu_);
    inflight_->fetch_sub(bytes, std::memory_order_acq_rel);
    LapseLocked(now);
    WakeLocked(now, &resume);
  }
  for (Reader* r : resume) r->ResumeRead();
}

void ProduceReadGate::Expire() {
  const auto now = Clock::now();
  std::vector<Reader*> resume;
  {
    std::lock_guard lock(mu_);
    armed_ = false;
    LapseLocked(now);
    WakeLocked(now, &resume);
    ArmLocked(now);
  }
  for (Reader* r : resume) r->ResumeRead();
}

void ProduceReadGate::LapseLocked(Clock::time_point now) {
  while (!reserved_.empty() && reserved_.front().since + kLapse <= now) {
    inflight_->fetch_sub(reserved_.front().bytes, std::memory_order_acq_rel);
    reserved_bytes_ -= reserved_.front().bytes;
    by_reader_.erase(reserved_.front().reader);
    reserved_.pop_front();
  }
}

void ProduceReadGate::WakeLocked(Clock::time_point now, std::vector<Reader*>* resume) {
  while (!waiting_.empty() && FitsLocked(waiting_.front().expected)) {
    ReserveLocked(waiting_.front().reader, waiting_.front().expected, now);
    resume->push_back(waiting_.front().reader);
    waiting_.pop_front();
  }
}

void ProduceReadGate::ArmLocked(Clock::time_point now) {
  if (armed_ || waiting_.empty()) return;
  // When the oldest reservation lapses; with none, a reservation-free wait still ends by the
  // answers to what is in flight, and the timer looks again after kLapse.
  const Clock::time_point at = reserved_.empty() ? now + kLapse : reserved_.front().since + kLapse;
  deadlines_->Add(at, weak_from_this());
  armed_ = true;
}

size_t ProduceReadGate::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

size_t ProduceReadGate::reserved() const {
  std::lock_guard lock(mu_);
  return reserved_.size();
}

}  // namespace rill::broker
