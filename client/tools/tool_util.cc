#include "tool_util.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <map>

#include "bootstrap_list.h"

namespace rill::tools {

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kNotFound:
      return 3;
    case StatusCode::kUnavailable:
    case StatusCode::kTimeout:
      return 4;
    default:
      return 1;
  }
}

int Fail(std::string_view tool, const Status& s) {
  std::fprintf(stderr, "%.*s: error: %s\n", static_cast<int>(tool.size()), tool.data(),
               s.message().empty() ? s.ToString().c_str() : s.message().c_str());
  return ExitCodeFor(s);
}

std::string JsonString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // Pass well-formed UTF-8 sequences through; escape stray bytes.
    size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len - 1;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    }
  }
  out += '"';
  return out;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view kv) {
  const auto eq = kv.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Status::InvalidArgument("expected key=value, got '" + std::string(kv) + "'");
  }
  return std::make_pair(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
}

Result<TopicPartitionsArg> ParseTopicPartitions(std::string_view arg) {
  TopicPartitionsArg out;
  const auto colon = arg.rfind(':');
  out.topic = std::string(arg.substr(0, colon));
  if (out.topic.empty()) {
    return Status::InvalidArgument("expected TOPIC or TOPIC:P,P,..., got '" + std::string(arg) +
                                   "'");
  }
  if (colon == std::string_view::npos) return out;
  std::string_view rest = arg.substr(colon + 1);
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    int32_t p = -1;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), p);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || p < 0) {
      return Status::InvalidArgument("bad partition '" + std::string(item) + "' in '" +
                                     std::string(arg) +
                                     "' (expected TOPIC:P,P,... with partitions >= 0)");
    }
    if (std::find(out.partitions.begin(), out.partitions.end(), p) == out.partitions.end()) {
      out.partitions.push_back(p);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::string FormatTopicPartitions(const std::vector<client::TopicPartition>& tps) {
  if (tps.empty()) return "-";
  std::vector<std::string> order;
  std::map<std::string, std::vector<int32_t>> by_topic;
  for (const auto& tp : tps) {
    auto [it, inserted] = by_topic.try_emplace(tp.topic);
    if (inserted) order.push_back(tp.topic);
    it->second.push_back(tp.partition);
  }
  std::string out;
  for (const auto& topic : order) {
    auto& parts = by_topic[topic];
    std::sort(parts.begin(), parts.end());
    if (!out.empty()) out += ' ';
    out += topic + ':';
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + std::to_string(parts[i]);
  }
  return out;
}

std::string OffsetCell(int64_t offset) { return offset < 0 ? "-" : std::to_string(offset); }

Result<int64_t> ParseInt(std::string_view text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not an integer");
  }
  return v;
}

namespace {

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// Reads exactly `n` digits at *pos; false otherwise.
bool Digits(std::string_view s, size_t* pos, size_t n, int* out) {
  if (*pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

}  // namespace

Result<int64_t> ParseTimeMs(std::string_view text) {
  if (!text.empty() && text.find_first_not_of("-0123456789") == std::string_view::npos) {
    return ParseInt(text);
  }
  const Status bad = Status::InvalidArgument(
      "'" + std::string(text) +
      "' is not a time: give milliseconds since the epoch or an ISO-8601 date-time with a zone, "
      "e.g. 2026-12-05T10:00:00Z or 2026-12-05T10:00:00.250+01:00");
  size_t pos = 0;
  int year, month, day, hour, minute, second;
  if (!Digits(text, &pos, 4, &year) || !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &month) ||
      !Expect(text, &pos, '-') || !Digits(text, &pos, 2, &day) ||
      !(Expect(text, &pos, 'T') || Expect(text, &pos, 't')) || !Digits(text, &pos, 2, &hour) ||
      !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &minute) || !Expect(text, &pos, ':') ||
      !Digits(text, &pos, 2, &second)) {
    return bad;
  }
  static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kMonthDays[month - 1] ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 60) {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a valid date and time");
  }
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    int64_t scale = 100;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++digits > 9) return bad;
      millis += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (digits == 0) return bad;
  }
  int64_t offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh, om;
    if (!Digits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') || !Digits(text, &pos, 2, &om) ||
        oh > 23 || om > 59) {
      return bad;
    }
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return bad;  // no zone: local time would be a guess
  }
  if (pos != text.size()) return bad;
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return seconds * 1000 + millis;
}

Result<int64_t> ParseTimeMsAt(std::string_view text, int64_t now_ms) {
  if (text.size() < 3 || text[0] != '-' || text.back() < 'a' || text.back() > 'z') {
    return ParseTimeMs(text);
  }
  // -<n><unit>: the unit is the trailing letters.
  size_t unit_at = text.size();
  while (unit_at > 1 && text[unit_at - 1] >= 'a' && text[unit_at - 1] <= 'z') --unit_at;
  const std::string_view number = text.substr(1, unit_at - 1), unit = text.substr(unit_at);
  static const std::map<std::string_view, int64_t> kUnitMs = {
      {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};
  auto scale = kUnitMs.find(unit);
  auto n = ParseInt(number);
  if (scale == kUnitMs.end() || number.empty() || number[0] == '-' || !n.ok() ||
      *n > std::numeric_limits<int64_t>::max() / scale->second) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a relative time: give -N followed by ms, s, m, h or "
                                   "d, e.g. -1h or -90s");
  }
  return now_ms - *n * scale->second;
}

Result<StartPosition> ParseStartPosition(std::string_view text, int64_t now_ms) {
  const std::string t(text);
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(
        "'" + t + "' " + why +
        " (give earliest, latest, an offset N, -N for N records back from the end, @TIME or "
        "timestamp:TIME with TIME in ms since the epoch, ISO-8601 with a zone "
        "2026-12-05T10:00:00Z or relative -1h)");
  };
  StartPosition p;
  if (t == "earliest" || t == "beginning") {
    p.kind = StartPosition::kEarliest;
    return p;
  }
  if (t == "latest" || t == "end") {
    p.kind = StartPosition::kLatest;
    return p;
  }
  std::string_view time;
  if (t.rfind("@", 0) == 0) {
    time = text.substr(1);
  } else if (t.rfind("timestamp:", 0) == 0 || t.rfind("timestamp=", 0) == 0) {
    time = text.substr(10);
  }
  if (time.data() != nullptr) {
    auto ms = ParseTimeMsAt(time, now_ms);
    if (!ms.ok()) return bad("is not a time: " + ms.status().message());
    p.kind = StartPosition::kTimestamp;
    p.value = *ms;
    return p;
  }
  std::string_view number = text;
  const bool long_form = t.rfind("offset:", 0) == 0 || t.rfind("offset=", 0) == 0;
  if (long_form) number = text.substr(7);
  auto n = ParseInt(number);
  if (!n.ok()) return bad("is not a start position");
  if (*n < 0 && long_form) return bad("has a negative offset");
  if (*n < 0 && *n == std::numeric_limits<int64_t>::min()) return bad("is out of range");
  p.kind = *n < 0 ? StartPosition::kFromEnd : StartPosition::kOffset;
  p.value = *n < 0 ? -*n : *n;
  if (number == "-0") return bad("is not a start position");
  return p;
}

namespace {

// A small JSON reader for ParseJsonRecordLine: strings, null, integers, booleans and objects.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  Status Error(const std::string& what) const {
    return Status::InvalidArgument(what + " at column " + std::to_string(pos_ + 1));
  }
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }
  bool ConsumeWord(std::string_view w) {
    SkipSpace();
    if (text_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  // A string or null.
  Result<std::optional<std::string>> NullableString() {
    if (ConsumeWord("null")) return std::optional<std::string>();
    RILL_ASSIGN_OR_RETURN(std::string s, String());
    return std::optional<std::string>(std::move(s));
  }
  Result<std::string> String() {
    if (!Consume('"')) return Error("expected a string");
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      c = text_[pos_++];
      switch (c) {
        case '"':
        case '\\':
        case '/':
          out += c;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          RILL_ASSIGN_OR_RETURN(uint32_t cp, Hex4());
          if (cp >= 0xd800 && cp < 0xdc00) {  // a surrogate pair
            if (!ConsumeWord("\\u")) return Error("unpaired surrogate");
            RILL_ASSIGN_OR_RETURN(uint32_t low, Hex4());
            if (low < 0xdc00 || low >= 0xe000) return Error("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          AppendCodePoint(cp, &out);
          break;
        }
        default:
          return Error(std::string("bad escape '\\") + c + "'");
      }
    }
    if (pos_ >= text_.size()) return Error("unterminated string");
    ++pos_;  // the closing quote
    return out;
  }
  Result<int64_t> Integer() {
    SkipSpace();
    const size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    auto n = ParseInt(text_.substr(start, pos_ - start));
    if (!n.ok()) {
      pos_ = start;
      return Error("expected an integer");
    }
    return *n;
  }
  // Skips a string, integer, true, false or null.
  Status SkipScalar() {
    SkipSpace();
    if (ConsumeWord("null") || ConsumeWord("true") || ConsumeWord("false")) return Status::OK();
    if (pos_ < text_.size() && text_[pos_] == '"') return String().status();
    return Integer().status();
  }

 private:
  Result<uint32_t> Hex4() {
    if (pos_ + 4 > text_.size()) return Error("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<uint32_t>(h - 'A' + 10);
      else
        return Error("bad \\u escape");
    }
    return v;
  }
  static void AppendCodePoint(uint32_t cp, std::string* out) {
    if (cp <= 0xff) {
      // ASCII, or a raw byte JsonString escaped (see ParseJsonRecordLine).
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Result<JsonRecordLine> ParseJsonRecordLine(std::string_view line) {
  JsonReader r(line);
  JsonRecordLine out;
  if (!r.Consume('{')) return r.Error("expected a JSON object");
  bool first = true;
  while (!r.Consume('}')) {
    if (!first && !r.Consume(',')) return r.Error("expected ',' or '}'");
    first = false;
    RILL_ASSIGN_OR_RETURN(std::string name, r.String());
    if (!r.Consume(':')) return r.Error("expected ':'");
    if (name == "key") {
      RILL_ASSIGN_OR_RETURN(out.key, r.NullableString());
    } else if (name == "value") {
      RILL_ASSIGN_OR_RETURN(out.value, r.NullableString());
    } else if (name == "timestamp") {
      RILL_ASSIGN_OR_RETURN(out.timestamp_ms, r.Integer());
    } else if (name == "headers") {
      if (!r.Consume('{')) return r.Error("\"headers\" must be an object");
      bool first_header = true;
      while (!r.Consume('}')) {
        if (!first_header && !r.Consume(',')) return r.Error("expected ',' or '}'");
        first_header = false;
        RILL_ASSIGN_OR_RETURN(std::string k, r.String());
        if (!r.Consume(':')) return r.Error("expected ':'");
        RILL_ASSIGN_OR_RETURN(auto v, r.NullableString());
        out.headers.emplace_back(std::move(k), std::move(v));
      }
    } else {
      RILL_RETURN_IF_ERROR(r.SkipScalar());
    }
  }
  if (!r.AtEnd()) return r.Error("text after the object");
  return out;
}

Result<RecordTemplate> RecordTemplate::Parse(std::string_view text) {
  RecordTemplate t;
  std::string literal;
  const auto flush = [&] {
    if (!literal.empty()) t.parts_.push_back({0, std::move(literal)});
    literal.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 1 >= text.size()) {
        return Status::InvalidArgument("format '" + std::string(text) + "' ends with a lone '%'");
      }
      const char d = text[++i];
      if (d == '%') {
        literal += '%';
        continue;
      }
      if (std::string_view("tpokvsThKS").find(d) == std::string_view::npos) {
        return Status::InvalidArgument("format '" + std::string(text) + "': unknown directive '%" +
                                       std::string(1, d) +
                                       "' (known: %t %p %o %k %v %s %T %h %K %S %%)");
      }
      flush();
      t.parts_.push_back({d == 's' ? 'v' : d, ""});
    } else if (c == '\\' && i + 1 < text.size()) {
      const char e = text[++i];
      switch (e) {
        case 'n':
          literal += '\n';
          break;
        case 't':
          literal += '\t';
          break;
        case 'r':
          literal += '\r';
          break;
        case '\\':
          literal += '\\';
          break;
        default:
          return Status::InvalidArgument("format '" + std::string(text) + "': unknown escape '\\" +
                                         std::string(1, e) + "' (known: \\n \\t \\r \\\\)");
      }
    } else {
      literal += c;
    }
  }
  flush();
  return t;
}

void RecordTemplate::Format(const client::ConsumerRecord& r, std::string* out) const {
  const auto size = [](const std::optional<std::string_view>& v) {
    return v ? std::to_string(v->size()) : std::string("-1");
  };
  for (const Part& p : parts_) {
    switch (p.directive) {
      case 0:
        *out += p.literal;
        break;
      case 't':
        *out += r.topic;
        break;
      case 'p':
        *out += std::to_string(r.partition);
        break;
      case 'o':
        *out += std::to_string(r.offset);
        break;
      case 'T':
        *out += std::to_string(r.timestamp_ms);
        break;
      case 'k':
        if (r.key) out->append(*r.key);
        break;
      case 'v':
        if (r.value) out->append(*r.value);
        break;
      case 'K':
        *out += size(r.key);
        break;
      case 'S':
        *out += size(r.value);
        break;
      case 'h':
        for (size_t i = 0; i < r.headers.size(); ++i) {
          if (i) *out += ',';
          out->append(r.headers[i].first);
          *out += '=';
          if (r.headers[i].second) out->append(*r.headers[i].second);
        }
        break;
    }
  }
}

Result<std::vector<std::string>> ParseBootstrapList(std::string_view text) {
  return client::internal::ParseBootstrapList(text);
}

}  // namespace rill::tools
