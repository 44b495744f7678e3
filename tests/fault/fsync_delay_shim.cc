// Fault injection for the slow-disk fault of rill-chaos: an LD_PRELOAD library that delays every
// fsync and fdatasync of the process by the number of milliseconds written in the file named by
// $RILL_FAULT_FSYNC_DELAY_FILE (read at each call; missing, empty or 0: no delay). The broker
// itself has no hook: rill-chaos starts every broker with this library preloaded and writes the
// file to make one broker's disk slow and fast again (tests/fault/README.md).

#include <dlfcn.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

long DelayMs() {
  static const char* path = std::getenv("RILL_FAULT_FSYNC_DELAY_FILE");
  if (path == nullptr) return 0;
  const int saved_errno = errno;
  long ms = 0;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[32] = {};
    if (::read(fd, buf, sizeof buf - 1) > 0) ms = std::strtol(buf, nullptr, 10);
    ::close(fd);
  }
  errno = saved_errno;
  return ms > 0 ? ms : 0;
}

void Delay() {
  long ms = DelayMs();
  if (ms == 0) return;
  timespec t{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&t, &t) != 0 && errno == EINTR) {
  }
}

template <typename F>
F Real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int fsync(int fd) {
  static auto real = Real<int (*)(int)>("fsync");
  Delay();
  return real(fd);
}

extern "C" int fdatasync(int fd) {
  static auto real = Real<int (*)(int)>("fdatasync");
  Delay();
  return real(fd);
}
