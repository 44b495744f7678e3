#pragma once

// Free loopback ports for the brokers tests start, out of the way of other sockets.
//
// A port the kernel hands out for bind(0) comes from the ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), the same range every outgoing connection's local
// port comes from. So between a test picking such a port and its broker binding it, or while a
// killed broker restarts on its old port, a gRPC client connection of any process can take it,
// and the broker fails with "Address already in use". FreePort picks below that range instead,
// where only listeners live: at random (so parallel tests rarely try the same port) among the
// ports that bind at that moment.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <random>

namespace rill::test {

// Whether a TCP socket can bind 127.0.0.1:port now (0 = any port: returns the one it got).
inline int TryBindLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int got = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    got = ntohs(a.sin_port);
  }
  ::close(fd);
  return got;
}

// A loopback port that binds now, below the ephemeral range when there is room there (from
// 10000 up), else one the kernel picks; 0 when none binds.
inline int FreePort() {
  int ephemeral_low = 32768;
  {
    std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
    int low = 0;
    if (range >> low && low > 0) ephemeral_low = low;
  }
  constexpr int kFirst = 10000;
  if (ephemeral_low - kFirst >= 1000) {
    static std::mutex mu;
    static std::mt19937 rng(static_cast<uint32_t>(::getpid()) * 2654435761u ^
                            static_cast<uint32_t>(
                                std::chrono::steady_clock::now().time_since_epoch().count()));
    std::lock_guard lock(mu);
    std::uniform_int_distribution<int> pick(kFirst, ephemeral_low - 1);
    for (int attempt = 0; attempt < 100; ++attempt) {
      const int port = pick(rng);
      if (TryBindLoopback(port) == port) return port;
    }
  }
  return TryBindLoopback(0);
}

}  // namespace rill::test
