#include "history.h"

#include <chrono>
#include <cstdlib>
#include <fstream>

namespace rill::fault {
namespace {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void AppendString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

// A cursor over one line; every Parse* returns false on malformed input.
struct Cursor {
  std::string_view s;
  size_t i = 0;
  void SkipSpace() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
  }
  bool Eat(char c) {
    SkipSpace();
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
  }
  bool ParseString(std::string* out) {
    if (!Eat('"')) return false;
    out->clear();
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case 'n':
          out->push_back('\n');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 'u': {
          if (i + 4 > s.size()) return false;
          out->push_back(
              static_cast<char>(std::strtol(std::string(s.substr(i, 4)).c_str(), nullptr, 16)));
          i += 4;
          break;
        }
        default:
          out->push_back(e);
      }
    }
    return Eat('"');
  }
  bool ParseInt(int64_t* out) {
    SkipSpace();
    size_t start = i;
    if (i < s.size() && s[i] == '-') ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start || (i == start + 1 && s[start] == '-')) return false;
    *out = std::strtoll(std::string(s.substr(start, i - start)).c_str(), nullptr, 10);
    return true;
  }
};

std::optional<OpType> ParseType(const std::string& name) {
  if (name == "invoke") return OpType::kInvoke;
  if (name == "ok") return OpType::kOk;
  if (name == "fail") return OpType::kFail;
  if (name == "info") return OpType::kInfo;
  return std::nullopt;
}

}  // namespace

const char* OpTypeName(OpType type) {
  switch (type) {
    case OpType::kInvoke:
      return "invoke";
    case OpType::kOk:
      return "ok";
    case OpType::kFail:
      return "fail";
    case OpType::kInfo:
      return "info";
  }
  return "info";
}

std::string ToJson(const Op& op) {
  std::string out = "{\"time_us\":" + std::to_string(op.time_us) + ",\"process\":";
  AppendString(&out, op.process);
  out += ",\"type\":\"";
  out += OpTypeName(op.type);
  out += "\",\"f\":";
  AppendString(&out, op.f);
  if (!op.value.empty()) {
    out += ",\"value\":";
    AppendString(&out, op.value);
  }
  if (op.partition >= 0) out += ",\"partition\":" + std::to_string(op.partition);
  if (op.offset >= 0) out += ",\"offset\":" + std::to_string(op.offset);
  if (op.node >= 0) out += ",\"node\":" + std::to_string(op.node);
  if (!op.error.empty()) {
    out += ",\"error\":";
    AppendString(&out, op.error);
  }
  out += "}";
  return out;
}

std::optional<Op> ParseJson(std::string_view line) {
  Cursor c{line};
  Op op;
  if (!c.Eat('{')) return std::nullopt;
  bool have_type = false;
  if (c.Eat('}')) return std::nullopt;
  do {
    std::string key;
    if (!c.ParseString(&key) || !c.Eat(':')) return std::nullopt;
    c.SkipSpace();
    if (c.i < line.size() && line[c.i] == '"') {
      std::string v;
      if (!c.ParseString(&v)) return std::nullopt;
      if (key == "process") {
        op.process = std::move(v);
      } else if (key == "type") {
        auto t = ParseType(v);
        if (!t) return std::nullopt;
        op.type = *t;
        have_type = true;
      } else if (key == "f") {
        op.f = std::move(v);
      } else if (key == "value") {
        op.value = std::move(v);
      } else if (key == "error") {
        op.error = std::move(v);
      }
    } else {
      int64_t v = 0;
      if (!c.ParseInt(&v)) return std::nullopt;
      if (key == "time_us") {
        op.time_us = v;
      } else if (key == "partition") {
        op.partition = static_cast<int32_t>(v);
      } else if (key == "offset") {
        op.offset = v;
      } else if (key == "node") {
        op.node = static_cast<int32_t>(v);
      }
    }
  } while (c.Eat(','));
  if (!c.Eat('}') || !have_type || op.f.empty()) return std::nullopt;
  return op;
}

bool ReadHistory(const std::string& path, std::vector<Op>* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    auto op = ParseJson(line);
    if (!op) {
      *error = path + ":" + std::to_string(n) + ": malformed history line: " + line;
      return false;
    }
    out->push_back(std::move(*op));
  }
  return true;
}

HistoryWriter::HistoryWriter(const std::string& path)
    : file_(std::fopen(path.c_str(), "w")), start_ns_(SteadyNs()) {}

HistoryWriter::~HistoryWriter() {
  if (file_) std::fclose(file_);
}

int64_t HistoryWriter::NowUs() const { return (SteadyNs() - start_ns_) / 1000; }

void HistoryWriter::Append(Op op) {
  if (op.time_us == 0) op.time_us = NowUs();
  std::string line = ToJson(op);
  line.push_back('\n');
  std::lock_guard lock(mu_);
  if (file_) std::fwrite(line.data(), 1, line.size(), file_);
}

void HistoryWriter::Flush() {
  std::lock_guard lock(mu_);
  if (file_) std::fflush(file_);
}

}  // namespace rill::fault
