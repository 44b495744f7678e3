// redis-xadd-bench: open-loop XADD latency against a Redis server, the peer figure beside
// rill-bench's produce-to-ack latency (bench/scripts/redis_compare.sh).
//
//   redis-xadd-bench --port 6379 --rate 10000 --records 100000 --value-size 100
//
// Each sender owns one connection and two threads: a pacer writes `XADD <stream> * v <value>` at
// each record's intended time (open loop: records are never held back by slow replies, so a
// stall is not hidden by coordinated omission), pipelining every command that is due; a reader
// parses the replies in order (Redis answers one connection in order) and takes each record's
// latency from its intended send time to the moment its reply was read. Commands are formatted
// and replies parsed with hiredis (redisFormatCommandArgv, redisReader); the socket is plain
// blocking TCP so the two threads can share it full duplex.
//
// Prints the latency percentiles and the CPU time per record of this process and, with
// --server-pid, of the server over the run; --json for one JSON object.

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "6379";
  std::string stream = "bench";
  double rate = 10000;       // records/s over all senders
  int64_t records = 100000;  // over all senders
  int value_size = 100;
  int senders = 1;
  int pace_tick_us = 100;  // the pacer wakes at most once per this many microseconds
  int server_pid = 0;
  bool json = false;
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "redis-xadd-bench: %s\n", what);
  std::exit(2);
}

int Connect(const Options& o) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &ai) != 0 || ai == nullptr) {
    Die("cannot resolve the server address");
  }
  const int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) Die("cannot connect");
  freeaddrinfo(ai);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

std::optional<double> SelfCpuSeconds() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return std::nullopt;
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime + stime (fields 14, 15) of /proc/<pid>/stat; 10 ms resolution.
std::optional<double> PidCpuSeconds(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(stat.c_str() + paren + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu",
                  &utime, &stime) != 2) {
    return std::nullopt;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Sender {
  int fd = -1;
  int64_t first = 0;  // this sender's records are first, first + senders, ... (global index)
  int64_t count = 0;
  std::vector<int64_t> latency_ns;  // per record of this sender, in send order
  std::atomic<int64_t> errors{0};
  std::string first_error;
};

// Writes this sender's records at their intended times (global record i is due at
// start + i / rate), every due record in one write.
void Pace(const Options& o, Sender* s, int64_t start_ns, const std::string& command) {
  const double ns_per_record = 1e9 / o.rate;
  const int64_t tick_ns = int64_t{o.pace_tick_us} * 1000;
  std::string out;
  int64_t last_wake_ns = 0;
  for (int64_t k = 0; k < s->count;) {
    const int64_t i = s->first + k * o.senders;
    const int64_t due_ns = start_ns + static_cast<int64_t>(static_cast<double>(i) * ns_per_record);
    const int64_t now = NowNs();
    if (now < due_ns) {
      const int64_t wake_ns = std::max(due_ns, last_wake_ns + tick_ns);
      timespec ts{static_cast<time_t>(wake_ns / 1'000'000'000),
                  static_cast<long>(wake_ns % 1'000'000'000)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      }
      last_wake_ns = NowNs();
      continue;
    }
    out.clear();
    // Every record due by now goes out in this write.
    while (k < s->count) {
      const int64_t j = s->first + k * o.senders;
      if (start_ns + static_cast<int64_t>(static_cast<double>(j) * ns_per_record) > now) break;
      out += command;
      ++k;
    }
    for (size_t off = 0; off < out.size();) {
      const ssize_t n = send(s->fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        Die("send failed");
      }
      off += static_cast<size_t>(n);
    }
  }
}

// Reads the replies of this sender's records in order and stamps each one's latency.
void Read(const Options& o, Sender* s, int64_t start_ns) {
  const double ns_per_record = 1e9 / o.rate;
  redisReader* reader = redisReaderCreate();
  std::vector<char> buf(1 << 16);
  int64_t k = 0;
  while (k < s->count) {
    const ssize_t n = recv(s->fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      Die("connection closed before every reply arrived");
    }
    const int64_t now = NowNs();
    if (redisReaderFeed(reader, buf.data(), static_cast<size_t>(n)) != REDIS_OK) {
      Die("reply parse error");
    }
    void* reply = nullptr;
    while (k < s->count && redisReaderGetReply(reader, &reply) == REDIS_OK && reply != nullptr) {
      auto* r = static_cast<redisReply*>(reply);
      if (r->type == REDIS_REPLY_ERROR) {
        if (s->errors.fetch_add(1) == 0) s->first_error.assign(r->str, r->len);
      }
      freeReplyObject(r);
      const int64_t i = s->first + k * o.senders;
      s->latency_ns[static_cast<size_t>(k)] =
          now - (start_ns + static_cast<int64_t>(static_cast<double>(i) * ns_per_record));
      ++k;
    }
  }
  redisReaderFree(reader);
}

int Run(const Options& o) {
  // Random-ish printable value, as rill-bench sends.
  std::mt19937_64 rng(42);
  std::string value(static_cast<size_t>(o.value_size), 'x');
  for (char& ch : value) ch = static_cast<char>('a' + rng() % 26);
  const char* argv[] = {"XADD", o.stream.c_str(), "*", "v", value.data()};
  const size_t argvlen[] = {4, o.stream.size(), 1, 1, value.size()};
  char* formatted = nullptr;
  const long long len = redisFormatCommandArgv(&formatted, 5, argv, argvlen);
  if (len < 0) Die("cannot format the command");
  const std::string command(formatted, static_cast<size_t>(len));
  redisFreeCommand(formatted);

  std::vector<Sender> senders(static_cast<size_t>(o.senders));
  for (int s = 0; s < o.senders; ++s) {
    Sender& sd = senders[static_cast<size_t>(s)];
    sd.fd = Connect(o);
    sd.first = s;
    sd.count = o.records / o.senders + (s < o.records % o.senders ? 1 : 0);
    sd.latency_ns.assign(static_cast<size_t>(sd.count), -1);
  }
  const int64_t start_ns = NowNs() + 1'000'000;  // 1 ms for the threads to start
  const std::optional<double> bench_cpu0 = SelfCpuSeconds();
  const std::optional<double> server_cpu0 = PidCpuSeconds(o.server_pid);
  std::vector<std::thread> threads;
  for (auto& sd : senders) {
    threads.emplace_back([&o, &sd, start_ns, &command] { Pace(o, &sd, start_ns, command); });
    threads.emplace_back([&o, &sd, start_ns] { Read(o, &sd, start_ns); });
  }
  for (auto& t : threads) t.join();
  const int64_t end_ns = NowNs();
  const std::optional<double> bench_cpu1 = SelfCpuSeconds();
  const std::optional<double> server_cpu1 = PidCpuSeconds(o.server_pid);

  std::vector<int64_t> all;
  int64_t errors = 0;
  std::string first_error;
  for (auto& sd : senders) {
    all.insert(all.end(), sd.latency_ns.begin(), sd.latency_ns.end());
    errors += sd.errors.load();
    if (first_error.empty()) first_error = sd.first_error;
    close(sd.fd);
  }
  std::sort(all.begin(), all.end());
  auto at = [&](double q) {
    return all.empty() ? 0.0
                       : static_cast<double>(
                             all[std::min(all.size() - 1, static_cast<size_t>(q * all.size()))]) /
                             1e6;
  };
  const double secs = static_cast<double>(end_ns - start_ns) / 1e9;
  const double n = static_cast<double>(std::max<int64_t>(o.records, 1));
  const double bench_cpu = bench_cpu0 && bench_cpu1 ? *bench_cpu1 - *bench_cpu0 : 0;
  const bool server_known = server_cpu0 && server_cpu1;
  const double server_cpu = server_known ? *server_cpu1 - *server_cpu0 : 0;
  if (o.json) {
    std::printf(
        "{\"records\":%lld,\"value_size\":%d,\"rate\":%.0f,\"senders\":%d,\"seconds\":%.3f,"
        "\"errors\":%lld,\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},"
        "\"cpu\":{\"bench\":{\"cpu_s\":%.3f,\"cores\":%.3f,\"us_per_record\":%.3f}",
        static_cast<long long>(o.records), o.value_size, o.rate, o.senders, secs,
        static_cast<long long>(errors), at(0.5), at(0.99), at(0.999),
        all.empty() ? 0.0 : static_cast<double>(all.back()) / 1e6, bench_cpu, bench_cpu / secs,
        bench_cpu * 1e6 / n);
    if (server_known) {
      std::printf(",\"server\":{\"cpu_s\":%.3f,\"cores\":%.3f,\"us_per_record\":%.3f}}}\n",
                  server_cpu, server_cpu / secs, server_cpu * 1e6 / n);
    } else {
      std::printf(",\"server\":null}}\n");
    }
  } else {
    std::printf("xadd: %lld records of %d B at %.0f/s in %.2f s (%lld errors)\n",
                static_cast<long long>(o.records), o.value_size, o.rate, secs,
                static_cast<long long>(errors));
    std::printf("  xadd-to-reply latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", at(0.5),
                at(0.99), at(0.999), all.empty() ? 0.0 : static_cast<double>(all.back()) / 1e6);
    std::printf("cpu over %.2f s: redis-xadd-bench %.2f s = %.2f cores, %.2f core-us/record", secs,
                bench_cpu, bench_cpu / secs, bench_cpu * 1e6 / n);
    if (server_known) {
      std::printf("; server %.2f s = %.2f cores, %.2f core-us/record\n", server_cpu,
                  server_cpu / secs, server_cpu * 1e6 / n);
    } else {
      std::printf("; server not measured (--server-pid)\n");
    }
  }
  if (errors > 0) {
    std::fprintf(stderr, "redis-xadd-bench: %lld errors, first: %s\n",
                 static_cast<long long>(errors), first_error.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--host") {
      o.host = next();
    } else if (a == "--port") {
      o.port = next();
    } else if (a == "--stream") {
      o.stream = next();
    } else if (a == "--rate") {
      o.rate = std::stod(next());
    } else if (a == "--records" || a == "-n") {
      o.records = std::stoll(next());
    } else if (a == "--value-size" || a == "-s") {
      o.value_size = std::stoi(next());
    } else if (a == "--senders") {
      o.senders = std::stoi(next());
    } else if (a == "--pace-tick-us") {
      o.pace_tick_us = std::stoi(next());
    } else if (a == "--server-pid") {
      o.server_pid = std::stoi(next());
    } else if (a == "--json") {
      o.json = true;
    } else {
      std::fprintf(stderr,
                   "usage: redis-xadd-bench [--host H] [--port P] [--stream S] [--rate R] "
                   "[--records N] [--value-size B] [--senders K] [--pace-tick-us U] "
                   "[--server-pid PID] [--json]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (o.rate <= 0 || o.records <= 0 || o.senders <= 0 || o.value_size <= 0 || o.pace_tick_us <= 0) {
    Die("--rate, --records, --senders, --value-size and --pace-tick-us must be positive");
  }
  // Precise paced sleeps (the default 50 us timer slack would add to every paced record).
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  return Run(o);
}
