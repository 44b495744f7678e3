#include "api/produce_read_gate.h"

namespace rill::broker {

ProduceReadGate::~ProduceReadGate() {
  // Readers outlive neither their lists nor the gate (they hold it); unlink whatever is left so
  // the lists' destructors do not touch them.
  reserved_.clear();
  waiting_.clear();
}

bool ProduceReadGate::FitsLocked(int64_t bytes) const {
  if (in_flight_ <= 0) return true;  // nothing in flight: progress
  if (in_flight_ + bytes > bound_) return false;
  return reading_bound_ <= 0 || reserved_bytes_ == 0 || reserved_bytes_ + bytes <= reading_bound_;
}

void ProduceReadGate::ReserveLocked(Reader* reader, Clock::time_point now) {
  in_flight_ += reader->gate_bytes_;
  reserved_bytes_ += reader->gate_bytes_;
  reader->gate_since_ = now;
  reader->gate_reserved_ = true;
  reserved_.push_back(*reader);
}

bool ProduceReadGate::Admit(int64_t bytes) {
  std::lock_guard lock(mu_);
  if (in_flight_ > 0 && in_flight_ + bytes > bound_) return false;
  in_flight_ += bytes;
  return true;
}

bool ProduceReadGate::Reserve(Reader* reader, int64_t expected) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  LapseLocked(now);
  reader->gate_bytes_ = expected > 0 ? expected : last_read_bytes_;
  // Behind readers already waiting, a newcomer waits too (first come, first served).
  if (waiting_.empty() && FitsLocked(reader->gate_bytes_)) {
    ReserveLocked(reader, now);
    return true;
  }
  waiting_.push_back(*reader);
  ++waits_;
  ArmLocked(now);
  return false;
}

void ProduceReadGate::EndRead(Reader* reader, int64_t accepted) {
  const auto now = Clock::now();
  std::vector<Reader*> resume;
  {
    std::lock_guard lock(mu_);
    if (reader->gate_reserved_) {  // else it lapsed
      in_flight_ -= reader->gate_bytes_;
      reserved_bytes_ -= reader->gate_bytes_;
      reader->gate_reserved_ = false;
      reserved_.erase(reserved_.iterator_to(*reader));
    }
    in_flight_ += accepted;
    if (accepted > 0) last_read_bytes_ = accepted;
    LapseLocked(now);
    WakeLocked(now, &resume);
  }
  for (Reader* r : resume) r->ResumeRead();
}

bool ProduceReadGate::Withdraw(Reader* reader) {
  std::lock_guard lock(mu_);
  if (reader->gate_reserved_ || !reader->is_linked()) return false;
  waiting_.erase(waiting_.iterator_to(*reader));
  return true;
}

void ProduceReadGate::Release(int64_t bytes) {
  const auto now = Clock::now();
  std::vector<Reader*> resume;
  {
    std::lock_guard lock(mu_);
    in_flight_ -= bytes;
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
  while (!reserved_.empty() && reserved_.front().gate_since_ + kLapse <= now) {
    Reader& r = reserved_.front();
    in_flight_ -= r.gate_bytes_;
    reserved_bytes_ -= r.gate_bytes_;
    r.gate_reserved_ = false;
    reserved_.pop_front();
  }
}

void ProduceReadGate::WakeLocked(Clock::time_point now, std::vector<Reader*>* resume) {
  while (!waiting_.empty() && FitsLocked(waiting_.front().gate_bytes_)) {
    Reader* r = &waiting_.front();
    waiting_.pop_front();
    ReserveLocked(r, now);
    resume->push_back(r);
  }
}

void ProduceReadGate::ArmLocked(Clock::time_point now) {
  if (armed_ || waiting_.empty()) return;
  // When the oldest reservation lapses; with none, a reservation-free wait still ends by the
  // answers to what is in flight, and the timer looks again after kLapse.
  const Clock::time_point at =
      reserved_.empty() ? now + kLapse : reserved_.front().gate_since_ + kLapse;
  deadlines_->Add(at, weak_from_this());
  armed_ = true;
}

int64_t ProduceReadGate::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

size_t ProduceReadGate::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

size_t ProduceReadGate::reserved() const {
  std::lock_guard lock(mu_);
  return reserved_.size();
}

ProduceReadGate::Stats ProduceReadGate::stats() const {
  std::lock_guard lock(mu_);
  return {in_flight_ - reserved_bytes_, reserved_bytes_, waiting_.size(), waits_};
}

}  // namespace rill::broker
