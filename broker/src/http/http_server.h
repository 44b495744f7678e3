#pragma once

// A small HTTP/1.1 server (Boost.Beast) for /metrics, /healthz and /readyz. One thread of its
// own; each request is answered by a handler and the connection is closed.
//
// Thread-safety: Start/Stop from one thread; handlers run on the server's thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "rill/proto/status.h"

namespace rill::broker {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  // `handler(path)` produces the response for a GET of `path`.
  using Handler = std::function<HttpResponse(const std::string& path)>;

  explicit HttpServer(Handler handler);
  ~HttpServer();

  // Binds host:port (port 0 = any free port) and starts serving.
  Status Start(const std::string& host, int port);
  int port() const { return port_; }
  void Stop();

 private:
  void Accept();

  Handler handler_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace rill::broker
