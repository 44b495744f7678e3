#include "http/http_server.h"
#include "rill/proto/thread_name.h"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace rill::broker {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Handler& handler)
      : stream_(std::move(socket)), handler_(handler) {}

  void Run() {
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;
                       self->Respond();
                     });
  }

 private:
  void Respond() {
    HttpResponse r;
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      r.status = 405;
      r.body = "only GET\n";
    } else {
      std::string target(request_.target());
      auto q = target.find('?');
      if (q != std::string::npos) target.resize(q);
      r = handler_(target);
    }
    response_.version(request_.version());
    response_.result(static_cast<http::status>(r.status));
    response_.set(http::field::content_type, r.content_type);
    response_.set(http::field::server, "rill-broker");
    response_.keep_alive(false);
    response_.body() = std::move(r.body);
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      });
  }

  beast::tcp_stream stream_;
  const HttpServer::Handler& handler_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

HttpServer::HttpServer(Handler handler) : handler_(std::move(handler)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& host, int port) {
  try {
    auto addr = boost::asio::ip::make_address(host);
    acceptor_ = std::make_unique<tcp::acceptor>(io_);
    tcp::endpoint ep(addr, static_cast<unsigned short>(port));
    acceptor_->open(ep.protocol());
    acceptor_->set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_->bind(ep);
    acceptor_->listen();
    port_ = acceptor_->local_endpoint().port();
  } catch (const std::exception& e) {
    return Status::IOError("HTTP listener " + host + ":" + std::to_string(port) + ": " + e.what());
  }
  Accept();
  thread_ = std::thread([this] {
    SetCurrentThreadName("rill-http");
    io_.run();
  });
  return Status::OK();
}

void HttpServer::Accept() {
  acceptor_->async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) return;  // closed
    std::make_shared<Session>(std::move(socket), handler_)->Run();
    Accept();
  });
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  io_.stop();
  thread_.join();
  acceptor_.reset();
}

}  // namespace rill::broker
